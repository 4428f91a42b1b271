"""API keys: rows hold the public prefix and the SHA-256 of the key, never the key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from pixdex.errors import NotFoundError
from pixdex.storage.catalog import ensure_workspace
from pixdex.storage.connection import Conn


@dataclass(frozen=True)
class KeyRow:
    id: UUID
    workspace: str
    prefix: str
    secret_hash: bytes
    scope: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


_COLUMNS = (
    "k.id, w.name AS workspace, k.prefix, k.secret_hash, k.scope, k.name, k.created_at,"
    " k.revoked_at"
)


def _row(r: dict[str, object]) -> KeyRow:
    secret = r["secret_hash"]
    assert isinstance(secret, bytes | memoryview)
    return KeyRow(
        id=UUID(str(r["id"])),
        workspace=str(r["workspace"]),
        prefix=str(r["prefix"]),
        secret_hash=bytes(secret),
        scope=str(r["scope"]),
        name=None if r["name"] is None else str(r["name"]),
        created_at=r["created_at"],  # type: ignore[arg-type]
        revoked_at=r["revoked_at"],  # type: ignore[arg-type]
    )


def insert_key(
    conn: Conn, workspace: str, *, prefix: str, secret_hash: bytes, scope: str, name: str | None
) -> KeyRow:
    workspace_id = ensure_workspace(conn, workspace)
    row = conn.execute(
        "INSERT INTO api_keys (workspace_id, prefix, secret_hash, scope, name)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (workspace_id, prefix, secret_hash, scope, name),
    ).fetchone()
    assert row is not None
    return find_by_id(conn, UUID(str(row["id"])))


def find_by_prefix(conn: Conn, prefix: str) -> KeyRow | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
        " WHERE k.prefix = %s",
        (prefix,),
    ).fetchone()
    return None if row is None else _row(row)


def find_by_id(conn: Conn, key_id: UUID) -> KeyRow:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
        " WHERE k.id = %s",
        (key_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"API key {key_id} does not exist", field="key_id")
    return _row(row)


def list_keys(conn: Conn, workspace: str) -> list[KeyRow]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id"
        " WHERE w.name = %s ORDER BY k.created_at, k.id",
        (workspace,),
    ).fetchall()
    return [_row(r) for r in rows]


def revoke_key(conn: Conn, key_id: UUID) -> KeyRow:
    conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s", (key_id,)
    )
    return find_by_id(conn, key_id)
