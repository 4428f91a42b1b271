"""One peer engine on the ``bench_scale.py`` corpus, in its own process.

    .venv/bin/python bench/scale_peers.py faiss|chroma|lancedb --rows 200000 --dim 768

Same vectors, queries, cases and ground truth as the pixdex run (``scale_data``); prints
one JSON line: build seconds and per case p50/p95 ms and recall@10. Every engine holds all
datasets in one collection and filters by dataset (and split), as pixdex's table does;
``chroma-per-dataset`` / ``lancedb-per-dataset`` keep a collection per dataset instead
(pixdex's counterpart: its per-dataset HNSW index), filtering only by split.

* FAISS (the in-memory lower bound): ``IndexHNSWFlat`` (M 16, efConstruction 64, inner
  product on unit vectors) with an ``IDSelectorBitmap`` for the dataset; filters at or
  under 20,000 rows: brute force over the filtered rows' vectors (gathered per query).
* Chroma: a persistent collection (cosine HNSW, M 16, ``ef_search`` 100), ``where``
  filters.
* LanceDB: IVF_PQ index (cosine, 256 partitions, 96 sub-vectors), BITMAP scalar indexes
  on dataset and split, prefiltered queries with ``nprobes`` 20 and ``refine_factor`` 10;
  filters at or under 20,000 rows ranked exactly (``bypass_vector_index``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scale_data as sd
from numpy.typing import NDArray

K = 10
# Filters this selective are ranked exactly by every engine (pixdex's exact_search_max_rows
# is 5,000; FAISS and LanceDB brute-force their filtered rows up to this many).
EXACT_MAX_ROWS = 20_000
CASES = (("largest dataset, no filter", "big", None),
         ("largest dataset, 1% filter", "big", sd.P1),
         ("largest dataset, 0.1% filter", "big", sd.P01),
         ("1k-row dataset", "small-1k", None))
Search = Callable[[NDArray[np.float32], str, str | None], list[int]]


def corpus_arrays(corpus: sd.Corpus, layout: list[sd.DatasetSpec]
                  ) -> tuple[NDArray[np.float32], list[str], list[str]]:
    vectors = np.concatenate([corpus.vectors(ds) for ds in layout])
    names: list[str] = []
    splits: list[str] = []
    for ds in layout:
        names += [ds.name] * ds.rows
        if ds.name == "big":
            splits += [s or "" for s in sd.split_of(np.arange(ds.rows))]
        else:
            splits += [""] * ds.rows
    return vectors, names, splits


def faiss_engine(vectors: NDArray[np.float32], names: list[str], splits: list[str]) -> Search:
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    name_arr = np.array(names)
    split_arr = np.array(splits)
    masks: dict[tuple[str, str | None], NDArray[np.bool_]] = {}
    bitmaps: dict[tuple[str, str | None], NDArray[np.uint8]] = {}

    def search(q: NDArray[np.float32], dataset: str, split: str | None) -> list[int]:
        key = (dataset, split)
        if key not in masks:
            m = name_arr == dataset
            masks[key] = m & (split_arr == split) if split else m
        mask = masks[key]
        rows = np.flatnonzero(mask)
        if len(rows) <= EXACT_MAX_ROWS:
            sims = vectors[rows] @ q
            top = np.argpartition(-sims, K - 1)[:K]
            return [int(rows[i]) for i in top[np.argsort(-sims[top])]]
        if key not in bitmaps:  # the selector reads this buffer: keep it alive
            bitmaps[key] = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmaps[key]))
        # In the SWIG module, not in faiss's type stubs.
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=100)  # type: ignore[attr-defined]
        _, found = index.search(q[None, :], K, params=params)
        return [int(i) for i in found[0] if i >= 0]
    return search


def chroma_engine(vectors: NDArray[np.float32], names: list[str], splits: list[str],
                  path: Path, scoped: bool = False) -> Search:
    """``scoped``: the collection holds one dataset, so only the split is a filter."""
    import chromadb

    client = chromadb.PersistentClient(path=str(path))
    col = client.create_collection(
        "bench", configuration={"hnsw": {"space": "cosine", "ef_search": 100,
                                         "ef_construction": 100, "max_neighbors": 16}})
    for start in range(0, len(vectors), 5000):
        end = min(start + 5000, len(vectors))
        col.add(ids=[str(i) for i in range(start, end)], embeddings=vectors[start:end],
                metadatas=[{"dataset": names[i], "split": splits[i]}
                           for i in range(start, end)])

    def search(q: NDArray[np.float32], dataset: str, split: str | None) -> list[int]:
        where: Any = {"dataset": dataset} if not split else {
            "$and": [{"dataset": dataset}, {"split": split}]}
        if scoped:
            where = {"split": split} if split else None
        # A float32 array, as Chroma takes it (its annotation names fewer dtypes).
        res = col.query(query_embeddings=[q], n_results=K, where=where,  # type: ignore[arg-type]
                        include=[])
        return [int(i) for i in res["ids"][0]]
    return search


def lance_engine(vectors: NDArray[np.float32], names: list[str], splits: list[str],
                 path: Path, scoped: bool = False) -> Search:
    """``scoped``: the table holds one dataset, so only the split is a filter."""
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(path))
    dim = vectors.shape[1]
    table = pa.table({
        "id": pa.array(np.arange(len(vectors)), pa.int64()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
        "dataset": pa.array(names), "split": pa.array(splits),
    })
    tbl = db.create_table("bench", table)
    if len(vectors) > EXACT_MAX_ROWS:  # a smaller table is ranked exactly anyway
        tbl.create_index(metric="cosine", num_partitions=256, num_sub_vectors=96)
    tbl.create_scalar_index("dataset", index_type="BITMAP")
    tbl.create_scalar_index("split", index_type="BITMAP")

    sizes: dict[tuple[str, str | None], int] = {}

    def search(q: NDArray[np.float32], dataset: str, split: str | None) -> list[int]:
        where: str | None = f"dataset = '{dataset}'" + (
            f" AND split = '{split}'" if split else "")
        if scoped:
            where = f"split = '{split}'" if split else None
        key = (dataset, split)
        if key not in sizes:
            sizes[key] = tbl.count_rows(where)
        # A vector query builder at run time; annotated as the base builder.
        query = tbl.search(q).distance_type("cosine")  # type: ignore[attr-defined]
        if where is not None:
            query = query.where(where, prefilter=True)
        if sizes[key] <= EXACT_MAX_ROWS:
            # As pixdex and FAISS do: a selective filter ranks its rows exactly (the IVF_PQ
            # index with a prefilter reached only 0.64 / 0.74 recall at 1% / 0.1%).
            query = query.bypass_vector_index()
        else:
            query = query.nprobes(20).refine_factor(10)
        res = query.limit(K).select(["id"]).to_arrow()
        return [int(i) for i in res["id"].to_pylist()]
    return search


def per_dataset(build: Callable[..., Search], vectors: NDArray[np.float32], names: list[str],
                splits: list[str], path: Path) -> Search:
    """One collection (table) per dataset, as a Chroma or LanceDB user with many datasets
    would keep them: the dataset is the collection, only the split is a filter. Built for
    the datasets the cases query; the others would live in collections of their own."""
    name_arr = np.array(names)
    engines: dict[str, tuple[Search, NDArray[np.int64]]] = {}
    for dataset in dict.fromkeys(name for _, name, _ in CASES):
        rows = np.flatnonzero(name_arr == dataset)
        folder = path / dataset
        folder.mkdir()
        engine = build(vectors[rows], [names[i] for i in rows], [splits[i] for i in rows],
                       folder, scoped=True)
        engines[dataset] = (engine, rows)

    def search(q: NDArray[np.float32], dataset: str, split: str | None) -> list[int]:
        engine, rows = engines[dataset]
        return [int(rows[i]) for i in engine(q, dataset, split)]
    return search


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=["faiss", "chroma", "lancedb",
                                           "chroma-per-dataset", "lancedb-per-dataset"])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpus = sd.Corpus(args.seed, args.dim)
    layout = sd.layout(args.rows)
    by_name = {ds.name: ds for ds in layout}
    vectors, names, splits = corpus_arrays(corpus, layout)
    workdir = Path(tempfile.mkdtemp(prefix=f"scale-peer-{args.engine}-"))
    try:
        start = time.perf_counter()
        if args.engine == "faiss":
            search = faiss_engine(vectors, names, splits)
        elif args.engine == "chroma":
            search = chroma_engine(vectors, names, splits, workdir)
        elif args.engine == "lancedb":
            search = lance_engine(vectors, names, splits, workdir)
        elif args.engine == "chroma-per-dataset":
            search = per_dataset(chroma_engine, vectors, names, splits, workdir)
        else:
            search = per_dataset(lance_engine, vectors, names, splits, workdir)
        build = time.perf_counter() - start
        cases = []
        for label, name, split in CASES:
            ds = by_name[name]
            queries = corpus.queries(ds, args.queries)
            truth = sd.exact_top(corpus, ds, queries, split, K)
            for q in corpus.queries(ds, 40, warm_up=True):  # as bench_scale's warm-up
                search(q, name, split)
            load = os.getloadavg()[0]
            ms, recalls = [], []
            for q, t in zip(queries, truth, strict=True):
                t0 = time.perf_counter()
                found = search(q, name, split)
                ms.append(1000 * (time.perf_counter() - t0))
                got = {sd.row_id(i) for i in found[:K]}
                recalls.append(len(got & set(t[:K])) / min(K, len(t)))
            ms.sort()
            cases.append({"case": label, "p50_ms": round(statistics.median(ms), 2),
                          "p95_ms": round(ms[round(0.95 * (len(ms) - 1))], 2),
                          "recall@10": round(statistics.fmean(recalls), 4),
                          "load_average_1m": round(load, 2)})
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"engine": args.engine, "rows": args.rows,
                          "build_seconds": round(build, 1), "peak_rss_bytes": peak,
                          "cases": cases}))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
