"""The embedded PostgreSQL reloads the blocks it had cached when it starts again.

Restarted the way a user restarts it: ``pixdex db stop``, then the next command
(``pixdex db url`` here) starts it with the configuration of its environment.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pixdex.storage.embedded import keep_cache_across_restarts
from tests.server_home import own_home, pixdex

# ~1,300 pages: well under a quarter of the default 128 MB of shared buffers, so a
# sequential scan caches all of it (larger tables go through a small ring of buffers).
_ROWS = 20_000
# Autovacuum would read a new table into the cache after a restart on its own: cached
# pages would then say nothing about autoprewarm.
_UNVACUUMED = "WITH (autovacuum_enabled = false)"


@pytest.fixture()
def home() -> Iterator[Path]:
    with own_home("pixdex-prewarm-") as path:
        yield path


def _run(home: Path, autoprewarm: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Lingering, so the server outlives the command that started it.
    return pixdex(home, *args, db_linger_seconds="600", db_autoprewarm=autoprewarm)


def _pixdex(home: Path, autoprewarm: bool, *args: str) -> str:
    done = _run(home, str(autoprewarm).lower(), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _restart(home: Path, *, autoprewarm: bool) -> psycopg.Connection[tuple[object, ...]]:
    _pixdex(home, autoprewarm, "db", "stop")
    return psycopg.connect(_pixdex(home, autoprewarm, "db", "url"), autocommit=True)


def _preloaded(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SHOW shared_preload_libraries").fetchone()
    assert row is not None
    return str(row[0])


def _cached_pages(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    # pg_buffercache reads the buffer headers; the table itself is not touched.
    row = conn.execute(
        "SELECT count(*) FROM pg_buffercache WHERE relfilenode = pg_relation_filenode('warm')"
        " AND relforknumber = 0"  # the table's pages, not its free-space or visibility maps
        " AND reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _wait_for_pages(conn: psycopg.Connection[tuple[object, ...]], pages: int,
                    within: float) -> int:
    deadline = time.monotonic() + within
    cached = _cached_pages(conn)
    while cached < pages and time.monotonic() < deadline:
        time.sleep(0.2)
        cached = _cached_pages(conn)
    return cached


def test_a_restarted_server_reloads_what_it_had_cached(home: Path) -> None:
    # First start: the library is configured, loaded from the next start on.
    with _restart(home, autoprewarm=True) as conn:
        assert "pg_prewarm" not in _preloaded(conn)
        conn.execute("CREATE EXTENSION pg_buffercache")
        conn.execute(f"CREATE TABLE warm {_UNVACUUMED} AS SELECT g, repeat('x', 500) AS pad"
                     f" FROM generate_series(1, {_ROWS}) AS g")
    with _restart(home, autoprewarm=True) as conn:
        assert "pg_prewarm" in _preloaded(conn)
        assert _cached_pages(conn) == 0  # nothing listed the table's blocks at the last stop
        conn.execute("SELECT count(*) FROM warm").fetchone()  # now it is cached
        row = conn.execute("SELECT pg_relation_size('warm') / 8192").fetchone()
        assert row is not None
        pages = int(str(row[0]))
        assert _cached_pages(conn) == pages
    _pixdex(home, True, "db", "stop")
    assert (home / "pgdata" / "autoprewarm.blocks").is_file()  # written at shutdown
    with _restart(home, autoprewarm=True) as conn:
        assert _wait_for_pages(conn, pages, within=30) == pages


def test_turned_off_the_server_starts_cold(home: Path) -> None:
    with _restart(home, autoprewarm=True) as conn:
        conn.execute("CREATE EXTENSION pg_buffercache")
        conn.execute(f"CREATE TABLE warm {_UNVACUUMED} AS SELECT g"
                     " FROM generate_series(1, 1000) AS g")
    with _restart(home, autoprewarm=False) as conn:  # still loaded: the setting was on
        assert "pg_prewarm" in _preloaded(conn)
        conn.execute("SELECT count(*) FROM warm").fetchone()
        assert _cached_pages(conn) > 0
    with _restart(home, autoprewarm=False) as conn:
        assert _preloaded(conn) == ""
        time.sleep(1.0)  # what the worker, were it there, would have had to load it
        assert _cached_pages(conn) == 0


def test_a_bad_setting_is_refused(home: Path) -> None:
    done = _run(home, "sometimes", "db", "url")
    assert done.returncode == 2
    assert "db_autoprewarm" in done.stderr
    assert not (home / "pgdata").exists()  # refused before anything started


def test_other_libraries_are_kept_and_a_missing_one_is_not_added(home: Path) -> None:
    with _restart(home, autoprewarm=False) as conn:
        # What a user may have configured themselves.
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'auto_explain'")
        # A server without the library is left alone: preloading a missing library would
        # stop every later start.
        assert not keep_cache_across_restarts(conn, library="pixdex_no_such_library")
        assert _file_setting(conn) == "auto_explain"
    with _restart(home, autoprewarm=True) as conn:
        assert _preloaded(conn) == "auto_explain"
        assert _file_setting(conn) == "auto_explain, pg_prewarm"
    with _restart(home, autoprewarm=True) as conn:  # the value written starts a server
        assert _preloaded(conn) == "auto_explain, pg_prewarm"
    with _restart(home, autoprewarm=False) as conn:
        assert _file_setting(conn) == "auto_explain"
    with _restart(home, autoprewarm=False) as conn:
        assert _preloaded(conn) == "auto_explain"


def _file_setting(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    row = conn.execute("SELECT setting FROM pg_file_settings WHERE name ="
                       " 'shared_preload_libraries' ORDER BY seqno DESC LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])
