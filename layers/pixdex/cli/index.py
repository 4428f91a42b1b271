"""``pixdex index``: index files and directories."""

from __future__ import annotations

import argparse
import sys

from pixdex.cli.common import EXIT_OK, print_report
from pixdex.config import Settings
from pixdex.errors import InvalidInputError
from pixdex.models import UserMetadata

NAME = "index"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(NAME, help="index files and directories (recursively)")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--folder", help="folder to file the images under (default: their "
                        "sub-directory below each directory given)")
    parser.add_argument("--tag", action="append", default=[], help="user tag (repeatable)")
    parser.add_argument("--batch-id")
    parser.add_argument("--annotation-job-id")
    parser.add_argument("--split", help="e.g. train / valid / test")
    parser.add_argument("--on-duplicate", choices=("allow", "skip", "link"),
                        help="near-duplicates of images the dataset has: index them (allow), "
                        "leave them out (skip) or index and record the relation (link); "
                        "default: the dataset's gate (pixdex curation gate)")
    parser.add_argument("--duplicate-level", type=int, default=1,
                        help="the gate's level: 0 near-identical ... 4 similar scene")
    parser.add_argument("--json", action="store_true", help="print one JSON report")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.ingest import ingest
    from pixdex.app.sources import local_items

    meta = UserMetadata(
        user_tags=args.tag, batch_id=args.batch_id,
        annotation_job_id=args.annotation_job_id, split=args.split,
    )
    selection = local_items(args.paths, folder=args.folder, meta=meta)
    if selection.missing:
        # A mistyped path is bad input, not a file that failed: refuse before indexing
        # anything, so the fix is to rerun with the right path, not to read a report.
        gone = ", ".join(entry.path for entry in selection.missing)
        raise InvalidInputError(f"no such file or directory: {gone}", field="paths")
    bar = None
    progress = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(selection.items), unit="img", file=sys.stderr)

        def progress(done: int) -> None:
            bar.update(done)

    gate = None
    if args.on_duplicate is not None:
        from pixdex.app.curation_schemas import DuplicateGate

        gate = DuplicateGate(on_duplicate=args.on_duplicate, level=args.duplicate_level)
    report = ingest(selection.items, args.dataset, settings=settings, progress=progress,
                    gate=gate)
    if bar is not None:
        bar.close()
    print_report(report, args.json)
    return EXIT_OK
