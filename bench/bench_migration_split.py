"""What migration 0012 (the split copied onto the vectors) costs an existing database.

Works on a copy of the database ``bench_scale.py`` kept, put back to the schema before
0012 (the column, its index, triggers and functions dropped, the old curation trigger
restored, the migration unrecorded), then applies the pending migration and times it:

    .venv/bin/python bench/bench_migration_split.py --rows 1000000 --dim 768
    # every row of the largest dataset given a split first: half the vectors change,
    # past the fifth where the migration rebuilds the HNSW graphs around the rewrite
    .venv/bin/python bench/bench_migration_split.py --rows 1000000 --dim 768 --all-split

Results: ``bench/results/migration-split-<rows>-<dim>[-all].json``.
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

from pixdex.config import Settings
from pixdex.storage.connection import close_pools, connect, database_url
from pixdex.storage.embedded import stop_server
from pixdex.storage.migrate import apply_migrations

RESULTS = Path(__file__).resolve().parent / "results"
_BEFORE_0012 = (
    "DROP TRIGGER images_split_to_embeddings ON images",
    "DROP FUNCTION image_split_to_embeddings()",
    "DROP TRIGGER image_embeddings_split ON image_embeddings",
    "DROP FUNCTION embedding_take_split()",
    "DROP TRIGGER image_embeddings_curation_update ON image_embeddings",
    "DROP FUNCTION curation_mark_reembedded()",
    "CREATE TRIGGER image_embeddings_curation_update AFTER UPDATE ON image_embeddings"
    " REFERENCING NEW TABLE AS written FOR EACH STATEMENT"
    " EXECUTE FUNCTION curation_mark_embedded()",
    "DROP INDEX image_embeddings_split",
    "ALTER TABLE image_embeddings DROP COLUMN split",
    "DELETE FROM schema_migrations WHERE version = 12",
)
_EVERY_BIG_ROW_SPLIT = (
    "UPDATE images SET split = coalesce(split, 'train')"
    " WHERE dataset_id = (SELECT id FROM datasets WHERE name = 'big')",
    "VACUUM (ANALYZE) images",
)
_GRAPHS = (
    "SELECT count(*) FILTER (WHERE x.indisvalid) AS valid, count(*) AS graphs"
    " FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_am a ON a.oid = c.relam"
    " WHERE x.indrelid = 'image_embeddings'::regclass AND a.amname = 'hnsw'"
)


def _count(conn: psycopg.Connection[Any], statement: str) -> int:
    row = conn.execute(statement).fetchone()
    assert row is not None
    return int(row[0])


def main() -> None:
    parser = sd.arguments(__doc__)
    parser.add_argument("--all-split", action="store_true",
                        help="give every row of the largest dataset a split first")
    args = parser.parse_args()
    kept = Path(f"/tmp/pixdex-bench-scale-{args.rows}-{args.dim}")
    if not (kept / "build.json").exists():
        parser.error(f"no kept database in {kept}: run bench_scale.py --rows {args.rows} first")
    stop_server(kept / "pgdata")
    copy = kept.with_name(kept.name + "-migration")
    shutil.rmtree(copy, ignore_errors=True)
    # cp -a: the data folder must keep its owner, the server's own user.
    subprocess.run(["cp", "-a", str(kept), str(copy)], check=True)
    settings = Settings(home=copy)
    result: dict[str, Any] = {"rows": args.rows, "dim": args.dim, "all_split": args.all_split}
    try:
        with connect(settings):  # starts the server; nothing pending yet
            pass
        with psycopg.connect(database_url(settings), autocommit=True) as conn:
            for statement in _BEFORE_0012 + (_EVERY_BIG_ROW_SPLIT if args.all_split else ()):
                conn.execute(statement.encode())
            result["images_with_split"] = _count(
                conn, "SELECT count(*) FROM images WHERE split IS NOT NULL")
            result["vectors"] = _count(conn, "SELECT count(*) FROM image_embeddings")
            started = time.perf_counter()
            result["applied"] = apply_migrations(conn)
            result["migration_seconds"] = round(time.perf_counter() - started, 1)
            result["vectors_with_split"] = _count(
                conn, "SELECT count(*) FROM image_embeddings WHERE split IS NOT NULL")
            result["curation_marked"] = _count(conn, "SELECT count(*) FROM curation_pending")
            row = conn.execute(_GRAPHS).fetchone()
            assert row is not None
            result["hnsw_valid"], result["hnsw_graphs"] = int(row[0]), int(row[1])
    finally:
        close_pools()
        stop_server(copy / "pgdata")
        shutil.rmtree(copy, ignore_errors=True)
    suffix = "-all" if args.all_split else ""
    out = RESULTS / f"migration-split-{args.rows}-{args.dim}{suffix}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
