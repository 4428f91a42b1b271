"""Anchors: query images uploaded once (their embedding and where their bytes are)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from pgvector import HalfVector
from psycopg.types.json import Jsonb

from pixdex.errors import NotFoundError
from pixdex.models import BoundingBox
from pixdex.storage.catalog import ensure_workspace
from pixdex.storage.connection import Conn


@dataclass(frozen=True)
class AnchorRow:
    id: UUID
    model: str
    embedding: NDArray[np.float32]
    storage_key: str
    width: int
    height: int
    format: str
    bounding_box: BoundingBox | None
    created_at: datetime


def insert_anchor(
    conn: Conn, workspace: str, *, model: str, embedding: NDArray[np.float32],
    storage_key: str, width: int, height: int, format: str, box: BoundingBox | None,
) -> AnchorRow:
    workspace_id = ensure_workspace(conn, workspace)
    row = conn.execute(
        "INSERT INTO anchors (workspace_id, model, embedding, storage_key, width, height,"
        " format, bounding_box) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            workspace_id, model, HalfVector(embedding), storage_key, width, height, format,
            None if box is None else Jsonb(box.model_dump()),
        ),
    ).fetchone()
    assert row is not None
    return get_anchor(conn, workspace, UUID(str(row["id"])))


def get_anchor(conn: Conn, workspace: str, anchor_id: UUID) -> AnchorRow:
    row = conn.execute(
        "SELECT a.id, a.model, a.embedding, a.storage_key, a.width, a.height, a.format,"
        " a.bounding_box, a.created_at FROM anchors a JOIN workspaces w ON w.id = a.workspace_id"
        " WHERE w.name = %s AND a.id = %s",
        (workspace, anchor_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"anchor {anchor_id} does not exist", field="anchor_id")
    vector = row["embedding"]
    assert isinstance(vector, HalfVector)
    box = row["bounding_box"]
    return AnchorRow(
        id=UUID(str(row["id"])),
        model=str(row["model"]),
        embedding=np.asarray(vector.to_numpy(), dtype=np.float32),
        storage_key=str(row["storage_key"]),
        width=int(str(row["width"])),
        height=int(str(row["height"])),
        format=str(row["format"]),
        bounding_box=None if box is None else BoundingBox.model_validate(box),
        created_at=row["created_at"],  # type: ignore[arg-type]
    )


def delete_anchor(conn: Conn, workspace: str, anchor_id: UUID) -> str:
    """Delete the row; return its storage key so the caller can delete the bytes."""
    row = conn.execute(
        "DELETE FROM anchors a USING workspaces w WHERE a.workspace_id = w.id"
        " AND w.name = %s AND a.id = %s RETURNING a.storage_key",
        (workspace, anchor_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"anchor {anchor_id} does not exist", field="anchor_id")
    return str(row["storage_key"])
