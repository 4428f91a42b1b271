"""The SQL behind search: filters, exact and ANN (HNSW) vector ranking, tag ranking.

Strategy for filtered vector search (kept here because it is about how PostgreSQL runs it):

* Count the rows that pass the filters, stopping at ``exact_max_rows + 1``.
* Few rows (<= exact_max_rows): rank them exactly (the filters' btree / GIN indexes pick
  the rows, a sort ranks them). Exact recall, and fast because the set is small. This is
  what makes very selective filters return the true top-k. When a split is the only
  narrowing filter the vectors come from the split's own range of ``image_embeddings``
  (the split is copied there, migration 0012; the vectors themselves are in that index,
  grouped whatever order they arrived in, migration 0013), matched to the images by a
  full join: no primary-key descent per row, no heap page per vector.
* Many rows: the per-model HNSW index with ``hnsw.iterative_scan = strict_order``: the scan
  keeps going until enough rows pass the filters, and the stream it yields is ordered, so
  page N of a query is always the continuation of page N-1 (no overlap, no gap). If the scan
  gives up early (``hnsw.max_scan_tuples``) the exact path runs instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from pgvector import HalfVector
from psycopg import sql

from pixdex.storage.catalog import OPERATOR, Metric, hnsw_index_name
from pixdex.storage.connection import Conn
from pixdex.storage.images import folder_and_below
from pixdex.storage.scan_settings import apply_scan_settings, local_transaction

# Extra candidates fetched past the requested window so that exact ties straddling the
# window edge are still ordered by id consistently from page to page.
_TIE_MARGIN = 16
# The columns a search hit shows (``search_rows.hit_rows``; the page rows of
# ``vector_page``).
HIT_COLUMNS = ("name", "folder", "width", "height", "storage_key", "user_tags", "auto_tags")
# The dataset of ``Filters`` made before the search's first statement has resolved it
# (``search_scope.PlanRequest``: that statement plans with the scope's dataset instead).
SCOPED_DATASET = UUID(int=0)


@dataclass(frozen=True)
class Filters:
    """What a search is restricted to. ``dataset_id`` (one dataset) or ``dataset_ids``
    (several: a workspace-wide search) must be given."""

    dataset_id: UUID | None = None
    objects: Sequence[str] = ()
    scenes: Sequence[str] = ()
    attributes: Sequence[str] = ()
    user_tags: Sequence[str] = ()
    class_names: Sequence[str] = ()
    folder: str | None = None
    batch_id: str | None = None
    annotation_job_id: str | None = None
    split: str | None = None
    exclude_id: UUID | None = None
    dataset_ids: Sequence[UUID] = ()
    in_batch: bool | None = None  # True: in any batch; False: in none
    in_annotation_job: bool | None = None

    def __post_init__(self) -> None:
        if self.dataset_id is None and not self.dataset_ids:
            raise ValueError("Filters need dataset_id or dataset_ids")

    @property
    def scope_only(self) -> bool:
        """Only the dataset restricts the rows (an excluded query image aside)."""
        return self.dataset_id is not None and not self._narrowed

    @property
    def split_alone(self) -> bool:
        """A split is the one filter narrowing the dataset's rows (the query image excluded
        aside): the split's own rows are then the ones to rank. With another filter the
        split may hold far more rows than pass."""
        return self.split is not None and not replace(self, split=None)._narrowed

    @property
    def _narrowed(self) -> bool:
        """Some filter besides the datasets and the excluded query image applies."""
        return bool(
            self.objects or self.scenes or self.attributes or self.user_tags
            or self.class_names or self.batch_id is not None
            or (self.folder is not None and self.folder != "/")
            or self.annotation_job_id is not None or self.split is not None
            or self.in_batch is not None or self.in_annotation_job is not None
        )

    @property
    def counted_by_one_range(self) -> bool:
        """The rows passing are one index range holding only them: the dataset's, or with
        one split, folder, batch or annotation job (the query image excluded aside). So a
        count of them stopped at a cap reads about that many index entries, whatever the
        dataset's size; other filters may scan far more rows than they pass."""
        if self.dataset_id is None or self.objects or self.scenes or self.attributes:
            return False
        if self.user_tags or self.class_names or self.in_batch is not None:
            return False
        ranges = (self.split, None if self.folder == "/" else self.folder, self.batch_id,
                  self.annotation_job_id)
        return self.in_annotation_job is None and sum(r is not None for r in ranges) <= 1


def embedding_scope(filters: Filters) -> sql.Composable:
    """The dataset (and split) restriction on ``image_embeddings e``, checked inside its
    scan: both columns are copies of the image's (migration 0012)."""
    dataset = sql.SQL("e.dataset_id = %(dataset_id)s" if filters.dataset_id is not None
                      else "e.dataset_id = ANY(%(dataset_ids)s)")
    if filters.split is None:
        return dataset
    return sql.SQL("{} AND e.split = %(split)s").format(dataset)


def distance_to_query(dim: int, metric: Metric) -> sql.Composed:
    """pgvector's distance from ``e.embedding`` to the ``%(query)s`` parameter, both as
    ``halfvec(dim)``: the expression the model's HNSW indexes are built on, so that an
    ORDER BY on it can use them."""
    return sql.SQL("(e.embedding::halfvec({dim})) {op} %(query)s::halfvec({dim})").format(
        dim=sql.Literal(dim), op=sql.SQL(OPERATOR[metric]))


@dataclass
class _Where:
    clauses: list[sql.Composable] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(sql.SQL(clause))
        self.params.update(params)

    def composed(self) -> sql.Composable:
        return sql.SQL(" AND ").join(self.clauses)


def _where(filters: Filters, dataset: sql.Composable | None = None) -> _Where:
    where = _Where()
    if dataset is not None:
        where.clauses.append(sql.SQL("i.dataset_id = {}").format(dataset))
    elif filters.dataset_id is not None:
        where.add("i.dataset_id = %(dataset_id)s", dataset_id=filters.dataset_id)
    else:
        where.add("i.dataset_id = ANY(%(dataset_ids)s)", dataset_ids=list(filters.dataset_ids))
    where.add("i.status = 'indexed'")
    for kind, names in (
        ("objects", filters.objects),
        ("scenes", filters.scenes),
        ("attributes", filters.attributes),
    ):
        if names:
            where.add(f"i.tag_keys && %({kind})s", **{kind: [f"{kind}:{n}" for n in names]})
    if filters.user_tags:
        where.add("i.user_tags @> %(user_tags)s", user_tags=list(filters.user_tags))
    if filters.class_names:
        where.add("i.annotation_classes ?| %(class_names)s", class_names=list(filters.class_names))
    if filters.folder is not None and filters.folder != "/":
        folder, below = folder_and_below(filters.folder)
        where.add(
            "(i.folder = %(folder)s OR i.folder LIKE %(folder_prefix)s)",
            folder=folder,
            folder_prefix=below,
        )
    if filters.batch_id is not None:
        where.add("i.batch_id = %(batch_id)s", batch_id=filters.batch_id)
    if filters.annotation_job_id is not None:
        where.add("i.annotation_job_id = %(job_id)s", job_id=filters.annotation_job_id)
    if filters.split is not None:
        where.add("i.split = %(split)s", split=filters.split)
    if filters.exclude_id is not None:
        where.add("i.id <> %(exclude_id)s", exclude_id=filters.exclude_id)
    for column, wanted in (
        ("batch_id", filters.in_batch), ("annotation_job_id", filters.in_annotation_job)
    ):
        if wanted is not None:
            where.add(f"i.{column} IS {'NOT ' if wanted else ''}NULL")
    return where


def matching_where(
    filters: Filters, *, dataset: sql.Composable | None = None
) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE condition (on ``images i``) of the rows passing ``filters``, with its
    parameters: for queries over the same rows elsewhere in storage (facets).
    ``dataset``: an SQL expression for the dataset, instead of ``filters``' own."""
    where = _where(filters, dataset)
    return where.composed(), where.params


@dataclass(frozen=True)
class VectorPage:
    """``ranked``: the top ``k`` (+ a tie margin) rows as (id, distance), ordered by
    (distance, id). ``rows``: the :data:`HIT_COLUMNS` of those at the page's positions."""

    ranked: list[tuple[UUID, float]]
    rows: dict[UUID, dict[str, Any]]


def vector_candidates(
    conn: Conn,
    *,
    model: str,
    dim: int,
    query: NDArray[np.float32],
    filters: Filters,
    k: int,
    exact: bool,
    ef_search: int,
    max_scan_tuples: int = 20_000,
    metric: Metric = "cosine",
    configured: bool = False,
) -> list[tuple[UUID, float]]:
    """Top ``k`` (+ a tie margin) rows by distance, ordered by (distance, id).

    The distance is pgvector's: cosine distance, or for ``ip`` the negative inner product.
    ``configured``: the caller's transaction already holds this path's planner settings
    (``dataset_indexes.search_plan`` sets them).
    """
    return vector_page(
        conn, model=model, dim=dim, query=query, filters=filters, k=k, exact=exact,
        ef_search=ef_search, max_scan_tuples=max_scan_tuples, metric=metric,
        configured=configured,
    ).ranked


def vector_page(
    conn: Conn,
    *,
    model: str,
    dim: int,
    query: NDArray[np.float32],
    filters: Filters,
    k: int,
    exact: bool,
    ef_search: int,
    max_scan_tuples: int = 20_000,
    metric: Metric = "cosine",
    configured: bool = False,
    page: tuple[int, int] | None = None,
) -> VectorPage:
    """:func:`vector_candidates`, and with ``page`` (offset, limit) the hit columns of the
    rows at those positions from the same statement (one round trip fewer a search)."""
    statement, params = ranking_statement(model=model, dim=dim, query=query, filters=filters,
                                          k=k, exact=exact, metric=metric, page=page)
    with local_transaction(conn):
        if not configured:
            apply_scan_settings(
                conn, exact=exact, ef_search=ef_search, max_scan_tuples=max_scan_tuples
            )
        rows = conn.execute(statement, params).fetchall()
    ranked = sorted(
        ((UUID(str(r["id"])), float(str(r["distance"]))) for r in rows),
        key=lambda pair: (pair[1], str(pair[0])),
    )
    shown = {
        UUID(str(r["id"])): r for r in rows if page is not None and r["name"] is not None
    }
    return VectorPage(ranked, shown)


def ranking_statement(
    *,
    model: str,
    dim: int,
    query: NDArray[np.float32],
    filters: Filters,
    k: int,
    exact: bool,
    metric: Metric = "cosine",
    page: tuple[int, int] | None = None,
) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement :func:`vector_page` runs (under its path's planner settings), with
    its parameters."""
    where = _where(filters)
    window = k + _TIE_MARGIN
    distance = " {distance} AS distance"
    if exact and filters.split_alone:
        # The split's vectors from one range of their own index (the vectors themselves,
        # when they fit it: migration 0013), their distances computed there, so that the
        # join carries ids and distances, not vectors, whichever side the planner hashes
        # (hashing the vectors' side once took 9.5 ms to copy 7.8 MB); matched to the
        # images passing the filters by a hash or merge join. Each side is fenced
        # (OFFSET 0), so the planner cannot turn the join into a descent per row into the
        # other side's primary key; and it is a FULL join (no nested loop can run one, so
        # a split estimated at one row cannot become 5,000 x 5,000 comparisons), fenced
        # too, so it is not reduced to an inner join: rows missing a side dropped outside.
        rows_sql = (
            "SELECT id, distance FROM (SELECT e.image_id AS id, i.id AS passed, e.distance"
            " FROM (SELECT image_id," + distance + " FROM image_embeddings e"
            " WHERE {scope} AND e.model = {model}{fits} OFFSET 0) AS e"
            " FULL JOIN (SELECT i.id FROM images i WHERE {w} OFFSET 0) AS i"
            " ON i.id = e.image_id OFFSET 0) AS joined"
            " WHERE id IS NOT NULL AND passed IS NOT NULL"
        )
    else:
        # Otherwise the filter's index picks the images, the embeddings' primary key
        # fetches their vectors (for few rows), or the HNSW scan yields them in order.
        rows_sql = (
            "SELECT e.image_id AS id," + distance
            + " FROM image_embeddings e JOIN images i ON i.id = e.image_id"
            " WHERE {scope} AND e.model = {model} AND {w}"
        )
    if exact:
        # Ranked inside an OFFSET 0 fence, so the ORDER BY cannot become an HNSW scan
        # while plain index scans stay allowed.
        rows_sql = "SELECT id, distance FROM (" + rows_sql + " OFFSET 0) AS filtered"
    rows_sql += " ORDER BY distance LIMIT {window}"
    if page is not None:
        # Positions in (distance, id) order, the order the caller pages by; only the
        # page's rows read their (wide) hit columns.
        rows_sql = (
            "SELECT r.id, r.distance, " + ", ".join(f"h.{c}" for c in HIT_COLUMNS)
            + " FROM (SELECT id, distance, row_number() OVER (ORDER BY distance, id) AS at"
            " FROM (" + rows_sql + ") AS ranked) AS r LEFT JOIN images h ON h.id = r.id"
            " AND r.at > {first} AND r.at <= {last}"
        )
    offset, limit = page or (0, 0)
    statement = sql.SQL(rows_sql).format(
        fits=sql.SQL(f" AND {SPLIT_VECTORS_FIT}" if _split_vectors_fit(model, dim, filters)
                     else ""),
        distance=distance_to_query(dim, metric),
        scope=embedding_scope(filters),
        model=sql.Literal(model),
        w=where.composed(),
        window=sql.Literal(window),
        first=sql.Literal(offset),
        last=sql.Literal(offset + limit),
    )
    return statement, {**where.params, "query": HalfVector(query)}


# The predicate of image_embeddings_split_vectors (migration 0013): its entries must be
# at most btree's 2,704 bytes. Stated in the ranking when it holds, so that the planner
# can prove the index applies (a partial index is used only for queries implying its
# WHERE).
_SPLIT_VECTORS_BYTES = 2600
SPLIT_VECTORS_FIT = ("2 * vector_dims(e.embedding) + octet_length(e.model)"
                     f" + octet_length(e.split) <= {_SPLIT_VECTORS_BYTES}")


def _split_vectors_fit(model: str, dim: int, filters: Filters) -> bool:
    """Whether the split's vectors are in the index that holds them (migration 0013).
    Must agree with the SQL: the clause also filters the rows, so a wrong yes would drop
    the split's vectors from the answer (bytes, as octet_length counts them in UTF-8, the
    encoding of the embedded server and of the stack's cluster)."""
    split = filters.split
    return split is not None and (
        2 * dim + len(model.encode()) + len(split.encode()) <= _SPLIT_VECTORS_BYTES)


def uses_hnsw(
    conn: Conn, model: str, dim: int, filters: Filters, *, ef_search: int = 100,
    metric: Metric = "cosine",
) -> bool:
    """True when the planner would serve the ANN query from an HNSW index of the model
    (its shared one or the dataset's own)."""
    return ann_index(conn, model, dim, filters, ef_search=ef_search, metric=metric) is not None


def ann_index(
    conn: Conn, model: str, dim: int, filters: Filters, *, ef_search: int = 100,
    metric: Metric = "cosine",
) -> str | None:
    """The HNSW index the planner would serve the ANN query from, None if none."""
    where = _where(filters)
    where.clauses.append(sql.SQL("e.model = {}").format(sql.Literal(model)))
    statement = sql.SQL(
        "EXPLAIN SELECT e.image_id FROM image_embeddings e JOIN images i ON i.id = e.image_id"
        " WHERE {scope} AND {w}"
        " ORDER BY {distance} LIMIT 10"
    ).format(
        distance=distance_to_query(dim, metric), scope=embedding_scope(filters),
        w=where.composed(),
    )
    params = {**where.params, "query": HalfVector(np.zeros(dim, dtype=np.float32))}
    with local_transaction(conn):
        apply_scan_settings(conn, exact=False, ef_search=ef_search, max_scan_tuples=20_000)
        plan = "\n".join(str(next(iter(r.values()))) for r in conn.execute(statement, params))
    used = re.search(r"Index Scan using (\S+) on image_embeddings", plan)
    if used is None:
        return None
    name = used.group(1)
    return name if name == hnsw_index_name(model) or name.startswith("iemb_hnsw_") else None
