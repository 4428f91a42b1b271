"""``pixdex vectors import`` (bring your own vectors), ``pixdex reembed`` (add a model's
vectors to a dataset) and ``pixdex retag``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from pixdex.cli.common import EXIT_OK
from pixdex.config import Settings

if TYPE_CHECKING:
    from pixdex.models import VectorImportReport

# Refused rows printed by the human-readable report (--json lists the first 20).
_SHOWN_EXAMPLES = 10


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("vectors", help="bring your own vectors: import them as images")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    imports = actions.add_parser(
        "import", help="import a Parquet file of vectors (name, embedding, metadata columns)",
        description="Each row becomes an indexed image without a file: columns name "
        "(string) and embedding (list of float32, one dimension), optional folder, split, "
        "tags (list of strings), batch_id, annotation_job_id, metadata (JSON text). Bad "
        "rows are reported, not fatal.",
    )
    imports.add_argument("file", metavar="FILE", help="a Parquet file")
    imports.add_argument("--dataset", required=True, help="created if new")
    imports.add_argument("--model", required=True,
                         help="the named vector (created with the file's dimension if new)")
    imports.add_argument(
        "--no-index", action="store_true",
        help="leave the model's HNSW index unbuilt (several imports in a row: the last one, "
        "without this flag, builds it once); its searches rank exactly meanwhile",
    )
    imports.add_argument("--chunk-rows", type=int, help="rows per chunk (default 8192)")
    imports.add_argument("--json", action="store_true", help="print one JSON report")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.vector_file import import_file, open_vector_file

    total = open_vector_file(args.file).rows
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit="row", unit_scale=True, file=sys.stderr)
    try:
        report = import_file(
            args.file, args.dataset, args.model, settings=settings,
            index="defer" if args.no_index else "auto", chunk_rows=args.chunk_rows,
            progress=None if bar is None else lambda rows: bar.update(rows),
        )
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(report.model_dump_json())
    else:
        _print_import(report)
    return EXIT_OK


def _print_import(report: VectorImportReport) -> None:
    for warning in report.warnings:
        print(f"note: {warning}", file=sys.stderr)
    for problem in report.examples[:_SHOWN_EXAMPLES]:
        name = f" {problem.name!r}" if problem.name is not None else ""
        print(f"refused row {problem.row}{name}: {problem.message}", file=sys.stderr)
    if report.rejected > _SHOWN_EXAMPLES:
        print(f"... and {report.rejected - _SHOWN_EXAMPLES:,} more refused row(s)",
              file=sys.stderr)
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in report.reasons.items())
    index = {"built": "index built", "updated": "index updated",
             "deferred": "index not built (--no-index)"}[report.index]
    print(f"imported {report.imported:,} of {report.rows:,} row(s) into {report.dataset} as "
          f"{report.model} ({report.dim}-d{', new' if report.model_created else ''}; {index})"
          f", refused {report.rejected:,}" + (f" ({reasons})" if reasons else "")
          + f" in {report.seconds:.1f} s")


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
