"""The split copied onto the vectors (migration 0012): kept equal to the image's through
ingest, edits, re-embedding and bulk imports, ranked inside a split without a primary-key
descent per row, and not mistaken by curation for a new vector."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.models import AutoTags, ImageStatus, SearchQuery, UserMetadata
from pixdex.storage import catalog, search_sql, vectors
from pixdex.storage.connection import Conn, connect
from pixdex.storage.images import ImageWrite, update_record, write_images, write_vectors
from pixdex.storage.migrate import apply_migrations, load_migrations
from pixdex.storage.scan_settings import scan_settings_sql

MODEL = ModelSpec(name="test-split-16", dim=16, encodes_text=False, tags=False, input_size=224)
SECOND = ModelSpec(name="test-split-second-16", dim=16, encodes_text=False, tags=False,
                  input_size=224)
SPLITS = ("train", "val", "test", None)


def _write(settings: Settings, dataset_id: uuid.UUID, vectors_: np.ndarray,
           splits: list[str | None], first: int = 0) -> list[uuid.UUID]:
    with connect(settings) as conn:
        ids = write_images(conn, MODEL.name, [
            ImageWrite(dataset_id=dataset_id, storage_key=f"mem://{first + n}",
                       name=f"{first + n}.jpg", folder="/", sha256=None, byte_size=None,
                       status=ImageStatus.INDEXED, meta=UserMetadata(split=split),
                       auto_tags=AutoTags(), embedding=vector)
            for n, (vector, split) in enumerate(zip(vectors_, splits, strict=True))
        ])
    assert all(i is not None for i in ids)
    return [i for i in ids if i is not None]


@pytest.fixture()
def dataset(settings: Settings) -> tuple[uuid.UUID, str, np.ndarray, list[uuid.UUID]]:
    """120 images, their splits in turn train, val, test and none."""
    rng = np.random.default_rng(11)
    vectors_ = rng.normal(size=(120, MODEL.dim)).astype(np.float32)
    with connect(settings) as conn:
        ds = catalog.ensure_dataset(conn, settings.workspace, f"split-{uuid.uuid4().hex[:8]}")
        catalog.register_model(conn, MODEL, ds.id)
    ids = _write(settings, ds.id, vectors_, [SPLITS[n % 4] for n in range(120)])
    return ds.id, ds.name, vectors_, ids


def _mismatches(conn: Conn, dataset_id: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM image_embeddings e JOIN images i ON i.id = e.image_id"
        " WHERE i.dataset_id = %s AND e.split IS DISTINCT FROM i.split", (dataset_id,),
    ).fetchone()
    assert row is not None
    return int(str(row["n"]))


def _split_of(conn: Conn, image_id: uuid.UUID) -> Any:
    row = conn.execute("SELECT split FROM image_embeddings WHERE image_id = %s AND model = %s",
                       (image_id, MODEL.name)).fetchone()
    assert row is not None
    return row["split"]


def test_every_write_path_keeps_the_vectors_split_equal_to_the_images(
    settings: Settings, dataset: tuple[uuid.UUID, str, np.ndarray, list[uuid.UUID]]
) -> None:
    dataset_id, _, vectors_, ids = dataset
    with connect(settings) as conn:
        assert _mismatches(conn, dataset_id) == 0
        assert _split_of(conn, ids[1]) == "val"
        # Edits: into a split, out of one, from one to another.
        update_record(conn, settings.workspace, ids[3], {"split": "val"})
        update_record(conn, settings.workspace, ids[1], {"split": None})
        update_record(conn, settings.workspace, ids[2], {"split": "train"})
        assert [_split_of(conn, i) for i in ids[1:4]] == [None, "train", "val"]
        # Re-embedding keeps the split; a re-ingest that changes it moves the vector too.
        write_vectors(conn, MODEL.name, [(ids[3], dataset_id, vectors_[0])])
        assert _split_of(conn, ids[3]) == "val"
        # A second model's first vector of an image: a plain insert takes the split.
        catalog.register_model(conn, SECOND, dataset_id)
        write_vectors(conn, SECOND.name, [(ids[3], dataset_id, vectors_[0])])
        row = conn.execute("SELECT split FROM image_embeddings WHERE image_id = %s"
                           " AND model = %s", (ids[3], SECOND.name)).fetchone()
        assert row is not None and row["split"] == "val"
    _write(settings, dataset_id, vectors_[:1], ["test"])
    with connect(settings) as conn:
        assert _split_of(conn, ids[0]) == "test"
        assert _mismatches(conn, dataset_id) == 0


IMPORTED = ModelSpec(name="test-split-import-8", dim=8, encodes_text=False, tags=False,
                    input_size=224)


def _new_rows(splits: list[str | None], tags: list[list[str]]) -> vectors.NewRows:
    count = len(splits)
    unit = np.random.default_rng(5).normal(size=(count, IMPORTED.dim)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    return vectors.NewRows(
        names=[f"v{n}" for n in range(count)], folders=["/"] * count, tags=tags,
        splits=splits, batch_ids=[None] * count, annotation_job_ids=[None] * count,
        metadata=[json.dumps({})] * count, vectors=unit)


def _import(conn: Conn, rows: vectors.NewRows) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A dataset of unit vectors imported in one chunk (the bulk path); its ids."""
    ds = catalog.ensure_dataset(conn, "default", f"split-{uuid.uuid4().hex[:8]}")
    catalog.register_model(conn, IMPORTED, ds.id)
    with conn.transaction():
        ids = vectors.insert_rows(conn, ds.id, IMPORTED.name, rows)
    return ds.id, ids


def test_a_load_with_foreign_key_checks_off_still_copies_the_split(
    settings: Settings, dataset: tuple[uuid.UUID, str, np.ndarray, list[uuid.UUID]]
) -> None:
    """Bulk loaders (the benchmarks, a restore) COPY under session_replication_role =
    replica, where ordinary triggers do not fire: the copy's triggers fire anyway."""
    dataset_id, _, _, ids = dataset
    with connect(settings) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE images SET split = 'moved' WHERE id = %s", (ids[0],))
        conn.execute("DELETE FROM image_embeddings WHERE image_id = %s", (ids[1],))
        conn.execute("INSERT INTO image_embeddings (image_id, model, dataset_id, embedding)"
                     " SELECT %s, model, dataset_id, embedding FROM image_embeddings"
                     " WHERE image_id = %s", (ids[1], ids[0]))
        assert _split_of(conn, ids[0]) == "moved"
        assert _split_of(conn, ids[1]) == "val"
        assert _mismatches(conn, dataset_id) == 0
        # A loader bringing the vectors before their images: the split it gives stays.
        early = uuid.uuid4()
        conn.execute("INSERT INTO image_embeddings (image_id, model, dataset_id, embedding,"
                     " split) SELECT %s, model, dataset_id, embedding, 'given'"
                     " FROM image_embeddings WHERE image_id = %s", (early, ids[0]))
        assert _split_of(conn, early) == "given"
        conn.execute("DELETE FROM image_embeddings WHERE image_id = %s", (early,))


def test_a_bulk_import_writes_each_chunks_split_rows_side_by_side(
    fresh_database: str,
) -> None:
    splits = [SPLITS[n % 4] for n in range(40)]
    # A database of its own: free space other tests' deletes left would take rows out of
    # the order they were written in.
    with psycopg.connect(fresh_database, autocommit=True, row_factory=dict_row) as conn:
        apply_migrations(conn)
        dataset_id, ids = _import(conn, _new_rows(splits, [[]] * 40))
        stored = conn.execute("SELECT image_id, split FROM image_embeddings"
                              " WHERE dataset_id = %s ORDER BY ctid", (dataset_id,)).fetchall()
        assert _mismatches(conn, dataset_id) == 0
    in_table_order = [r["split"] for r in stored]
    runs = 1 + sum(a != b for a, b in itertools.pairwise(in_table_order))
    assert runs == len(SPLITS)  # one run per split: each split's rows are contiguous
    assert {r["image_id"]: r["split"] for r in stored} == dict(zip(ids, splits, strict=True))


def _plan(conn: Conn, filters: search_sql.Filters) -> str:
    statement, params = search_sql.ranking_statement(
        model=IMPORTED.name, dim=IMPORTED.dim, query=np.ones(IMPORTED.dim, np.float32),
        filters=filters, k=10, exact=True)
    with conn.transaction():
        conn.execute(sql.SQL("SELECT {}").format(scan_settings_sql(sql.Literal(True),
                                                                   ef_search=40)))
        explained = conn.execute(sql.SQL("EXPLAIN ") + statement, params)
        return "\n".join(str(next(iter(r.values()))) for r in explained)


def test_an_exact_ranking_inside_a_split_reads_no_primary_key(settings: Settings) -> None:
    # 1 in 20 rows in 'val', another 1 in 20 tagged 'rare'. (The cost this avoids, a
    # descent per row, shows at scale: bench/bench_scale.py; here the plan's shape.)
    count = 4_000
    rows = _new_rows(["val" if n % 20 == 0 else "train" for n in range(count)],
                     [["rare"] if n % 20 == 1 else [] for n in range(count)])
    with connect(settings) as conn:
        dataset_id, _ = _import(conn, rows)
        conn.execute("ANALYZE images")
        conn.execute("ANALYZE image_embeddings")
        alone = _plan(conn, search_sql.Filters(dataset_id=dataset_id, split="val"))
        narrowed = _plan(conn, search_sql.Filters(dataset_id=dataset_id, split="train",
                                                  user_tags=["rare"]))
    # The split's vectors from their own index range, matched by a full join: nothing
    # fetched row by row, and no nested loop possible.
    assert "image_embeddings_split" in alone and "Full Join" in alone, alone
    assert "image_embeddings_pkey" not in alone and "images_pkey" not in alone, alone
    # With a tag as well, the 3,800-row split is not read whole for the 200 tagged rows.
    assert "Full Join" not in narrowed, narrowed


def test_searches_inside_a_split_are_exact_before_and_after_edits(
    settings: Settings, dataset: tuple[uuid.UUID, str, np.ndarray, list[uuid.UUID]]
) -> None:
    dataset_id, name, vectors_, ids = dataset
    unit = vectors_ / np.linalg.norm(vectors_, axis=1, keepdims=True)
    splits: list[str | None] = [SPLITS[n % 4] for n in range(len(ids))]

    def check(query: np.ndarray, split: str) -> None:
        inside = [n for n, s in enumerate(splits) if s == split]
        order = sorted(inside, key=lambda n: -float(unit[n] @ query))
        page = search(SearchQuery(dataset=name, model=MODEL.name, like_vector=query.tolist(),
                                  split=split, limit=10), settings)
        assert page.total == len(inside) and page.exact
        assert [h.id for h in page.results] == [ids[n] for n in order[:10]]

    for query in unit[:3]:
        check(query, "val")
    with connect(settings) as conn:
        for n in range(0, 40, 4):  # ten train images move to val
            update_record(conn, settings.workspace, ids[n], {"split": "val"})
            splits[n] = "val"
    for query in unit[:3]:
        check(query, "val")
        check(query, "train")
    with connect(settings) as conn:
        assert _mismatches(conn, dataset_id) == 0


def _pending(conn: Conn, dataset_id: uuid.UUID) -> set[uuid.UUID]:
    rows = conn.execute("SELECT image_id FROM curation_pending WHERE dataset_id = %s",
                        (dataset_id,)).fetchall()
    return {uuid.UUID(str(r["image_id"])) for r in rows}


def test_a_split_edit_is_not_a_new_vector_to_curation(
    settings: Settings, dataset: tuple[uuid.UUID, str, np.ndarray, list[uuid.UUID]]
) -> None:
    dataset_id, _, vectors_, ids = dataset
    with connect(settings) as conn:
        conn.execute("DELETE FROM curation_pending WHERE dataset_id = %s", (dataset_id,))
        update_record(conn, settings.workspace, ids[5], {"split": "test"})
        assert _pending(conn, dataset_id) == set()
        write_vectors(conn, MODEL.name, [(ids[6], dataset_id, vectors_[6])])  # unchanged
        assert _pending(conn, dataset_id) == set()
        write_vectors(conn, MODEL.name, [(ids[7], dataset_id, vectors_[8])])  # changed
        assert _pending(conn, dataset_id) == {ids[7]}


@pytest.mark.parametrize("with_split", [1, 8], ids=["rewritten-in-place", "graph-rebuilt"])
def test_the_migration_copies_existing_splits_without_marking_curation(
    fresh_database: str, with_split: int,
) -> None:
    """1 of 10 vectors with a split: rewritten under their HNSW graph; 8 of 10: the graph
    is dropped and built again (same definition) around the rewrite."""
    before, after = [m for m in load_migrations() if m.version < 12], [
        m for m in load_migrations() if m.version == 12]
    splits = [SPLITS[n % 3] if n < with_split else None for n in range(10)]
    graph = ("CREATE INDEX iemb_hnsw_test ON public.image_embeddings USING hnsw"
             " (((embedding)::halfvec(2)) halfvec_cosine_ops) WHERE (model = 'm'::text)")
    with psycopg.connect(fresh_database, autocommit=True, row_factory=dict_row) as conn:
        for migration in before:
            conn.execute(migration.sql.encode())
        conn.execute("INSERT INTO workspaces (name) VALUES ('w')")
        ds = conn.execute("INSERT INTO datasets (workspace_id, name) SELECT id, 'd'"
                          " FROM workspaces RETURNING id").fetchone()
        assert ds is not None
        conn.execute("INSERT INTO embedding_models (name, dim, encodes_text, tags)"
                     " VALUES ('m', 2, false, false)")
        conn.execute(graph)
        for n, split in enumerate(splits):
            conn.execute(
                "WITH i AS (INSERT INTO images (dataset_id, storage_key, name, folder, status,"
                " split) VALUES (%(ds)s, %(key)s, %(key)s, '/', 'indexed', %(split)s)"
                " RETURNING id) INSERT INTO image_embeddings (image_id, model, dataset_id,"
                " embedding) SELECT id, 'm', %(ds)s, %(vector)s::halfvec FROM i",
                {"ds": ds["id"], "key": f"k{n}", "split": split, "vector": f"[1,{n + 1}]"})
        conn.execute("ANALYZE image_embeddings")
        conn.execute("DELETE FROM curation_pending")
        graph_oid = conn.execute("SELECT 'iemb_hnsw_test'::regclass::oid AS o").fetchone()
        conn.execute(after[0].sql.encode())
        copied = conn.execute("SELECT e.split AS e, i.split AS i FROM image_embeddings e"
                              " JOIN images i ON i.id = e.image_id").fetchall()
        assert sorted((r["e"] or "") for r in copied) == sorted((s or "") for s in splits)
        assert all(r["e"] == r["i"] for r in copied)
        left = conn.execute("SELECT count(*) AS n FROM curation_pending").fetchone()
        assert left is not None and left["n"] == 0
        rebuilt = conn.execute(
            "SELECT x.indexrelid AS o, x.indisvalid AS valid, pg_get_indexdef(x.indexrelid)"
            " AS definition FROM pg_index x WHERE x.indexrelid = 'iemb_hnsw_test'::regclass"
        ).fetchone()
    assert rebuilt is not None and rebuilt["valid"] and rebuilt["definition"] == graph
    assert graph_oid is not None and (rebuilt["o"] != graph_oid["o"]) == (with_split == 8)
