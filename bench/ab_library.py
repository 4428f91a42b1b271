"""The library's own cost: ``search()`` against its ranking statement alone, interleaved
on the bench's queries, on a database ``bench_scale.py`` built and kept.

To compare two versions of the library, run this alternately from each, the other one's
layers first on the path (the bench's data and measuring code stay this checkout's):

    nice -n 5 .venv/bin/python bench/ab_library.py --rows 200000 --label new
    PYTHONPATH=/tmp/old-checkout/layers nice -n 5 .venv/bin/python bench/ab_library.py \\
        --rows 200000 --label old

Prints, per case, p50 / p95 ms of both paths and the gap (library minus statement).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import scale_data as sd
import scale_measure as sm

from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.storage import catalog
from pixdex.storage.connection import close_pools, connect

CASES = (("big", None), ("small-1k", None), ("big", sd.P01), ("big", sd.P1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    home = Path(f"/tmp/pixdex-bench-scale-{args.rows}-{args.dim}")
    if not (home / "build.json").exists():
        parser.error(f"no kept database in {home}: run bench_scale.py --rows {args.rows} first")
    settings = Settings(home=home)
    spec = ModelSpec(name=f"scale-{args.dim}", dim=args.dim, encodes_text=False, tags=False,
                     input_size=224)
    corpus = sd.Corpus(0, args.dim)
    layout = {ds.name: ds for ds in sd.layout(args.rows)}
    results = {}
    try:
        for name, split in CASES:
            ds = layout[name]
            with connect(settings) as conn:
                dataset_id = catalog.get_dataset(conn, "default", name).id
            queries = corpus.queries(ds, args.queries)
            warm = corpus.queries(ds, sm.WARM_UP, warm_up=True)
            truth = sd.exact_top(corpus, ds, queries, split, sm.K)
            raw = sm.Raw(settings, spec, dataset_id, split)
            exact = split is not None or name != "big"  # the path the library takes
            paths = {"library": (sm.library(settings, spec, name, split, []), len(queries)),
                     "statement": (raw.candidates(exact, 100), len(queries))}
            try:
                measured = sm._interleaved(paths, queries, warm, truth, 1)
            finally:
                raw.close()
            case = f"{name} split={split}"
            results[case] = {
                **{path: [r["p50_ms"], r["p95_ms"]] for path, r in measured.items()},
                "gap_p50_ms": round(measured["library"]["p50_ms"]
                                    - measured["statement"]["p50_ms"], 2),
            }
            print(args.label, case, json.dumps(results[case]), flush=True)
    finally:
        close_pools()


if __name__ == "__main__":
    main()
