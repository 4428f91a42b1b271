"""Upload slots: ``pending`` rows created before their file exists (presigned PUT URLs).

A slot's row is an ordinary pending image whose ``upload_expires_at`` says until when its
file may still arrive. Receiving the file clears it; a row still waiting past that time
is marked failed by :func:`expire_overdue`, so an abandoned upload cannot keep its
dataset "indexing" forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pixdex.models import ImageStatus
from pixdex.storage.connection import Conn
from pixdex.storage.pending import PendingRow, row_values

__all__ = [
    "Slot", "expire_overdue", "find_slot", "find_slot_by_id", "insert_slots", "mark_received",
]

EXPIRED_ERROR = "no file was uploaded to this slot before it expired; ask for a new slot"

_INSERT = """
INSERT INTO images (dataset_id, storage_key, name, folder, status, user_tags,
                    annotation_classes, batch_id, annotation_job_id, split, metadata,
                    upload_expires_at)
VALUES (%s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s, %s)
RETURNING id
"""


@dataclass(frozen=True)
class Slot:
    workspace: str
    dataset_id: UUID
    image_id: UUID
    storage_key: str
    name: str
    status: ImageStatus
    # The request's duplicate gate (on_duplicate, level); None: the dataset's.
    gate: tuple[str, int] | None = None


_SELECT = (
    "SELECT w.name AS workspace, i.dataset_id, i.id, i.storage_key, i.name, i.status,"
    " g.on_duplicate, g.level"
    " FROM images i JOIN datasets d ON d.id = i.dataset_id"
    " JOIN workspaces w ON w.id = d.workspace_id"
    " LEFT JOIN upload_slot_gates g ON g.image_id = i.id"
)


def insert_slots(
    conn: Conn, dataset_id: UUID, rows: Sequence[PendingRow], usable_until: datetime,
    gate: tuple[str, int] | None = None,
) -> list[UUID]:
    """One pending row per slot (keys are fresh, so never a conflict); their ids in order.
    ``gate``: the request's duplicate gate, kept until the files arrive."""
    ids: list[UUID] = []
    with conn.transaction(), conn.cursor() as cur:
        for row in rows:
            answer = cur.execute(_INSERT, (*row_values(dataset_id, row), usable_until)).fetchone()
            assert answer is not None
            ids.append(UUID(str(answer["id"])))
        if gate is not None:
            cur.executemany(
                "INSERT INTO upload_slot_gates (image_id, on_duplicate, level)"
                " VALUES (%s, %s, %s)", [(image_id, *gate) for image_id in ids],
            )
    return ids


def find_slot(conn: Conn, storage_key: str) -> Slot | None:
    """The image a slot's key belongs to; None once the image (or its dataset) is deleted."""
    return _slot(conn.execute(_SELECT + " WHERE i.storage_key = %s", (storage_key,)).fetchone())


def find_slot_by_id(conn: Conn, image_id: UUID) -> Slot | None:
    return _slot(conn.execute(_SELECT + " WHERE i.id = %s", (image_id,)).fetchone())


def _slot(row: dict[str, object] | None) -> Slot | None:
    if row is None:
        return None
    gate = None if row["on_duplicate"] is None else (str(row["on_duplicate"]),
                                                     int(str(row["level"])))
    return Slot(str(row["workspace"]), UUID(str(row["dataset_id"])), UUID(str(row["id"])),
                str(row["storage_key"]), str(row["name"]), ImageStatus(str(row["status"])),
                gate)


def mark_received(conn: Conn, image_id: UUID) -> None:
    """The slot's file has arrived: the row waits for indexing, not for the upload.

    Also when it had expired (S3 accepts a PUT that started before the URL's expiry) or
    was indexed already (the same URL used again: the image is now the new file).
    """
    conn.execute(
        "UPDATE images SET upload_expires_at = NULL, status = 'pending', error = NULL,"
        " updated_at = now() WHERE id = %s",
        (image_id,),
    )


def expire_overdue(conn: Conn) -> int:
    """Slots whose time is up and whose file never came become ``failed``; how many."""
    cur = conn.execute(
        "UPDATE images SET status = 'failed', error = %s, upload_expires_at = NULL,"
        " updated_at = now() WHERE upload_expires_at < now() AND status = 'pending'",
        (EXPIRED_ERROR,),
    )
    return cur.rowcount
