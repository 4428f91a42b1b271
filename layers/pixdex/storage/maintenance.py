"""Maintenance: the vectors table rewritten in the order searches read it.

Why: an exact ranking inside a split whose vectors are too large for
``image_embeddings_split_vectors`` (migration 0013: over ~1,280 dimensions with their
names) reads them from the table through ``image_embeddings_split``, a row at a time.
Vectors ingested one by one, or given their split after ingest, lie wherever they
arrived: a page read per row (a search inside a 1% split at 1M x 768, before 0013: p95
21.0 ms spread, 13.5 ms regrouped, side by side; docs/benchmarks.md). The table's order
matters to those searches and to any other scan of a split's rows; the layout check says
which splits still gain.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TypedDict

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row

from pixdex.config import Settings
from pixdex.errors import ConflictError
from pixdex.storage.connection import database_url
from pixdex.storage.search_sql import SPLIT_VECTORS_FIT

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


# An exact ranking reads each page of its split's vectors once, ~1.5 us a page from
# shared buffers (1M x 768: 4,000 pages fewer took the 1% split's statement from 13.5 to
# 7.7 ms p50): regrouping pays when some split would be read ~1 ms faster, every search.
WORTH_PAGES_SAVED = 1_000


@dataclass(frozen=True)
class LayoutCheck:
    """How the vectors with a split lie now, and about how they would after
    :func:`regroup_vectors`: whether it is worth its lock. ``split_pages``: heap pages
    holding them, counted per (dataset, model, split); ``split_pages_regrouped``: each
    split's vectors packed as tightly as the table's rows allow. ``indexed_split_rows``:
    those whose split's searches read them from their own index (migration 0013), where
    the table's order does not matter. ``most_pages_saved``: the most pages that the
    searches inside any of the other splits would no longer read."""

    rows: int
    split_rows: int
    indexed_split_rows: int
    split_pages: int
    split_pages_regrouped: int
    most_pages_saved: int
    worth_regrouping: bool
    table_bytes: int


def check_layout(settings: Settings) -> LayoutCheck:
    """:class:`LayoutCheck` of the vectors table: plain reads (a count, and one scan of
    the rows with a split), so searches and writes go on meanwhile."""
    with psycopg.connect(database_url(settings), row_factory=dict_row) as conn:
        # Seconds at a million rows: a server-wide timeout must not cut the report short.
        conn.execute("SET statement_timeout = 0")
        now = _layout(conn, widths=True)
        space = _count(conn, "SELECT current_setting('block_size')::int - 24 - current_setting("
                             "'block_size')::int * (100 - coalesce((SELECT option_value::int"
                             " FROM pg_options_to_table(c.reloptions) WHERE option_name ="
                             " 'fillfactor'), 100)) / 100 FROM pg_class c"
                             " WHERE c.oid = 'image_embeddings'::regclass")
    packed, most_saved, indexed = 0, 0, 0
    for rows, pages, width, in_index in now["groups"]:
        # A row takes its tuple (pg_column_size of the row counts its header), padded to
        # 8 bytes, and a 4-byte line pointer; a page keeps 24 bytes for its own header
        # and what the fillfactor holds back. At 768-d five rows of ~1.6 kB fit a page or
        # only four: the padding decides.
        per_page = max(1, space // (-(-math.ceil(width) // 8) * 8 + 4))
        packed += -(-rows // per_page)
        if in_index:
            indexed += rows
        else:
            most_saved = max(most_saved, pages - -(-rows // per_page))
    return LayoutCheck(rows=now["rows"], split_rows=now["split_rows"],
                       indexed_split_rows=indexed,
                       split_pages=now["split_pages"], split_pages_regrouped=packed,
                       most_pages_saved=most_saved,
                       worth_regrouping=most_saved >= WORTH_PAGES_SAVED,
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


class _Layout(TypedDict):
    rows: int
    split_rows: int
    split_pages: int
    table_bytes: int
    # per split: rows, pages, mean row width (bytes), all in image_embeddings_split_vectors
    groups: list[tuple[int, int, float, bool]]


def _layout(conn: psycopg.Connection[dict[str, object]], *, widths: bool = False) -> _Layout:
    """The table's rows and size, and per (dataset, model, split) the rows, the heap
    pages they lie on and (``widths``) their mean tuple width, in one scan of them."""
    width, indexed = ("avg(pg_column_size(e.*))", f"bool_and({SPLIT_VECTORS_FIT})") if widths \
        else ("0", "false")
    groups = conn.execute(
        "SELECT count(*) AS rows, count(DISTINCT (ctid::text::point)[0]) AS pages,"
        f" {width} AS width, {indexed} AS indexed FROM image_embeddings e"
        " WHERE split IS NOT NULL GROUP BY dataset_id, model, split").fetchall()
    return _Layout(
        rows=_count(conn, "SELECT count(*) FROM image_embeddings"),
        split_rows=sum(int(str(g["rows"])) for g in groups),
        split_pages=sum(int(str(g["pages"])) for g in groups),
        table_bytes=_count(conn, "SELECT pg_table_size('image_embeddings')"),
        groups=[(int(str(g["rows"])), int(str(g["pages"])), float(str(g["width"])),
                 bool(g["indexed"])) for g in groups],
    )


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
