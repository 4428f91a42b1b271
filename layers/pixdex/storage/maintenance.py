"""Maintenance: the vectors table rewritten in the order searches read it.

Why: an exact ranking inside a split reads the split's vectors through
``image_embeddings_split``, a row at a time. Vectors ingested one by one, or given their
split after ingest, lie wherever they arrived: a page read per row (a search inside a 1%
split at 1M x 768: p95 21.0 ms spread, 13.5 ms regrouped, side by side;
docs/benchmarks.md).
``pixdex vectors import`` writes each chunk grouped; this regroups everything else.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row

from pixdex.config import Settings
from pixdex.errors import ConflictError
from pixdex.storage.connection import database_url

# Built for the rewrite and dropped after it: CLUSTER needs a full index in the wanted
# order, and image_embeddings_split is partial (rows without a split are not in it).
_ORDER_INDEX = "image_embeddings_search_order"
# The largest graph's build memory at most: past it the rebuild spills to disk, slower.
_BUILD_MEMORY_CAP_MB = 4096


@dataclass(frozen=True)
class VectorLayout:
    """The vectors table before and after :func:`regroup_vectors`. ``split_pages``: the
    heap pages holding vectors that have a split, counted per (dataset, model, split):
    what an exact ranking inside each split reads."""

    rows: int
    split_rows: int
    split_pages_before: int
    split_pages_after: int
    table_bytes_before: int
    table_bytes_after: int
    indexes_rebuilt: int
    seconds: float


@dataclass(frozen=True)
class LayoutCheck:
    """How the vectors with a split lie now, and about how they would after
    :func:`regroup_vectors`: whether it is worth its lock. ``split_pages``: heap pages
    holding them, counted per (dataset, model, split); ``split_pages_regrouped``: each
    split's vectors packed as tightly as the table's rows allow."""

    rows: int
    split_rows: int
    split_pages: int
    split_pages_regrouped: int
    table_bytes: int


def check_layout(settings: Settings) -> LayoutCheck:
    """:class:`LayoutCheck` of the vectors table, read without locking out searches or
    writes (a scan of the rows with a split)."""
    with psycopg.connect(database_url(settings), row_factory=dict_row) as conn:
        now = _layout(conn)
        groups = conn.execute(
            "SELECT count(*) AS rows, avg(pg_column_size(e.*)) AS width FROM image_embeddings e"
            " WHERE split IS NOT NULL GROUP BY dataset_id, model, split").fetchall()
        block = _count(conn, "SELECT current_setting('block_size')::int")
    packed = 0
    for group in groups:
        # A row takes its tuple (pg_column_size of the row counts its header), padded to
        # 8 bytes, and a 4-byte line pointer; a page keeps 24 bytes for its own header.
        # At 768-d five rows of ~1.6 kB fit a page or only four: the padding decides.
        tuple_bytes = -(-math.ceil(float(str(group["width"]))) // 8) * 8
        per_page = max(1, (block - 24) // (tuple_bytes + 4))
        packed += -(-int(str(group["rows"])) // per_page)
    return LayoutCheck(rows=now["rows"], split_rows=now["split_rows"],
                       split_pages=now["split_pages"], split_pages_regrouped=packed,
                       table_bytes=now["table_bytes"])


def regroup_vectors(settings: Settings, *, lock_timeout_ms: int = 10_000) -> VectorLayout:
    """Rewrite ``image_embeddings`` ordered by dataset, model, split and image (CLUSTER),
    rebuilding its indexes (the HNSW graphs too, and an index an interrupted
    ``CONCURRENTLY`` build left invalid, which comes out valid), then ``VACUUM (ANALYZE)``.
    One transaction: interrupted, nothing changes. Searches and writes of vectors wait
    meanwhile (an ``ACCESS EXCLUSIVE`` lock: minutes at a million rows), and already while
    it waits for the lock; :class:`ConflictError` when another transaction keeps the table
    past ``lock_timeout_ms``. Needs free disk for a second copy of the table and its
    indexes while it runs, and for the sort's temporary files past its memory."""
    started = time.perf_counter()
    with psycopg.connect(database_url(settings), row_factory=dict_row) as conn:
        try:
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
                sql.Literal(f"{lock_timeout_ms}ms")))
            conn.execute("LOCK TABLE image_embeddings IN ACCESS EXCLUSIVE MODE")
        except errors.LockNotAvailable as exc:
            raise ConflictError(
                f"the vectors table stayed in use for {lock_timeout_ms / 1000:g} s (a long "
                "search, import or curation run): run this again when it is quiet"
            ) from exc
        # Minutes at a million rows: a server-wide timeout must not cut it short.
        conn.execute("SET LOCAL lock_timeout = 0")
        conn.execute("SET LOCAL statement_timeout = 0")
        if _count(conn, "SELECT current_setting('server_version_num')::int") >= 170000:
            conn.execute("SET LOCAL transaction_timeout = 0")
        before = _layout(conn)
        conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(
            sql.Literal(f"{_build_memory_mb(conn)}MB")))
        conn.execute(sql.SQL(
            "CREATE INDEX {} ON image_embeddings (dataset_id, model, split, image_id)"
        ).format(sql.Identifier(_ORDER_INDEX)))
        conn.execute(sql.SQL("CLUSTER image_embeddings USING {}").format(
            sql.Identifier(_ORDER_INDEX)))
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(_ORDER_INDEX)))
        indexes = _count(conn, "SELECT count(*) FROM pg_index"
                               " WHERE indrelid = 'image_embeddings'::regclass")
        after = _layout(conn)
    with psycopg.connect(database_url(settings), autocommit=True) as conn:
        # The visibility map too (a rewritten table starts without one), as autovacuum
        # would set it later: index-only scans rely on it.
        conn.execute("VACUUM (ANALYZE) image_embeddings")
    return VectorLayout(
        rows=before["rows"], split_rows=before["split_rows"],
        split_pages_before=before["split_pages"], split_pages_after=after["split_pages"],
        table_bytes_before=before["table_bytes"], table_bytes_after=after["table_bytes"],
        indexes_rebuilt=indexes, seconds=round(time.perf_counter() - started, 1),
    )


def _layout(conn: psycopg.Connection[dict[str, object]]) -> dict[str, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM image_embeddings) AS rows,"
        " coalesce(sum(g.rows), 0) AS split_rows, coalesce(sum(g.pages), 0) AS split_pages,"
        " pg_table_size('image_embeddings') AS table_bytes"
        " FROM (SELECT count(*) AS rows, count(DISTINCT (ctid::text::point)[0]) AS pages"
        "  FROM image_embeddings WHERE split IS NOT NULL"
        "  GROUP BY dataset_id, model, split) g"
    ).fetchone()
    assert row is not None
    return {key: int(str(value)) for key, value in row.items()}


def _build_memory_mb(conn: psycopg.Connection[dict[str, object]]) -> int:
    """What the largest HNSW graph of the table takes to build in memory (and the
    rewrite's sort), the largest index on disk plus a third, within 64 MB-4 GB."""
    largest = _count(
        conn, "SELECT coalesce(max(pg_relation_size(x.indexrelid)), 0) FROM pg_index x"
              " WHERE x.indrelid = 'image_embeddings'::regclass")
    return max(64, min(_BUILD_MEMORY_CAP_MB, int(largest * 4 / 3 / 2**20)))


def _count(conn: psycopg.Connection[dict[str, object]], statement: str) -> int:
    row = conn.execute(statement).fetchone()
    assert row is not None
    return int(str(next(iter(row.values()))))
