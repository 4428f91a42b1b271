"""S3 event notifications (as delivered in SQS message bodies), parsed and normalised.

A body is either ``{"Records": [...]}`` or the ``s3:TestEvent`` S3 sends once when a
notification is configured (acknowledged and ignored). Per record:

* ``ObjectCreated:*`` -> ``created``; ``ObjectRemoved:*`` and
  ``LifecycleExpiration:Delete|DeleteMarkerCreated`` -> ``removed``; any other event name
  (restore, replication, tagging, ...) is not about content and is ignored;
* the key is URL-decoded the way S3 encodes it (``+`` for spaces, ``%XX`` for the rest);
* ``sequencer`` (S3's per-key event order) and ``versionId`` are kept as given.

Key layout: ``<dataset>/<folder...>/<file>``. The first path segment names the dataset
(in the workspace ``PIXDEX_WORKSPACE``), the segments between it and the file name are the
folder (``holidays/beach/2024/a.jpg`` -> dataset ``holidays``, folder ``/beach/2024``).
Keys at the bucket root and folder markers (keys ending in ``/``) belong to no dataset.
"""

from __future__ import annotations

import json
from typing import Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pixdex.errors import InvalidInputError

__all__ = [
    "S3Notification",
    "S3ObjectEvent",
    "dataset_and_folder",
    "load_body",
    "parse_s3_message",
    "parse_s3_notification",
]

_REMOVED_LIFECYCLE = ("LifecycleExpiration:Delete", "LifecycleExpiration:DeleteMarkerCreated")


class _Object(BaseModel):
    key: str = Field(min_length=1)
    size: int | None = None
    versionId: str | None = None  # noqa: N815 (S3's field name)
    sequencer: str | None = None


class _Bucket(BaseModel):
    name: str = Field(min_length=1)


class _S3(BaseModel):
    bucket: _Bucket
    object: _Object


class _Record(BaseModel):
    eventSource: str | None = None  # noqa: N815
    eventName: str = Field(min_length=1)  # noqa: N815
    s3: _S3


class _Message(BaseModel):
    Records: list[_Record] = Field(min_length=1)


class S3ObjectEvent(BaseModel):
    """One object change, ready to apply."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["created", "removed"]
    event_name: str
    bucket: str
    key: str
    sequencer: str | None = None
    version_id: str | None = None
    size: int | None = None


class S3Notification(BaseModel):
    """One SQS message body: the object events in it, or S3's configuration test event."""

    test_event: bool = False
    events: list[S3ObjectEvent] = Field(default_factory=list)


def _kind(event_name: str) -> Literal["created", "removed"] | None:
    if event_name.startswith("ObjectCreated:"):
        return "created"
    if event_name.startswith("ObjectRemoved:") or event_name in _REMOVED_LIFECYCLE:
        return "removed"
    return None


def parse_s3_message(body: str) -> S3Notification:
    """The object events in one SQS message body (none for ``s3:TestEvent``).

    Raises ``InvalidInputError`` for anything else: not JSON, not an S3 notification
    (e.g. an SNS envelope, which needs raw message delivery turned on), missing fields.
    """
    return parse_s3_notification(load_body(body))


def load_body(body: str) -> object:
    """A message body's JSON (``InvalidInputError`` when it is not JSON)."""
    try:
        raw: object = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise InvalidInputError(f"message body is not JSON: {exc}", field="body") from exc
    return raw


def parse_s3_notification(raw: object) -> S3Notification:
    """:func:`parse_s3_message` for a body already read as JSON."""
    if isinstance(raw, dict) and raw.get("Event") == "s3:TestEvent":
        return S3Notification(test_event=True)
    try:
        message = _Message.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        hint = (
            " (an SNS envelope? enable raw message delivery)"
            if isinstance(raw, dict) and raw.get("Type") == "Notification"
            else ""
        )
        raise InvalidInputError(
            f"message body is not an S3 event notification: {where}: {err['msg']}{hint}",
            field="body",
        ) from exc
    events: list[S3ObjectEvent] = []
    for record in message.Records:
        if record.eventSource not in (None, "aws:s3"):
            raise InvalidInputError(
                f"record from {record.eventSource!r}, expected aws:s3", field="eventSource"
            )
        kind = _kind(record.eventName)
        if kind is None:
            continue
        events.append(
            S3ObjectEvent(
                kind=kind,
                event_name=record.eventName,
                bucket=record.s3.bucket.name,
                key=unquote_plus(record.s3.object.key),
                sequencer=record.s3.object.sequencer or None,
                version_id=record.s3.object.versionId or None,
                size=record.s3.object.size,
            )
        )
    return S3Notification(events=events)


def dataset_and_folder(key: str) -> tuple[str, str] | None:
    """``(dataset, folder)`` for a key laid out as ``<dataset>/<folder...>/<file>``.

    None for keys that name no dataset: at the bucket root, folder markers, or with an
    empty first segment.
    """
    if key.endswith("/"):
        return None
    parts = key.split("/")
    if len(parts) < 2 or not parts[0]:
        return None
    folder = "/" + "/".join(p for p in parts[1:-1] if p not in ("", "."))
    return parts[0], folder
