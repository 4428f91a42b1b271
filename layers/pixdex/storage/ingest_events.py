"""The last S3 event applied per object (bucket, key): ordering and redelivery guard.

S3 notifications arrive through SQS at least once and in no particular order. For one key,
S3's ``sequencer`` orders its events: a larger value happened later. Values may differ in
length; S3 says to right-pad the shorter with zeros and compare as text, which
:func:`normalise_sequencer` does once (fixed width, upper case) so the database compares
them with a plain ``<`` (the column uses the "C" collation).

Usage (one transaction, see :mod:`pixdex.app.bucket_ingest`): :func:`lock_object` serialises
workers on the same key, :func:`last_sequencer` says whether the event is new, and
:func:`record_event` remembers it after the index has been changed.
"""

from __future__ import annotations

import re
from typing import Literal

from pixdex.errors import InvalidInputError
from pixdex.storage.connection import Conn

__all__ = ["last_sequencer", "lock_object", "normalise_sequencer", "record_event"]

SEQUENCER_WIDTH = 64
_HEX = re.compile(r"^[0-9A-Fa-f]{1,64}$")
# Advisory-lock class for objects (two-int form: its own key space, apart from migrations).
_LOCK_CLASS = 0x70697865

EventKind = Literal["created", "removed"]


def normalise_sequencer(raw: str) -> str:
    if not _HEX.match(raw):
        raise InvalidInputError(
            f"S3 sequencer must be 1-{SEQUENCER_WIDTH} hexadecimal digits, got {raw!r}",
            field="sequencer",
        )
    return raw.upper().ljust(SEQUENCER_WIDTH, "0")


def lock_object(conn: Conn, workspace: str, bucket: str, key: str) -> None:
    """Hold the object's lock until the current transaction ends."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
        # Length-prefixed so no two (workspace, bucket) splits of one string coincide.
        (_LOCK_CLASS, f"{len(workspace)}:{workspace}{len(bucket)}:{bucket}/{key}"),
    )


def last_sequencer(conn: Conn, workspace: str, bucket: str, key: str) -> str | None:
    row = conn.execute(
        "SELECT sequencer FROM ingest_events WHERE workspace = %s AND bucket = %s AND key = %s",
        (workspace, bucket, key),
    ).fetchone()
    return None if row is None else str(row["sequencer"])


def record_event(
    conn: Conn,
    workspace: str,
    bucket: str,
    key: str,
    sequencer: str,
    version_id: str | None,
    event: EventKind,
) -> None:
    """Remember ``event`` as the object's latest (never replacing a later one)."""
    conn.execute(
        "INSERT INTO ingest_events (workspace, bucket, key, sequencer, version_id, event)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (workspace, bucket, key) DO UPDATE SET sequencer = EXCLUDED.sequencer,"
        " version_id = EXCLUDED.version_id, event = EXCLUDED.event, applied_at = now()"
        " WHERE ingest_events.sequencer < EXCLUDED.sequencer",
        (workspace, bucket, key, sequencer, version_id, event),
    )
