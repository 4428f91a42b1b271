"""Vector search latency and recall@10 on synthetic clustered 1280-d embeddings.

Data: ``--clusters`` centres on the unit sphere; each point is ``centre + latent + noise``
(a 64-d gaussian latent through a fixed random basis, norm ~0.5, plus isotropic noise,
norm ~0.25), L2-normalised. Deterministic for a given ``--seed``. 1% of the rows carry
``split = 'rare'`` (the "1% filter"); the rest have no split.

Loading: rows are COPYed straight into ``images`` / ``image_embeddings`` (binary COPY for
the halfvec column, FK triggers off for the load), and the model's partial HNSW index is
built afterwards with the very statement ``catalog.register_model`` uses.

Measured for ``--queries`` held-out points drawn from the same clusters:

* the library call ``pixdex.app.search.search(SearchQuery(...))`` end to end (which path it
  took: exact or HNSW), without and with the 1% filter;
* the raw ANN SQL alone (``search_sql.vector_candidates(exact=False)``: SET LOCALs + query
  in one transaction) at ``--ef`` values, without and with the filter;
* the exact ranking (``vector_candidates(exact=True)``), which is also the ground truth
  (at >= ``--numpy-truth-rows`` rows the unfiltered ground truth is computed with numpy
  over the same float16-rounded vectors instead, and exact SQL is timed on a sample);
* the library's other round trips (capped count, planner estimate, hit rows).

    .venv/bin/python bench/bench_search.py --rows 100000
    .venv/bin/python bench/bench_search.py --rows 1000000 --max-build-minutes 50

Results: a markdown table on stdout and ``bench/results/search-<rows>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import numpy as np
import psycopg
from numpy.typing import NDArray
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.models import SearchQuery
from pixdex.storage import catalog, search_sql
from pixdex.storage.connection import close_pools, connect, database_url
from pixdex.storage.embedded import stop_server

SPEC = ModelSpec(name="bench-1280", dim=1280, encodes_text=False, tags=False, input_size=224)
WORKSPACE = "default"
LATENT_DIM = 64
LATENT_NORM = 0.5
NOISE_NORM = 0.25
CHUNK = 50_000
K = 10
RARE = "rare"
# Row i gets the id be7c0000-0000-4000-8000-<i as 12 hex digits>: cheap to rebuild anywhere.
ID_HI = 0xBE7C0000_00004000
ID_LO = 0x80000000_00000000
RESULTS = Path(__file__).resolve().parent / "results"

DConn = psycopg.Connection[dict[str, Any]]
T = TypeVar("T")


def row_id(index: int) -> UUID:
    return UUID(int=(ID_HI << 64) | ID_LO | index)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Corpus:
    """Deterministic clustered unit vectors, generated chunk by chunk."""

    def __init__(self, seed: int, clusters: int, dim: int) -> None:
        self.seed = seed
        self.dim = dim
        rng = np.random.default_rng([seed, 0])
        centres = rng.standard_normal((clusters, dim), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.basis = rng.standard_normal((LATENT_DIM, dim), dtype=np.float32) / np.sqrt(dim)

    def _points(self, rng: np.random.Generator, n: int) -> NDArray[np.float32]:
        return self.near(rng, rng.integers(0, len(self.centres), n))

    def near(self, rng: np.random.Generator, labels: NDArray[np.int64]) -> NDArray[np.float32]:
        """One point around each of the clusters ``labels`` names."""
        n = len(labels)
        latent = rng.standard_normal((n, LATENT_DIM), dtype=np.float32)
        latent *= np.float32(LATENT_NORM / np.sqrt(LATENT_DIM))
        noise = rng.standard_normal((n, self.dim), dtype=np.float32)
        noise *= np.float32(NOISE_NORM / np.sqrt(self.dim))
        points = self.centres[labels] + latent @ self.basis + noise
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        result: NDArray[np.float32] = points.astype(np.float32, copy=False)
        return result

    def chunk(self, index: int, rows: int) -> NDArray[np.float32]:
        """Rows ``[index * CHUNK, min((index + 1) * CHUNK, rows))``."""
        n = min(CHUNK, rows - index * CHUNK)
        return self._points(np.random.default_rng([self.seed, 1, index]), n)

    def queries(self, n: int) -> NDArray[np.float32]:
        return self._points(np.random.default_rng([self.seed, 2]), n)


# ------------------------------------------------------------------------------- loading


def _direct(settings: Settings, *, prepare: bool = True) -> DConn:
    conn: DConn = psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row)
    if not prepare:
        conn.prepare_threshold = None
    register_vector(conn)
    return conn


def _copy_dtype(dim: int, model_len: int) -> np.dtype[Any]:
    """One binary COPY tuple of image_embeddings (image_id, model, dataset_id, embedding)."""
    return np.dtype(
        [
            ("nfields", ">i2"),
            ("len_id", ">i4"),
            ("id_hi", ">u8"),
            ("id_lo", ">u8"),
            ("len_model", ">i4"),
            ("model", f"S{model_len}"),
            ("len_ds", ">i4"),
            ("ds", "V16"),
            ("len_vec", ">i4"),
            ("vec_dim", ">u2"),
            ("vec_unused", ">u2"),
            ("vec", ">f2", (dim,)),
        ]
    )


def load_rows(conn: DConn, corpus: Corpus, dataset_id: UUID, rows: int) -> float:
    """COPY ``rows`` images + embeddings; return seconds."""
    start = time.perf_counter()
    conn.execute(
        "INSERT INTO images (id, dataset_id, name, storage_key, status, split)"
        " SELECT ('be7c0000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, %(ds)s,"
        " 'img-' || g || '.jpg', 'bench://' || g, 'indexed',"
        " CASE WHEN g %% 100 = 7 THEN 'rare' END"
        " FROM generate_series(0, %(n)s - 1) AS g",
        {"ds": dataset_id, "n": rows},
    )
    log(f"images rows inserted in {time.perf_counter() - start:.1f}s")
    model = SPEC.name.encode()
    dtype = _copy_dtype(corpus.dim, len(model))
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    conn.execute("SET session_replication_role = replica")  # FK triggers off for the load
    with conn.cursor().copy(
        "COPY image_embeddings (image_id, model, dataset_id, embedding) FROM STDIN"
        " (FORMAT BINARY)"
    ) as copy:
        copy.write(header)
        for index in range((rows + CHUNK - 1) // CHUNK):
            vectors = corpus.chunk(index, rows)
            n = len(vectors)
            tuples = np.zeros(n, dtype=dtype)
            tuples["nfields"] = 4
            tuples["len_id"] = 16
            tuples["id_hi"] = ID_HI
            tuples["id_lo"] = ID_LO | np.arange(index * CHUNK, index * CHUNK + n, dtype=np.uint64)
            tuples["len_model"] = len(model)
            tuples["model"] = model
            tuples["len_ds"] = 16
            tuples["ds"] = np.frombuffer(dataset_id.bytes, dtype="V16")[0]
            tuples["len_vec"] = 4 + 2 * corpus.dim
            tuples["vec_dim"] = corpus.dim
            tuples["vec"] = vectors
            copy.write(tuples.tobytes())
            if index % 4 == 3:
                log(f"  embeddings copied: {index * CHUNK + n:,}")
        copy.write((-1).to_bytes(2, "big", signed=True))
    conn.execute("SET session_replication_role = DEFAULT")
    conn.execute("ANALYZE images")
    conn.execute("ANALYZE image_embeddings")
    return time.perf_counter() - start


def build_index(
    settings: Settings, dataset_id: UUID, max_minutes: float, maintenance_work_mem: str
) -> dict[str, Any]:
    """Build the HNSW index with register_model's statement, polling progress."""
    index = catalog.hnsw_index_name(SPEC.name)
    conn = _direct(settings)
    conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    conn.execute(f"DROP INDEX IF EXISTS {index}")
    pid = conn.info.backend_pid
    progress: list[dict[str, Any]] = []
    done = threading.Event()
    cancelled = threading.Event()
    start = time.perf_counter()

    def poll() -> None:
        watcher = _direct(settings)
        try:
            while not done.wait(20):
                row = watcher.execute(
                    "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total"
                    " FROM pg_stat_progress_create_index WHERE pid = %s",
                    (pid,),
                ).fetchone()
                elapsed = time.perf_counter() - start
                if row is not None:
                    entry = {"elapsed_s": round(elapsed, 1), **row}
                    progress.append(entry)
                    log(f"  index build: {entry}")
                if elapsed > max_minutes * 60 and not cancelled.is_set():
                    log(f"  index build over {max_minutes} min: cancelling")
                    cancelled.set()
                    conn.cancel_safe()
        finally:
            watcher.close()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(str(diag.message_primary)))
    error = None
    try:
        catalog.register_model(conn, SPEC, dataset_id)
    except psycopg.errors.QueryCanceled as exc:
        error = str(exc)
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    conn.close()
    result: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "finished": error is None,
        "maintenance_work_mem": maintenance_work_mem,
        "max_parallel_maintenance_workers": 2,
        "progress": progress,
        "notices": notices,
    }
    if error is not None:
        result["error"] = error
        last = next((p for p in reversed(progress) if p.get("blocks_total")), None)
        if last:
            fraction = last["blocks_done"] / last["blocks_total"]
            result["fraction_done"] = round(fraction, 4)
            if fraction > 0:
                result["projected_seconds"] = round(last["elapsed_s"] / fraction)
    return result


# --------------------------------------------------------------------------- measurement


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = fn()
    return 1000 * (time.perf_counter() - start), value


def _stats(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def _recall(found: Sequence[UUID], truth: Sequence[UUID]) -> float:
    return len(set(found[:K]) & set(truth[:K])) / min(K, len(truth)) if truth else 1.0


def numpy_truth(corpus: Corpus, rows: int, queries: NDArray[np.float32]) -> list[list[UUID]]:
    """Exact top-K by cosine over the float16-rounded vectors (what halfvec stores)."""
    q = queries.astype(np.float16).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    best_sim = np.full((len(q), K), -np.inf, dtype=np.float32)
    best_idx = np.zeros((len(q), K), dtype=np.int64)
    for index in range((rows + CHUNK - 1) // CHUNK):
        x = corpus.chunk(index, rows).astype(np.float16).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        sims = q @ x.T
        top = np.argpartition(-sims, K - 1, axis=1)[:, :K]
        merged_sim = np.concatenate([best_sim, np.take_along_axis(sims, top, 1)], axis=1)
        merged_idx = np.concatenate([best_idx, top + index * CHUNK], axis=1)
        order = np.argsort(-merged_sim, axis=1)[:, :K]
        best_sim = np.take_along_axis(merged_sim, order, 1)
        best_idx = np.take_along_axis(merged_idx, order, 1)
    return [[row_id(int(i)) for i in row] for row in best_idx]


class Runner:
    def __init__(
        self, settings: Settings, dataset: str, dataset_id: UUID, queries: NDArray[np.float32]
    ) -> None:
        self.settings = settings
        self.dataset = dataset
        self.dataset_id = dataset_id
        self.queries = queries

    def filters(self, split: str | None) -> search_sql.Filters:
        return search_sql.Filters(dataset_id=self.dataset_id, split=split)

    def raw(
        self, split: str | None, *, exact: bool, ef: int = 100, sample: int | None = None,
        conn: DConn | None = None,
    ) -> tuple[list[float], list[list[UUID]], list[int]]:
        """vector_candidates per query: latencies, ids, candidate counts.

        Runs on a dedicated autocommit connection with prepared statements off (unless
        ``conn`` is given), so every call is planned with its own SET LOCALs; see
        ``prepared_plan_check`` for why the library's pooled connections differ.
        """
        latencies: list[float] = []
        ids: list[list[UUID]] = []
        counts: list[int] = []
        queries = self.queries if sample is None else self.queries[:sample]
        filters = self.filters(split)
        own = conn is None
        c = conn if conn is not None else _direct(self.settings, prepare=False)
        try:
            for vector in queries:
                ms, ranked = _timed(partial(
                    search_sql.vector_candidates, c, model=SPEC.name, dim=SPEC.dim,
                    query=vector, filters=filters, k=K, exact=exact, ef_search=ef,
                ))
                latencies.append(ms)
                ids.append([r[0] for r in ranked])
                counts.append(len(ranked))
        finally:
            if own:
                c.close()
        return latencies, ids, counts

    def prepared_plan_check(
        self, exact_ms: list[float], exact_ids: list[list[UUID]], warm_calls: int = 8
    ) -> dict[str, Any]:
        """The library's pooled connections use psycopg's default auto-prepare
        (prepare_threshold=5). On such a connection: ``warm_calls`` HNSW calls, then exact
        calls for the queries of ``exact_ids`` (timed with prepare off). Does the exact call
        still get an exact plan (same ids, exact-scan latency)?"""
        conn = _direct(self.settings, prepare=True)
        try:
            self.raw(None, exact=False, sample=warm_calls, conn=conn)
            ms, ids, _ = self.raw(None, exact=True, sample=len(exact_ids), conn=conn)
        finally:
            conn.close()
        return {
            "hnsw_calls_first": warm_calls,
            "exact_on_prepared_connection": _stats(ms),
            "exact_on_unprepared_connection": _stats(exact_ms),
            "recall_of_prepared_exact_vs_true_exact": round(statistics.fmean(
                _recall(a, b) for a, b in zip(ids, exact_ids, strict=True)), 4),
        }

    def library(self, split: str | None) -> tuple[list[float], list[list[UUID]], list[bool]]:
        latencies: list[float] = []
        ids: list[list[UUID]] = []
        exact: list[bool] = []
        for vector in self.queries:
            query = SearchQuery(
                dataset=self.dataset, model=SPEC.name, like_vector=vector.tolist(), limit=K,
                split=split,
            )
            ms, page = _timed(partial(search, query, self.settings))
            latencies.append(ms)
            ids.append([hit.id for hit in page.results])
            exact.append(page.exact)
        return latencies, ids, exact

    def interleaved(self) -> dict[str, Any]:
        """Per query, back to back: the library call, vector_candidates on a pooled
        (auto-preparing) connection, and on an unprepared one, so all three see the same
        cache state."""
        times: dict[str, list[float]] = {"library": [], "pooled": [], "unprepared": []}
        filters = self.filters(None)
        direct = _direct(self.settings, prepare=False)

        def candidates(c: Any, v: NDArray[np.float32]) -> Any:
            return search_sql.vector_candidates(
                c, model=SPEC.name, dim=SPEC.dim, query=v, filters=filters, k=K,
                exact=False, ef_search=self.settings.hnsw_ef_search,
            )

        try:
            for vector in self.queries:
                query = SearchQuery(dataset=self.dataset, model=SPEC.name,
                                    like_vector=vector.tolist(), limit=K)
                times["library"].append(_timed(partial(search, query, self.settings))[0])
                with connect(self.settings) as pooled:
                    times["pooled"].append(_timed(partial(candidates, pooled, vector))[0])
                times["unprepared"].append(_timed(partial(candidates, direct, vector))[0])
        finally:
            direct.close()
        return {name: _stats(ms) for name, ms in times.items()}

    def components(self, split: str | None, sample: int) -> dict[str, dict[str, float]]:
        """The library's other round trips, timed alone."""
        filters = self.filters(split)
        cap = self.settings.exact_search_max_rows + 1
        out: dict[str, list[float]] = {"count_matching_capped": [], "estimate_matching": [],
                                       "hit_rows": [], "model_dim": []}
        some_ids = [row_id(i) for i in range(K)]
        with connect(self.settings) as conn:
            for _ in range(sample):
                out["count_matching_capped"].append(
                    _timed(partial(search_sql.count_matching, conn, filters, cap=cap))[0]
                )
                out["estimate_matching"].append(
                    _timed(partial(search_sql.estimate_matching, conn, filters))[0]
                )
                out["hit_rows"].append(_timed(partial(search_sql.hit_rows, conn, some_ids))[0])
                out["model_dim"].append(_timed(partial(catalog.model_dim, conn, SPEC.name))[0])
        return {name: _stats(ms) for name, ms in out.items()}

    def _statement(self, split: str | None) -> str:
        """A copy of vector_candidates' SQL (for EXPLAIN and the forced-HNSW variant)."""
        split_clause = " AND i.split = %(split)s" if split is not None else ""
        return (
            f"SELECT e.image_id AS id,"
            f" (e.embedding::halfvec({SPEC.dim})) <=> %(query)s::halfvec({SPEC.dim}) AS distance"
            f" FROM image_embeddings e JOIN images i ON i.id = e.image_id"
            f" WHERE e.dataset_id = %(dataset_id)s AND i.dataset_id = %(dataset_id)s"
            f" AND i.status = 'indexed'{split_clause} AND e.model = '{SPEC.name}'"
            f" ORDER BY distance LIMIT {K + 16}"
        )

    @staticmethod
    def _set_locals(conn: DConn, *, exact: bool, ef: int, force_hnsw: bool = False) -> None:
        if exact:
            conn.execute("SET LOCAL enable_indexscan = off")
        else:
            conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
            conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            conn.execute("SET LOCAL hnsw.max_scan_tuples = 20000")
        if force_hnsw:  # no sort allowed: only the HNSW scan can deliver the order
            conn.execute("SET LOCAL enable_sort = off")

    def forced_hnsw(self, split: str | None, ef: int) -> tuple[list[float], list[list[UUID]]]:
        latencies: list[float] = []
        ids: list[list[UUID]] = []
        conn = _direct(self.settings, prepare=False)
        try:
            for vector in self.queries:
                params = {"dataset_id": self.dataset_id, "split": split,
                          "query": HalfVector(vector)}
                start = time.perf_counter()
                with conn.transaction():
                    self._set_locals(conn, exact=False, ef=ef, force_hnsw=True)
                    rows = conn.execute(self._statement(split), params).fetchall()
                latencies.append(1000 * (time.perf_counter() - start))
                ranked = sorted((float(r["distance"]), str(r["id"])) for r in rows)
                ids.append([UUID(i) for _, i in ranked])
        finally:
            conn.close()
        return latencies, ids

    def explain(
        self, split: str | None, *, exact: bool, ef: int = 100, force_hnsw: bool = False
    ) -> str:
        """EXPLAIN ANALYZE of a copy of vector_candidates' statement, same SET LOCALs."""
        params = {"dataset_id": self.dataset_id, "split": split,
                  "query": HalfVector(self.queries[0])}
        conn = _direct(self.settings, prepare=False)
        try:
            with conn.transaction():
                self._set_locals(conn, exact=exact, ef=ef, force_hnsw=force_hnsw)
                rows = conn.execute(
                    "EXPLAIN (ANALYZE, BUFFERS) " + self._statement(split), params
                ).fetchall()
        finally:
            conn.close()
        text = "\n".join(str(next(iter(r.values()))) for r in rows)
        return re.sub(r"'\[[^']*\]'", "'[...]'", text)  # drop the 1280 query floats


def measure(args: argparse.Namespace, settings: Settings, dataset: str, dataset_id: UUID,
            corpus: Corpus) -> dict[str, Any]:
    queries = corpus.queries(args.queries)
    runner = Runner(settings, dataset, dataset_id, queries)
    # Warm-up: first touches load the index / heap pages into cache.
    warm = Runner(settings, dataset, dataset_id, corpus.queries(args.queries + 20)[-20:])
    warm.raw(None, exact=False)
    warm.library(None)
    warm.library(RARE)

    out: dict[str, Any] = {"cases": []}
    truth: dict[str | None, list[list[UUID]]] = {}

    log("ground truth: filtered (exact SQL, unprepared connection)")
    ms, ids, _ = runner.raw(RARE, exact=True)
    truth[RARE] = ids
    out["cases"].append({"case": "1% filter", "path": "raw SQL exact", "queries": len(ms),
                         **_stats(ms), "recall@10": 1.0})
    log("ground truth: unfiltered (numpy over the float16-rounded vectors)")
    truth[None] = numpy_truth(corpus, args.rows, queries)
    log(f"exact SQL unfiltered on {args.exact_sample} queries")
    ms, ids, _ = runner.raw(None, exact=True, sample=args.exact_sample)
    out["truth_agreement_sql_exact_vs_numpy"] = round(
        statistics.fmean(_recall(a, b) for a, b in zip(ids, truth[None], strict=False)), 4
    )
    out["cases"].append({"case": "no filter", "path": f"raw SQL exact (first {len(ms)})",
                         "queries": len(ms), **_stats(ms), "recall@10": 1.0})
    log("prepared-statement plan check")
    out["prepared_plan_check"] = runner.prepared_plan_check(ms, ids)

    for split, label in ((None, "no filter"), (RARE, "1% filter")):
        log(f"library search: {label}")
        ms, ids, exact = runner.library(split)
        paths = {"exact" if e else "hnsw" for e in exact}
        out["cases"].append({
            "case": label,
            "path": f"library search() [{'/'.join(sorted(paths))}, ef={settings.hnsw_ef_search}]",
            "queries": len(ms), **_stats(ms),
            "recall@10": round(statistics.fmean(
                _recall(a, b) for a, b in zip(ids, truth[split], strict=True)), 4),
            "exact_path_share": round(sum(exact) / len(exact), 3),
        })
        for ef in args.ef:
            log(f"raw HNSW: {label}, ef_search={ef}")
            ms, ids, counts = runner.raw(split, exact=False, ef=ef)
            out["cases"].append({
                "case": label, "path": f"raw SQL HNSW ef={ef}", "queries": len(ms),
                **_stats(ms),
                "recall@10": round(statistics.fmean(
                    _recall(a, b) for a, b in zip(ids, truth[split], strict=True)), 4),
                "short_results_share": round(sum(c < K for c in counts) / len(counts), 3),
            })
            if split is not None:
                log(f"forced HNSW (enable_sort=off): {label}, ef_search={ef}")
                ms, ids = runner.forced_hnsw(split, ef)
                out["cases"].append({
                    "case": label, "path": f"raw SQL HNSW forced (enable_sort=off) ef={ef}",
                    "queries": len(ms), **_stats(ms),
                    "recall@10": round(statistics.fmean(
                        _recall(a, b) for a, b in zip(ids, truth[split], strict=True)), 4),
                    "short_results_share": round(
                        sum(len(i) < K for i in ids) / len(ids), 3),
                })
    log("library components")
    out["components"] = {
        "no filter": runner.components(None, args.component_sample),
        "1% filter": runner.components(RARE, args.component_sample),
    }
    log("EXPLAIN ANALYZE")
    out["plans"] = {
        "no filter, hnsw": runner.explain(None, exact=False),
        "1% filter, hnsw": runner.explain(RARE, exact=False),
        "1% filter, exact": runner.explain(RARE, exact=True),
        "1% filter, forced hnsw": runner.explain(RARE, exact=False, force_hnsw=True),
        "no filter, exact": runner.explain(None, exact=True),
    }
    return out


def sizes(settings: Settings) -> dict[str, Any]:
    index = catalog.hnsw_index_name(SPEC.name)
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT pg_relation_size(to_regclass(%s)) AS hnsw_index_bytes,"
            " pg_table_size('image_embeddings') AS embeddings_table_bytes,"
            " pg_table_size('images') AS images_table_bytes,"
            " pg_indexes_size('images') AS images_indexes_bytes,"
            " current_setting('shared_buffers') AS shared_buffers,"
            " current_setting('server_version') AS server_version,"
            " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector",
            (index,),
        ).fetchone()
    assert row is not None
    return dict(row)


def table(result: dict[str, Any]) -> str:
    lines = [
        f"rows={result['rows']:,}, queries={result['queries']}, dim={SPEC.dim}, "
        f"cpus={result['machine']['cpus']}",
        "",
        "| case | path | p50 ms | p95 ms | mean ms | recall@10 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case in result["measure"].get("cases", []):
        lines.append(
            f"| {case['case']} | {case['path']} | {case['p50_ms']} | {case['p95_ms']} "
            f"| {case['mean_ms']} | {case['recall@10']} |"
        )
    build = result["build"]
    lines += [
        "",
        f"load: {result['load_seconds']} s; HNSW build: {build.get('seconds')} s "
        f"(finished={build.get('finished')}); sizes: {json.dumps(result['sizes'])}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--home", type=Path, default=None,
                        help="PIXDEX_HOME for the run (default /tmp/pixdex-bench-search-ROWS)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database (a rerun with the same --home reuses it)")
    parser.add_argument("--max-build-minutes", type=float, default=50.0)
    parser.add_argument("--maintenance-work-mem", default="8GB")
    parser.add_argument("--exact-sample", type=int, default=20,
                        help="queries timed with exact unfiltered SQL (slow at 1M)")
    parser.add_argument("--component-sample", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only-interleaved", action="store_true",
                        help="on a kept database: only the interleaved library/raw comparison,"
                        " merged into the existing results file")
    args = parser.parse_args()

    home = (args.home or Path(f"/tmp/pixdex-bench-search-{args.rows}")).resolve()
    created = not home.exists()
    settings = Settings(home=home)
    dataset = f"bench-{args.rows}"
    corpus = Corpus(args.seed, args.clusters, SPEC.dim)
    result: dict[str, Any] = {
        "rows": args.rows, "queries": args.queries, "clusters": args.clusters,
        "seed": args.seed, "dim": SPEC.dim, "rare_fraction": 0.01,
        "settings": {"hnsw_ef_search": settings.hnsw_ef_search,
                     "exact_search_max_rows": settings.exact_search_max_rows},
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "python": platform.python_version()},
        "measure": {},
    }
    try:
        with connect(settings) as conn:
            ds = catalog.ensure_dataset(conn, WORKSPACE, dataset)
            row = conn.execute(
                "SELECT count(*) AS n FROM image_embeddings WHERE dataset_id = %s", (ds.id,)
            ).fetchone()
            existing = int(str(row["n"])) if row else 0
            has_index = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL AS ok",
                (catalog.hnsw_index_name(SPEC.name),),
            ).fetchone()
        if args.only_interleaved:
            out = args.out or RESULTS / f"search-{args.rows}.json"
            saved = json.loads(out.read_text())
            runner = Runner(settings, dataset, ds.id, corpus.queries(args.queries))
            runner.interleaved()  # warm-up pass
            saved["measure"]["interleaved_no_filter"] = runner.interleaved()
            out.write_text(json.dumps(saved, indent=2, default=str) + "\n")
            print(json.dumps(saved["measure"]["interleaved_no_filter"], indent=2))
            return
        if existing == args.rows and has_index and has_index["ok"]:
            log(f"reusing {existing:,} rows and the HNSW index in {home}")
            record = home / "build.json"  # figures of the run that loaded and built
            previous = json.loads(record.read_text()) if record.exists() else {}
            result["load_seconds"] = previous.get("load_seconds")
            result["build"] = {**previous.get("build", {}), "reused": True, "finished": True}
        else:
            if existing:
                raise SystemExit(f"{home} holds {existing} rows of {dataset}; use another --home")
            conn2 = _direct(settings)
            catalog.register_model(conn2, SPEC, ds.id)  # creates the (empty) index ...
            conn2.execute(f"DROP INDEX {catalog.hnsw_index_name(SPEC.name)}")  # ... dropped
            log(f"loading {args.rows:,} rows into {home}")
            result["load_seconds"] = round(load_rows(conn2, corpus, ds.id, args.rows), 1)
            conn2.close()
            log(f"loaded in {result['load_seconds']} s; building HNSW index")
            result["build"] = build_index(
                settings, ds.id, args.max_build_minutes, args.maintenance_work_mem
            )
            log(f"build: {result['build']['seconds']} s, finished={result['build']['finished']}")
            (home / "build.json").write_text(json.dumps(
                {"load_seconds": result["load_seconds"], "build": result["build"]}, default=str
            ))
        result["sizes"] = sizes(settings)
        if result["build"]["finished"]:
            result["measure"] = measure(args, settings, dataset, ds.id, corpus)
        out = args.out or RESULTS / f"search-{args.rows}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(table(result))
        print(f"\nwritten: {out}")
    finally:
        close_pools()
        if not args.keep:
            stop_server(settings.pgdata_dir)
            if created:
                shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
