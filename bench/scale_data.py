"""Synthetic multi-dataset corpus for ``bench_scale.py``: layout, vectors, bulk load.

Layout (``layout(rows)``): one dataset of ``rows / 2`` ("big"), ~30 datasets whose sizes
fall geometrically from 5% of ``rows`` to 1k ("mid-NN", one of them exactly 1,000 rows:
"small-1k"), and the rest in datasets of 100-999 rows ("tiny-NNN"): Zipf-like sizes.
Rows of a dataset are contiguous (a bulk import writes them together).

Vectors: 1000 gaussian cluster centres on the unit sphere; each point is
``centre + latent + noise`` (64-d gaussian latent through a fixed random basis, norm
~0.5, plus isotropic noise, norm ~0.25), L2-normalised, float32: the generator of
``bench_search.py``. "big" draws from all centres, every other dataset from its own
10-30 centres (a dataset has a topic). Deterministic for a seed.

In "big", 1% of the rows have ``split = 'p1'`` and 0.1% ``split = 'p01'`` (disjoint),
by row position, so the filters are uncorrelated with the vectors.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from numpy.typing import NDArray
from search_data import Corpus as BenchCorpus
from search_data import embedding_tuples

CLUSTERS = 1000
CHUNK = 50_000
# Row i gets the id 5ca1e000-0000-4000-8000-<i as 12 hex digits>.
ID_HI = 0x5CA1E000_00004000
ID_LO = 0x80000000_00000000
P1, P01 = "p1", "p01"

DConn = psycopg.Connection[dict[str, Any]]


def row_id(index: int) -> UUID:
    return UUID(int=(ID_HI << 64) | ID_LO | index)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    start: int  # first global row index
    rows: int
    seed_index: int


def layout(rows: int) -> list[DatasetSpec]:
    """Zipf-like dataset sizes summing to ``rows``."""
    sizes: list[tuple[str, int]] = [("big", rows // 2)]
    top, bottom, mids = rows * 0.05, 1000.0, 30
    ratio = (bottom / top) ** (1 / (mids - 1))
    for r in range(mids):
        sizes.append((f"mid-{r:02d}", round(top * ratio**r)))
    sizes[-1] = ("small-1k", 1000)
    left = rows - sum(n for _, n in sizes)
    rng = np.random.default_rng(12345)
    t = 0
    while left > 0:
        n = min(left, int(rng.integers(100, 1000)))
        sizes.append((f"tiny-{t:03d}", n))
        left -= n
        t += 1
    out: list[DatasetSpec] = []
    start = 0
    for index, (name, n) in enumerate(sizes):
        out.append(DatasetSpec(name, start, n, index))
        start += n
    return out


class Corpus:
    def __init__(self, seed: int, dim: int) -> None:
        self.seed = seed
        self.dim = dim
        # bench_search's clustered space (same seed, same centres and basis).
        self._space = BenchCorpus(seed, CLUSTERS, dim)
        self.centres = self._space.centres

    def _clusters(self, ds: DatasetSpec) -> NDArray[np.int64]:
        if ds.name == "big":
            return np.arange(CLUSTERS)
        rng = np.random.default_rng([self.seed, 3, ds.seed_index])
        return rng.choice(CLUSTERS, size=int(rng.integers(10, 31)), replace=False)

    def _points(self, rng: np.random.Generator, clusters: NDArray[np.int64], n: int
                ) -> NDArray[np.float32]:
        return self._space.near(rng, clusters[rng.integers(0, len(clusters), n)])

    def chunks(self, ds: DatasetSpec, limit: int | None = None
               ) -> Iterator[tuple[int, NDArray[np.float32]]]:
        """(offset within the dataset, vectors) for its first ``limit`` rows."""
        clusters = self._clusters(ds)
        total = ds.rows if limit is None else min(limit, ds.rows)
        for index, offset in enumerate(range(0, total, CHUNK)):
            rng = np.random.default_rng([self.seed, 1, ds.seed_index, index])
            yield offset, self._points(rng, clusters, min(CHUNK, total - offset))

    def vectors(self, ds: DatasetSpec, limit: int | None = None) -> NDArray[np.float32]:
        return np.concatenate([v for _, v in self.chunks(ds, limit)])

    def queries(self, ds: DatasetSpec, n: int, *, warm_up: bool = False) -> NDArray[np.float32]:
        """Held-out queries near the dataset's clusters; ``warm_up``: a disjoint set, to
        bring the caches to a steady state without pre-loading the measured queries' pages."""
        stream = 3 if warm_up else 2
        return self._points(np.random.default_rng([self.seed, stream, ds.seed_index]),
                            self._clusters(ds), n)


def split_of(offsets: NDArray[np.int64]) -> NDArray[np.object_]:
    """'p1' for 1% of big's rows, 'p01' for 0.1%, None elsewhere (by position)."""
    out = np.full(len(offsets), None, dtype=object)
    out[offsets % 100 == 7] = P1
    out[offsets % 1000 == 3] = P01
    return out


def split_mask(n: int, split: str | None) -> NDArray[np.bool_]:
    values = split_of(np.arange(n))
    if split is None:
        return np.ones(n, dtype=bool)
    result: NDArray[np.bool_] = values == split
    return result


# The rows `pixdex vectors import` writes in one transaction, each chunk's rows grouped by
# split (storage.vectors.insert_rows); app/vector_file.DEFAULT_CHUNK_ROWS.
IMPORT_CHUNK = 8192


def import_order(offsets: NDArray[np.int64]) -> NDArray[np.intp]:
    """The order `pixdex vectors import` writes these rows in: by split within each of its
    chunks, rows without a split last."""
    splits = split_of(offsets)
    rank = np.array([2 if s is None else (0 if s == P01 else 1) for s in splits])
    block = (offsets - offsets[0]) // IMPORT_CHUNK
    order: NDArray[np.intp] = np.lexsort((rank, block))
    return order


def load(conn: DConn, corpus: Corpus, datasets: list[tuple[DatasetSpec, UUID]], model: str,
         log: Any, *, grouped: bool = False) -> float:
    """COPY every dataset's images and embeddings (FK triggers off); return seconds.
    ``grouped``: the embeddings in the order a vector import writes them (each 8,192-row
    chunk's rows by split); else in row order, a split's rows spread as ingest of files
    one by one leaves them."""
    start = time.perf_counter()
    for ds, ds_id in datasets:
        split = (
            "CASE WHEN (g - %(s)s) %% 1000 = 3 THEN 'p01'"
            " WHEN (g - %(s)s) %% 100 = 7 THEN 'p1' END" if ds.name == "big" else "NULL"
        )
        conn.execute(
            "INSERT INTO images (id, dataset_id, name, storage_key, status, split)"
            " SELECT ('5ca1e000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, %(ds)s,"
            " 'img-' || g || '.jpg', 'bench://' || g, 'indexed', " + split +
            " FROM generate_series(%(s)s, %(e)s - 1) AS g",
            {"ds": ds_id, "s": ds.start, "e": ds.start + ds.rows},
        )
    log(f"images inserted in {time.perf_counter() - start:.1f}s")
    name = model.encode()
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    conn.execute("SET session_replication_role = replica")
    copied = 0
    with conn.cursor().copy(
        "COPY image_embeddings (image_id, model, dataset_id, embedding) FROM STDIN"
        " (FORMAT BINARY)"
    ) as copy:
        copy.write(header)
        for ds, ds_id in datasets:
            for offset, vectors in corpus.chunks(ds):
                n = len(vectors)
                order = None
                if grouped and ds.name == "big":
                    order = import_order(np.arange(offset, offset + n, dtype=np.int64))
                copy.write(embedding_tuples(name, ds_id, vectors, id_hi=ID_HI,
                                            first_row=ds.start + offset, order=order))
                copied += n
                if copied % 200_000 < n:
                    log(f"  embeddings copied: {copied:,}")
        copy.write((-1).to_bytes(2, "big", signed=True))
    conn.execute("SET session_replication_role = DEFAULT")
    conn.execute("ANALYZE images")
    conn.execute("ANALYZE image_embeddings")
    return time.perf_counter() - start


def exact_top(corpus: Corpus, ds: DatasetSpec, queries: NDArray[np.float32],
              split: str | None, k: int, limit: int | None = None) -> list[list[UUID]]:
    """Exact top-k by cosine over the float16-rounded vectors (what halfvec stores)."""
    q = queries.astype(np.float16).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    best_sim = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_idx = np.zeros((len(q), k), dtype=np.int64)
    for offset, vectors in corpus.chunks(ds, limit):
        keep = np.nonzero(split_mask(len(vectors) + offset, split)[offset:])[0]
        if len(keep) == 0:
            continue
        x = vectors[keep].astype(np.float16).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        sims = q @ x.T
        kk = min(k, len(keep))
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        merged_sim = np.concatenate([best_sim, np.take_along_axis(sims, top, 1)], axis=1)
        merged_idx = np.concatenate([best_idx, keep[top] + offset], axis=1)
        order = np.argsort(-merged_sim, axis=1)[:, :k]
        best_sim = np.take_along_axis(merged_sim, order, 1)
        best_idx = np.take_along_axis(merged_idx, order, 1)
    return [[row_id(ds.start + int(i)) for i in row] for row in best_idx]


def arguments(doc: str | None, *, queries: int = 200) -> argparse.ArgumentParser:
    """The options every script on this data shares: which corpus (rows, dim, seed) and
    how many queries a case runs."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=queries)
    parser.add_argument("--seed", type=int, default=0)
    return parser
