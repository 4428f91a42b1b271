"""What a search reads before it ranks, in its first statement: the dataset (or the
workspace's datasets) it may return, the model it ranks by, the transaction's statement
deadline and, for a search of one dataset filtered at most by one split, folder, batch or
annotation job (``PlanRequest``), the path to rank by.

Why one statement: each of those is a lookup of microseconds on the server, but each
statement of its own costs a round trip and the driver's per-statement work (~0.1-0.3 ms
on two cores), several times the lookup; a search's budget belongs to its ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from psycopg import sql

from pixdex.storage.catalog import ModelInfo, dataset_not_found, model_from_row
from pixdex.storage.connection import Conn, deadline_setting
from pixdex.storage.dataset_indexes import SearchPlan, dataset_index_prefix
from pixdex.storage.scan_settings import scan_settings_sql
from pixdex.storage.search_sql import SCOPED_DATASET, Filters, matching_where

_WORKSPACE_DATASETS = (
    "SELECT d.id FROM datasets d JOIN workspaces w ON w.id = d.workspace_id"
    " WHERE w.name = %(workspace)s"
)
_SCOPE = (
    "SELECT {deadline} AS deadline,"
    " (" + _WORKSPACE_DATASETS + " AND d.name = %(dataset)s) AS dataset_id,"
    " CASE WHEN %(dataset)s::text IS NULL THEN ARRAY(" + _WORKSPACE_DATASETS
    + " ORDER BY d.id) END AS dataset_ids,"
    " m.name, m.dim, m.encodes_text, m.tags, m.metric, m.imported"
    " FROM (SELECT 1) one LEFT JOIN embedding_models m ON m.name = %(model)s::text"
)
# ``dataset_indexes.search_plan`` on the scope's row: the own index's row count, and the
# rows passing the filters counted up to the cap (the CASE runs the count only without an
# own index or with filters besides the dataset), and the planner knobs of the path that
# implies. tests/test_search_statements.py checks the two agree.
_PLANNED = (
    "WITH s AS (" + _SCOPE + "), p AS (SELECT s.*, c.reltuples::bigint AS own_rows,"
    " CASE WHEN s.dataset_id IS NOT NULL AND (c.oid IS NULL OR {need}) THEN (SELECT"
    " count(*) FROM (SELECT 1 FROM images i WHERE {where} LIMIT {cap}) AS capped) END"
    " AS matching"
    " FROM s LEFT JOIN pg_class c"
    " ON c.oid = to_regclass(%(index_prefix)s || replace(s.dataset_id::text, '-', ''))"
    " OFFSET 0) SELECT p.*, {knobs} FROM p"
)


@dataclass(frozen=True)
class PlanRequest:
    """Plan the ranking by ``model`` in the first statement too. ``filters``: the search's,
    made before the dataset is known (``dataset_id=search_sql.SCOPED_DATASET``: the
    scope's dataset is planned with).

    Only filters whose capped count reads one index range of the rows passing
    (``Filters.counted_by_one_range``): the statement that sets the search's deadline is
    not itself under it (PostgreSQL arms the timeout as a statement starts), so what it
    runs must be cheap; other filters are counted by ``search_plan``, under the deadline."""

    cap: int
    ef_search: int
    filters: Filters = field(default_factory=lambda: Filters(dataset_id=SCOPED_DATASET))

    def __post_init__(self) -> None:
        if not self.filters.counted_by_one_range:
            raise ValueError("these filters are counted under the search's deadline")


@dataclass(frozen=True)
class SearchScope:
    """``dataset_id``: the named dataset (None for a workspace-wide search, whose
    datasets are ``dataset_ids``, in id order). ``model``: the model asked about, None
    when it is not registered (or none was asked about). ``plan``: the ranking's plan
    for ``model`` when asked for; this transaction then holds its planner knobs."""

    dataset_id: UUID | None
    dataset_ids: list[UUID]
    model: ModelInfo | None
    plan: SearchPlan | None = None


def search_scope(
    conn: Conn, *, workspace: str, dataset: str | None, model: str | None,
    deadline_ms: int, plan: PlanRequest | None = None,
) -> SearchScope:
    """The search's scope, with this transaction's statement timeout set to
    ``deadline_ms`` (:func:`pixdex.storage.connection.deadline_errors` turns a cancelled
    statement into a 503). ``NotFoundError`` when ``dataset`` is named and missing.
    ``plan`` (a named dataset and a model only): also what ``search_plan`` would say."""
    params: dict[str, object] = {"workspace": workspace, "dataset": dataset, "model": model}
    statement = sql.SQL(_SCOPE).format(deadline=deadline_setting(deadline_ms))
    if plan is not None:
        if dataset is None or model is None:
            raise ValueError("a search plan needs a dataset and a model")
        exact = sql.SQL("(p.matching IS NOT NULL AND p.matching <= {})").format(
            sql.Literal(plan.cap))
        where, conditions = matching_where(plan.filters, dataset=sql.SQL("s.dataset_id"))
        statement = sql.SQL(_PLANNED).format(
            deadline=deadline_setting(deadline_ms),
            need=sql.Literal(not plan.filters.scope_only), where=where,
            cap=sql.Literal(plan.cap + 1),
            knobs=scan_settings_sql(exact, ef_search=plan.ef_search),
        )
        params["index_prefix"] = dataset_index_prefix(model)
        if params.keys() & conditions.keys():  # one name, two meanings: a wrong statement
            raise ValueError(f"filter parameters {sorted(params.keys() & conditions.keys())}"
                             " clash with the scope's")
        params.update(conditions)
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    if dataset is not None and row["dataset_id"] is None:
        raise dataset_not_found(dataset)
    everywhere = row["dataset_ids"]
    assert everywhere is None or isinstance(everywhere, list)
    planned = None
    if plan is not None:
        own = row["own_rows"]
        planned = SearchPlan(
            None if own is None else max(0, int(str(own))),
            None if row["matching"] is None else int(str(row["matching"])),
        )
    return SearchScope(
        dataset_id=None if row["dataset_id"] is None else UUID(str(row["dataset_id"])),
        dataset_ids=[UUID(str(i)) for i in everywhere or ()],
        model=None if row["name"] is None else model_from_row(row),
        plan=planned,
    )
