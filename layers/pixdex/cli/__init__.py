"""The ``pixdex`` command line: a thin layer over the library.

Each command lives in its own module with a ``register`` (argparse) and a ``run``
function; :data:`COMMANDS` names them. Only the module of the command being run is
imported (a process runs one command, and some modules pull in the model runtime or the
HTTP server), so ``pixdex db status`` does not pay for ``pixdex serve``. Exit codes: 0
success (an index run that recorded failed files still succeeds: the failures are in its
report), 1 an operation error (e.g. database unavailable), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from pydantic import ValidationError

from pixdex.cli.common import EXIT_ERROR, EXIT_USAGE, first_error
from pixdex.config import Settings, get_settings
from pixdex.errors import PixdexError

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
Run = Callable[[argparse.Namespace, Settings], int]

# command -> (module under pixdex.cli, its register function, its run function)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "index": ("index", "register", "run"),
    "search": ("search", "register", "run"),
    "remove": ("manage", "register_remove", "run_remove"),
    "show": ("manage", "register_show", "run_show"),
    "datasets": ("manage", "register_datasets", "run_datasets"),
    "db": ("manage", "register_db", "run_db"),
    "demo": ("manage", "register_demo", "run_demo"),
    "models": ("models", "register", "run"),
    "embedder": ("embedder", "register", "run"),
    "serve": ("serve", "register", "run"),
    "keys": ("keys", "register", "run"),
    "vectors": ("vectors", "register", "run"),
    "reembed": ("vectors", "register_reembed", "run_reembed"),
    "retag": ("vectors", "register_retag", "run_retag"),
    "taxonomy": ("taxonomy", "register", "run"),
    "duplicates": ("curation", "register_duplicates", "run_duplicates"),
    "leakage": ("curation", "register_leakage", "run_leakage"),
    "outliers": ("curation", "register_outliers", "run_outliers"),
    "label-doubts": ("curation", "register_label_doubts", "run_label_doubts"),
    "curation": ("curation", "register_curation", "run_curation"),
}


def command(name: str) -> tuple[Register, Run]:
    module_name, register, run = COMMANDS[name]
    module = import_module(f"pixdex.cli.{module_name}")
    return getattr(module, register), getattr(module, run)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only its command's options when it names one, else all
    commands (for ``--help`` and for the "invalid choice" message)."""
    parser = argparse.ArgumentParser(
        prog="pixdex", description="Index images and search them by image, tags and metadata."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else list(COMMANDS)
    for name in chosen:
        command(name)[0](sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"error: invalid PIXDEX_* setting: {first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return command(args.command)[1](args, settings)
    except ValidationError as exc:
        print(f"error: {first_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except PixdexError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.http_status < 500 else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
