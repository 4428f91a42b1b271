"""A split's vectors held in a btree of their own (migration 0013): an exact ranking
inside a split reads them from it, grouped whatever order they arrived in; vectors too
large for a btree entry stay out of it, are written all the same, and are ranked from
the table instead."""

from __future__ import annotations

import subprocess
import uuid

import numpy as np
import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from pixdex.app.maintenance import check_vectors
from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.models import AutoTags, ImageStatus, SearchQuery, UserMetadata
from pixdex.storage import catalog, search_sql
from pixdex.storage.connection import close_pools, connect, database_url
from pixdex.storage.images import ImageWrite, write_images
from pixdex.storage.scan_settings import scan_settings_sql
from tests.server_home import PIXDEX

ROWS = 400


def _dataset(settings: Settings, model: ModelSpec, splits: list[str]) -> tuple[
        uuid.UUID, str, np.ndarray, list[uuid.UUID]]:
    """A dataset of ``model``'s unit vectors written one image at a time, as ingest
    does, their splits in turn; then vacuumed, as autovacuum soon would."""
    unit = np.random.default_rng(model.dim).normal(size=(ROWS, model.dim)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    with connect(settings) as conn:
        ds = catalog.ensure_dataset(conn, settings.workspace, f"sv-{uuid.uuid4().hex[:8]}")
        catalog.register_model(conn, model, ds.id)
    ids: list[uuid.UUID] = []
    for n, vector in enumerate(unit):
        with connect(settings) as conn:
            written = write_images(conn, model.name, [ImageWrite(
                dataset_id=ds.id, storage_key=f"mem://{n}", name=f"{n}.jpg", folder="/",
                sha256=None, byte_size=None, status=ImageStatus.INDEXED,
                meta=UserMetadata(split=splits[n % len(splits)]), auto_tags=AutoTags(),
                embedding=vector)])
        assert written[0] is not None
        ids.append(written[0])
    with psycopg.connect(database_url(settings), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) image_embeddings, images")
    return ds.id, ds.name, unit, ids


def _plan(settings: Settings, model: ModelSpec, dataset_id: uuid.UUID, split: str) -> str:
    statement, params = search_sql.ranking_statement(
        model=model.name, dim=model.dim, query=np.ones(model.dim, np.float32),
        filters=search_sql.Filters(dataset_id=dataset_id, split=split), k=10, exact=True)
    with connect(settings) as conn:
        conn.execute(sql.SQL("SELECT {}").format(scan_settings_sql(sql.Literal(True),
                                                                   ef_search=40)))
        explained = conn.execute(sql.SQL("EXPLAIN ") + statement, params)
        return "\n".join(str(next(iter(r.values()))) for r in explained)


def _check_exact(settings: Settings, model: ModelSpec, name: str, unit: np.ndarray,
                 ids: list[uuid.UUID], splits: list[str], split: str) -> None:
    inside = [n for n in range(ROWS) if splits[n % len(splits)] == split]
    for query in unit[:3]:
        order = sorted(inside, key=lambda n: -float(unit[n] @ query))
        page = search(SearchQuery(dataset=name, model=model.name, like_vector=query.tolist(),
                                  split=split, limit=10), settings)
        assert page.exact and page.total == len(inside)
        assert [h.id for h in page.results] == [ids[n] for n in order[:10]]


def test_a_ranking_inside_a_split_reads_its_vectors_from_their_index(
    settings: Settings
) -> None:
    model = ModelSpec(name="test-sv-768", dim=768, encodes_text=False, tags=False,
                      input_size=224)
    splits = ["train", "val", "test", "train"]
    dataset_id, name, unit, ids = _dataset(settings, model, splits)
    plan = _plan(settings, model, dataset_id, "val")
    # Neither the table's pages nor a lookup per row: the index holds the vectors.
    assert "Index Only Scan using image_embeddings_split_vectors" in plan, plan
    assert "Heap Scan on image_embeddings" not in plan, plan
    _check_exact(settings, model, name, unit, ids, splits, "val")


@pytest.mark.parametrize(("dim", "split"), [(2000, "val"), (768, "v" * 2000)])
def test_vectors_too_large_for_the_index_are_written_and_ranked_from_the_table(
    settings: Settings, dim: int, split: str
) -> None:
    """A 2,000-d vector, or a 768-d one with a 2,000-character split, would not fit a
    btree entry (2,704 bytes): written all the same, outside the index, and found."""
    model = ModelSpec(name=f"test-sv-large-{dim}", dim=dim, encodes_text=False, tags=False,
                      input_size=224)
    splits = [split, "train"]
    dataset_id, name, unit, ids = _dataset(settings, model, splits)
    plan = _plan(settings, model, dataset_id, split)
    assert "image_embeddings_split_vectors" not in plan, plan
    assert "image_embeddings_split " in plan, plan  # the split's rows still one range
    _check_exact(settings, model, name, unit, ids, splits, split)


def test_the_layout_check_knows_searches_read_these_splits_from_their_index(
    settings: Settings, fresh_database: str, cli_env: dict[str, str]
) -> None:
    """Spread in the table, but read from the index: pixdex db optimize would not make
    these splits' searches faster, and --check says so."""
    mine = settings.model_copy(update={"database_url": SecretStr(fresh_database)})
    model = ModelSpec(name="test-sv-check-768", dim=768, encodes_text=False, tags=False,
                      input_size=224)
    try:
        _dataset(mine, model, ["train", "val", "test", "train"])
        check = check_vectors(mine)
    finally:
        close_pools()  # before the fixture drops the database
    assert check.split_rows == ROWS and check.indexed_split_rows == ROWS
    assert check.split_pages > check.split_pages_regrouped  # spread in the table, and yet
    assert check.most_pages_saved == 0 and not check.worth_regrouping
    said = subprocess.run([str(PIXDEX), "db", "optimize", "--check"], capture_output=True,
                          env={**cli_env, "PIXDEX_DATABASE_URL": fresh_database},
                          text=True, timeout=120, check=False)
    assert said.returncode == 0, said.stderr
    assert "would not speed them up" in said.stdout, said.stdout
