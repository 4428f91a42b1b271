"""CloudFormation custom resource that applies the schema migrations on deploy.

``Create`` and ``Update`` apply every pending migration (:mod:`pixdex.storage.migrate`:
advisory-locked, each file once) and answer ``SUCCESS`` with ``Data`` =
``{"SchemaVersion": "<latest>", "Applied": "<versions applied now, comma separated>"}``.
``Delete`` answers ``SUCCESS`` and touches nothing: removing the stack (or replacing the
resource) must never drop data.

CloudFormation waits for the answer (a ``PUT`` of a JSON document to the pre-signed
``ResponseURL``), so every event that names a ``ResponseURL`` gets one, failures included
(``FAILED`` with the reason); otherwise the stack would hang for an hour. The physical id
stays the same across updates, so an update never makes CloudFormation delete the old
resource.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixdex.config import Settings
from pixdex.errors import InvalidInputError, PixdexError

__all__ = [
    "PHYSICAL_ID",
    "CustomResourceEvent",
    "CustomResourceResponse",
    "apply_schema",
    "handle_migration_event",
    "send_response",
]

log = logging.getLogger(__name__)

PHYSICAL_ID = "pixdex-schema"
_REASON_LIMIT = 1000  # the whole response must stay under 4 KB
_ATTEMPTS = 3


class CustomResourceEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    RequestType: Literal["Create", "Update", "Delete"]
    ResponseURL: str = Field(min_length=1)
    StackId: str = Field(min_length=1)
    RequestId: str = Field(min_length=1)
    LogicalResourceId: str = Field(min_length=1)
    PhysicalResourceId: str | None = None
    ResourceType: str | None = None
    ResourceProperties: dict[str, Any] = Field(default_factory=dict)


class CustomResourceResponse(BaseModel):
    Status: Literal["SUCCESS", "FAILED"]
    Reason: str
    PhysicalResourceId: str
    StackId: str
    RequestId: str
    LogicalResourceId: str
    NoEcho: bool = False
    Data: dict[str, str] = Field(default_factory=dict)


def apply_schema(settings: Settings) -> list[int]:
    """Apply pending migrations to the configured database; the versions applied now."""
    import psycopg

    from pixdex.errors import DatabaseUnavailableError
    from pixdex.storage.connection import database_url
    from pixdex.storage.migrate import apply_migrations

    try:
        with psycopg.connect(database_url(settings), autocommit=True, connect_timeout=30) as conn:
            return apply_migrations(conn)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc


def _latest_version() -> int:
    from pixdex.storage.migrate import load_migrations

    return max((m.version for m in load_migrations()), default=0)


def handle_migration_event(
    raw: Mapping[str, Any], settings: Callable[[], Settings], *, log_stream: str = ""
) -> CustomResourceResponse:
    """Handle one custom-resource event and send its answer to CloudFormation."""
    try:
        event = CustomResourceEvent.model_validate(raw)
    except ValidationError as exc:
        return _answer_malformed(raw, exc)
    physical = event.PhysicalResourceId or PHYSICAL_ID
    status: Literal["SUCCESS", "FAILED"] = "SUCCESS"
    data: dict[str, str] = {}
    reason = f"{event.RequestType} done"
    try:
        if event.RequestType in ("Create", "Update"):
            applied = apply_schema(settings())
            data = {
                "SchemaVersion": str(_latest_version()),
                "Applied": ",".join(str(v) for v in applied),
            }
            reason = f"schema at version {data['SchemaVersion']}"
        else:
            reason = "schema and data kept: deleting the resource never drops data"
    except Exception as exc:  # any failure must still reach CloudFormation
        log.exception("migration failed")
        status = "FAILED"
        message = exc.message if isinstance(exc, PixdexError) else f"{type(exc).__name__}: {exc}"
        where = f" (log stream {log_stream})" if log_stream else ""
        reason = f"schema migration failed{where}: {message}"
    response = CustomResourceResponse(
        Status=status,
        Reason=reason[:_REASON_LIMIT],
        PhysicalResourceId=physical,
        StackId=event.StackId,
        RequestId=event.RequestId,
        LogicalResourceId=event.LogicalResourceId,
        Data=data,
    )
    send_response(event.ResponseURL, response)
    return response


def _answer_malformed(raw: Mapping[str, Any], exc: ValidationError) -> CustomResourceResponse:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    problem = f"not a CloudFormation custom-resource event: {where}: {err['msg']}"
    names = ("ResponseURL", "StackId", "RequestId", "LogicalResourceId")
    if not all(isinstance(raw.get(name), str) and raw.get(name) for name in names):
        raise InvalidInputError(problem + " (and no ResponseURL to answer)", field=where) from exc
    physical = raw.get("PhysicalResourceId")
    response = CustomResourceResponse(
        Status="FAILED",
        Reason=problem[:_REASON_LIMIT],
        PhysicalResourceId=physical if isinstance(physical, str) and physical else PHYSICAL_ID,
        StackId=str(raw["StackId"]),
        RequestId=str(raw["RequestId"]),
        LogicalResourceId=str(raw["LogicalResourceId"]),
    )
    send_response(str(raw["ResponseURL"]), response)
    return response


def send_response(url: str, response: CustomResourceResponse, *, timeout: float = 10.0) -> None:
    """PUT the answer to the pre-signed URL (retried: losing it hangs the stack)."""
    if urlsplit(url).scheme not in ("https", "http"):
        raise InvalidInputError(f"ResponseURL must be an https URL, got {url!r}", field="url")
    body = json.dumps(response.model_dump()).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body,
        method="PUT",
        # The URL is pre-signed without a content type: sending one breaks the signature.
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                answer.read()
            return
        except (urllib.error.URLError, OSError) as exc:
            if attempt == _ATTEMPTS:
                raise
            log.warning("sending the custom-resource response failed (%s); retrying", exc)
            time.sleep(0.5 * attempt)
