"""Process-wide database access: one connection pool per process, created lazily.

Without a database URL the embedded PostgreSQL is started; its module is loaded by name
(:data:`EMBEDDED_SERVER`) so that the Lambda functions, which always have a URL and whose
layers do not carry the server, never import it (the contract in pyproject.toml checks).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from threading import Lock
from weakref import WeakKeyDictionary

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from pixdex.config import Settings, get_settings
from pixdex.errors import DatabaseUnavailableError, SearchTimeoutError
from pixdex.storage.migrate import apply_migrations

Conn = psycopg.Connection[dict[str, object]]

_pool_lock = Lock()
_pools: dict[str, ConnectionPool[Conn]] = {}


EMBEDDED_SERVER = "pixdex.storage.embedded"


def database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    try:
        embedded = importlib.import_module(EMBEDDED_SERVER)
    except ModuleNotFoundError as exc:
        raise DatabaseUnavailableError(
            f"no database configured and the embedded PostgreSQL is not installed here "
            f"({exc.name} is missing): set PIXDEX_DATABASE_URL, or PIXDEX_DATABASE_SECRET_ARN "
            "naming a Secrets Manager secret",
            field="database_url",
        ) from exc
    url: str = embedded.ensure_server(
        settings.pgdata_dir, linger_seconds=settings.db_linger_seconds,
        autoprewarm=settings.db_autoprewarm,
    )
    return url


def _configure(conn: Conn) -> None:
    register_vector(conn)


# When each pooled connection was last used (time.monotonic(), set by ``connect``; not a
# pool ``reset`` callback: with one, the pool returns every connection through a worker
# thread, a hand-off that cost more than the check it would save).
_last_used: WeakKeyDictionary[Conn, float] = WeakKeyDictionary()
# A connection used this recently is not checked before its next use.
CHECK_AFTER_IDLE_SECONDS = 2.0


def _check_if_idle(conn: Conn) -> None:
    """Replace a connection the server dropped (failover, restart, a proxy's idle timeout)
    before use instead of failing the request that borrowed it. Those drops come after
    idle time, so one in steady use skips the check: its round trip is a tenth of a
    search's bookkeeping. A restart inside the window fails one request, as it would
    between check and use anyway."""
    if time.monotonic() - _last_used.get(conn, float("-inf")) < CHECK_AFTER_IDLE_SECONDS:
        return
    ConnectionPool.check_connection(conn)


def _open_pool(url: str, *, migrate: bool = True) -> ConnectionPool[Conn]:
    try:
        with psycopg.connect(url, autocommit=True) as bootstrap:
            if migrate:  # never on a read replica: it is read-only, and follows the writer
                apply_migrations(bootstrap)
    except psycopg.OperationalError as exc:
        # The URL may hold a password: never echo it.
        raise DatabaseUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc
    pool: ConnectionPool[Conn] = ConnectionPool(
        url,
        min_size=1,
        max_size=8,
        # No server-side prepared statements: a prepared plan keeps the planner settings it
        # was made under, and vector queries switch those per call (exact vs HNSW).
        kwargs={"row_factory": dict_row, "prepare_threshold": None},
        configure=_configure,
        check=_check_if_idle,
        open=True,
        name="pixdex",
    )
    pool.wait(timeout=30)
    return pool


def get_pool(settings: Settings | None = None, *, readonly: bool = False) -> ConnectionPool[Conn]:
    settings = settings or get_settings()
    if readonly and settings.database_read_url is not None:
        read_url = settings.database_read_url.get_secret_value()
        key = f"read:{read_url}"  # its own pool even where it names the writer's URL
        with _pool_lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = _open_pool(read_url, migrate=False)
            return pool
    key = str(settings.database_url.get_secret_value() if settings.database_url else settings.home)
    with _pool_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _open_pool(database_url(settings))
            _pools[key] = pool
        return pool


@contextmanager
def connect(settings: Settings | None = None, *, readonly: bool = False) -> Iterator[Conn]:
    """Borrow a pooled connection (transaction committed on success, rolled back on error).

    ``readonly``: the query only reads, so it may go to a read replica
    (``database_read_url``); replicas lag the writer by a little, which searches accept.
    """
    with get_pool(settings, readonly=readonly).connection() as conn:
        try:
            yield conn
        finally:
            _last_used[conn] = time.monotonic()


def deadline_setting(milliseconds: int) -> sql.Composable:
    """The select-list item that sets this transaction's statement timeout: for a
    statement that has other work to do (one round trip fewer than a statement of its own).

    ``set_config(..., true)`` is transaction-scoped and a plain SELECT, so RDS Proxy does
    not pin the session the way a ``SET`` would.
    """
    return sql.SQL("set_config('statement_timeout', {}, true)").format(
        sql.Literal(f"{int(milliseconds)}ms")
    )


@contextmanager
def statement_deadline(conn: Conn, milliseconds: int) -> Iterator[None]:
    """Cancel any statement of this transaction that runs longer than ``milliseconds``
    (a search must not hold one of the pool's connections for minutes), as a 503."""
    conn.execute(sql.SQL("SELECT {}").format(deadline_setting(milliseconds)))
    with deadline_errors(milliseconds):
        yield


@contextmanager
def deadline_errors(milliseconds: int) -> Iterator[None]:
    """A statement cancelled by the deadline (set by :func:`deadline_setting`) as a 503."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:
        raise SearchTimeoutError(
            f"the search ran longer than {milliseconds / 1000:g} s and was stopped; narrow "
            "it (a dataset, filters, a threshold) or retry when the server is less busy"
        ) from exc


def close_pools() -> None:
    with _pool_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
