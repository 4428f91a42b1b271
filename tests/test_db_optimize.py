"""``pixdex db optimize``: the vectors rewritten grouped by dataset, model and split, with
every index rebuilt, the searches' answers and the split copy's triggers unchanged.

On a database of its own (``fresh_database``): the rewrite locks the whole table.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest
from pydantic import SecretStr

from pixdex.app.maintenance import check_vectors, optimize_vectors
from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.errors import ConflictError
from pixdex.inference.base import ModelSpec
from pixdex.models import AutoTags, ImageStatus, SearchQuery, UserMetadata
from pixdex.storage import catalog
from pixdex.storage.connection import close_pools, connect
from pixdex.storage.images import ImageWrite, update_record, write_images
from pixdex.storage.maintenance import regroup_vectors
from tests.server_home import PIXDEX

# 1,400-d halfvecs: two rows a heap page, so splits written in turn share pages; and too
# large for the split index (migration 0013), so searches inside a split read the table.
MODEL = ModelSpec(name="test-optimize-1400", dim=1400, encodes_text=False, tags=False,
                  input_size=224)
SPLITS = ("train", "val", "test", None)
ROWS = 240


@pytest.fixture()
def own(settings: Settings, fresh_database: str) -> Iterator[tuple[Settings, str]]:
    """Settings for the fresh database, and a dataset there whose rows were written with
    their splits in turn (as files ingested one by one leave them)."""
    mine = settings.model_copy(update={"database_url": SecretStr(fresh_database)})
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(ROWS, MODEL.dim)).astype(np.float32)
    with connect(mine) as conn:
        ds = catalog.ensure_dataset(conn, mine.workspace, "optimize")
        catalog.register_model(conn, MODEL, ds.id)
    for n, vector in enumerate(vectors):  # one write each: rows in arrival order
        with connect(mine) as conn:
            write_images(conn, MODEL.name, [ImageWrite(
                dataset_id=ds.id, storage_key=f"mem://{n}", name=f"{n}.jpg", folder="/",
                sha256=None, byte_size=None, status=ImageStatus.INDEXED,
                meta=UserMetadata(split=SPLITS[n % 4]), auto_tags=AutoTags(), embedding=vector,
            )])
    try:
        yield mine, fresh_database
    finally:
        close_pools()  # before the fixture drops the database


def _results(settings: Settings, split: str | None) -> list[tuple[uuid.UUID, float]]:
    query = np.random.default_rng(9).normal(size=MODEL.dim).tolist()
    page = search(SearchQuery(dataset="optimize", model=MODEL.name, like_vector=query,
                              split=split, limit=15), settings)
    return [(hit.id, hit.score) for hit in page.results]


def _indexes(url: str) -> list[tuple[str, str, bool]]:
    with psycopg.connect(url) as conn:
        return [(str(name), str(definition), bool(valid)) for name, definition, valid in
                conn.execute(
                    "SELECT c.relname, pg_get_indexdef(x.indexrelid), x.indisvalid"
                    " FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
                    " WHERE x.indrelid = 'image_embeddings'::regclass ORDER BY 1").fetchall()]


def _mixed_pages(url: str) -> int:
    """Heap pages holding vectors of more than one (dataset, model, split)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT (ctid::text::point)[0] FROM image_embeddings"
            " GROUP BY 1 HAVING count(DISTINCT concat_ws('/', dataset_id, model, split)) > 1)"
            " mixed").fetchone()
    assert row is not None
    return int(str(row[0]))


def test_optimize_groups_each_split_and_changes_no_answer(own: tuple[Settings, str]) -> None:
    settings, url = own
    before = {split: _results(settings, split) for split in ("train", "val", None)}
    indexes = _indexes(url)
    assert any("hnsw" in definition for _, definition, _ in indexes)
    assert _mixed_pages(url) > 20  # 120 pages, each with rows of two splits

    check = check_vectors(settings)
    assert _mixed_pages(url) > 20  # the check changes nothing
    layout = optimize_vectors(settings)
    assert (check.rows, check.split_rows, check.split_pages) == (
        layout.rows, layout.split_rows, layout.split_pages_before)
    # The estimate is what the rewrite achieved, give or take a page per split.
    assert abs(check.split_pages_regrouped - layout.split_pages_after) <= 3, (check, layout)
    # Each split on 60 pages, 30 once packed: 30 fewer reads, far from worth the lock.
    assert check.indexed_split_rows == 0
    assert check.most_pages_saved >= 25 and not check.worth_regrouping, check

    assert (layout.rows, layout.split_rows) == (ROWS, ROWS * 3 // 4)
    assert layout.split_pages_after <= layout.split_pages_before / 2, layout  # 2 a page
    assert layout.indexes_rebuilt == len(indexes)
    assert _mixed_pages(url) <= 3  # only where one split ends and the next begins
    assert _indexes(url) == indexes  # the same indexes, all valid; the ordering one gone
    assert {split: _results(settings, split) for split in ("train", "val", None)} == before
    # The split copy's triggers are the table's: they survive the rewrite.
    moved = before["train"][0][0]
    with connect(settings) as conn:
        update_record(conn, settings.workspace, moved, {"split": "val"})
        row = conn.execute("SELECT split FROM image_embeddings WHERE image_id = %s",
                           (moved,)).fetchone()
    assert row is not None and row["split"] == "val"


def test_a_table_in_use_is_refused_and_left_as_it_was(own: tuple[Settings, str]) -> None:
    settings, url = own
    indexes = _indexes(url)
    with psycopg.connect(url) as busy:
        busy.execute("SELECT count(*) FROM image_embeddings")  # a transaction reading it
        with pytest.raises(ConflictError, match="stayed in use"):
            regroup_vectors(settings, lock_timeout_ms=300)
    with ThreadPoolExecutor(1) as pool, psycopg.connect(url) as writing:
        writing.execute("UPDATE image_embeddings SET split = split WHERE split = 'val'")
        # A write in progress: the check reads past it (were it to wait, the timeout
        # fails the test, and the write's rollback then lets the check end).
        checked = pool.submit(check_vectors, settings).result(timeout=60)
        writing.rollback()
    assert checked.split_rows == ROWS * 3 // 4
    assert _indexes(url) == indexes
    assert _mixed_pages(url) > 20


def test_the_command(own: tuple[Settings, str], cli_env: dict[str, str]) -> None:
    _, url = own
    env = {**cli_env, "PIXDEX_DATABASE_URL": url}
    checked = subprocess.run([str(PIXDEX), "db", "optimize", "--check", "--json"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert checked.returncode == 0, checked.stderr
    estimate = json.loads(checked.stdout)
    assert estimate["split_rows"] == ROWS * 3 // 4
    assert estimate["split_pages_regrouped"] < estimate["split_pages"]
    said = subprocess.run([str(PIXDEX), "db", "optimize", "--check"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert said.returncode == 0, said.stderr
    assert f"{ROWS * 3 // 4:,} of {ROWS:,} vectors have a split" in said.stdout
    assert "too few to be worth" in said.stdout  # 30 pages a search: not worth the lock
    assert _mixed_pages(url) > 20  # nothing rewritten yet
    done = subprocess.run([str(PIXDEX), "db", "optimize", "--json"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == ROWS and report["split_pages_after"] < report["split_pages_before"]
    human = subprocess.run([str(PIXDEX), "db", "optimize"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert human.returncode == 0, human.stderr
    assert f"{ROWS:,} vectors regrouped" in human.stdout
    again = subprocess.run([str(PIXDEX), "db", "optimize", "--check", "--json"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["most_pages_saved"] <= 1  # grouped now
    wrong = subprocess.run([str(PIXDEX), "db", "status", "--json"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 2
    assert "--json goes with optimize only" in wrong.stderr
    wrong = subprocess.run([str(PIXDEX), "db", "url", "--check"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 2
    assert "--check goes with optimize only" in wrong.stderr
