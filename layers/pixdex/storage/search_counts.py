"""How many rows a search matches (its ``total``): counted exactly where that is cheap,
capped, or the planner's estimate where counting would cost more than the search."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pgvector import HalfVector
from psycopg import sql

from pixdex.storage.catalog import Metric
from pixdex.storage.connection import Conn
from pixdex.storage.scan_settings import apply_scan_settings, local_transaction
from pixdex.storage.search_sql import (
    Filters,
    distance_to_query,
    embedding_scope,
    matching_where,
)


def count_matching(conn: Conn, filters: Filters, cap: int | None = None) -> int:
    """Rows passing the filters; stops counting at ``cap`` when given."""
    where, params = matching_where(filters)
    inner = sql.SQL("SELECT 1 FROM images i WHERE {w}").format(w=where)
    if cap is not None:
        inner = sql.SQL("{inner} LIMIT {cap}").format(inner=inner, cap=sql.Literal(cap))
    query = sql.SQL("SELECT count(*) AS n FROM ({inner}) AS matching").format(inner=inner)
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(str(row["n"]))


def estimate_matching(conn: Conn, filters: Filters) -> int:
    """The planner's row estimate: cheap, used for ``total`` when counting would be slow."""
    where, params = matching_where(filters)
    query = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM images i WHERE {w}").format(w=where)
    row = conn.execute(query, params).fetchone()
    assert row is not None
    plan = next(iter(row.values()))
    assert isinstance(plan, list)
    return int(plan[0]["Plan"]["Plan Rows"])


def count_within(
    conn: Conn,
    *,
    model: str,
    dim: int,
    query: NDArray[np.float32],
    filters: Filters,
    max_distance: float,
    metric: Metric = "cosine",
) -> int:
    """Exact number of filtered rows within ``max_distance`` (used on small filtered sets)."""
    where, params = matching_where(filters)
    statement = sql.SQL(
        "SELECT count(*) AS n FROM image_embeddings e JOIN images i ON i.id = e.image_id"
        " WHERE {scope} AND {w} AND e.model = {model} AND ({distance}) <= %(max_d)s"
    ).format(
        distance=distance_to_query(dim, metric), scope=embedding_scope(filters), w=where,
        model=sql.Literal(model),
    )
    with local_transaction(conn):
        apply_scan_settings(conn, exact=True, ef_search=40, max_scan_tuples=20_000)
        row = conn.execute(statement, {**params, "query": HalfVector(query),
                                       "max_d": max_distance}).fetchone()
    assert row is not None
    return int(str(row["n"]))
