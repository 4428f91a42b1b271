"""Imported vectors (bring your own embeddings): the rows they become, in bulk.

An imported row is an image with no file (``storage_key`` NULL), status ``indexed``, and
one vector of an imported model. Rows go in with binary ``COPY`` (ids made here, so the
images and their vectors need no round trip in between), one transaction per chunk.

A name identifies an imported row inside its dataset: :func:`existing_names` finds those
a dataset already has, under a per-dataset advisory lock (:func:`lock_names`) held until
the chunk commits, so two imports into one dataset never both add a name.

The model's partial HNSW index is managed here too: an index grown row by row costs a
graph search per insert (~60 rows/s at 768-d on two cores with a dataset's own index as
well), one built over rows already loaded runs at ~1,700 rows/s (docs/benchmarks.md,
"Vector import"), so a large import loads first and builds after (:func:`build_index`,
``CONCURRENTLY``: other writers are not blocked meanwhile).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql
from psycopg.rows import dict_row

from pixdex.config import Settings
from pixdex.storage import dataset_indexes
from pixdex.storage.catalog import Metric, hnsw_index_name, hnsw_index_statement
from pixdex.storage.connection import Conn, database_url

IndexState = Literal["valid", "invalid", "missing"]
# Memory for one HNSW build (maintenance_work_mem): the graph of 1M 768-d halfvecs is
# ~2 GB; past this the build spills to disk and slows down several-fold, but completes.
_BUILD_MEMORY_CAP_MB = 4096
_BUILD_MEMORY_FLOOR_MB = 64


@dataclass
class NewRows:
    """Checked rows of one chunk, ready to insert: ``vectors[k]`` (unit length) is row k's."""

    names: list[str]
    folders: list[str]
    tags: list[list[str]]
    splits: list[str | None]
    batch_ids: list[str | None]
    annotation_job_ids: list[str | None]
    metadata: list[str]  # JSON text of an object
    vectors: NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.names)


def now(conn: Conn) -> datetime:
    row = conn.execute("SELECT now() AS t").fetchone()
    assert row is not None and isinstance(row["t"], datetime)
    return row["t"]


def lock_names(conn: Conn, dataset_id: UUID) -> None:
    """Serialise imports into one dataset until this transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('pixdex-vectors:' || %s))",
                 (str(dataset_id),))


def existing_names(
    conn: Conn, dataset_id: UUID, names: Sequence[str], since: datetime | None
) -> dict[str, bool]:
    """Which of ``names`` the dataset already has (any image, with a file or not): name ->
    whether that row was created at or after ``since`` (by the import under way)."""
    if not names:
        return {}
    rows = conn.execute(
        "SELECT name, bool_or(%s::timestamptz IS NOT NULL AND created_at >= %s) AS recent"
        " FROM images WHERE dataset_id = %s AND name = ANY(%s) GROUP BY name",
        (since, since, dataset_id, list(names)),
    ).fetchall()
    return {str(r["name"]): bool(r["recent"]) for r in rows}


def insert_rows(conn: Conn, dataset_id: UUID, model: str, rows: NewRows) -> list[UUID]:
    """Insert the rows (images without a file, and their vectors); return their ids.

    The caller holds the transaction (and :func:`lock_names`)."""
    ids = [uuid.uuid4() for _ in range(len(rows))]
    halves = rows.vectors.astype(">f2")
    dim = rows.vectors.shape[1] if len(rows) else 0
    # pgvector's binary halfvec: dim (int16), unused (int16), then big-endian float16s.
    header = np.array([dim, 0], dtype=">i2").tobytes()
    with conn.cursor() as cur:
        with cur.copy(
            "COPY images (id, dataset_id, name, folder, status, user_tags, split, batch_id,"
            " annotation_job_id, metadata) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            # jsonb's binary form is a version byte and the JSON text: sent as it came.
            copy.set_types(["uuid", "uuid", "text", "text", "text", "text[]", "text", "text",
                            "text", "bytea"])
            for k, image_id in enumerate(ids):
                copy.write_row((
                    image_id, dataset_id, rows.names[k], rows.folders[k], "indexed",
                    rows.tags[k], rows.splits[k], rows.batch_ids[k],
                    rows.annotation_job_ids[k], b"\x01" + rows.metadata[k].encode(),
                ))
        with cur.copy(
            "COPY image_embeddings (image_id, model, dataset_id, embedding)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["uuid", "text", "uuid", "bytea"])
            # A split's vectors side by side: an exact ranking inside the split then reads
            # a few pages per chunk instead of a page per row (migration 0012).
            by_split = sorted(range(len(ids)), key=lambda k: (rows.splits[k] is None,
                                                               rows.splits[k] or ""))
            for k in by_split:
                copy.write_row((ids[k], model, dataset_id, header + halves[k].tobytes()))
    return ids


# --- the model's HNSW index ----------------------------------------------------------------


def index_state(conn: Conn, model: str) -> IndexState:
    row = conn.execute(
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE c.relname = %s",
        (hnsw_index_name(model),),
    ).fetchone()
    if row is None:
        return "missing"
    return "valid" if row["indisvalid"] else "invalid"


def indexed_rows(conn: Conn, model: str, dataset_id: UUID | None = None) -> int:
    """How many vectors the model's index (with ``dataset_id``: the dataset's own index of
    the model) holds, from the catalog's statistics (kept by ANALYZE, VACUUM and index
    builds): no scan, so cheap at any size. 0 without one."""
    name = (hnsw_index_name(model) if dataset_id is None
            else dataset_indexes.dataset_index_name(model, dataset_id))
    row = conn.execute(
        "SELECT greatest(c.reltuples, 0)::bigint AS n FROM pg_class c WHERE c.relname = %s",
        (name,),
    ).fetchone()
    return 0 if row is None else int(str(row["n"]))


def has_dataset_index(conn: Conn, model: str, dataset_id: UUID) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok",
                       (dataset_indexes.dataset_index_name(model, dataset_id),)).fetchone()
    return bool(row is not None and row["ok"])


def _ddl_connection(settings: Settings) -> psycopg.Connection[dict[str, object]]:
    """Its own autocommit connection: ``CONCURRENTLY`` cannot run inside a transaction,
    and a pooled connection should not be left in autocommit mode."""
    return psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row)


def drop_index(settings: Settings, model: str, dataset_id: UUID | None = None) -> None:
    """Drop the model's index (with ``dataset_id``: the dataset's own index of it)."""
    name = (hnsw_index_name(model) if dataset_id is None
            else dataset_indexes.dataset_index_name(model, dataset_id))
    with _ddl_connection(settings) as conn:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
            sql.Identifier(name)
        ))


def _build_memory(conn: psycopg.Connection[dict[str, object]], rows: int, dim: int) -> None:
    # The graph: per vector its halfvec (2 bytes a dimension) and ~2m neighbour links.
    memory_mb = int(rows * (2 * dim + 400) * 1.3 / 2**20)
    memory_mb = max(_BUILD_MEMORY_FLOOR_MB, min(_BUILD_MEMORY_CAP_MB, memory_mb))
    conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(f"{memory_mb}MB")))


def _drop_if_invalid(conn: psycopg.Connection[dict[str, object]], name: str) -> None:
    """An index an interrupted ``CONCURRENTLY`` build left behind is invalid: drop it, or
    ``IF NOT EXISTS`` would keep it (and the planner never uses it) for ever."""
    row = conn.execute(
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE c.relname = %s", (name,),
    ).fetchone()
    if row is not None and not row["indisvalid"]:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
            sql.Identifier(name)
        ))


def index_dataset_if_over(
    settings: Settings, model: str, dim: int, metric: Metric, dataset_id: UUID, *,
    min_rows: int, rows: int,
) -> bool:
    """The dataset's own index of the model once it holds more than ``min_rows`` vectors
    (:func:`pixdex.storage.dataset_indexes.index_if_over`), built ``CONCURRENTLY`` so
    ingest elsewhere goes on meanwhile. True if built now."""
    with _ddl_connection(settings) as conn:
        _drop_if_invalid(conn, dataset_indexes.dataset_index_name(model, dataset_id))
        _build_memory(conn, rows, dim)
        return dataset_indexes.index_if_over(
            conn, model=model, dim=dim, metric=metric, dataset_id=dataset_id,
            min_rows=min_rows, concurrently=True,
        )


def build_index(settings: Settings, model: str, dim: int, metric: Metric, rows: int) -> None:
    """Build the model's HNSW index over the rows already loaded, without blocking other
    writers (``CREATE INDEX CONCURRENTLY``). An invalid index left by an interrupted build
    is dropped first. One build per model at a time (a session advisory lock on the same
    key :func:`pixdex.storage.catalog.register_model` uses)."""
    with _ddl_connection(settings) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (model,))
        try:
            _drop_if_invalid(conn, hnsw_index_name(model))
            _build_memory(conn, rows, dim)
            conn.execute(hnsw_index_statement(model, dim, metric, concurrently=True))
            conn.execute("ANALYZE image_embeddings")
            conn.execute("ANALYZE images")
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (model,))
