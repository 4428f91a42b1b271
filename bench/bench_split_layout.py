"""The 1% filter with ``split`` stored on ``image_embeddings``: what the schema change
docs/benchmarks.md weighs (and did not build) would buy, measured instead of estimated.

Today a filter on ``split`` picks the images by their index, then fetches each vector by a
primary-key descent into ``image_embeddings`` (one per row: the cost of the 1% case). With
``split`` on ``image_embeddings`` and an index on (dataset, model, split), the vectors of a
split come from one bitmap heap scan, and the images' side joins by a hash on ids.

Run on a copy of the database ``bench_scale.py`` kept (the change rewrites the split's
rows, which moves them together at the end of the table, as the clustering the design
proposes would: the copy keeps the kept database as built):

    .venv/bin/python bench/bench_split_layout.py --rows 1000000 --dim 768

Interleaved per query, 200 queries after 40 warm-up ones, recall@10 against numpy:
today's exact statement (``search_sql.vector_candidates``) and the denormalised one.
Results: ``bench/results/split-layout-<rows>-<dim>.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import scale_data as sd
import scale_measure as sm
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from scale_measure import QueryPath

from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.storage import catalog
from pixdex.storage.connection import close_pools, connect, database_url
from pixdex.storage.embedded import stop_server

RESULTS = Path(__file__).resolve().parent / "results"
_DENORMALISE = (
    "ALTER TABLE image_embeddings ADD COLUMN split text",
    # Only rows with a split change: the others keep their place and their index entries.
    "UPDATE image_embeddings e SET split = i.split FROM images i"
    " WHERE i.id = e.image_id AND i.split IS NOT NULL",
    "CREATE INDEX image_embeddings_split ON image_embeddings (dataset_id, model, split)"
    " WHERE split IS NOT NULL",
    "VACUUM (ANALYZE) image_embeddings",
)
# The layout a split assigned at ingest leaves: every row of the dataset rewritten in its
# table order, so the split's rows stay 1 in 100 (each on a page of its own). The HNSW
# indexes and the curation triggers go first: the exact path reads neither, and 500k
# graph re-inserts would take longer than the measurement.
_INTERLEAVE = (
    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT indexrelid::regclass AS name"
    " FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a"
    " ON a.oid = c.relam WHERE x.indrelid = 'image_embeddings'::regclass"
    " AND a.amname = 'hnsw' LOOP EXECUTE 'DROP INDEX ' || r.name; END LOOP; END $$",
    "ALTER TABLE image_embeddings DISABLE TRIGGER USER",
    "ALTER TABLE image_embeddings ADD COLUMN split text",
    "UPDATE image_embeddings e SET split = i.split FROM images i"
    " WHERE i.id = e.image_id AND e.dataset_id = %(ds)s",
    "CREATE INDEX image_embeddings_split ON image_embeddings (dataset_id, model, split)"
    " WHERE split IS NOT NULL",
    "VACUUM (ANALYZE) image_embeddings",
)


def _statement(spec: ModelSpec) -> str:
    # The OFFSET 0 fence, as the library's exact path has: no HNSW scan serves the ORDER BY.
    return (
        "SELECT id, d FROM (SELECT e.image_id AS id,"
        f" (e.embedding::halfvec({spec.dim})) <=> %(q)s::halfvec({spec.dim}) AS d"
        " FROM image_embeddings e JOIN images i ON i.id = e.image_id"
        " WHERE e.dataset_id = %(ds)s AND e.model = %(model)s AND e.split = %(split)s"
        " AND i.dataset_id = %(ds)s AND i.split = %(split)s AND i.status = 'indexed'"
        f" OFFSET 0) AS filtered ORDER BY d LIMIT {sm.K + 16}"
    )


# No per-row lookups: the join hashes (on its row estimates the planner would still pick
# a nested loop). Index scans stay on: the images' side is an index-only scan.
_KNOBS = "SELECT set_config('enable_nestloop', 'off', true)"


def _denormalised(settings: Settings, spec: ModelSpec, dataset_id: Any, split: str
                  ) -> QueryPath:
    """The vectors of the split from ``image_embeddings`` alone (one range of the new
    index: an index or bitmap heap scan, the planner's pick), the images' status by a hash
    join on their covering split index, the top-N sort."""
    statement = _statement(spec)
    raw = sm.Raw(settings, spec, dataset_id, split)

    def fn(q: Any) -> list[Any]:
        with raw.conn.transaction():
            raw.conn.execute(_KNOBS)
            rows = raw.conn.execute(statement, {"q": HalfVector(q), "ds": dataset_id,
                                                "model": spec.name, "split": split}).fetchall()
        return [r["id"] for r in sorted(rows, key=lambda r: (float(r["d"]), str(r["id"])))]
    return fn


def main() -> None:
    parser = sd.arguments(__doc__)
    parser.add_argument("--split", default=sd.P1)
    parser.add_argument("--layout", choices=("together", "interleaved"), default="together",
                        help="together: only the split's rows rewritten (they land side by"
                        " side); interleaved: the whole dataset rewritten in its order")
    args = parser.parse_args()
    kept = Path(f"/tmp/pixdex-bench-scale-{args.rows}-{args.dim}")
    if not (kept / "build.json").exists():
        parser.error(f"no kept database in {kept}: run bench_scale.py --rows {args.rows} first")
    stop_server(kept / "pgdata")
    copy = kept.with_name(kept.name + "-split-layout")
    shutil.rmtree(copy, ignore_errors=True)
    # cp -a: the data folder must keep its owner, the server's own user.
    subprocess.run(["cp", "-a", str(kept), str(copy)], check=True)
    settings = Settings(home=copy)
    spec = ModelSpec(name=f"scale-{args.dim}", dim=args.dim, encodes_text=False, tags=False,
                     input_size=224)
    corpus = sd.Corpus(args.seed, args.dim)
    big = sd.layout(args.rows)[0]
    result: dict[str, Any] = {"rows": args.rows, "dim": args.dim, "split": args.split,
                              "layout": args.layout}
    try:
        with connect(settings) as conn:
            dataset_id = catalog.get_dataset(conn, "default", big.name).id
        with psycopg.connect(database_url(settings), autocommit=True,
                             row_factory=dict_row) as conn:
            started = time.perf_counter()
            for statement in (_DENORMALISE if args.layout == "together" else _INTERLEAVE):
                conn.execute(statement, {"ds": dataset_id} if "%(ds)s" in statement else None)
            result["migration_seconds"] = round(time.perf_counter() - started, 1)
            moved = conn.execute("SELECT count(*) AS n FROM image_embeddings"
                                 " WHERE split IS NOT NULL").fetchone()
            result["rows_rewritten"] = int(moved["n"]) if moved else 0
        queries = corpus.queries(big, args.queries)
        warm = corpus.queries(big, sm.WARM_UP, warm_up=True)
        truth = sd.exact_top(corpus, big, queries, args.split, sm.K)
        today = sm.Raw(settings, spec, dataset_id, args.split)
        paths: dict[str, tuple[QueryPath, int]] = {
            "today: exact statement (pk lookups)": (today.candidates(True, 40), len(queries)),
            "split on image_embeddings (bitmap scan, hash join)": (
                _denormalised(settings, spec, dataset_id, args.split), len(queries)),
        }
        result["paths"] = sm._interleaved(paths, queries, warm, truth, args.seed)
        with psycopg.connect(database_url(settings), row_factory=dict_row) as conn:
            register_vector(conn)
            conn.execute(_KNOBS)
            plan = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + _statement(spec),
                {"q": HalfVector(queries[0]), "ds": dataset_id, "model": spec.name,
                 "split": args.split}).fetchall()
            result["plan"] = [str(next(iter(r.values()))) for r in plan
                              if "::halfvec" not in str(next(iter(r.values())))]
    finally:
        close_pools()
        stop_server(copy / "pgdata")
        shutil.rmtree(copy, ignore_errors=True)
    suffix = "" if args.layout == "together" else f"-{args.layout}"
    out = RESULTS / f"split-layout-{args.rows}-{args.dim}{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
