"""Binary codes + exact re-rank for a selective filter: the recall it would give.

The lever: rank the rows a filter keeps by the Hamming distance of 1-bit codes (what an
index-only scan could read, 96 bytes a row at 768-d instead of a primary-key lookup and
1.5 kB of halfvec), then rank the best N exactly. It only pays if N is small next to the
filtered set. Measured in numpy on the ``bench_scale.py`` data (the 1% split of the 500k
dataset: 5,000 rows), ground truth the exact cosine top-10:

    .venv/bin/python bench/bench_codes.py --rows 1000000 --dim 768

Codes: the sign of each coordinate, after centring on the filtered rows' mean (the usual
fix for embeddings whose coordinates are not zero-mean). Results:
``bench/results/codes-<rows>-<dim>.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import scale_data as sd

RESULTS = Path(__file__).resolve().parent / "results"
K = 10
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)


def main() -> None:
    parser = sd.arguments(__doc__)
    parser.add_argument("--split", default="p1")
    parser.add_argument("--rerank", type=int, nargs="+", default=[50, 100, 200, 400, 800, 1000])
    args = parser.parse_args()

    corpus = sd.Corpus(args.seed, args.dim)
    big = sd.layout(args.rows)[0]
    vectors = corpus.vectors(big).astype(np.float16).astype(np.float32)  # as stored
    vectors = vectors[sd.split_mask(len(vectors), args.split)]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = corpus.queries(big, args.queries)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    mean = vectors.mean(axis=0)
    codes = np.packbits(vectors - mean > 0, axis=1)
    query_codes = np.packbits(queries - mean > 0, axis=1)

    recalls: dict[int, list[float]] = {n: [] for n in args.rerank}
    hamming_seconds = 0.0
    for query, code in zip(queries, query_codes, strict=True):
        truth = set(np.argsort(-(vectors @ query))[:K].tolist())
        start = time.perf_counter()
        hamming = _POPCOUNT[np.bitwise_xor(codes, code)].sum(axis=1)
        order = np.argsort(hamming, kind="stable")
        hamming_seconds += time.perf_counter() - start
        for n in args.rerank:
            candidates = order[:n]
            best = candidates[np.argsort(-(vectors[candidates] @ query))[:K]]
            recalls[n].append(len(truth & set(best.tolist())) / K)

    result = {
        "rows": args.rows, "dim": args.dim, "filtered_rows": len(vectors),
        "queries": args.queries, "split": args.split,
        "numpy_hamming_ms_per_query": round(hamming_seconds / args.queries * 1000, 3),
        "rerank": [
            {"rerank_top": n, "share_of_filtered": round(n / len(vectors), 3),
             "recall@10_mean": round(float(np.mean(r)), 4),
             "recall@10_min": round(float(np.min(r)), 2),
             "queries_below_0.9": int(sum(x < 0.9 for x in r))}
            for n, r in recalls.items()
        ],
    }
    out = RESULTS / f"codes-{args.rows}-{args.dim}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| re-rank top N | share of the {len(vectors):,} | recall@10 mean | min |"
          " queries < 0.9 |")
    print("|---:|---:|---:|---:|---:|")
    for row in result["rerank"]:
        print(f"| {row['rerank_top']} | {row['share_of_filtered']:.0%} |"
              f" {row['recall@10_mean']:.3f} | {row['recall@10_min']:.1f} |"
              f" {row['queries_below_0.9']} |")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
