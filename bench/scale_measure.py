"""Measurement half of ``bench_scale.py``: the four cases through the library, and raw
SQL alternatives (the levers), against numpy ground truth."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
import scale_data as sd
from numpy.typing import NDArray
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.models import SearchQuery
from pixdex.storage import catalog, search_sql
from pixdex.storage.connection import connect, database_url
from pixdex.storage.dataset_indexes import dataset_index_name

K = 10
CASES: tuple[tuple[str, str, str | None], ...] = (
    ("largest dataset, no filter", "big", None),
    ("largest dataset, 1% filter", "big", sd.P1),
    ("largest dataset, 0.1% filter", "big", sd.P01),
    ("1k-row dataset", "small-1k", None),
)


def _stats(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(p95, 2),
            "mean_ms": round(statistics.fmean(ordered), 2)}


def recall(found: Sequence[Sequence[UUID]], truth: Sequence[Sequence[UUID]]) -> float:
    return round(statistics.fmean(
        len(set(f[:K]) & set(t[:K])) / min(K, len(t)) for f, t in zip(found, truth, strict=True)
    ), 4)


QueryPath = Callable[[NDArray[np.float32]], list[UUID]]
# Warm-up queries per path before timing: a server that has been answering searches has
# the dataset's graph and hot rows cached; one just restarted has not.
WARM_UP = 40
# The slow iterative-scan paths are timed on the first this many queries only.
ITERATIVE_QUERIES = 50


def _interleaved(paths: dict[str, tuple[QueryPath, int]], queries: NDArray[np.float32],
                 warm: NDArray[np.float32], truth: list[list[UUID]], seed: int
                 ) -> dict[str, dict[str, Any]]:
    """Every path on the same queries, in a shuffled order per query (no path inherits the
    cache another one warmed for that query, none always goes first); ``paths`` maps a
    name to (the path, how many of the queries it runs)."""
    for fn, _ in paths.values():
        for q in warm:
            fn(q)
    rng = np.random.default_rng(seed)
    names = list(paths)
    ms: dict[str, list[float]] = {name: [] for name in names}
    ids: dict[str, list[list[UUID]]] = {name: [] for name in names}
    loads: list[float] = []
    for i, q in enumerate(queries):
        loads.append(os.getloadavg()[0])
        for j in rng.permutation(len(names)):
            name = names[int(j)]
            fn, count = paths[name]
            if i >= count:
                continue
            start = time.perf_counter()
            found = fn(q)
            ms[name].append(1000 * (time.perf_counter() - start))
            ids[name].append(found)
    return {
        name: {**_stats(ms[name]), "recall@10": recall(ids[name], truth[: len(ids[name])]),
               "queries": len(ms[name]), "load_average_1m": round(statistics.fmean(loads), 2)}
        for name in names
    }


class Raw:
    """The ranking statement alone, on a dedicated autocommit connection."""

    def __init__(self, settings: Settings, spec: ModelSpec, dataset_id: UUID,
                 split: str | None) -> None:
        self.spec = spec
        self.filters = search_sql.Filters(dataset_id=dataset_id, split=split)
        self.conn: psycopg.Connection[dict[str, Any]] = psycopg.connect(
            database_url(settings), autocommit=True, row_factory=dict_row,
            prepare_threshold=None)
        register_vector(self.conn)
        self.dataset_id = dataset_id
        self.split = split

    def close(self) -> None:
        self.conn.close()

    def candidates(self, exact: bool, ef: int) -> Callable[[NDArray[np.float32]], list[UUID]]:
        def fn(q: NDArray[np.float32]) -> list[UUID]:
            ranked = search_sql.vector_candidates(
                self.conn, model=self.spec.name, dim=self.spec.dim, query=q,
                filters=self.filters, k=K, exact=exact, ef_search=ef)
            return [i for i, _ in ranked]
        return fn

    def iterative(self, mode: str, ef: int, max_tuples: int
                  ) -> Callable[[NDArray[np.float32]], list[UUID]]:
        """HNSW with a filter and pgvector's iterative scan, re-sorted by exact distance."""
        split = " AND i.split = %(split)s" if self.split else ""
        statement = (
            f"SELECT e.image_id AS id, (e.embedding::halfvec({self.spec.dim})) <=>"
            f" %(q)s::halfvec({self.spec.dim}) AS d FROM image_embeddings e"
            f" JOIN images i ON i.id = e.image_id WHERE e.model = '{self.spec.name}'"
            f" AND e.dataset_id = %(ds)s AND i.status = 'indexed'{split}"
            f" ORDER BY d LIMIT {K + 16}"
        )

        def fn(q: NDArray[np.float32]) -> list[UUID]:
            with self.conn.transaction():
                self.conn.execute(
                    "SELECT set_config('hnsw.iterative_scan', %s, true),"
                    " set_config('hnsw.ef_search', %s, true),"
                    " set_config('hnsw.max_scan_tuples', %s, true),"
                    " set_config('enable_sort', 'off', true),"
                    " set_config('enable_bitmapscan', 'off', true),"
                    " set_config('enable_seqscan', 'off', true)",
                    (mode, str(ef), str(max_tuples)))
                rows = self.conn.execute(statement, {"q": HalfVector(q), "ds": self.dataset_id,
                                                     "split": self.split}).fetchall()
            return [UUID(str(r["id"])) for r in sorted(rows, key=lambda r: float(r["d"]))]
        return fn


def library(settings: Settings, spec: ModelSpec, dataset: str, split: str | None,
            paths: list[bool]) -> Callable[[NDArray[np.float32]], list[UUID]]:
    def fn(q: NDArray[np.float32]) -> list[UUID]:
        page = search(SearchQuery(dataset=dataset, model=spec.name, like_vector=q.tolist(),
                                  limit=K, split=split), settings)
        paths.append(page.exact)
        return [hit.id for hit in page.results]
    return fn


def measure(args: argparse.Namespace, settings: Settings, spec: ModelSpec, corpus: sd.Corpus,
            layout: list[sd.DatasetSpec], log: Callable[[str], None]) -> dict[str, Any]:
    by_name = {ds.name: ds for ds in layout}
    with connect(settings) as conn:
        ids = {name: catalog.get_dataset(conn, "default", name).id
               for name in ("big", "small-1k")}
        own = {name: bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok",
                                       (dataset_index_name(spec.name, ids[name]),)
                                       ).fetchone()["ok"])  # type: ignore[index]
               for name in ids}
    out: dict[str, Any] = {"own_index": own, "cases": []}
    for label, name, split in CASES:
        ds = by_name[name]
        queries = corpus.queries(ds, args.queries)
        warm = corpus.queries(ds, WARM_UP, warm_up=True)
        log(f"truth: {label}")
        truth = sd.exact_top(corpus, ds, queries, split, K)
        rows = int(sd.split_mask(ds.rows, split).sum())
        exact_choices: list[bool] = []
        every = len(queries)
        paths: dict[str, tuple[QueryPath, int]] = {
            "library search()": (library(settings, spec, name, split, exact_choices), every)}
        raw = Raw(settings, spec, ids[name], split)
        try:
            if rows <= 20_000:
                paths["raw SQL exact"] = (raw.candidates(True, 40), every)
            if own[name] and split is None:
                for ef in args.ef:
                    paths[f"raw SQL HNSW (own index) ef={ef}"] = (raw.candidates(False, ef), every)
            if own[name] and split is not None:  # the filter inside the own index
                for mode in ("strict_order", "relaxed_order"):
                    paths[f"raw SQL HNSW iterative {mode} ef=100"] = (
                        raw.iterative(mode, 100, 50_000), ITERATIVE_QUERIES)
            log(f"{label}: {', '.join(paths)} (interleaved)")
            results = _interleaved(paths, queries, warm, truth, args.seed)
        finally:
            raw.close()
        results["library search()"]["exact_path_share"] = round(
            sum(exact_choices) / len(exact_choices), 3)
        entries = [{"path": path, **result} for path, result in results.items()]
        out["cases"].append({"case": label, "rows_matching": rows, "results": entries})
        log(f"  {label}: {entries}")
    return out


def table(result: dict[str, Any]) -> str:
    lines = [f"rows={result['rows']:,}, dim={result['dim']}, queries={result['queries']}",
             "", "| case | rows | path | p50 ms | p95 ms | recall@10 | load |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for case in result.get("measure", {}).get("cases", []):
        for r in case["results"]:
            lines.append(f"| {case['case']} | {case['rows_matching']:,} | {r['path']} "
                         f"| {r['p50_ms']} | {r['p95_ms']} | {r['recall@10']} "
                         f"| {r['load_average_1m']} |")
    for engine, peer in result.get("peers", {}).items():
        for case in peer.get("cases", []):
            lines.append(f"| {case['case']} | | {engine} | {case['p50_ms']} | "
                         f"{case['p95_ms']} | {case['recall@10']} | "
                         f"{case.get('load_average_1m')} |")
    lines += ["", f"load {result.get('load_seconds')} s; build {result.get('build')}",
              f"sizes {result.get('sizes')}", f"memory {result.get('memory')}"]
    return "\n".join(lines)
