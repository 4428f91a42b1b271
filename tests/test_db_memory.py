"""The embedded server's memory follows its vector indexes from the next start on, and
leaves an operator's shared_buffers and effective_cache_size alone.

Restarted the way a user restarts it: ``pixdex db stop``, then the next command
(``pixdex db url``) starts it again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pixdex.storage.server_memory import SIZED_MARKER, marker, memory_settings
from tests.server_home import own_home, pixdex

_RAM = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
# A 2,000-d vector fills an HNSW page of its own: 9,000 of them make a ~70 MB graph,
# enough to move the sizing off PostgreSQL's 128 MB default (the graph plus a quarter,
# plus 128 MB, past a factor 1.5), built in seconds with the smallest m and ef.
_ROWS, _DIM = 9_000, 2_000

Connection = psycopg.Connection[tuple[object, ...]]


@pytest.fixture()
def home() -> Iterator[Path]:
    with own_home("pixdex-memory-") as path:
        yield path


def _start(home: Path) -> Connection:
    done = pixdex(home, "db", "url", db_linger_seconds="600")
    assert done.returncode == 0, done.stderr
    return psycopg.connect(done.stdout.strip(), autocommit=True)


def _restart(home: Path) -> Connection:
    done = pixdex(home, "db", "stop")
    assert done.returncode == 0, done.stderr
    return _start(home)


def _graph_bytes(conn: Connection) -> int:
    row = conn.execute("SELECT pg_relation_size('big_graph')").fetchone()
    assert row is not None
    return int(str(row[0]))


def _megabytes_text(shown: str) -> str:
    """What the sizing wrote for a value ``SHOW`` prints (``11GB`` or ``11776MB``)."""
    return f"{int(shown.removesuffix('GB')) * 1024}MB" if shown.endswith("GB") else shown


def _in_megabytes(value: str) -> str:
    """``SHOW`` prints whole gigabytes as ``1GB``: the sizing's value as SHOW prints it."""
    megabytes = int(value.removesuffix("MB"))
    return f"{megabytes // 1024}GB" if megabytes % 1024 == 0 else value


def _setting(conn: Connection, name: str) -> str:
    row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


def _build_graph(conn: Connection) -> str:
    """A graph big enough to move the sizing off the default (past its factor 1.5
    hysteresis); the shared_buffers the sizing wants for it."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    conn.execute(f"CREATE TABLE big (v vector({_DIM}))")
    conn.execute(
        f"INSERT INTO big SELECT array_agg(random())::vector({_DIM})"
        f" FROM generate_series(1, {_ROWS}) r, generate_series(1, {_DIM}) d GROUP BY r")
    conn.execute("CREATE INDEX big_graph ON big USING hnsw (v vector_l2_ops)"
                 " WITH (m = 2, ef_construction = 4)")
    graph = _graph_bytes(conn)
    wanted = memory_settings(_RAM, graph)["shared_buffers"]
    assert int(wanted.removesuffix("MB")) > 128 * 1.5, (graph, wanted)
    return wanted


def test_an_index_built_while_it_runs_is_sized_for_at_the_next_start(home: Path) -> None:
    with _start(home) as conn:
        assert _setting(conn, "shared_buffers") == "128MB"
        wanted = _build_graph(conn)
    # One restart, not two: the stop sizes the server for the graph built since its start.
    with _restart(home) as conn:
        assert _setting(conn, "shared_buffers") == _in_megabytes(wanted)
        conn.execute("DROP TABLE big")
    # The graph is gone: the next start gives the memory back.
    with _restart(home) as conn:
        assert _setting(conn, "shared_buffers") == "128MB"


def test_an_operators_shared_buffers_stays(home: Path) -> None:
    with _start(home) as conn:
        marker = conn.execute(
            "SELECT setting FROM pg_file_settings WHERE name = %s", (SIZED_MARKER,)).fetchone()
        assert marker == ("128MB",)  # pixdex's own choice at the first start
        conn.execute("ALTER SYSTEM SET shared_buffers = '200MB'")
    with _restart(home) as conn:
        assert _setting(conn, "shared_buffers") == "200MB"  # not sized back to 128 MB at the stop
        conn.execute("ALTER SYSTEM RESET shared_buffers")  # hands sizing back to pixdex
    with _restart(home) as conn:
        assert _setting(conn, "shared_buffers") == "128MB"


def test_a_size_from_before_the_marker_is_adopted_when_it_fits(home: Path) -> None:
    """A data folder sized by a pixdex that wrote no marker: a value near what the
    sizing wants is kept and becomes pixdex's own; it is not rewritten at every start."""
    with _start(home) as conn:
        conn.execute("ALTER SYSTEM SET shared_buffers = '150MB'")  # within 1.5x of 128 MB
        for name in (SIZED_MARKER, marker("effective_cache_size")):
            conn.execute(f'ALTER SYSTEM RESET "pixdex"."{name.split(".")[1]}"')
        cache = _setting(conn, "effective_cache_size")
    with _restart(home) as conn:
        assert _setting(conn, "shared_buffers") == "150MB"
        assert _setting(conn, "effective_cache_size") == cache
        markers = dict(conn.execute(
            "SELECT name, setting FROM pg_file_settings WHERE name LIKE 'pixdex.%'"
        ).fetchall())
        assert markers == {SIZED_MARKER: "150MB",
                           marker("effective_cache_size"): _megabytes_text(cache)}


def test_an_operators_cache_size_stays_when_the_buffers_are_resized(home: Path) -> None:
    """effective_cache_size is sized with shared_buffers, each with its own marker: one
    an operator set is kept while pixdex goes on sizing the other."""
    ours = memory_settings(_RAM, 0)["effective_cache_size"]
    with _start(home) as conn:
        # Applied at once (a reload), unlike shared_buffers.
        assert _setting(conn, "effective_cache_size") == _in_megabytes(ours)
        conn.execute("ALTER SYSTEM SET effective_cache_size = '1GB'")
        wanted = _build_graph(conn)
    with _restart(home) as conn:
        assert _setting(conn, "shared_buffers") == _in_megabytes(wanted)  # sized at the stop ...
        assert _setting(conn, "effective_cache_size") == "1GB"  # ... and this one kept
        conn.execute("ALTER SYSTEM RESET effective_cache_size")  # hands it back
    with _restart(home) as conn:
        assert _setting(conn, "effective_cache_size") == _in_megabytes(
            memory_settings(_RAM, _graph_bytes(conn))["effective_cache_size"])
        written = conn.execute("SELECT setting FROM pg_file_settings WHERE name = %s",
                               (marker("effective_cache_size"),)).fetchone()
        assert written is not None and written[0] == ours
