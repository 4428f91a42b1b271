"""``pixdex remove | show | datasets | db | demo``: managing the index."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING

from pixdex.cli.common import EXIT_OK, parse_uuid, print_report
from pixdex.config import Settings
from pixdex.errors import InvalidInputError

if TYPE_CHECKING:
    from pixdex.app.maintenance import LayoutCheck


def register_remove(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("remove", help="remove files, directories or ids from the index")
    parser.add_argument("paths", nargs="*", metavar="PATH")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--id", action="append", default=[], metavar="IMAGE_ID")
    parser.add_argument("--json", action="store_true")


def run_remove(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.removal import remove
    from pixdex.app.sources import local_uris

    if not args.paths and not args.id:
        raise InvalidInputError("give at least one PATH or --id IMAGE_ID to remove")
    exact, prefixes = local_uris(args.paths)
    ids = [parse_uuid(raw, "id") for raw in args.id]
    report = remove(args.dataset, uris=exact, uri_prefixes=prefixes, ids=ids, settings=settings)
    print_report(report, args.json)
    return EXIT_OK


def register_show(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("show", help="show one image's record")
    parser.add_argument("id", metavar="IMAGE_ID")


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.admin import image_record

    print(image_record(settings, parse_uuid(args.id, "id")).model_dump_json(indent=2))
    return EXIT_OK


def register_datasets(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("datasets", help="list datasets with image counts")
    parser.add_argument("--json", action="store_true")


def run_datasets(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.admin import dataset_summaries

    rows = dataset_summaries(settings)
    if args.json:
        print(json.dumps(rows, default=str))
    else:
        for row in rows:
            print(f"{row['name']}: {row['indexed']} indexed, {row['failed']} failed")
    return EXIT_OK


def register_db(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "db", help="the embedded PostgreSQL server; optimize: regroup the vectors",
        description="status / stop / url: the embedded PostgreSQL server. optimize (any "
        "database): rewrite the vectors table grouped by dataset, model and split, with its "
        "indexes rebuilt, so exact searches inside a split read few pages; searches and "
        "writes wait while it runs (minutes at a million vectors); --check says first "
        "how many pages it would save, without the lock.",
    )
    parser.add_argument("action", choices=["status", "stop", "url", "optimize"])
    parser.add_argument("--check", action="store_true",
                        help="optimize: only report how spread the vectors are and whether "
                        "regrouping pays; rewrites nothing (pending migrations still apply, "
                        "as with any command)")
    parser.add_argument("--json", action="store_true", help="optimize: the report as JSON")


def run_db(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "optimize" and args.check:
        from pixdex.app.maintenance import check_vectors

        check = check_vectors(settings)
        if args.json:
            print(json.dumps(dataclasses.asdict(check)))
        else:
            print(_check_text(check))
        return EXIT_OK
    if args.action == "optimize":
        from pixdex.app.maintenance import optimize_vectors

        layout = optimize_vectors(settings)
        if args.json:
            print(json.dumps(dataclasses.asdict(layout)))
        else:
            print(f"{layout.rows:,} vectors regrouped in {layout.seconds} s, "
                  f"{layout.indexes_rebuilt} indexes rebuilt; the {layout.split_rows:,} "
                  f"vectors with a split now on {layout.split_pages_after:,} pages (were "
                  f"{layout.split_pages_before:,}); table {layout.table_bytes_before / 2**20:,.0f}"
                  f" -> {layout.table_bytes_after / 2**20:,.0f} MiB")
        return EXIT_OK
    for flag in ("json", "check"):
        if getattr(args, flag):
            raise InvalidInputError(f"--{flag} goes with optimize only", field=flag)
    from pixdex.app.database_admin import database

    print(database(settings, args.action))
    return EXIT_OK


def _check_text(check: LayoutCheck) -> str:
    if not check.split_rows:
        return (f"{check.rows:,} vectors, none with a split: an exact search inside a split "
                "has nothing to gain from pixdex db optimize")
    where = (f"{check.split_rows:,} of {check.rows:,} vectors have a split; they lie on "
             f"{check.split_pages:,} pages, ~{check.split_pages_regrouped:,} if regrouped")
    if check.indexed_split_rows == check.split_rows:
        return (f"{where}; searches inside every split read its vectors from their own "
                "index, in split order already: pixdex db optimize would not speed them up")
    where += (f"; {check.split_rows - check.indexed_split_rows:,} are too large for the "
              "split index, and the split gaining most among theirs would be read from "
              f"{check.most_pages_saved:,} page{'' if check.most_pages_saved == 1 else 's'} "
              "fewer by every exact search inside it")
    if not check.worth_regrouping:
        return f"{where}: too few to be worth pixdex db optimize's lock"
    return (f"{where}. pixdex db optimize regroups them: it rewrites the whole table "
            f"({check.table_bytes / 2**20:,.0f} MiB) and its indexes while searches and "
            "writes wait (docs/benchmarks.md: minutes at a million vectors)")


def register_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pixdex.cli.serve import add_options

    parser = sub.add_parser("demo", help="index sample photos and run example searches")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--serve", action="store_true", help="then serve the API and print curl examples"
    )
    add_options(parser)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.demo import run_demo as demo

    demo(settings, as_json=args.json)
    if args.serve:
        from pixdex.cli.serve import serve_after_demo

        return serve_after_demo(args, settings)
    return EXIT_OK
