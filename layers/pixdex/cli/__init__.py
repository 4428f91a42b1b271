"""The ``pixdex`` command line: a thin layer over the library.

Each command lives in its own module with a ``register`` (argparse) and a ``run``
function; :data:`COMMANDS` lists them. Exit codes: 0 success (an index run that recorded
failed files still succeeds: the failures are in its report), 1 an operation error (e.g.
database unavailable), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from pixdex.cli import (
    embedder,
    index,
    keys,
    manage,
    models,
    search,
    serve,
    taxonomy,
    vectors,
)
from pixdex.cli.common import EXIT_ERROR, EXIT_USAGE, first_error
from pixdex.config import Settings, get_settings
from pixdex.errors import PixdexError

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
Run = Callable[[argparse.Namespace, Settings], int]

COMMANDS: dict[str, tuple[Register, Run]] = {
    "index": (index.register, index.run),
    "search": (search.register, search.run),
    "remove": (manage.register_remove, manage.run_remove),
    "show": (manage.register_show, manage.run_show),
    "datasets": (manage.register_datasets, manage.run_datasets),
    "db": (manage.register_db, manage.run_db),
    "demo": (manage.register_demo, manage.run_demo),
    "models": (models.register, models.run),
    "embedder": (embedder.register, embedder.run),
    "serve": (serve.register, serve.run),
    "keys": (keys.register, keys.run),
    "reembed": (vectors.register_reembed, vectors.run_reembed),
    "retag": (vectors.register_retag, vectors.run_retag),
    "taxonomy": (taxonomy.register, taxonomy.run),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixdex", description="Index images and search them by image, tags and metadata."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register, _ in COMMANDS.values():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"error: invalid PIXDEX_* setting: {first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command][1](args, settings)
    except ValidationError as exc:
        print(f"error: {first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except PixdexError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.http_status < 500 else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
