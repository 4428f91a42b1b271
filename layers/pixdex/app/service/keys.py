"""API keys: create (shown once), authenticate (constant-time), list, revoke.

A key reads ``pdx_<prefix>_<secret>``. The prefix finds the row; the SHA-256 of the whole
key is compared with :func:`hmac.compare_digest`. Keys are 256-bit random strings, so a
fast hash is safe (stretching only matters for guessable secrets such as passwords).
Scopes: ``write`` (everything in the workspace) and ``read`` (GET requests and searches).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from pixdex.config import Settings
from pixdex.errors import AuthenticationError, InvalidInputError
from pixdex.storage import keys as key_rows
from pixdex.storage.connection import connect

Scope = Literal["read", "write"]
_KEY = re.compile(r"^pdx_([a-z0-9]{8,32})_([A-Za-z0-9_-]{20,100})$")
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Compared against when the prefix is unknown, so both paths do the same work.
_DUMMY_HASH = hashlib.sha256(b"pixdex-no-such-key").digest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: every query runs in ``workspace``."""

    workspace: str
    scope: Scope
    key_id: UUID | None  # None: local mode without keys


@dataclass(frozen=True)
class KeyInfo:
    id: UUID
    workspace: str
    prefix: str
    scope: Scope
    name: str | None
    created: datetime
    revoked: datetime | None


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    key: str  # the only time the full key exists outside its owner's hands


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _info(row: key_rows.KeyRow) -> KeyInfo:
    scope: Scope = "read" if row.scope == "read" else "write"
    return KeyInfo(row.id, row.workspace, row.prefix, scope, row.name, row.created_at,
                   row.revoked_at)


def check_workspace_name(workspace: str) -> str:
    if not _WORKSPACE.match(workspace):
        raise InvalidInputError(
            f"workspace must be 1-100 characters (letters, digits, '.', '_', '-'), "
            f"got {workspace!r}",
            field="workspace",
        )
    return workspace


def create_key(
    settings: Settings, workspace: str, *, scope: Scope = "write", name: str | None = None
) -> NewKey:
    check_workspace_name(workspace)
    if name is not None and not 1 <= len(name) <= 200:
        raise InvalidInputError("key name must be 1-200 characters", field="name")
    prefix = secrets.token_hex(6)
    key = f"pdx_{prefix}_{secrets.token_urlsafe(32)}"
    with connect(settings) as conn:
        row = key_rows.insert_key(
            conn, workspace, prefix=prefix, secret_hash=_hash(key), scope=scope, name=name
        )
    return NewKey(_info(row), key)


def authenticate(settings: Settings, key: str | None) -> Principal:
    """The principal a key stands for; ``AuthenticationError`` (401) otherwise."""
    if not key:
        raise AuthenticationError(
            "missing API key: send 'Authorization: Bearer KEY' (or ?api_key=KEY); "
            "create one with 'pixdex keys create --workspace NAME'",
            field="authorization",
        )
    match = _KEY.match(key)
    with connect(settings) as conn:
        row = key_rows.find_by_prefix(conn, match[1]) if match else None
    expected = row.secret_hash if row is not None else _DUMMY_HASH
    valid = hmac.compare_digest(_hash(key), expected) and row is not None
    if not valid or row is None:
        raise AuthenticationError("invalid API key", field="authorization")
    if row.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked", field="authorization")
    return Principal(row.workspace, "read" if row.scope == "read" else "write", row.id)


def list_keys(settings: Settings, workspace: str) -> list[KeyInfo]:
    with connect(settings) as conn:
        return [_info(row) for row in key_rows.list_keys(conn, workspace)]


def revoke_key(settings: Settings, key_id: UUID) -> KeyInfo:
    with connect(settings) as conn:
        return _info(key_rows.revoke_key(conn, key_id))
