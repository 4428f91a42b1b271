"""Shared helpers for CLI commands."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from uuid import UUID

from pydantic import ValidationError

from pixdex.errors import InvalidInputError

if TYPE_CHECKING:
    # Only a type here; commands that print reports import the models anyway.
    from pixdex.models import IndexReport

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def parse_uuid(text: str, field: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise InvalidInputError(f"{field} must be a UUID, got {text!r}", field=field) from None


def print_report(report: IndexReport, as_json: bool) -> None:
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


def first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        return f"{where}: {err['msg']}" if where else str(err["msg"])
    return str(exc)
