"""Per-dataset HNSW indexes and the search path they open, on the real database: a large
and a small dataset of synthetic vectors in the same table, a lowered exact-path cap."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixdex.app.ingest import ingest
from pixdex.app.search import search
from pixdex.app.service.datasets import delete_dataset
from pixdex.app.sources import local_items
from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.models import AutoTags, ImageStatus, SearchQuery, UserMetadata
from pixdex.storage import catalog, dataset_indexes, search_sql
from pixdex.storage.connection import connect
from pixdex.storage.images import ImageWrite, write_images

MODEL = ModelSpec(name="test-own-48", dim=48, encodes_text=False, tags=False, input_size=224)
CAP = 500


class Data:
    def __init__(self, name: str, dataset_id: uuid.UUID, vectors: np.ndarray,
                 ids: list[uuid.UUID], splits: list[str]) -> None:
        self.name, self.dataset_id, self.vectors, self.ids, self.splits = (
            name, dataset_id, vectors, ids, splits)

    def truth(self, query: np.ndarray, split: str | None, k: int = 10) -> list[uuid.UUID]:
        stored = self.vectors.astype(np.float16).astype(np.float64)
        asked = query.astype(np.float16).astype(np.float64)
        sims = stored @ asked / (np.linalg.norm(stored, axis=1) * np.linalg.norm(asked))
        if split is not None:
            sims[np.array([s != split for s in self.splits])] = -np.inf
        return [self.ids[i] for i in np.argsort(-sims, kind="stable")[:k]]


def _make(settings: Settings, rows: int, seed: int) -> Data:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(15, MODEL.dim))
    points = centres[rng.integers(0, 15, rows)] + 0.7 * rng.normal(size=(rows, MODEL.dim))
    vectors = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    splits = ["rare" if i % 50 == 3 else "train" for i in range(rows)]
    name = f"own-{uuid.uuid4().hex[:8]}"
    with connect(settings) as conn:
        ds = catalog.ensure_dataset(conn, settings.workspace, name)
        catalog.register_model(conn, MODEL, ds.id)
        ids = write_images(conn, MODEL.name, [
            ImageWrite(dataset_id=ds.id, storage_key=f"mem://{i}", name=f"{i}.jpg", folder="/",
                       sha256=None, byte_size=None, status=ImageStatus.INDEXED,
                       meta=UserMetadata(split=s), auto_tags=AutoTags(), embedding=v)
            for i, (v, s) in enumerate(zip(vectors, splits, strict=True))
        ])
    return Data(name, ds.id, vectors, ids, splits)


@pytest.fixture(scope="module")
def tuned(settings: Settings) -> Settings:
    return settings.model_copy(update={"exact_search_max_rows": CAP})


@pytest.fixture(scope="module")
def pair(tuned: Settings) -> tuple[Data, Data]:
    """A 1,500-row dataset (over the cap: gets its own index) and a 200-row one."""
    large, small = _make(tuned, 1500, 1), _make(tuned, 200, 2)
    with connect(tuned) as conn:
        for data, built in ((small, False), (large, True)):
            assert dataset_indexes.index_if_over(
                conn, model=MODEL.name, dim=MODEL.dim, metric="cosine",
                dataset_id=data.dataset_id, min_rows=CAP) is built
        # Once built, never again.
        assert not dataset_indexes.index_if_over(
            conn, model=MODEL.name, dim=MODEL.dim, metric="cosine",
            dataset_id=large.dataset_id, min_rows=CAP)
    return large, small


def _queries(data: Data, n: int = 15) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [data.vectors[i] + 0.05 * rng.normal(size=MODEL.dim).astype(np.float32)
            for i in rng.choice(len(data.vectors), n, replace=False)]


def test_the_planner_serves_a_large_dataset_from_its_own_index(
    tuned: Settings, pair: tuple[Data, Data]
) -> None:
    large, small = pair
    with connect(tuned) as conn:
        used = search_sql.ann_index(conn, MODEL.name, MODEL.dim,
                                    search_sql.Filters(dataset_id=large.dataset_id))
        # The small dataset has none: its ANN query would use the model's shared index.
        other = search_sql.ann_index(conn, MODEL.name, MODEL.dim,
                                     search_sql.Filters(dataset_id=small.dataset_id))
    assert used == dataset_indexes.dataset_index_name(MODEL.name, large.dataset_id)
    assert other == catalog.hnsw_index_name(MODEL.name)


def test_search_plan_counts_only_when_the_own_index_cannot_answer_alone(
    tuned: Settings, pair: tuple[Data, Data]
) -> None:
    large, small = pair
    with connect(tuned) as conn:
        alone = dataset_indexes.search_plan(
            conn, search_sql.Filters(dataset_id=large.dataset_id), MODEL.name, CAP)
        filtered = dataset_indexes.search_plan(
            conn, search_sql.Filters(dataset_id=large.dataset_id, split="rare"), MODEL.name, CAP)
        little = dataset_indexes.search_plan(
            conn, search_sql.Filters(dataset_id=small.dataset_id), MODEL.name, CAP)
    assert (alone.own_rows, alone.matching) == (1500, None)
    assert (filtered.own_rows, filtered.matching) == (1500, 30)
    assert (little.own_rows, little.matching) == (None, 200)


@pytest.mark.parametrize("which,split,exact", [
    ("large", None, False), ("large", "rare", True), ("small", None, True),
])
def test_library_search_on_each_path_matches_the_exact_answer(
    tuned: Settings, pair: tuple[Data, Data], which: str, split: str | None, exact: bool,
) -> None:
    data = pair[0] if which == "large" else pair[1]
    recalls = []
    for query in _queries(data):
        page = search(SearchQuery(dataset=data.name, model=MODEL.name,
                                  like_vector=query.tolist(), split=split, limit=10), tuned)
        assert page.exact is exact
        expected = {"large": {None: 1500, "rare": 30}, "small": {None: 200}}[which][split]
        assert page.total == expected
        truth = set(data.truth(query, split))
        recalls.append(len({hit.id for hit in page.results} & truth) / 10)
    assert np.mean(recalls) >= (1.0 if exact else 0.95), recalls


def test_pages_on_the_own_index_neither_overlap_nor_skip(
    tuned: Settings, pair: tuple[Data, Data]
) -> None:
    large, _ = pair
    query = large.vectors[7].tolist()
    whole = search(SearchQuery(dataset=large.name, model=MODEL.name, like_vector=query,
                               limit=100), tuned)
    pages = []
    for offset in range(0, 100, 20):
        page = search(SearchQuery(dataset=large.name, model=MODEL.name, like_vector=query,
                                  offset=offset, limit=20), tuned)
        assert not page.exact
        pages.extend(hit.id for hit in page.results)
    assert pages == [hit.id for hit in whole.results]
    assert len(set(pages)) == 100


def test_filters_know_when_only_the_dataset_restricts() -> None:
    some = uuid.uuid4()
    assert search_sql.Filters(dataset_id=some).scope_only
    assert search_sql.Filters(dataset_id=some, exclude_id=uuid.uuid4(), folder="/").scope_only
    assert not search_sql.Filters(dataset_id=some, split="valid").scope_only
    assert not search_sql.Filters(dataset_id=some, objects=["cat"]).scope_only
    assert not search_sql.Filters(dataset_id=some, in_batch=False).scope_only
    assert not search_sql.Filters(dataset_ids=[some]).scope_only  # workspace-wide


def test_deleting_a_dataset_drops_its_index(tuned: Settings) -> None:
    data = _make(tuned, CAP + 10, 3)
    name = dataset_indexes.dataset_index_name(MODEL.name, data.dataset_id)
    with connect(tuned) as conn:
        assert dataset_indexes.index_if_over(conn, model=MODEL.name, dim=MODEL.dim,
                                             metric="cosine", dataset_id=data.dataset_id,
                                             min_rows=CAP)
    delete_dataset(tuned, tuned.workspace, data.dataset_id)
    with connect(tuned) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NULL AS gone", (name,)).fetchone()
    assert row is not None and row["gone"]


def test_ingest_gives_a_dataset_outgrowing_the_cap_its_own_index(
    settings: Settings, tmp_path: Path, dataset_name: str
) -> None:
    small_cap = settings.model_copy(update={"exact_search_max_rows": 3})
    for i in range(3):
        Image.new("RGB", (64, 48), (40 * i, 90, 200 - 50 * i)).save(tmp_path / f"{i}.png")
    ingest(local_items([tmp_path], folder=None, meta=UserMetadata()).items, dataset_name,
           settings=small_cap)

    def has_index() -> bool:
        with connect(settings) as conn:
            ds = catalog.get_dataset(conn, settings.workspace, dataset_name)
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (
                dataset_indexes.dataset_index_name(settings.model, ds.id),)).fetchone()
        return bool(row and row["ok"])

    assert not has_index()  # 3 rows: the exact path serves them
    Image.new("RGB", (64, 48), (250, 20, 20)).save(tmp_path / "3.png")
    ingest(local_items([tmp_path], folder=None, meta=UserMetadata()).items, dataset_name,
           settings=small_cap)
    assert has_index()


@pytest.mark.parametrize("which,sort", [("large", "off"), ("small", "on")])
def test_search_plan_sets_up_the_path_it_picks(
    tuned: Settings, pair: tuple[Data, Data], which: str, sort: str
) -> None:
    data = pair[0] if which == "large" else pair[1]
    with connect(tuned) as conn:
        dataset_indexes.search_plan(conn, search_sql.Filters(dataset_id=data.dataset_id),
                                    MODEL.name, CAP, ef_search=77)
        row = conn.execute("SELECT current_setting('hnsw.ef_search') AS ef,"
                           " current_setting('enable_sort') AS sort").fetchone()
    # HNSW (own index): sorting every row is ruled out; exact (200 rows): a sort ranks them.
    assert row is not None and (row["ef"], row["sort"]) == ("77", sort)
