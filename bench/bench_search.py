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
import shutil
from pathlib import Path
from typing import Any

from search_data import RESULTS, SPEC, WORKSPACE, Corpus, build_index, load_rows, log, open_direct
from search_measure import Runner, measure, sizes, table

from pixdex.config import Settings
from pixdex.storage import catalog
from pixdex.storage.connection import close_pools, connect
from pixdex.storage.embedded import stop_server


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
            conn2 = open_direct(settings)
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
