"""The SQL of dataset curation: the kNN graph (``image_neighbours``), its upkeep, and what
duplicates, leakage, outliers and label doubts read from it.

Upkeep is driven by ``curation_pending`` (filled by triggers, migration 0009): an image
with a new vector, or one whose neighbour lost its vector, waits there until
:func:`refresh_neighbours` runs one kNN query for it (batched: one statement for many
images, ``CROSS JOIN LATERAL`` over the model's HNSW index, or an exact scan on a dataset
small enough), writes its k nearest, offers itself to those neighbours' lists (kept at k)
and leaves the queue. Cost per added image: one kNN query plus 2k row writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from pgvector import HalfVector
from psycopg import sql

from pixdex.storage.connection import Conn


@dataclass(frozen=True)
class Pair:
    a: UUID
    b: UUID
    score: float


@dataclass(frozen=True)
class Member:
    id: UUID
    name: str
    split: str | None
    width: int | None
    height: int | None
    byte_size: int | None
    blurry: float


def pending_ids(conn: Conn, dataset_id: UUID, model: str, limit: int | None) -> list[UUID]:
    """Queued images of the dataset (``limit`` None: all of them)."""
    rows = conn.execute(
        "SELECT image_id FROM curation_pending WHERE dataset_id = %s AND model = %s LIMIT %s",
        (dataset_id, model, limit),
    ).fetchall()
    return [UUID(str(r["image_id"])) for r in rows]


def pending_count(conn: Conn, dataset_id: UUID, model: str) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM curation_pending WHERE dataset_id = %s AND model = %s",
        (dataset_id, model),
    ).fetchone()
    assert row is not None
    return int(str(row["n"]))


def embedded_count(conn: Conn, dataset_id: UUID, model: str, cap: int) -> int:
    """The dataset's vectors of ``model``, counted up to ``cap + 1`` at most: whether the
    dataset is small enough for an exact scan costs the same at 1M images as at 1k."""
    row = conn.execute(
        "SELECT count(*) AS n FROM (SELECT 1 FROM image_embeddings"
        " WHERE dataset_id = %s AND model = %s LIMIT %s) AS capped",
        (dataset_id, model, cap + 1),
    ).fetchone()
    assert row is not None
    return int(str(row["n"]))


def _knn_settings(conn: Conn, *, exact: bool, ef_search: int) -> None:
    """Every planner knob the kNN statement depends on, set for this transaction only
    (the pool's connections are shared with searches, which set their own)."""
    ann, fallback = ("off", "on") if exact else ("on", "off")
    knobs = (
        ("enable_indexscan", ann), ("enable_seqscan", "off"), ("enable_bitmapscan", fallback),
        ("enable_sort", fallback), ("hnsw.ef_search", str(int(ef_search))),
        ("hnsw.iterative_scan", "relaxed_order"), ("hnsw.max_scan_tuples", "20000"),
    )
    calls = sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
        for name, value in knobs
    )
    conn.execute(sql.SQL("SELECT {}").format(calls))


def _knn_statement(model: str, dim: int, k: int) -> sql.Composed:
    return sql.SQL(
        "SELECT q.image_id, n.image_id AS neighbour_id,"
        " 1 - (n.embedding::halfvec({dim}) <=> q.embedding::halfvec({dim})) AS score"
        " FROM image_embeddings q CROSS JOIN LATERAL ("
        "  SELECT e.image_id, e.embedding FROM image_embeddings e"
        "  WHERE e.model = {model} AND e.dataset_id = %(dataset_id)s"
        "  AND e.image_id <> q.image_id"
        "  ORDER BY e.embedding::halfvec({dim}) <=> q.embedding::halfvec({dim})"
        "  LIMIT {k}) n"
        " WHERE q.model = {model} AND q.image_id = ANY(%(ids)s)"
    ).format(dim=sql.Literal(dim), model=sql.Literal(model), k=sql.Literal(k))


def knn(
    conn: Conn, model: str, dim: int, dataset_id: UUID, ids: Sequence[UUID], k: int, *,
    exact: bool, ef_search: int = 64,
) -> list[tuple[UUID, UUID, float]]:
    """``(image, neighbour, cosine)`` for each image's ``k`` nearest in its dataset."""
    with conn.transaction():
        _knn_settings(conn, exact=exact, ef_search=max(ef_search, k))
        rows = conn.execute(_knn_statement(model, dim, k),
                            {"dataset_id": dataset_id, "ids": list(ids)}).fetchall()
    return [
        (UUID(str(r["image_id"])), UUID(str(r["neighbour_id"])), float(str(r["score"])))
        for r in rows
    ]


def knn_plan(conn: Conn, model: str, dim: int, dataset_id: UUID, ids: Sequence[UUID], k: int,
             *, exact: bool) -> str:
    """The planner's plan for :func:`knn` (benchmarks record which index it used)."""
    with conn.transaction():
        _knn_settings(conn, exact=exact, ef_search=40)
        rows = conn.execute(sql.SQL("EXPLAIN ") + _knn_statement(model, dim, k),
                            {"dataset_id": dataset_id, "ids": list(ids)}).fetchall()
    return "\n".join(str(next(iter(r.values()))) for r in rows)


def vectors(conn: Conn, dataset_id: UUID, model: str) -> tuple[list[UUID], NDArray[np.float32]]:
    """All of a dataset's vectors of ``model`` (exact recompute of a small dataset)."""
    rows = conn.execute(
        "SELECT image_id, embedding FROM image_embeddings WHERE dataset_id = %s AND model = %s",
        (dataset_id, model),
    ).fetchall()
    ids = [UUID(str(r["image_id"])) for r in rows]
    if not rows:
        return ids, np.zeros((0, 0), dtype=np.float32)
    values = [r["embedding"] for r in rows]
    matrix = np.stack([v.to_numpy() for v in values if isinstance(v, HalfVector)])
    return ids, matrix.astype(np.float32)


_REPLACE_OWN = """
DELETE FROM image_neighbours WHERE model = %(model)s AND image_id = ANY(%(ids)s)
"""
# A re-embedded image's incoming edges carry its old vector's scores: drop them and queue
# their owners (a brand-new image has none, so adding costs nothing here).
_REQUEUE_INCOMING = """
WITH dropped AS (
    DELETE FROM image_neighbours WHERE model = %(model)s AND neighbour_id = ANY(%(changed)s)
    AND NOT image_id = ANY(%(ids)s) RETURNING image_id, dataset_id)
INSERT INTO curation_pending (image_id, model, dataset_id, reason)
SELECT DISTINCT image_id, %(model)s, dataset_id, 'neighbour' FROM dropped
ON CONFLICT (image_id, model) DO NOTHING
"""
# Each new edge is offered the other way round; then every touched list is cut back to k.
_OFFER_REVERSE = """
INSERT INTO image_neighbours (image_id, model, neighbour_id, dataset_id, score)
SELECT neighbour_id, model, image_id, dataset_id, score FROM image_neighbours
WHERE model = %(model)s AND image_id = ANY(%(ids)s)
ON CONFLICT (image_id, model, neighbour_id) DO UPDATE SET score = EXCLUDED.score
"""
_TRIM = """
DELETE FROM image_neighbours d USING (
    SELECT image_id, neighbour_id,
           row_number() OVER (PARTITION BY image_id ORDER BY score DESC, neighbour_id) AS rank
    FROM image_neighbours WHERE model = %(model)s AND image_id = ANY(%(touched)s)) r
WHERE d.model = %(model)s AND d.image_id = r.image_id AND d.neighbour_id = r.neighbour_id
AND r.rank > %(k)s
"""


def write_neighbours(
    conn: Conn, model: str, dataset_id: UUID, ids: Sequence[UUID],
    edges: Sequence[tuple[UUID, UUID, float]], k: int, *, reverse: bool = True,
) -> None:
    """Replace the lists of ``ids`` with ``edges``, offer them to the neighbours' lists
    (``reverse``; a full recompute gives every image its own list and skips this) and
    take ``ids`` off the queue, in one transaction."""
    params: dict[str, Any] = {"model": model, "ids": list(ids), "k": k}
    with conn.transaction(), conn.cursor() as cur:
        changed = cur.execute(
            "DELETE FROM curation_pending WHERE model = %(model)s AND image_id = ANY(%(ids)s)"
            " RETURNING image_id, reason", params,
        ).fetchall()
        params["changed"] = [r["image_id"] for r in changed if r["reason"] == "embedded"]
        cur.execute(_REPLACE_OWN, params)
        if params["changed"] and reverse:
            cur.execute(_REQUEUE_INCOMING, params)
        if edges:
            with cur.copy(
                "COPY image_neighbours (image_id, model, neighbour_id, dataset_id, score)"
                " FROM STDIN"
            ) as copy:
                for image, neighbour, score in edges:
                    copy.write_row((image, model, neighbour, dataset_id, score))
        if reverse and edges:
            cur.execute(_OFFER_REVERSE, params)
            params["touched"] = list({neighbour for _, neighbour, _ in edges})
            cur.execute(_TRIM, params)


def reset(conn: Conn, dataset_id: UUID, model: str) -> int:
    """Forget the dataset's graph and queue every vector again (after a model change)."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM image_neighbours WHERE dataset_id = %s AND model = %s",
            (dataset_id, model),
        )
        conn.execute(
            "DELETE FROM curation_pending WHERE dataset_id = %s AND model = %s",
            (dataset_id, model),
        )
        cur = conn.execute(
            "INSERT INTO curation_pending (image_id, model, dataset_id, reason)"
            " SELECT image_id, model, dataset_id, 'embedded' FROM image_embeddings"
            " WHERE dataset_id = %s AND model = %s",
            (dataset_id, model),
        )
        return cur.rowcount


def pairs_above(conn: Conn, dataset_id: UUID, model: str, threshold: float) -> list[Pair]:
    """Each unordered pair of indexed images with cosine >= ``threshold``, once."""
    rows = conn.execute(
        "SELECT DISTINCT least(n.image_id, n.neighbour_id) AS a,"
        " greatest(n.image_id, n.neighbour_id) AS b, n.score"
        " FROM image_neighbours n"
        " WHERE n.dataset_id = %s AND n.model = %s AND n.score >= %s",
        (dataset_id, model, threshold),
    ).fetchall()
    return [Pair(UUID(str(r["a"])), UUID(str(r["b"])), float(str(r["score"]))) for r in rows]


def members(conn: Conn, ids: Sequence[UUID]) -> dict[UUID, Member]:
    rows = conn.execute(
        "SELECT id, name, split, width, height, byte_size,"
        " coalesce((auto_tags -> 'attributes' ->> 'blurry')::float8, 0) AS blurry"
        " FROM images WHERE id = ANY(%s) AND status = 'indexed'",
        (list(ids),),
    ).fetchall()
    return {
        UUID(str(r["id"])): Member(
            UUID(str(r["id"])), str(r["name"]), None if r["split"] is None else str(r["split"]),
            _int(r["width"]), _int(r["height"]), _int(r["byte_size"]), float(str(r["blurry"])),
        )
        for r in rows
    }


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def has_splits(conn: Conn, dataset_id: UUID) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM images WHERE dataset_id = %s AND split IS NOT NULL) AS x",
        (dataset_id,),
    ).fetchone()
    return row is not None and bool(row["x"])


def outliers(
    conn: Conn, dataset_id: UUID, model: str, *, offset: int, limit: int
) -> tuple[int, list[tuple[UUID, float, int]]]:
    """Images by mean cosine distance to their listed neighbours, farthest first."""
    rows = conn.execute(
        "SELECT image_id, avg(1 - score) AS distance, count(*) AS k, count(*) OVER () AS total"
        " FROM image_neighbours WHERE dataset_id = %s AND model = %s GROUP BY image_id"
        " ORDER BY distance DESC, image_id OFFSET %s LIMIT %s",
        (dataset_id, model, offset, limit),
    ).fetchall()
    total = int(str(rows[0]["total"])) if rows else _listed(conn, dataset_id, model)
    return total, [
        (UUID(str(r["image_id"])), float(str(r["distance"])), int(str(r["k"]))) for r in rows
    ]


def _listed(conn: Conn, dataset_id: UUID, model: str) -> int:
    row = conn.execute(
        "SELECT count(DISTINCT image_id) AS n FROM image_neighbours"
        " WHERE dataset_id = %s AND model = %s",
        (dataset_id, model),
    ).fetchone()
    assert row is not None
    return int(str(row["n"]))


def class_votes(conn: Conn, dataset_id: UUID, model: str) -> list[dict[str, Any]]:
    """Per annotated image: its classes and, per class, how many annotated neighbours carry
    it (``votes``), with the number of annotated neighbours (``voters``)."""
    return conn.execute(
        "SELECT i.id, i.name, i.annotation_classes AS classes, v.voters, v.votes"
        " FROM images i CROSS JOIN LATERAL ("
        "  SELECT count(DISTINCT n.neighbour_id) AS voters,"
        "   (SELECT jsonb_object_agg(c, cnt) FROM (SELECT c, count(*) AS cnt FROM"
        "     image_neighbours n2 JOIN images j2 ON j2.id = n2.neighbour_id,"
        "     jsonb_object_keys(j2.annotation_classes) AS c"
        "     WHERE n2.image_id = i.id AND n2.model = %(model)s GROUP BY c) t) AS votes"
        "  FROM image_neighbours n JOIN images j ON j.id = n.neighbour_id"
        "  WHERE n.image_id = i.id AND n.model = %(model)s AND j.annotation_classes <> '{}'"
        " ) v"
        " WHERE i.dataset_id = %(dataset_id)s AND i.status = 'indexed'"
        " AND i.annotation_classes <> '{}' AND v.voters > 0",
        {"dataset_id": dataset_id, "model": model},
    ).fetchall()


def tagged_annotations(conn: Conn, dataset_id: UUID, min_score: float) -> list[dict[str, Any]]:
    """Annotated images with an object auto-tag scoring at least ``min_score``."""
    return conn.execute(
        "SELECT id, name, annotation_classes AS classes, auto_tags -> 'objects' AS objects"
        " FROM images WHERE dataset_id = %s AND status = 'indexed'"
        " AND annotation_classes <> '{}' AND EXISTS (SELECT 1 FROM"
        " jsonb_each_text(auto_tags -> 'objects') o WHERE o.value::float8 >= %s)",
        (dataset_id, min_score),
    ).fetchall()


# --- the ingest duplicate gate ------------------------------------------------------------


def get_gate(conn: Conn, dataset_id: UUID) -> tuple[str, int] | None:
    row = conn.execute(
        "SELECT on_duplicate, level FROM dataset_duplicate_gate WHERE dataset_id = %s",
        (dataset_id,),
    ).fetchone()
    return None if row is None else (str(row["on_duplicate"]), int(str(row["level"])))


def set_gate(conn: Conn, dataset_id: UUID, on_duplicate: str, level: int) -> None:
    conn.execute(
        "INSERT INTO dataset_duplicate_gate (dataset_id, on_duplicate, level)"
        " VALUES (%s, %s, %s) ON CONFLICT (dataset_id) DO UPDATE"
        " SET on_duplicate = EXCLUDED.on_duplicate, level = EXCLUDED.level",
        (dataset_id, on_duplicate, level),
    )


def nearest(
    conn: Conn, model: str, dim: int, dataset_id: UUID, vector: NDArray[np.float32], *,
    exact: bool,
) -> tuple[UUID, float] | None:
    """The dataset's indexed image nearest to ``vector`` and its cosine."""
    statement = sql.SQL(
        "SELECT e.image_id, 1 - (e.embedding::halfvec({dim}) <=> %(q)s::halfvec({dim})) AS s"
        " FROM image_embeddings e WHERE e.model = {model} AND e.dataset_id = %(dataset_id)s"
        " ORDER BY e.embedding::halfvec({dim}) <=> %(q)s::halfvec({dim}) LIMIT 1"
    ).format(dim=sql.Literal(dim), model=sql.Literal(model))
    with conn.transaction():
        _knn_settings(conn, exact=exact, ef_search=40)
        params = {"q": HalfVector(vector), "dataset_id": dataset_id}
        row = conn.execute(statement, params).fetchone()
    return None if row is None else (UUID(str(row["image_id"])), float(str(row["s"])))


def record_links(conn: Conn, links: Sequence[tuple[UUID, UUID, int, float]]) -> None:
    """``(image, duplicate_of, level, score)`` relations of images indexed with ``link``."""
    if links:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO duplicate_links (image_id, duplicate_of, level, score)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (image_id) DO UPDATE SET"
                " duplicate_of = EXCLUDED.duplicate_of, level = EXCLUDED.level,"
                " score = EXCLUDED.score",
                list(links),
            )


def links_of(conn: Conn, ids: Sequence[UUID]) -> dict[UUID, tuple[UUID, float]]:
    rows = conn.execute(
        "SELECT image_id, duplicate_of, score FROM duplicate_links WHERE image_id = ANY(%s)",
        (list(ids),),
    ).fetchall()
    return {
        UUID(str(r["image_id"])): (UUID(str(r["duplicate_of"])), float(str(r["score"])))
        for r in rows
    }
