"""Per-dataset HNSW indexes: a dataset too large for the exact path gets a partial HNSW
index of its own (``WHERE model = M AND dataset_id = D``).

Why: every search is scoped to a dataset, so on the model's shared index a search inside
one of 100 datasets is a ~1% filter, where HNSW (iterative scans included) loses both
recall and speed. With its own index, a search inside a large dataset is an unfiltered
HNSW search of a smaller graph; small datasets (and selective filters) take the exact
path. Measured in ``bench/bench_scale.py`` (docs/benchmarks.md, "Search at scale").

The index name is derived from (model, dataset), so whether a dataset has one is a
catalog lookup (``to_regclass``) that rides along in the search's first statement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from uuid import UUID

from psycopg import sql

from pixdex.storage.catalog import OPCLASS, Metric
from pixdex.storage.connection import Conn
from pixdex.storage.scan_settings import scan_settings_sql
from pixdex.storage.search_sql import Filters, matching_where

# Graph parameters of per-dataset indexes. ef_construction 128 (the shared index: 64):
# at 500k clustered 768-d rows, 64 left recall@10 below 0.95 at any ef_search measured.
DATASET_INDEX_M = 16
DATASET_INDEX_EF_CONSTRUCTION = 128


def dataset_index_name(model: str, dataset_id: UUID) -> str:
    """A name within PostgreSQL's 63 characters, one per (model, dataset)."""
    return f"{dataset_index_prefix(model)}{dataset_id.hex}"


def dataset_index_prefix(model: str) -> str:
    """The part of :func:`dataset_index_name` before the dataset id's 32 hex digits."""
    return f"iemb_hnsw_{hashlib.sha256(model.encode()).hexdigest()[:8]}_"


def create_dataset_index(
    conn: Conn, *, model: str, dim: int, metric: Metric, dataset_id: UUID,
    m: int = DATASET_INDEX_M, ef_construction: int = DATASET_INDEX_EF_CONSTRUCTION,
    concurrently: bool = False,
) -> bool:
    """Build the dataset's index for ``model`` unless it exists; True if built now.
    ``concurrently``: without blocking other writers (on an autocommit connection)."""
    name = dataset_index_name(model, dataset_id)
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (name,)).fetchone()
    if row is not None and row["ok"]:
        return False
    conn.execute(
        sql.SQL(
            "CREATE INDEX {how} IF NOT EXISTS {index} ON image_embeddings"
            " USING hnsw ((embedding::halfvec({dim})) {opclass})"
            " WITH (m = {m}, ef_construction = {efc})"
            " WHERE model = {model} AND dataset_id = {dataset}"
        ).format(
            how=sql.SQL("CONCURRENTLY" if concurrently else ""),
            index=sql.Identifier(name), dim=sql.Literal(dim), opclass=sql.SQL(OPCLASS[metric]),
            m=sql.Literal(m), efc=sql.Literal(ef_construction), model=sql.Literal(model),
            dataset=sql.Literal(str(dataset_id)),
        )
    )
    return True


def datasets_over(conn: Conn, model: str, min_rows: int) -> list[tuple[UUID, int]]:
    """(dataset, rows) of every dataset with more than ``min_rows`` ``model`` vectors."""
    rows = conn.execute(
        "SELECT dataset_id, count(*) AS n FROM image_embeddings WHERE model = %s"
        " GROUP BY dataset_id HAVING count(*) > %s ORDER BY count(*) DESC",
        (model, min_rows),
    ).fetchall()
    return [(UUID(str(r["dataset_id"])), int(str(r["n"]))) for r in rows]


def drop_dataset_indexes(conn: Conn, dataset_id: UUID) -> None:
    """Drop every model's index of the dataset (before the dataset is deleted)."""
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'image_embeddings'"
        " AND indexname LIKE %s",
        (f"iemb_hnsw_%_{dataset_id.hex}",),
    ).fetchall()
    for r in rows:
        conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(str(r["indexname"]))))


@dataclass(frozen=True)
class SearchPlan:
    """What a dataset search needs to pick its path, from one statement.

    ``own_rows``: rows in the dataset's own index (the planner's count, refreshed by
    VACUUM/ANALYZE), None without one. ``matching``: rows passing the filters counted up
    to the cap, None when not counted (own index and no filter besides the dataset).
    """

    own_rows: int | None
    matching: int | None


def search_plan(
    conn: Conn, filters: Filters, model: str, cap: int, *, ef_search: int | None = None
) -> SearchPlan:
    """Own index or not, and (unless the own index answers alone) the capped count.

    With ``ef_search`` the same statement also sets the planner settings of the path the
    plan implies (exact: ``matching <= cap``), one round trip fewer per search; the
    caller's transaction keeps them (``vector_candidates(configured=True)``).
    """
    own = (
        dataset_index_name(model, filters.dataset_id) if filters.dataset_id is not None else None
    )
    where, params = matching_where(filters)
    knobs: sql.Composable = sql.SQL("")
    if ef_search is not None:
        exact = sql.SQL("(p.matching IS NOT NULL AND p.matching <= {})").format(sql.Literal(cap))
        knobs = sql.SQL(", {}").format(scan_settings_sql(exact, ef_search=ef_search))
    # The count is a subquery under CASE: PostgreSQL runs it only when that branch is taken.
    statement = sql.SQL(
        "SELECT p.own_rows, p.matching{knobs} FROM (SELECT c.reltuples::bigint AS own_rows,"
        " CASE WHEN c.oid IS NULL OR {need}"
        " THEN (SELECT count(*) FROM (SELECT 1 FROM images i WHERE {w} LIMIT {cap}) m) END"
        " AS matching FROM (SELECT 1) one LEFT JOIN pg_class c"
        " ON c.oid = to_regclass(%(own_index)s) OFFSET 0) p"
    ).format(
        knobs=knobs, need=sql.Literal(not filters.scope_only), w=where,
        cap=sql.Literal(cap + 1),
    )
    row = conn.execute(statement, {**params, "own_index": own}).fetchone()
    assert row is not None
    own_rows = None if row["own_rows"] is None else max(0, int(str(row["own_rows"])))
    matching = None if row["matching"] is None else int(str(row["matching"]))
    return SearchPlan(own_rows, matching)


def needs_index(conn: Conn, *, model: str, dataset_id: UUID, min_rows: int) -> bool:
    """Whether the dataset holds more than ``min_rows`` ``model`` vectors (above that the
    exact path is too slow) and has no index of its own for them yet."""
    row = conn.execute(
        "SELECT to_regclass(%(name)s) IS NOT NULL AS has, (SELECT count(*) FROM"
        " (SELECT 1 FROM image_embeddings WHERE dataset_id = %(d)s AND model = %(m)s"
        " LIMIT %(cap)s) AS capped) AS n",
        {"name": dataset_index_name(model, dataset_id), "d": dataset_id, "m": model,
         "cap": min_rows + 1},
    ).fetchone()
    assert row is not None
    return not row["has"] and int(str(row["n"])) > min_rows


def index_if_over(
    conn: Conn, *, model: str, dim: int, metric: Metric, dataset_id: UUID, min_rows: int,
    concurrently: bool = False,
) -> bool:
    """Give the dataset its own ``model`` index once it :func:`needs_index`; True if
    built now."""
    if not needs_index(conn, model=model, dataset_id=dataset_id, min_rows=min_rows):
        return False
    return create_dataset_index(
        conn, model=model, dim=dim, metric=metric, dataset_id=dataset_id,
        concurrently=concurrently,
    )
