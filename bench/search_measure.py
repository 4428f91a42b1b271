"""Measurement half of ``bench_search.py``: the library call, the raw SQL paths and the
library's other round trips, against exact (SQL or numpy) ground truth."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from pgvector import HalfVector
from search_data import CHUNK, RARE, SPEC, Corpus, DConn, K, log, open_direct, row_id

from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.models import SearchQuery
from pixdex.storage import catalog, search_counts, search_rows, search_sql
from pixdex.storage.connection import connect

T = TypeVar("T")


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
        c = conn if conn is not None else open_direct(self.settings, prepare=False)
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
        conn = open_direct(self.settings, prepare=True)
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
        direct = open_direct(self.settings, prepare=False)

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
                    _timed(partial(search_counts.count_matching, conn, filters, cap=cap))[0]
                )
                out["estimate_matching"].append(
                    _timed(partial(search_counts.estimate_matching, conn, filters))[0]
                )
                out["hit_rows"].append(_timed(partial(search_rows.hit_rows, conn, some_ids))[0])
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
        conn = open_direct(self.settings, prepare=False)
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
        conn = open_direct(self.settings, prepare=False)
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
