"""``pixdex reembed`` (add a model's vectors to a dataset) and ``pixdex retag``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from pixdex.cli.common import EXIT_OK
from pixdex.config import Settings
from pixdex.errors import ModelCapabilityError


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
    parser = sub.add_parser("retag", help="recompute zero-shot auto-tags of a dataset")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", help="vision-language model (default: the dataset's)")
    parser.add_argument("--json", action="store_true")


def run_retag(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.admin import tagging_model
    from pixdex.app.retag import retag_dataset
    from pixdex.engines import get_model
    from pixdex.vlm import VisionLanguageModel

    name = args.model or tagging_model(settings, args.dataset)
    model = get_model(name, settings)
    if not isinstance(model, VisionLanguageModel):
        raise ModelCapabilityError(
            f"model {name} tags from its classes at ingest, not zero-shot; retag needs a "
            "vision-language model", field="model",
        )
    report = retag_dataset(args.dataset, model, settings)
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print(f"retagged {report.images} image(s) of {report.dataset} with {report.model} "
              f"(taxonomy {report.taxonomy_version})")
    return EXIT_OK
