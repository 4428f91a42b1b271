"""The planner settings of one vector query, set inside its transaction.

``SET LOCAL`` inside a savepoint outlives the savepoint (until the outer transaction ends),
so each query sets every knob it depends on rather than trusting defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql
from psycopg.pq import TransactionStatus

from pixdex.storage.connection import Conn


@contextmanager
def local_transaction(conn: Conn) -> Iterator[None]:
    """A transaction for ``set_config(..., true)`` to live in: the caller's when it has one
    (a SAVEPOINT would cost two round trips and scope nothing: settings made inside it
    last until the outer transaction ends anyway), else a new one."""
    if conn.info.transaction_status == TransactionStatus.INTRANS:
        yield
    else:
        with conn.transaction():
            yield


def apply_scan_settings(
    conn: Conn, *, exact: bool, ef_search: int, max_scan_tuples: int
) -> None:
    """Planner settings for one vector query, all set explicitly every time.

    Exact: the statement fences the ranking (OFFSET 0) so no HNSW ordered scan can serve
    it; the filter indexes pick the rows (and a split's vectors), a sort ranks them. ANN:
    the caller only takes this path once it has counted more filtered rows than an exact
    scan should rank, so plans that fetch and sort every filtered row are ruled out (with
    stale statistics right after a bulk ingest the planner would otherwise pick them).
    """
    # One round trip for all of them: a search is latency-bound on round trips.
    conn.execute(sql.SQL("SELECT {}").format(scan_settings_sql(
        sql.Literal(exact), ef_search=ef_search, max_scan_tuples=max_scan_tuples)))


def scan_settings_sql(
    exact: sql.Composable, *, ef_search: int, max_scan_tuples: int = 20_000
) -> sql.Composable:
    """``set_config`` calls (a select list) for the planner settings of
    :func:`apply_scan_settings`, the path picked by the SQL boolean ``exact``: so a statement that
    decides the path can also set it up, in the same round trip."""
    fallback = sql.SQL("CASE WHEN {} THEN 'on' ELSE 'off' END").format(exact)
    knobs: tuple[tuple[str, sql.Composable], ...] = (
        ("enable_indexscan", sql.Literal("on")),
        ("enable_seqscan", fallback),
        ("enable_bitmapscan", fallback),
        ("enable_sort", fallback),
        ("hnsw.ef_search", sql.Literal(str(int(ef_search)))),
        ("hnsw.iterative_scan", sql.Literal("strict_order")),
        ("hnsw.max_scan_tuples", sql.Literal(str(int(max_scan_tuples)))),
    )
    return sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), value)
        for name, value in knobs
    )
