"""The ``pixdex`` command line: a thin layer over the library.

Exit codes: 0 success (an index run that recorded failed files still succeeds: the failures
are in its report), 1 an operation error (e.g. database unavailable), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from pydantic import ValidationError

from pixdex.config import Settings, get_settings
from pixdex.errors import InvalidInputError, NotFoundError, PixdexError
from pixdex.models import BoundingBox, ImageMetadata, IndexReport, SearchPage, SearchQuery

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixdex", description="Index images and search them by image, tags and metadata."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = sub.add_parser("index", help="index files and directories (recursively)")
    index.add_argument("paths", nargs="+", metavar="PATH")
    index.add_argument("--dataset", required=True)
    index.add_argument("--folder", help="folder to file the images under (default: their "
                       "sub-directory below each directory given)")
    index.add_argument("--tag", action="append", default=[], help="user tag (repeatable)")
    index.add_argument("--batch-id")
    index.add_argument("--annotation-job-id")
    index.add_argument("--split", help="e.g. train / valid / test")
    index.add_argument("--json", action="store_true", help="print one JSON report")

    search = sub.add_parser("search", help="search a dataset")
    search.add_argument("--dataset", required=True)
    search.add_argument("--like", metavar="FILE", help="query image file")
    search.add_argument("--box", metavar="X,Y,W,H", help="region of --like, as fractions")
    search.add_argument("--id", metavar="IMAGE_ID", help="search like this indexed image")
    search.add_argument("--objects", action="append", default=[], help="comma list (OR)")
    search.add_argument("--scenes", action="append", default=[], help="comma list (OR)")
    search.add_argument("--attributes", action="append", default=[], help="comma list (OR)")
    search.add_argument("--tag", action="append", default=[], help="user tag (all must match)")
    search.add_argument("--class-name", action="append", default=[], help="annotation class")
    search.add_argument("--folder")
    search.add_argument("--batch-id")
    search.add_argument("--annotation-job-id")
    search.add_argument("--split")
    search.add_argument("--threshold", type=float, help="cosine similarity floor (-1..1)")
    search.add_argument("--offset", type=int, default=0)
    search.add_argument("--limit", type=int, default=50, help="1..500 (default 50)")
    search.add_argument("--json", action="store_true")

    remove = sub.add_parser("remove", help="remove files, directories or ids from the index")
    remove.add_argument("paths", nargs="*", metavar="PATH")
    remove.add_argument("--dataset", required=True)
    remove.add_argument("--id", action="append", default=[], metavar="IMAGE_ID")
    remove.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="show one image's record")
    show.add_argument("id", metavar="IMAGE_ID")

    datasets = sub.add_parser("datasets", help="list datasets with image counts")
    datasets.add_argument("--json", action="store_true")

    db = sub.add_parser("db", help="the embedded PostgreSQL server")
    db.add_argument("action", choices=["status", "stop", "url"])

    demo = sub.add_parser("demo", help="index sample photos and run example searches")
    demo.add_argument("--json", action="store_true")
    return parser


def _uuid(text: str, field: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidInputError(f"{field} must be a UUID, got {text!r}", field=field) from None


def _print_report(report: IndexReport, as_json: bool) -> None:
    if as_json:
        print(report.model_dump_json())
        return
    for entry in report.images:
        if entry.status == "failed":
            print(f"failed  {entry.path}: {entry.error}", file=sys.stderr)
    print(
        f"indexed {report.indexed}, skipped {report.skipped}, failed {report.failed}"
        + (f", removed {report.removed}" if report.removed else "")
    )


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.ingest import ingest
    from pixdex.sources import local_items

    meta = ImageMetadata(
        user_tags=args.tag, batch_id=args.batch_id,
        annotation_job_id=args.annotation_job_id, split=args.split,
    )
    selection = local_items(args.paths, folder=args.folder, meta=meta)
    bar = None
    progress = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(selection.items), unit="img", file=sys.stderr)

        def progress(done: int) -> None:
            bar.update(done)

    report = ingest(selection.items, args.dataset, settings=settings, progress=progress)
    if bar is not None:
        bar.close()
    report.images.extend(selection.missing)
    report.failed += len(selection.missing)
    _print_report(report, args.json)
    return EXIT_OK


def _cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.search import encode_query_image, search

    if args.box and not args.like:
        raise InvalidInputError("--box needs --like FILE (it selects a region of it)", field="box")
    like_vector = None
    if args.like:
        try:
            box = BoundingBox.parse(args.box) if args.box else None
        except (ValueError, ValidationError) as exc:
            raise InvalidInputError(f"--box: {_first_error(exc)}", field="box") from None
        path = Path(args.like)
        if not path.is_file():
            raise NotFoundError(f"--like: no such file {args.like!r}", field="like")
        like_vector = encode_query_image(path.read_bytes(), box=box, settings=settings)
    query = SearchQuery(
        dataset=args.dataset,
        workspace=settings.workspace,
        like_vector=like_vector,
        like_image_id=_uuid(args.id, "id") if args.id else None,
        objects=args.objects, scenes=args.scenes, attributes=args.attributes,
        tags=args.tag, class_names=args.class_name, folder=args.folder,
        batch_id=args.batch_id, annotation_job_id=args.annotation_job_id, split=args.split,
        threshold=args.threshold, offset=args.offset, limit=args.limit,
    )
    page = search(query, settings)
    _print_page(page, args.json)
    return EXIT_OK


def _print_page(page: SearchPage, as_json: bool) -> None:
    if as_json:
        print(page.model_dump_json())
        return
    shown = f"{page.offset + 1}-{page.offset + len(page.results)}" if page.results else "none"
    print(f"{page.total} match(es); showing {shown}")
    for rank, hit in enumerate(page.results, start=page.offset + 1):
        objects = ", ".join(list(hit.auto_tags.objects)[:3])
        print(f"{rank:4d}. {hit.score:.4f}  {hit.folder.rstrip('/')}/{hit.name}  [{objects}]")


def _cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.removal import remove
    from pixdex.sources import local_uris

    if not args.paths and not args.id:
        raise InvalidInputError("give at least one PATH or --id IMAGE_ID to remove")
    exact, prefixes = local_uris(args.paths)
    ids = [_uuid(raw, "id") for raw in args.id]
    report = remove(args.dataset, uris=exact, uri_prefixes=prefixes, ids=ids, settings=settings)
    _print_report(report, args.json)
    return EXIT_OK


def _cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.storage.connection import connect
    from pixdex.storage.images import get_image

    with connect(settings) as conn:
        record = get_image(conn, settings.workspace, _uuid(args.id, "id"))
    print(record.model_dump_json(indent=2))
    return EXIT_OK


def _cmd_datasets(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.storage.catalog import list_datasets
    from pixdex.storage.connection import connect

    with connect(settings) as conn:
        rows = list_datasets(conn, settings.workspace)
    if args.json:
        print(json.dumps(rows, default=str))
    else:
        for row in rows:
            print(f"{row['name']}: {row['indexed']} indexed, {row['failed']} failed")
    return EXIT_OK


def _cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.storage.embedded import server_running, stop_server

    if settings.database_url is not None:
        print("using PIXDEX_DATABASE_URL: the embedded server is not managed")
        return EXIT_OK
    if args.action == "stop":
        print("stopped" if stop_server(settings.pgdata_dir) else "not running")
    elif args.action == "url":
        from pixdex.storage.embedded import ensure_server

        print(ensure_server(settings.pgdata_dir))
    else:
        state = "running" if server_running(settings.pgdata_dir) else "stopped"
        print(f"embedded PostgreSQL in {settings.pgdata_dir}: {state}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.demo import run_demo

    run_demo(settings, as_json=args.json)
    return EXIT_OK


_COMMANDS = {
    "index": _cmd_index,
    "search": _cmd_search,
    "remove": _cmd_remove,
    "show": _cmd_show,
    "datasets": _cmd_datasets,
    "db": _cmd_db,
    "demo": _cmd_demo,
}


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"error: invalid PIXDEX_* setting: {_first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args, settings)
    except ValidationError as exc:
        print(f"error: {_first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except PixdexError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.http_status < 500 else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
