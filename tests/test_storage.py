"""The embedded server and migrations: concurrency, idempotence, clean shutdown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError, SearchTimeoutError
from pixdex.inference import EFFICIENTNET_LITE0_SPEC
from pixdex.storage import catalog
from pixdex.storage.connection import connect, database_url, get_pool, statement_deadline
from pixdex.storage.embedded import server_running, stop_server
from pixdex.storage.migrate import apply_migrations, load_migrations
from tests.test_cli import PIXDEX


def test_migrations_are_recorded_and_idempotent(settings: Settings) -> None:
    with connect(settings):  # opening the pool migrates
        pass
    with psycopg.connect(database_url(settings), autocommit=True) as conn:
        assert apply_migrations(conn) == []  # type: ignore[arg-type]
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        extension = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert extension.fetchone() == ("0.8.6",)
    assert versions == [m.version for m in load_migrations()]


def test_every_filter_column_is_indexed(settings: Settings) -> None:
    with connect(settings) as conn:
        catalog.register_model(conn, EFFICIENTNET_LITE0_SPEC)
        catalog.register_model(conn, EFFICIENTNET_LITE0_SPEC)  # idempotent
        defs = " ".join(str(r["indexdef"]) for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename IN ('images', 'image_embeddings')"))
    for needle in ("gin (user_tags)", "gin (tag_keys)", "gin (annotation_classes)",
                   "gin (metadata jsonb_path_ops)", "(dataset_id, folder text_pattern_ops)",
                   "(dataset_id, batch_id)", "(dataset_id, annotation_job_id)",
                   "(dataset_id, split)",
                   "hnsw (((embedding)::halfvec(1280)) halfvec_cosine_ops)",
                   "WHERE (model = 'efficientnet-lite0'::text)"):
        assert needle in defs, needle


def test_dataset_names_and_lookups(settings: Settings) -> None:
    with connect(settings) as conn:
        with pytest.raises(InvalidInputError):
            catalog.ensure_dataset(conn, settings.workspace, " padded ")
        with pytest.raises(NotFoundError, match="index some images into it first"):
            catalog.get_dataset(conn, settings.workspace, "never-made")
        first = catalog.ensure_dataset(conn, settings.workspace, "same")
        again = catalog.ensure_dataset(conn, settings.workspace, "same")
        other_workspace = catalog.ensure_dataset(conn, "another-team", "same")
    assert first.id == again.id != other_workspace.id


@pytest.fixture
def fresh_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="pixdex-fresh-"))
    yield home
    stop_server(home / "pgdata")
    shutil.rmtree(home, ignore_errors=True)


def test_two_processes_at_once_share_one_server(
    fresh_home: Path, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXDEX_")}
    env["PIXDEX_HOME"] = str(fresh_home)
    env["PIXDEX_DB_LINGER_SECONDS"] = "0"  # the last one out stops it (lingering: test_db_linger)
    folders = []
    for index, name in enumerate(("chelsea", "coffee")):
        folder = tmp_path / f"f{index}"
        folder.mkdir()
        for copy in range(6):
            photos[name].rotate(copy * 10).save(folder / f"{name}{copy}.jpg")
        folders.append(folder)
    processes = [
        subprocess.Popen([PIXDEX, "index", str(folder), "--dataset", "shared", "--json"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for folder in folders
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert json.loads(out)["indexed"] == 6
    log = (fresh_home / "pgdata" / "log").read_text()
    assert "already running" not in log and "lock file" not in log
    # The last process out stopped the server cleanly (a shutdown checkpoint, not a crash).
    assert not server_running(fresh_home / "pgdata")
    assert "database system is shut down" in log
    settings = Settings(home=fresh_home)
    with connect(settings) as conn:
        row = conn.execute("SELECT count(*) AS n FROM images WHERE status = 'indexed'").fetchone()
    assert row == {"n": 12}
    assert "database system was not properly shut down" not in (
        fresh_home / "pgdata" / "log").read_text()


def test_a_statement_past_its_deadline_is_cancelled_as_a_503_and_the_deadline_ends_there(
    settings: Settings,
) -> None:
    """Issue 14: no statement had a time limit, so a slow search held a pool connection
    (or a Lambda) for as long as it ran. Searches now run under a deadline, scoped to
    their transaction: the connection goes back to the pool without it."""
    with (
        pytest.raises(SearchTimeoutError, match=r"longer than 0\.05 s") as stopped,
        connect(settings) as conn,
        statement_deadline(conn, 50),
    ):
        conn.execute("SELECT pg_sleep(2)")
    assert stopped.value.http_status == 503
    for _ in range(get_pool(settings).max_size + 1):  # every pooled connection, afterwards
        with connect(settings) as conn:
            row = conn.execute("SHOW statement_timeout").fetchone()
            assert row is not None and row["statement_timeout"] == "0"
            conn.execute("SELECT pg_sleep(0.1)")  # runs to the end
