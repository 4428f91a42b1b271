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


def _dataset(settings: Settings, model: ModelSpec, splits: list[str], rows: int = ROWS
             ) -> tuple[uuid.UUID, str, np.ndarray, list[uuid.UUID]]:
    """A dataset of ``model``'s unit vectors written one image at a time, as ingest
    does, their splits in turn."""
    unit = np.random.default_rng(model.dim).normal(size=(rows, model.dim)).astype(np.float32)
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
    return ds.id, ds.name, unit, ids


def _vacuum(settings: Settings) -> None:
    """What autovacuum does after inserts (migration 0013 makes it come sooner): the
    visibility map, which lets an index-only scan skip the table."""
    with psycopg.connect(database_url(settings), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) image_embeddings, images")


def _plan(settings: Settings, model: ModelSpec, dataset_id: uuid.UUID, split: str) -> str:
    statement, params = search_sql.ranking_statement(
        model=model.name, dim=model.dim, query=np.ones(model.dim, np.float32),
        filters=search_sql.Filters(dataset_id=dataset_id, split=split), k=10, exact=True)
    with connect(settings) as conn:
        conn.execute(sql.SQL("SELECT {}").format(scan_settings_sql(sql.Literal(True),
                                                                   ef_search=40)))
        explained = conn.execute(sql.SQL("EXPLAIN (ANALYZE) ") + statement, params)
        return "\n".join(str(next(iter(r.values()))) for r in explained)


def _check_exact(settings: Settings, model: ModelSpec, name: str, unit: np.ndarray,
                 ids: list[uuid.UUID], splits: list[str], split: str) -> None:
    inside = [n for n in range(len(ids)) if splits[n % len(splits)] == split]
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
    # Just written: exact already (the scan reads the table where the visibility map
    # does not vouch for a page yet) ...
    _check_exact(settings, model, name, unit, ids, splits, "val")
    _vacuum(settings)
    # ... and once vacuumed, neither the table's pages nor a lookup per row: the index
    # holds the vectors.
    plan = _plan(settings, model, dataset_id, "val")
    assert "Index Only Scan using image_embeddings_split_vectors" in plan, plan
    assert "Heap Fetches: 0" in plan, plan
    _check_exact(settings, model, name, unit, ids, splits, "val")


def _random_text(rng: np.random.Generator, low: int, high: int, length: int) -> str:
    """Characters drawn from [low, high): incompressible, as a real name can be."""
    return "".join(chr(int(c)) for c in rng.integers(low, high, size=length))


_RNG = np.random.default_rng(7)
# 400 CJK characters: 400 characters, 1,200 bytes. Counted in characters the entry
# would fit (1,536 + 400 + the model's name), in bytes it does not.
_WIDE_SPLIT = _random_text(_RNG, 0x4E00, 0x9FA5, 400)
# The largest entry the index admits: 2 x 1,235 + a 1-byte model name + a 129-byte split
# name = 2,600 exactly, 2,664 bytes once laid out: it must be written, and indexed.
_EDGE_SPLIT = _random_text(_RNG, 0x21, 0x7F, 129)


@pytest.mark.parametrize(("model_name", "dim", "split"), [
    ("test-sv-2000", 2000, "val"), ("test-sv-wide-768", 768, _WIDE_SPLIT)])
def test_vectors_too_large_for_the_index_are_written_and_ranked_from_the_table(
    settings: Settings, model_name: str, dim: int, split: str
) -> None:
    """A 2,000-d vector, or a 768-d one with a 1,200-byte split, would not fit a btree
    entry (2,704 bytes): written all the same, outside the index, and found."""
    model = ModelSpec(name=model_name, dim=dim, encodes_text=False, tags=False,
                      input_size=224)
    splits = [split, "train"]
    dataset_id, name, unit, ids = _dataset(settings, model, splits, rows=60)
    _vacuum(settings)
    plan = _plan(settings, model, dataset_id, split)
    assert "image_embeddings_split_vectors" not in plan, plan
    assert "image_embeddings_split " in plan, plan  # the split's rows still one range
    _check_exact(settings, model, name, unit, ids, splits, split)


def test_the_largest_entry_the_index_admits_is_written_and_read_from_it(
    settings: Settings
) -> None:
    model = ModelSpec(name="q", dim=1235, encodes_text=False, tags=False, input_size=224)
    splits = [_EDGE_SPLIT, "train"]
    dataset_id, name, unit, ids = _dataset(settings, model, splits, rows=60)
    _vacuum(settings)
    plan = _plan(settings, model, dataset_id, _EDGE_SPLIT)
    assert "Index Only Scan using image_embeddings_split_vectors" in plan, plan
    _check_exact(settings, model, name, unit, ids, splits, _EDGE_SPLIT)


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
        _vacuum(mine)
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
