"""Two kept databases of the same data side by side: the library's ``search()`` and its
ranking statement on each, interleaved per query, so that this host's run-to-run spread
(+-30 % between runs minutes apart) falls on both alike. Made for the vectors before and
after ``pixdex db optimize``:

    cp -a /tmp/pixdex-bench-scale-1000000-768 /tmp/pixdex-bench-scale-1000000-768-optimized
    .venv/bin/python bench/bench_scale.py --rows 1000000 --dim 768 --optimize \\
        --home /tmp/pixdex-bench-scale-1000000-768-optimized
    nice -n 5 .venv/bin/python bench/ab_layout.py --rows 1000000 --dim 768 \\
        --a /tmp/pixdex-bench-scale-1000000-768 --b /tmp/pixdex-bench-scale-1000000-768-optimized

Both servers run at once (their ``shared_buffers`` together must fit), each prewarmed
first as ``bench_scale.py`` does (without it, at 1280-d, the first case measured
autoprewarm still reading 2 x 6 GB back). Prints p50 / p95 ms and recall@10 per path and
case; ``--out`` writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import scale_data as sd
import scale_measure as sm
from bench_scale import direct, prewarm

from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.storage import catalog
from pixdex.storage.connection import close_pools, connect
from pixdex.storage.embedded import stop_server

CASES = (("big", sd.P1), ("big", sd.P01), ("big", None), ("small-1k", None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--a", type=Path, required=True, help="the first kept home")
    parser.add_argument("--b", type=Path, required=True, help="the second kept home")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    homes = {"a": args.a.resolve(), "b": args.b.resolve()}
    for home in homes.values():
        if not (home / "build.json").exists():
            parser.error(f"no kept database in {home}: build it with bench_scale.py first")
    settings = {label: Settings(home=home) for label, home in homes.items()}
    spec = ModelSpec(name=f"scale-{args.dim}", dim=args.dim, encodes_text=False, tags=False,
                     input_size=224)
    corpus = sd.Corpus(0, args.dim)
    layout = {ds.name: ds for ds in sd.layout(args.rows)}
    results: dict[str, Any] = {"homes": {k: str(v) for k, v in homes.items()},
                               "cpus": len(os.sched_getaffinity(0)), "cases": {}}
    raws: list[sm.Raw] = []
    try:
        for label, each in settings.items():  # the caches of a serving database, as the
            with direct(each) as conn:  # bench has them (and autoprewarm's reload done)
                results.setdefault("prewarm", {})[label] = prewarm(conn)
        for name, split in CASES:
            ds = layout[name]
            queries = corpus.queries(ds, args.queries)
            warm = corpus.queries(ds, sm.WARM_UP, warm_up=True)
            truth = sd.exact_top(corpus, ds, queries, split, sm.K)
            exact = split is not None or name != "big"  # the path the library takes
            paths: dict[str, tuple[sm.QueryPath, int]] = {}
            for label, each in settings.items():
                with connect(each) as conn:
                    dataset_id = catalog.get_dataset(conn, "default", name).id
                raw = sm.Raw(each, spec, dataset_id, split)
                raws.append(raw)
                paths[f"{label} library"] = (sm.library(each, spec, name, split, []),
                                             len(queries))
                paths[f"{label} statement"] = (raw.candidates(exact, 100), len(queries))
            measured = sm._interleaved(paths, queries, warm, truth, 1)
            case = f"{name} split={split}"
            results["cases"][case] = measured
            print(case, json.dumps({path: [r["p50_ms"], r["p95_ms"], r["recall@10"],
                                           r["load_average_1m"]]
                                    for path, r in measured.items()}), flush=True)
    finally:
        for raw in raws:
            raw.close()
        close_pools()
        for each in settings.values():
            stop_server(each.pgdata_dir)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
