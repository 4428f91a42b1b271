"""Images added through the API and waiting to be indexed (``status = 'pending'``).

The row carries everything the user sent (folder, tags, metadata), so whoever indexes it
later (the local server's background indexer, or the ``ingest`` function handed the ids
through the queue) needs nothing but its id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from psycopg.types.json import Jsonb

from pixdex.models import ImageStatus, UserMetadata
from pixdex.storage.connection import Conn

__all__ = [
    "Pending",
    "PendingRow",
    "fail_pending",
    "insert_pending",
    "pending_rows",
    "row_values",
    "waiting_uploads",
]

_INSERT = """
INSERT INTO images (dataset_id, storage_key, name, folder, status, user_tags,
                    annotation_classes, batch_id, annotation_job_id, split, metadata)
VALUES (%s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s, %s)
ON CONFLICT (dataset_id, storage_key) DO UPDATE SET
    folder = EXCLUDED.folder, user_tags = EXCLUDED.user_tags,
    annotation_classes = EXCLUDED.annotation_classes, batch_id = EXCLUDED.batch_id,
    annotation_job_id = EXCLUDED.annotation_job_id, split = EXCLUDED.split,
    metadata = EXCLUDED.metadata, updated_at = now(),
    -- the same key is the same bytes (its hash is in the key): a failed row is retried
    status = CASE WHEN images.status = 'failed' THEN 'pending' ELSE images.status END,
    error = CASE WHEN images.status = 'failed' THEN NULL ELSE images.error END
RETURNING id, status
"""


@dataclass(frozen=True)
class PendingRow:
    storage_key: str
    name: str
    folder: str
    meta: UserMetadata


@dataclass(frozen=True)
class Pending:
    id: UUID
    storage_key: str
    folder: str
    meta: UserMetadata


def row_values(dataset_id: UUID, row: PendingRow) -> tuple[object, ...]:
    """The columns every pending insert sets, in ``_INSERT``'s order."""
    meta = row.meta
    return (dataset_id, row.storage_key, row.name, row.folder, meta.user_tags,
            Jsonb(meta.annotation_classes), meta.batch_id, meta.annotation_job_id,
            meta.split, Jsonb(meta.metadata))


def insert_pending(
    conn: Conn, dataset_id: UUID, rows: Sequence[PendingRow]
) -> dict[str, tuple[UUID, ImageStatus]]:
    """Create ``pending`` rows; return storage key -> (id, status now).

    A key that already has a row keeps its id, takes the new metadata at once, and keeps
    its status unless it had failed (then it is indexed again).
    """
    found: dict[str, tuple[UUID, ImageStatus]] = {}
    with conn.transaction(), conn.cursor() as cur:
        for row in rows:
            answer = cur.execute(_INSERT, row_values(dataset_id, row)).fetchone()
            assert answer is not None
            found[row.storage_key] = (UUID(str(answer["id"])), ImageStatus(str(answer["status"])))
    return found


def pending_rows(conn: Conn, dataset_id: UUID, ids: Sequence[UUID]) -> list[Pending]:
    """The rows among ``ids`` still waiting, with what ingest needs to index them."""
    rows = conn.execute(
        "SELECT id, storage_key, folder, user_tags, annotation_classes, batch_id,"
        " annotation_job_id, split, metadata FROM images"
        " WHERE dataset_id = %s AND id = ANY(%s) AND status = 'pending' ORDER BY created_at",
        (dataset_id, list(ids)),
    ).fetchall()
    return [
        Pending(
            id=UUID(str(r["id"])),
            storage_key=str(r["storage_key"]),
            folder=str(r["folder"]),
            meta=UserMetadata.model_validate(
                {k: r[k] for k in ("user_tags", "annotation_classes", "batch_id",
                                   "annotation_job_id", "split", "metadata")}
                | {"folder": r["folder"]}
            ),
        )
        for r in rows
    ]


def waiting_uploads(conn: Conn, key_prefix: str) -> dict[tuple[str, UUID], list[UUID]]:
    """Pending rows stored under ``key_prefix`` (the API's uploads), per (workspace,
    dataset): what a server that stopped mid-way had not indexed yet. Upload slots still
    waiting for their file are not among them."""
    rows = conn.execute(
        "SELECT w.name AS workspace, i.dataset_id, i.id FROM images i"
        " JOIN datasets d ON d.id = i.dataset_id JOIN workspaces w ON w.id = d.workspace_id"
        " WHERE i.status = 'pending' AND starts_with(i.storage_key, %s)"
        " AND i.upload_expires_at IS NULL ORDER BY i.created_at",
        (key_prefix,),
    ).fetchall()
    found: dict[tuple[str, UUID], list[UUID]] = {}
    for r in rows:
        key = (str(r["workspace"]), UUID(str(r["dataset_id"])))
        found.setdefault(key, []).append(UUID(str(r["id"])))
    return found


def fail_pending(conn: Conn, dataset_id: UUID, ids: Sequence[UUID], error: str) -> None:
    """Rows of the dataset still ``pending`` after an aborted ingest become ``failed``."""
    conn.execute(
        "UPDATE images SET status = 'failed', error = %s, updated_at = now()"
        " WHERE dataset_id = %s AND id = ANY(%s) AND status = 'pending'",
        (error, dataset_id, list(ids)),
    )
