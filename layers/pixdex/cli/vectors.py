"""``pixdex reembed`` (add a model's vectors to a dataset) and ``pixdex retag``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from pixdex.cli.common import EXIT_OK
from pixdex.config import Settings


def register_reembed(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "reembed", help="add a model's vectors to an indexed dataset (searches keep working)"
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument(
        "--model", required=True,
        help="an installed vision-language model, or efficientnet-lite0-classes (the class "
        "scores prompt search needs on datasets indexed before they existed)",
    )
    parser.add_argument("--batch-size", type=int, help="images per model call")
    parser.add_argument("--json", action="store_true")


def run_reembed(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.reembed import reembed

    report = reembed(args.dataset, args.model, settings=settings, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(asdict(report)))
        return EXIT_OK
    for error in report.errors:
        print(f"failed  {error}")
    state = "complete" if report.complete else "incomplete: re-run to finish"
    print(f"{report.model}: embedded {report.embedded}, failed {report.failed} ({state})")
    return EXIT_OK


def register_retag(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "retag",
        help="recompute a dataset's auto-tags: zero-shot with its vision-language model, "
        "else generic labels and scenes from the offline model's stored class scores",
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", help="the model to tag with (default: the dataset's)")
    parser.add_argument("--json", action="store_true")


def run_retag(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.retag_classes import retag

    report = retag(args.dataset, settings, args.model)
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print(f"retagged {report.images} image(s) of {report.dataset} with {report.model} "
              f"(taxonomy {report.taxonomy_version})")
    return EXIT_OK
