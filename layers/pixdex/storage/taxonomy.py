"""SQL for the zero-shot taxonomy: workspace extensions, and re-tagging stored embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from pgvector import HalfVector
from psycopg.types.json import Jsonb

from pixdex.models import AutoTags, TagKind
from pixdex.storage.catalog import ensure_workspace
from pixdex.storage.connection import Conn
from pixdex.storage.images import tag_keys
from pixdex.taxonomy.model import TaxonomyExtension

__all__ = [
    "StoredEmbedding",
    "delete_extension",
    "embeddings_page",
    "list_extensions",
    "save_auto_tags",
    "upsert_extension",
]

StoredEmbedding = tuple[UUID, NDArray[np.float32], AutoTags]


def upsert_extension(conn: Conn, workspace: str, ext: TaxonomyExtension) -> None:
    workspace_id = ensure_workspace(conn, workspace)
    conn.execute(
        "INSERT INTO taxonomy_entries (workspace_id, kind, name, prompts, enabled)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (workspace_id, kind, name) DO UPDATE"
        " SET prompts = EXCLUDED.prompts, enabled = EXCLUDED.enabled, updated_at = now()",
        (workspace_id, ext.kind, ext.name, list(ext.prompts), ext.enabled),
    )


def delete_extension(conn: Conn, workspace: str, kind: TagKind, name: str) -> bool:
    """Forget a workspace change (the base entry, if any, applies again)."""
    row = conn.execute(
        "DELETE FROM taxonomy_entries t USING workspaces w WHERE w.id = t.workspace_id"
        " AND w.name = %s AND t.kind = %s AND t.name = %s RETURNING t.name",
        (workspace, kind, name),
    ).fetchone()
    return row is not None


def list_extensions(conn: Conn, workspace: str) -> list[TaxonomyExtension]:
    rows = conn.execute(
        "SELECT t.kind, t.name, t.prompts, t.enabled FROM taxonomy_entries t"
        " JOIN workspaces w ON w.id = t.workspace_id WHERE w.name = %s"
        " ORDER BY t.kind, t.name",
        (workspace,),
    ).fetchall()
    return [TaxonomyExtension.model_validate(row) for row in rows]


def embeddings_page(
    conn: Conn, dataset_id: UUID, model: str, after: UUID | None, limit: int
) -> list[StoredEmbedding]:
    """Indexed images of a dataset with their ``model`` embedding, in id order (keyset)."""
    rows = conn.execute(
        "SELECT i.id, e.embedding, i.auto_tags FROM images i"
        " JOIN image_embeddings e ON e.image_id = i.id AND e.model = %s"
        " WHERE i.dataset_id = %s AND i.status = 'indexed'"
        " AND (%s::uuid IS NULL OR i.id > %s::uuid) ORDER BY i.id LIMIT %s",
        (model, dataset_id, after, after, limit),
    ).fetchall()
    out: list[StoredEmbedding] = []
    for row in rows:
        value = row["embedding"]
        assert isinstance(value, HalfVector)
        vector = np.asarray(value.to_numpy(), dtype=np.float32)
        out.append((UUID(str(row["id"])), vector, AutoTags.model_validate(row["auto_tags"])))
    return out


def save_auto_tags(conn: Conn, rows: Sequence[tuple[UUID, AutoTags]]) -> None:
    """Replace the auto-tags (and their flat ``tag_keys`` copy) of existing images."""
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE images SET auto_tags = %s, tag_keys = %s, updated_at = now() WHERE id = %s",
            [(Jsonb(tags.model_dump()), tag_keys(tags), image_id) for image_id, tags in rows],
        )
