"""Throughput of ``pixdex vectors import``: rows/s for a Parquet file of N x D vectors.

Writes a Parquet file of ``--rows`` clustered ``--dim``-d float32 vectors with the
optional columns a real export carries (folder, split, tags, metadata as JSON text),
in row groups of 50,000, then imports it into a fresh embedded PostgreSQL (its own home
under ``--home``, deleted afterwards) through the library call the CLI makes, timing:

* the load (read, check, COPY, one transaction per chunk) and the HNSW index build after
  it, separately, and the whole import;
* peak memory of the importing process (the file is written by a child process, so
  this is the import's own: the file is streamed, it does not grow with the file);
* an incremental import (``--extra`` more rows into the now indexed model): the row-by-row
  index update the import avoids for large files.

    nice -n 19 .venv/bin/python bench/bench_vectors_import.py --rows 100000 --dim 768

Results: a summary on stdout and ``bench/results/vectors-import-<rows>x<dim>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pixdex.app.vector_file import DEFAULT_CHUNK_ROWS, open_vector_file
from pixdex.app.vectors import VectorImport, check_model_name
from pixdex.config import Settings
from pixdex.storage import catalog
from pixdex.storage.connection import close_pools, connect
from pixdex.storage.embedded import stop_server

RESULTS = Path(__file__).resolve().parent / "results"
ROW_GROUP = 50_000
MODEL = "bench-import"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def write_file(path: Path, rows: int, dim: int, seed: int, first: int = 0) -> None:
    """Clustered unit-ish vectors (1000 centres + noise), written row group by row group."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    schema = pa.schema([
        ("name", pa.string()), ("embedding", pa.list_(pa.float32())), ("folder", pa.string()),
        ("split", pa.string()), ("tags", pa.list_(pa.string())), ("metadata", pa.string()),
    ])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            ids = np.arange(first + start, first + start + n)
            points = centres[rng.integers(0, 1000, n)]
            points += 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
            offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32))
            writer.write_table(pa.table({
                "name": [f"img-{i:08d}.jpg" for i in ids],
                "embedding": pa.ListArray.from_arrays(offsets, pa.array(points.ravel())),
                "folder": [f"/shard-{i % 16}" for i in ids],
                "split": np.where(ids % 10 == 0, "valid", "train").tolist(),
                "tags": [["bench", f"t{i % 7}"] for i in ids],
                "metadata": [json.dumps({"source": "bench", "n": int(i)}) for i in ids],
            }, schema=schema))


def _write(path: Path, rows: int, dim: int, seed: int, first: int = 0) -> None:
    """Write the file in a child process: this one's peak memory stays the import's."""
    subprocess.run([sys.executable, __file__, "--write", str(path), "--rows", str(rows),
                    "--dim", str(dim), "--seed", str(seed), "--first", str(first)], check=True)


def run_import(settings: Settings, path: Path, dataset: str) -> dict[str, Any]:
    source = open_vector_file(path)
    check_model_name(settings, MODEL)
    with connect(settings) as conn:
        row = catalog.ensure_dataset(conn, settings.workspace, dataset)
    started = time.perf_counter()
    job = VectorImport(settings, row.id, row.name, MODEL, source.rows, "auto")
    for batch in source.batches(DEFAULT_CHUNK_ROWS):
        job.add(batch)
    loaded = time.perf_counter()
    report = job.finish()
    done = time.perf_counter()
    load_s, finish_s, total_s = loaded - started, done - loaded, done - started
    return {
        "rows": report.rows, "imported": report.imported, "rejected": report.rejected,
        "index": report.index, "load_s": round(load_s, 2), "index_s": round(finish_s, 2),
        "total_s": round(total_s, 2),
        "load_rows_per_s": round(report.imported / load_s),
        "rows_per_s": round(report.imported / total_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--extra", type=int, default=2_000,
                        help="rows of the incremental import into the indexed model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", type=Path, default=None,
                        help="parent folder of the throwaway pixdex home (default: /tmp)")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child's job
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write is not None:
        write_file(args.write, args.rows, args.dim, args.seed, args.first)
        return

    home = Path(tempfile.mkdtemp(prefix="pixdex-bench-import-", dir=args.home))
    settings = Settings(home=home, db_linger_seconds=0)  # no keeper outliving the run
    try:
        path = home / "vectors.parquet"
        log(f"writing {args.rows:,} x {args.dim} to {path}")
        _write(path, args.rows, args.dim, args.seed)
        size = path.stat().st_size
        with connect(settings):  # start the server and migrate before timing
            pass
        load_before = os.getloadavg()
        log("importing")
        full = run_import(settings, path, "bench")
        log(f"full: {json.dumps(full)}")
        extra_path = home / "extra.parquet"
        _write(extra_path, args.extra, args.dim, args.seed + 1, first=args.rows)
        extra = run_import(settings, extra_path, "bench")
        log(f"incremental: {json.dumps(extra)}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load_after = os.getloadavg()
    finally:
        close_pools()
        stop_server(home / "pgdata")
        shutil.rmtree(home, ignore_errors=True)
    result = {
        "rows": args.rows, "dim": args.dim, "file_mb": round(size / 2**20, 1),
        "chunk_rows": DEFAULT_CHUNK_ROWS, "import": full, "incremental": extra,
        "peak_rss_mb": round(peak_mb), "niceness": os.nice(0),
        # Other sessions share the two cores: the 1-minute load average around the run.
        "load_average_before_after": [round(load_before[0], 1), round(load_after[0], 1)],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"vectors-import-{args.rows}x{args.dim}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.rows:,} x {args.dim}: {full['rows_per_s']:,} rows/s end to end "
          f"(load {full['load_rows_per_s']:,} rows/s in {full['load_s']} s, index build "
          f"{full['index_s']} s); incremental {extra['rows_per_s']:,} rows/s; peak RSS "
          f"{result['peak_rss_mb']} MB; {out}")


if __name__ == "__main__":
    main()
