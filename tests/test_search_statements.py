"""The statements a search is made of, on the real database: the first one (scope, model,
deadline), the ranking that also returns its page's hit rows, and the pool's liveness
check that a connection in steady use skips."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.errors import NotFoundError, SearchTimeoutError
from pixdex.inference.base import ModelSpec
from pixdex.models import AutoTags, ImageStatus, SearchQuery, UserMetadata
from pixdex.storage import (
    catalog,
    connection,
    dataset_indexes,
    search_counts,
    search_rows,
    search_sql,
)
from pixdex.storage.connection import connect, database_url, deadline_errors
from pixdex.storage.images import ImageWrite, write_images
from pixdex.storage.search_scope import PlanRequest, search_scope

MODEL = ModelSpec(name="test-statements-16", dim=16, encodes_text=False, tags=False,
                  input_size=224)


@pytest.fixture(scope="module")
def dataset(settings: Settings) -> tuple[uuid.UUID, np.ndarray, list[uuid.UUID]]:
    """60 images with 16-d vectors, every fifth with tied (identical) vectors."""
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(60, MODEL.dim)).astype(np.float32)
    vectors[::5] = vectors[0]
    with connect(settings) as conn:
        ds = catalog.ensure_dataset(conn, settings.workspace, f"stmt-{uuid.uuid4().hex[:8]}")
        catalog.register_model(conn, MODEL, ds.id)
        ids = write_images(conn, MODEL.name, [
            ImageWrite(dataset_id=ds.id, storage_key=f"mem://{i}", name=f"{i}.jpg",
                       folder=f"/f{i % 3}", sha256=None, byte_size=None,
                       status=ImageStatus.INDEXED, meta=UserMetadata(user_tags=[f"t{i}"]),
                       auto_tags=AutoTags(), embedding=v)
            for i, v in enumerate(vectors)
        ])
    return ds.id, vectors, ids


def test_the_first_statement_reads_the_scope_and_the_model_and_sets_the_deadline(
    settings: Settings, dataset: tuple[uuid.UUID, np.ndarray, list[uuid.UUID]]
) -> None:
    dataset_id, _, _ = dataset
    with connect(settings) as conn:
        name = catalog.get_dataset_by_id(conn, settings.workspace, dataset_id).name
        catalog.ensure_dataset(conn, "someone-else", "theirs")
        everywhere = catalog.dataset_ids(conn, settings.workspace)
    with connect(settings, readonly=True) as conn:
        one = search_scope(conn, workspace=settings.workspace, dataset=name,
                           model=MODEL.name, deadline_ms=1500)
        timeout = conn.execute("SHOW statement_timeout").fetchone()
    assert one.dataset_id == dataset_id and one.dataset_ids == []
    assert one.model == catalog.ModelInfo(MODEL.name, 16, False, False, "cosine")
    assert timeout == {"statement_timeout": "1500ms"}
    with connect(settings, readonly=True) as conn:
        wide = search_scope(conn, workspace=settings.workspace, dataset=None,
                            model="never-registered", deadline_ms=20_000)
        assert conn.execute("SHOW statement_timeout").fetchone() == {
            "statement_timeout": "20s"}
    # The workspace's datasets only, in id order; an unknown model is None, not an error.
    assert wide.dataset_id is None and wide.dataset_ids == everywhere
    assert dataset_id in wide.dataset_ids and wide.model is None
    with connect(settings, readonly=True) as conn:
        nobody = search_scope(conn, workspace="no-such-workspace", dataset=None, model=None,
                              deadline_ms=20_000)
        with pytest.raises(NotFoundError, match="'nope' does not exist; index some images"):
            search_scope(conn, workspace=settings.workspace, dataset="nope", model=None,
                         deadline_ms=20_000)
    assert nobody.dataset_ids == [] and nobody.model is None


def test_the_deadline_set_by_the_first_statement_cancels_a_slow_one_as_a_503(
    settings: Settings,
) -> None:
    with (
        pytest.raises(SearchTimeoutError, match=r"longer than 0\.05 s") as stopped,
        connect(settings, readonly=True) as conn,
        deadline_errors(50),
    ):
        search_scope(conn, workspace=settings.workspace, dataset=None, model=None,
                     deadline_ms=50)
        conn.execute("SELECT pg_sleep(2)")
    assert stopped.value.http_status == 503
    with connect(settings) as conn:  # the deadline ended with its transaction
        assert conn.execute("SHOW statement_timeout").fetchone() == {"statement_timeout": "0"}


@pytest.mark.parametrize("exact", [True, False])
def test_the_ranking_returns_the_hit_rows_of_exactly_its_page(
    settings: Settings, dataset: tuple[uuid.UUID, np.ndarray, list[uuid.UUID]], exact: bool
) -> None:
    dataset_id, vectors, _ = dataset
    filters = search_sql.Filters(dataset_id=dataset_id)
    query = vectors[0] + 0.01
    with connect(settings, readonly=True) as conn:
        def ranking(offset: int, limit: int) -> search_sql.VectorPage:
            return search_sql.vector_page(
                conn, model=MODEL.name, dim=MODEL.dim, query=query, filters=filters,
                k=offset + limit, exact=exact, ef_search=100, page=(offset, limit))

        alone = search_sql.vector_candidates(
            conn, model=MODEL.name, dim=MODEL.dim, query=query, filters=filters, k=12,
            exact=exact, ef_search=100)
        pages = [ranking(offset, 4) for offset in (0, 4, 8)]
        expected = search_rows.hit_rows(conn, [i for i, _ in alone[:12]])
    # The twelve tied rows (identical vectors) straddle the page edges: pages continue
    # each other in (distance, id) order, the order the ranking alone returns.
    assert [i for i, _ in alone[:12]] == [
        i for n, p in enumerate(pages) for i, _ in p.ranked[4 * n: 4 * n + 4]]
    for n, found in enumerate(pages):
        page_ids = [i for i, _ in found.ranked[4 * n: 4 * n + 4]]
        assert set(found.rows) == set(page_ids)  # only the page's rows
        for image_id, row in found.rows.items():
            assert {k: row[k] for k in search_sql.HIT_COLUMNS} == {
                k: expected[image_id][k] for k in search_sql.HIT_COLUMNS}
    # Outside a transaction (a dedicated autocommit connection, as the benchmarks use)
    # the ranking sets up its own and ranks the same.
    with psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row) as own:
        register_vector(own)
        without = search_sql.vector_candidates(
            own, model=MODEL.name, dim=MODEL.dim, query=query, filters=filters, k=12,
            exact=exact, ef_search=100)
    assert without == alone


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_use(
    settings: Settings,
) -> None:
    """The pool skips its liveness check for a connection used moments ago; one idle past
    the window is checked, so a server-side drop (failover, a proxy's idle timeout) costs
    a reconnect, not a failed request."""
    pool = connection.get_pool(settings)
    with connect(settings) as conn:
        first = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert first is not None
    with psycopg.connect(database_url(settings), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first["pid"],))
    time.sleep(connection.CHECK_AFTER_IDLE_SECONDS + 0.2)
    # Each idle connection in turn (the pool hands them out in order): the dropped one
    # among them is replaced, and no borrower sees it fail.
    seen = []
    for _ in range(pool.get_stats()["pool_available"] + 1):
        with connect(settings) as conn:
            row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
        assert row is not None
        seen.append(row["pid"])
    assert first["pid"] not in seen


@pytest.mark.parametrize(("cap", "exclude", "own_index", "conditions"), [
    (100, False, False, {}), (50, False, False, {}), (59, True, False, {}),
    (100, True, True, {}), (100, False, False, {"folder": "/f1"}),
    (10, True, False, {"folder": "/f1"}), (100, False, True, {"folder": "/f2"}),
    (100, False, True, {"split": "nowhere"}), (100, True, False, {"batch_id": "b"}),
])
def test_the_first_statement_plans_a_search_as_search_plan_does(
    settings: Settings, dataset: tuple[uuid.UUID, np.ndarray, list[uuid.UUID]],
    cap: int, exclude: bool, own_index: bool, conditions: dict[str, Any],
) -> None:
    dataset_id, vectors, ids = dataset
    if own_index:  # a second dataset with an index of its own (the first keeps none)
        with connect(settings) as conn:
            other = catalog.ensure_dataset(conn, settings.workspace, f"own-{uuid.uuid4().hex[:6]}")
            ids = write_images(conn, MODEL.name, [
                ImageWrite(dataset_id=other.id, storage_key=f"mem://o{i}", name=f"o{i}.jpg",
                           folder=f"/f{i % 3}", sha256=None, byte_size=None,
                           status=ImageStatus.INDEXED, meta=UserMetadata(user_tags=[f"t{i}"]),
                           auto_tags=AutoTags(), embedding=v)
                for i, v in enumerate(vectors[:30])
            ])
        with psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row) as c:
            assert dataset_indexes.create_dataset_index(
                c, model=MODEL.name, dim=MODEL.dim, metric="cosine", dataset_id=other.id)
            c.execute("ANALYZE image_embeddings")
        dataset_id = other.id
    excluded = ids[7] if exclude else None
    knobs = ("enable_seqscan", "enable_sort", "hnsw.ef_search", "hnsw.iterative_scan")
    with connect(settings, readonly=True) as conn:
        name = catalog.get_dataset_by_id(conn, settings.workspace, dataset_id).name
        expected = dataset_indexes.search_plan(
            conn, search_sql.Filters(dataset_id=dataset_id, exclude_id=excluded, **conditions),
            MODEL.name, cap, ef_search=77)
        expected_knobs = [conn.execute("SELECT current_setting(%s) AS v", (k,)).fetchone()
                          for k in knobs]
    request = PlanRequest(cap, 77, search_sql.Filters(
        dataset_id=search_sql.SCOPED_DATASET, exclude_id=excluded, **conditions))
    with connect(settings, readonly=True) as conn:
        scope = search_scope(conn, workspace=settings.workspace, dataset=name,
                             model=MODEL.name, deadline_ms=20_000, plan=request)
        planned_knobs = [conn.execute("SELECT current_setting(%s) AS v", (k,)).fetchone()
                         for k in knobs]
    assert scope.plan == expected
    assert planned_knobs == expected_knobs
    rows = 30 if own_index else 60
    matching = {  # what each case's filters let through, counted here by hand
        (): rows - exclude, ("folder",): rows // 3 - exclude, ("split",): 0, ("batch_id",): 0,
    }[tuple(sorted(conditions))]
    if own_index and not conditions:  # the own index answers alone: no count
        assert expected.own_rows is not None and expected.matching is None
    else:
        assert expected.own_rows is None if not own_index else expected.own_rows is not None
        assert expected.matching == min(cap + 1, matching)


@pytest.mark.parametrize("conditions", [
    {"objects": ["tabby cat"]}, {"user_tags": ["t1"]}, {"class_names": ["car"]},
    {"in_batch": False}, {"split": "val", "folder": "/f1"},
])
def test_filters_that_may_scan_many_rows_are_not_planned_before_the_deadline(
    conditions: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="under the search's deadline"):
        PlanRequest(100, 40, search_sql.Filters(dataset_id=search_sql.SCOPED_DATASET,
                                                **conditions))


@pytest.mark.parametrize(("conditions", "statements"), [
    ({}, 2), ({"split": "val"}, 2), ({"folder": "/f1"}, 2), ({"folder": "/f1", "tags": ["t4"]}, 3),
])
def test_a_similarity_search_filtered_by_one_index_range_is_two_statements(
    settings: Settings, dataset: tuple[uuid.UUID, np.ndarray, list[uuid.UUID]],
    conditions: dict[str, Any], statements: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first statement plans the ranking of a search filtered by its dataset and at
    most one split / folder / batch / job; other filters are counted by a statement of
    their own, under the search's deadline (the driver's calls counted as they pass, on
    the real database)."""
    dataset_id, vectors, _ = dataset
    with connect(settings) as conn:
        name = catalog.get_dataset_by_id(conn, settings.workspace, dataset_id).name
    sent: list[str] = []
    execute = psycopg.Connection.execute

    def counted(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query.as_string(self) if hasattr(query, "as_string") else str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    page = search(SearchQuery(dataset=name, model=MODEL.name, like_vector=vectors[1].tolist(),
                              limit=5, **conditions), settings)
    monkeypatch.undo()
    assert len(sent) == statements, sent
    assert "statement_timeout" in sent[0]  # the scope and the deadline, and the plan ...
    assert ("capped" in sent[0]) == (statements == 2)  # ... or a statement of its own
    assert "ORDER BY distance" in sent[-1]  # the ranking, with its page's rows
    with connect(settings, readonly=True) as conn:
        expected = search_counts.count_matching(conn, search_sql.Filters(
            dataset_id=dataset_id, **{"user_tags" if k == "tags" else k: v
                                      for k, v in conditions.items()}))
    assert page.total == expected
