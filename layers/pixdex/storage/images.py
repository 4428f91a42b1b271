"""Image rows and their embeddings: batched writes, lookups, deletion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
import psycopg
from numpy.typing import NDArray
from pgvector import HalfVector
from psycopg.types.json import Jsonb

from pixdex.errors import NotFoundError
from pixdex.models import TAG_KINDS, AutoTags, ImageMetadata, ImageRecord, ImageStatus
from pixdex.storage.connection import Conn


@dataclass
class ImageWrite:
    """Everything ingest knows about one file, ready to be written in a batch."""

    dataset_id: UUID
    storage_key: str
    name: str
    folder: str
    sha256: str | None
    byte_size: int | None
    status: ImageStatus
    error: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    meta: ImageMetadata = field(default_factory=ImageMetadata)
    auto_tags: AutoTags = field(default_factory=AutoTags)
    embedding: NDArray[np.float32] | None = None
    # Further named vectors of the image (model name -> vector), e.g. class probabilities.
    vectors: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    # An image the API added: complete its pending row (and keep what the user set on it
    # meanwhile), never insert one: a row deleted or re-added while it waited stays so.
    pending_only: bool = False


@dataclass(frozen=True)
class KnownImage:
    id: UUID
    sha256: str | None
    status: ImageStatus


def tag_keys(tags: AutoTags) -> list[str]:
    return [f"{kind}:{name}" for kind in TAG_KINDS for name in getattr(tags, kind)]


_UPSERT = """
INSERT INTO images (dataset_id, storage_key, name, folder, sha256, byte_size, width, height,
                    format, status, error, user_tags, annotation_classes, batch_id,
                    annotation_job_id, split, metadata, auto_tags, tag_keys)
VALUES (%(dataset_id)s, %(storage_key)s, %(name)s, %(folder)s, %(sha256)s, %(byte_size)s,
        %(width)s, %(height)s, %(format)s, %(status)s, %(error)s, %(user_tags)s,
        %(annotation_classes)s, %(batch_id)s, %(annotation_job_id)s, %(split)s, %(metadata)s,
        %(auto_tags)s, %(tag_keys)s)
ON CONFLICT (dataset_id, storage_key) DO UPDATE SET
    name = EXCLUDED.name, folder = EXCLUDED.folder, sha256 = EXCLUDED.sha256,
    byte_size = EXCLUDED.byte_size, width = EXCLUDED.width, height = EXCLUDED.height,
    format = EXCLUDED.format, status = EXCLUDED.status, error = EXCLUDED.error,
    user_tags = EXCLUDED.user_tags, annotation_classes = EXCLUDED.annotation_classes,
    batch_id = EXCLUDED.batch_id, annotation_job_id = EXCLUDED.annotation_job_id,
    split = EXCLUDED.split, metadata = EXCLUDED.metadata, auto_tags = EXCLUDED.auto_tags,
    tag_keys = EXCLUDED.tag_keys, updated_at = now()
RETURNING id
"""


def _params(w: ImageWrite) -> dict[str, object]:
    return {
        "dataset_id": w.dataset_id,
        "storage_key": w.storage_key,
        "name": w.name,
        "folder": w.folder,
        "sha256": w.sha256,
        "byte_size": w.byte_size,
        "width": w.width,
        "height": w.height,
        "format": w.format,
        "status": w.status.value,
        "error": w.error,
        "user_tags": w.meta.user_tags,
        "annotation_classes": Jsonb(w.meta.annotation_classes),
        "batch_id": w.meta.batch_id,
        "annotation_job_id": w.meta.annotation_job_id,
        "split": w.meta.split,
        "metadata": Jsonb(w.meta.metadata),
        "auto_tags": Jsonb(w.auto_tags.model_dump()),
        "tag_keys": tag_keys(w.auto_tags),
    }


# What indexing computed, onto a row the API left pending; the user's columns untouched.
_COMPLETE_PENDING = """
UPDATE images SET sha256 = %(sha256)s, byte_size = %(byte_size)s, width = %(width)s,
    height = %(height)s, format = %(format)s, status = %(status)s, error = %(error)s,
    auto_tags = %(auto_tags)s, tag_keys = %(tag_keys)s, updated_at = now()
WHERE dataset_id = %(dataset_id)s AND storage_key = %(storage_key)s AND status = 'pending'
RETURNING id
"""


def write_images(conn: Conn, model: str, batch: Sequence[ImageWrite]) -> list[UUID | None]:
    """Upsert a batch of images (and their embeddings) in one transaction; return ids.

    A ``pending_only`` write completes its pending row or, when there is none any more
    (deleted, or already done by a redelivered job), writes nothing and gets None.
    """
    ids: list[UUID | None] = [None] * len(batch)
    with conn.transaction(), conn.cursor() as cur:
        for statement, pending in ((_UPSERT, False), (_COMPLETE_PENDING, True)):
            positions = [n for n, w in enumerate(batch) if w.pending_only is pending]
            if not positions:
                continue
            # One round trip for the whole group (psycopg pipelines executemany).
            cur.executemany(statement, [_params(batch[n]) for n in positions], returning=True)
            for n in positions:
                row = cur.fetchone()
                ids[n] = UUID(str(row["id"])) if row is not None else None
                cur.nextset()
        written = [(i, w) for i, w in zip(ids, batch, strict=True) if i is not None]
        replace_embeddings(cur, model, written)
    return ids


def folder_and_below(folder: str) -> tuple[str, str]:
    """A folder filter's exact value and the LIKE pattern of everything below it, with
    LIKE's own characters escaped (a folder named ``50%_off`` matches only itself)."""
    exact = folder.rstrip("/")
    escaped = exact.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return exact, escaped + "/%"


def replace_embeddings(
    cur: psycopg.Cursor[dict[str, object]], model: str, written: Sequence[tuple[UUID, ImageWrite]]
) -> None:
    """Each written row's vectors (the model's and the extra named ones); a row that failed
    keeps none: an old vector would describe the file's previous content."""
    embedded = [
        (i, name, w.dataset_id, vector)
        for i, w in written
        if w.embedding is not None
        for name, vector in ((model, w.embedding), *w.vectors.items())
    ]
    stale = [i for i, w in written if w.embedding is None]
    if stale:
        cur.execute("DELETE FROM image_embeddings WHERE image_id = ANY(%s)", (stale,))
    if embedded:
        cur.executemany(
            "INSERT INTO image_embeddings (image_id, model, dataset_id, embedding)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (image_id, model)"
            " DO UPDATE SET embedding = EXCLUDED.embedding",
            [(i, name, ds, HalfVector(vector)) for i, name, ds, vector in embedded],
        )


def write_vectors(
    conn: Conn, model: str, rows: Sequence[tuple[UUID, UUID, NDArray[np.float32]]]
) -> None:
    """Upsert ``(image_id, dataset_id, vector)`` rows of one model (used by reembed)."""
    if not rows:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO image_embeddings (image_id, model, dataset_id, embedding)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (image_id, model)"
            " DO UPDATE SET embedding = EXCLUDED.embedding",
            [(i, model, ds, HalfVector(vector)) for i, ds, vector in rows],
        )


def known_images(conn: Conn, dataset_id: UUID, keys: Sequence[str]) -> dict[str, KnownImage]:
    rows = conn.execute(
        "SELECT storage_key, id, sha256, status FROM images"
        " WHERE dataset_id = %s AND storage_key = ANY(%s)",
        (dataset_id, list(keys)),
    ).fetchall()
    return {
        str(r["storage_key"]): KnownImage(
            UUID(str(r["id"])), None if r["sha256"] is None else str(r["sha256"]),
            ImageStatus(str(r["status"])),
        )
        for r in rows
    }


def delete_by_keys(conn: Conn, dataset_id: UUID, keys: Sequence[str]) -> list[tuple[str, UUID]]:
    rows = conn.execute(
        "DELETE FROM images WHERE dataset_id = %s AND storage_key = ANY(%s)"
        " RETURNING storage_key, id",
        (dataset_id, list(keys)),
    ).fetchall()
    return [(str(r["storage_key"]), UUID(str(r["id"]))) for r in rows]


def delete_by_ids(
    conn: Conn, workspace: str, ids: Sequence[UUID], *, dataset_id: UUID | None = None
) -> list[UUID]:
    if not ids:
        return []
    rows = conn.execute(
        "DELETE FROM images i USING datasets d, workspaces w"
        " WHERE i.dataset_id = d.id AND d.workspace_id = w.id AND w.name = %s"
        " AND i.id = ANY(%s) AND (%s::uuid IS NULL OR i.dataset_id = %s::uuid) RETURNING i.id",
        (workspace, list(ids), dataset_id, dataset_id),
    ).fetchall()
    return [UUID(str(r["id"])) for r in rows]


def keys_under(conn: Conn, dataset_id: UUID, key_prefix: str) -> list[str]:
    rows = conn.execute(
        "SELECT storage_key FROM images WHERE dataset_id = %s AND starts_with(storage_key, %s)",
        (dataset_id, key_prefix),
    ).fetchall()
    return [str(r["storage_key"]) for r in rows]


_RECORD_COLUMNS = """
    i.id, i.dataset_id, d.name AS dataset, i.folder, i.name, i.storage_key, i.sha256,
    i.byte_size, i.width, i.height, i.format, i.created_at, i.status, i.error, i.user_tags,
    i.annotation_classes, i.batch_id, i.annotation_job_id, i.split, i.metadata, i.auto_tags
"""


def get_image(conn: Conn, workspace: str, image_id: UUID) -> ImageRecord:
    row = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM images i JOIN datasets d ON d.id = i.dataset_id"
        " JOIN workspaces w ON w.id = d.workspace_id WHERE w.name = %s AND i.id = %s",
        (workspace, image_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"image {image_id} does not exist", field="id")
    return ImageRecord.model_validate(row)


def get_embedding(conn: Conn, image_id: UUID, model: str) -> NDArray[np.float32] | None:
    row = conn.execute(
        "SELECT embedding FROM image_embeddings WHERE image_id = %s AND model = %s",
        (image_id, model),
    ).fetchone()
    if row is None:
        return None
    value = row["embedding"]
    assert isinstance(value, HalfVector)
    return np.asarray(value.to_numpy(), dtype=np.float32)


def vector_models(conn: Conn, image_id: UUID) -> list[str]:
    """The models the image has a vector of."""
    rows = conn.execute(
        "SELECT model FROM image_embeddings WHERE image_id = %s ORDER BY model", (image_id,)
    ).fetchall()
    return [str(r["model"]) for r in rows]


def refresh_statistics(conn: Conn) -> None:
    """ANALYZE after a bulk load so the planner's row estimates match the new data."""
    conn.execute("ANALYZE images")
    conn.execute("ANALYZE image_embeddings")


# --- HTTP API: uploads, listing, editing -------------------------------------------------


def records_by_ids(conn: Conn, workspace: str, ids: Sequence[UUID]) -> dict[UUID, ImageRecord]:
    rows = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM images i JOIN datasets d ON d.id = i.dataset_id"
        " JOIN workspaces w ON w.id = d.workspace_id WHERE w.name = %s AND i.id = ANY(%s)",
        (workspace, list(ids)),
    ).fetchall()
    return {UUID(str(r["id"])): ImageRecord.model_validate(r) for r in rows}


def embeddings_by_ids(
    conn: Conn, ids: Sequence[UUID], model: str
) -> dict[UUID, NDArray[np.float32]]:
    rows = conn.execute(
        "SELECT image_id, embedding FROM image_embeddings WHERE image_id = ANY(%s) AND model = %s",
        (list(ids), model),
    ).fetchall()
    out: dict[UUID, NDArray[np.float32]] = {}
    for r in rows:
        value = r["embedding"]
        assert isinstance(value, HalfVector)
        out[UUID(str(r["image_id"]))] = np.asarray(value.to_numpy(), dtype=np.float32)
    return out


@dataclass(frozen=True)
class ListFilters:
    status: ImageStatus | None = None
    folder: str | None = None
    user_tags: Sequence[str] = ()
    split: str | None = None
    batch_id: str | None = None
    annotation_job_id: str | None = None


def list_records(
    conn: Conn, dataset_id: UUID, filters: ListFilters, *, offset: int, limit: int
) -> tuple[int, list[ImageRecord]]:
    """One page of a dataset's images, newest first (ties by id), and the filtered total."""
    clauses = ["i.dataset_id = %(dataset_id)s"]
    params: dict[str, object] = {"dataset_id": dataset_id}
    if filters.status is not None:
        clauses.append("i.status = %(status)s")
        params["status"] = filters.status.value
    if filters.folder is not None and filters.folder != "/":
        folder, below = folder_and_below(filters.folder)
        clauses.append("(i.folder = %(folder)s OR i.folder LIKE %(folder_prefix)s)")
        params.update(folder=folder, folder_prefix=below)
    if filters.user_tags:
        clauses.append("i.user_tags @> %(user_tags)s")
        params["user_tags"] = list(filters.user_tags)
    for column in ("split", "batch_id", "annotation_job_id"):
        value = getattr(filters, column)
        if value is not None:
            clauses.append(f"i.{column} = %({column})s")
            params[column] = value
    where = " AND ".join(clauses)
    total_row = conn.execute(f"SELECT count(*) AS n FROM images i WHERE {where}", params).fetchone()
    assert total_row is not None
    rows = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM images i JOIN datasets d ON d.id = i.dataset_id"
        f" WHERE {where} ORDER BY i.created_at DESC, i.id OFFSET %(offset)s LIMIT %(limit)s",
        {**params, "offset": offset, "limit": limit},
    ).fetchall()
    return int(str(total_row["n"])), [ImageRecord.model_validate(r) for r in rows]


# Columns a user may edit through the API; JSON columns need wrapping for psycopg.
_EDITABLE = ("user_tags", "metadata", "annotation_classes", "split", "batch_id",
             "annotation_job_id", "folder")
_JSON_COLUMNS = ("metadata", "annotation_classes")


def update_record(
    conn: Conn, workspace: str, image_id: UUID, changes: dict[str, object]
) -> ImageRecord:
    """Apply ``changes`` (column -> value, editable columns only) and return the record."""
    current = get_image(conn, workspace, image_id)  # NotFoundError across workspaces
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if changes:
        assignments = ", ".join(f"{column} = %({column})s" for column in changes)
        params = {
            column: Jsonb(value) if column in _JSON_COLUMNS else value
            for column, value in changes.items()
        }
        conn.execute(
            f"UPDATE images SET {assignments}, updated_at = now() WHERE id = %(id)s",
            {**params, "id": current.id},
        )
    return get_image(conn, workspace, image_id)


def delete_record(conn: Conn, workspace: str, image_id: UUID) -> ImageRecord:
    """Delete one image (and its embeddings); return the record it had."""
    record = get_image(conn, workspace, image_id)
    conn.execute("DELETE FROM images WHERE id = %s", (record.id,))
    return record
