"""Workspaces, datasets and registered embedding models (named vectors)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from psycopg import sql

from pixdex.errors import ConflictError, InvalidInputError, NotFoundError
from pixdex.inference.base import ModelSpec
from pixdex.storage.connection import Conn

_MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
Metric = Literal["cosine", "ip"]
# pgvector operator class (for the HNSW index) and distance operator per metric.
OPCLASS: dict[Metric, str] = {"cosine": "halfvec_cosine_ops", "ip": "halfvec_ip_ops"}
OPERATOR: dict[Metric, str] = {"cosine": "<=>", "ip": "<#>"}


@dataclass(frozen=True)
class ModelInfo:
    """A registered model (named vector) as the catalog records it."""

    name: str
    dim: int
    encodes_text: bool
    tags: bool
    metric: Metric
    imported: bool = False  # its vectors came from outside (``pixdex vectors import``)


@dataclass(frozen=True)
class DatasetRow:
    id: UUID
    workspace_id: UUID
    workspace: str
    name: str


def ensure_workspace(conn: Conn, name: str) -> UUID:
    row = conn.execute(
        "INSERT INTO workspaces (name) VALUES (%s)"
        " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        (name,),
    ).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


def _insert_dataset(
    conn: Conn, workspace: str, name: str, *, existing_ok: bool
) -> DatasetRow | None:
    """Insert the dataset; with ``existing_ok`` return the existing one, else None for it."""
    _check_dataset_name(name)
    workspace_id = ensure_workspace(conn, workspace)
    # DO UPDATE (a no-op) rather than DO NOTHING so RETURNING yields the existing row.
    on_conflict = "DO UPDATE SET name = EXCLUDED.name" if existing_ok else "DO NOTHING"
    row = conn.execute(
        "INSERT INTO datasets (workspace_id, name) VALUES (%s, %s)"
        f" ON CONFLICT (workspace_id, name) {on_conflict} RETURNING id",
        (workspace_id, name),
    ).fetchone()
    return None if row is None else DatasetRow(UUID(str(row["id"])), workspace_id, workspace, name)


def ensure_dataset(conn: Conn, workspace: str, name: str) -> DatasetRow:
    """The dataset, created if the workspace has none by that name."""
    row = _insert_dataset(conn, workspace, name, existing_ok=True)
    assert row is not None
    return row


def get_dataset(conn: Conn, workspace: str, name: str) -> DatasetRow:
    row = conn.execute(
        "SELECT d.id, d.workspace_id FROM datasets d JOIN workspaces w ON w.id = d.workspace_id"
        " WHERE w.name = %s AND d.name = %s",
        (workspace, name),
    ).fetchone()
    if row is None:
        raise dataset_not_found(name)
    return DatasetRow(UUID(str(row["id"])), UUID(str(row["workspace_id"])), workspace, name)


def dataset_not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"dataset {name!r} does not exist; index some images into it first "
        f"(pixdex index PATH --dataset {name})",
        field="dataset",
    )


def create_dataset(conn: Conn, workspace: str, name: str) -> DatasetRow:
    """A new dataset; ``ConflictError`` when the workspace already has one by that name."""
    row = _insert_dataset(conn, workspace, name, existing_ok=False)
    if row is None:
        raise ConflictError(
            f"dataset {name!r} already exists in this workspace; pick another name or use it",
            field="name",
        )
    return row


def get_dataset_by_id(conn: Conn, workspace: str, dataset_id: UUID) -> DatasetRow:
    """The dataset, scoped to ``workspace``: another workspace's id is simply not found."""
    row = conn.execute(
        "SELECT d.id, d.workspace_id, d.name FROM datasets d"
        " JOIN workspaces w ON w.id = d.workspace_id WHERE w.name = %s AND d.id = %s",
        (workspace, dataset_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"dataset {dataset_id} does not exist", field="dataset_id")
    return DatasetRow(
        UUID(str(row["id"])), UUID(str(row["workspace_id"])), workspace, str(row["name"])
    )


def dataset_ids(conn: Conn, workspace: str) -> list[UUID]:
    rows = conn.execute(
        "SELECT d.id FROM datasets d JOIN workspaces w ON w.id = d.workspace_id"
        " WHERE w.name = %s ORDER BY d.id",
        (workspace,),
    ).fetchall()
    return [UUID(str(r["id"])) for r in rows]


def dataset_summaries(
    conn: Conn, workspace: str, dataset_id: UUID | None = None
) -> list[dict[str, object]]:
    """Datasets of ``workspace`` (or just ``dataset_id``) with image counts per status."""
    return conn.execute(
        "SELECT d.id, d.name, d.created_at,"
        " count(i.id) AS images,"
        " count(i.id) FILTER (WHERE i.status = 'indexed') AS indexed,"
        " count(i.id) FILTER (WHERE i.status = 'failed') AS failed,"
        " count(i.id) FILTER (WHERE i.status = 'pending') AS pending"
        " FROM datasets d JOIN workspaces w ON w.id = d.workspace_id"
        " LEFT JOIN images i ON i.dataset_id = d.id"
        " WHERE w.name = %s AND (%s::uuid IS NULL OR d.id = %s::uuid)"
        " GROUP BY d.id ORDER BY d.name",
        (workspace, dataset_id, dataset_id),
    ).fetchall()


def readiness(conn: Conn, dataset_id: UUID) -> tuple[bool, bool]:
    """(has an indexed image, has a pending image): two index probes, no counting."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM images WHERE dataset_id = %(d)s AND status = 'indexed')"
        " AS indexed, EXISTS (SELECT 1 FROM images WHERE dataset_id = %(d)s"
        " AND status = 'pending') AS pending",
        {"d": dataset_id},
    ).fetchone()
    assert row is not None
    return bool(row["indexed"]), bool(row["pending"])


def delete_dataset(conn: Conn, workspace: str, dataset_id: UUID) -> int:
    """Delete the dataset with its images and embeddings; return how many images it had."""
    dataset = get_dataset_by_id(conn, workspace, dataset_id)
    with conn.transaction():
        row = conn.execute(
            "SELECT count(*) AS n FROM images WHERE dataset_id = %s", (dataset.id,)
        ).fetchone()
        # Embeddings first, by their own dataset index, rather than row by row through
        # the images cascade.
        conn.execute("DELETE FROM image_embeddings WHERE dataset_id = %s", (dataset.id,))
        conn.execute("DELETE FROM datasets WHERE id = %s", (dataset.id,))
    assert row is not None
    return int(str(row["n"]))


def list_datasets(conn: Conn, workspace: str) -> list[dict[str, object]]:
    return conn.execute(
        "SELECT d.id, d.name, d.created_at,"
        " count(i.id) AS images,"
        " count(i.id) FILTER (WHERE i.status = 'indexed') AS indexed,"
        " count(i.id) FILTER (WHERE i.status = 'failed') AS failed,"
        " count(i.id) FILTER (WHERE i.status = 'pending') AS pending"
        " FROM datasets d JOIN workspaces w ON w.id = d.workspace_id"
        " LEFT JOIN images i ON i.dataset_id = d.id"
        " WHERE w.name = %s GROUP BY d.id ORDER BY d.name",
        (workspace,),
    ).fetchall()


def _check_dataset_name(name: str) -> None:
    if not name or len(name) > 200 or name != name.strip() or "\x00" in name:
        raise InvalidInputError(
            "dataset name must be 1-200 characters without leading/trailing spaces",
            field="dataset",
        )


def valid_model_name(name: str) -> bool:
    return _MODEL_NAME.match(name) is not None


def hnsw_index_name(model: str) -> str:
    return "image_embeddings_hnsw_" + re.sub(r"[^a-z0-9]", "_", model)


def register_model(
    conn: Conn, spec: ModelSpec, dataset_id: UUID | None = None, *, metric: Metric = "cosine"
) -> None:
    """Record the model and make sure its partial HNSW (halfvec) index exists.

    ``metric`` picks how its vectors are compared: ``cosine`` for embeddings, ``ip``
    (inner product) for class-probability vectors scored against prompt class weights.
    """
    if not _MODEL_NAME.match(spec.name):
        raise InvalidInputError(f"invalid model name {spec.name!r}", field="model")
    if metric not in OPCLASS:
        raise InvalidInputError(f"unknown metric {metric!r}; use cosine or ip", field="metric")
    conn.execute(
        "INSERT INTO embedding_models (name, dim, encodes_text, tags, metric)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
        (spec.name, spec.dim, spec.encodes_text, spec.tags, metric),
    )
    row = conn.execute(
        "SELECT dim, metric, imported FROM embedding_models WHERE name = %s", (spec.name,)
    ).fetchone()
    assert row is not None
    if row["imported"]:
        raise ConflictError(
            f"model name {spec.name!r} holds imported vectors (pixdex vectors import), not "
            "this model's; pixdex never adds its own vectors to them",
            field="model",
        )
    if int(str(row["dim"])) != spec.dim or str(row["metric"]) != metric:
        # One name, one vector space: mixing would make its index and scores meaningless.
        raise ConflictError(
            f"model {spec.name!r} is registered with dim {row['dim']} and metric "
            f"{row['metric']}, not dim {spec.dim} and metric {metric}; use another name",
            field="model",
        )
    # CREATE INDEX IF NOT EXISTS can still race on the catalog; the advisory lock keeps
    # two first-time ingests from colliding.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (spec.name,))
    conn.execute(hnsw_index_statement(spec.name, spec.dim, metric))
    if dataset_id is not None:
        add_dataset_model(conn, dataset_id, spec.name)


def hnsw_index_statement(
    model: str, dim: int, metric: Metric, *, concurrently: bool = False
) -> sql.Composed:
    """``CREATE INDEX IF NOT EXISTS`` of the model's partial HNSW index (``concurrently``:
    without blocking writes to the table, outside any transaction)."""
    return sql.SQL(
        "CREATE INDEX {how} IF NOT EXISTS {index} ON image_embeddings"
        " USING hnsw ((embedding::halfvec({dim})) {opclass})"
        " WITH (m = 16, ef_construction = 64) WHERE model = {model}"
    ).format(
        how=sql.SQL("CONCURRENTLY" if concurrently else ""),
        index=sql.Identifier(hnsw_index_name(model)),
        dim=sql.Literal(dim),
        opclass=sql.SQL(OPCLASS[metric]),
        model=sql.Literal(model),
    )


def register_imported_model(conn: Conn, name: str, dim: int) -> bool:
    """Record ``name`` as a named vector of imported ``dim``-d vectors (cosine), without
    its HNSW index (the import builds it once the rows are in: far faster than growing it
    row by row). True when this call created it.

    Refused (409) for a model pixdex computes itself, and for a dimension other than the
    one the name already has: one name, one vector space.
    """
    if not _MODEL_NAME.match(name):
        raise InvalidInputError(f"invalid model name {name!r}", field="model")
    created = conn.execute(
        "INSERT INTO embedding_models (name, dim, encodes_text, tags, metric, imported)"
        " VALUES (%s, %s, false, false, 'cosine', true) ON CONFLICT (name) DO NOTHING"
        " RETURNING name",
        (name, dim),
    ).fetchone() is not None
    info = model_info(conn, name)
    if not info.imported:
        raise ConflictError(
            f"model {name!r} is computed by pixdex ({info.dim}-d); import your vectors under "
            "a name of their own", field="model",
        )
    if info.dim != dim:
        raise ConflictError(
            f"model {name!r} holds {info.dim}-d vectors; these are {dim}-d. Import them "
            f"under another model name, or give {info.dim}-d vectors", field="model",
        )
    return created


def add_dataset_model(conn: Conn, dataset_id: UUID, model: str) -> None:
    """List ``model`` among the dataset's named vectors (every indexed image has one)."""
    conn.execute(
        "INSERT INTO dataset_models (dataset_id, model) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (dataset_id, model),
    )


def dataset_models(conn: Conn, dataset_id: UUID) -> list[str]:
    rows = conn.execute(
        "SELECT model FROM dataset_models WHERE dataset_id = %s ORDER BY model", (dataset_id,)
    ).fetchall()
    return [str(r["model"]) for r in rows]


# An indexed image with a file: imported vectors have neither a file nor a hash, so the
# (dataset_id, sha256) index answers this without reading a dataset's imported rows.
_INDEXED_FILE = (
    "SELECT 1 FROM images i WHERE i.dataset_id = {d} AND i.sha256 IS NOT NULL"
    " AND i.storage_key IS NOT NULL AND i.status = 'indexed'"
)


def datasets_without_model(conn: Conn, dataset_ids: Sequence[UUID], model: str) -> list[str]:
    """Names of those datasets with indexed images that do not list ``model`` (not every
    image has its vector). Datasets with nothing indexed have nothing to miss, nor do
    images imported with their vectors (no file: pixdex computes none of its models' for
    them, and a search by those models does not rank them)."""
    rows = conn.execute(
        "SELECT d.name FROM datasets d WHERE d.id = ANY(%s) AND NOT EXISTS"
        " (SELECT 1 FROM dataset_models m WHERE m.dataset_id = d.id AND m.model = %s)"
        f" AND EXISTS ({_INDEXED_FILE.format(d='d.id')}) ORDER BY d.name",
        (list(dataset_ids), model),
    ).fetchall()
    return [str(r["name"]) for r in rows]


def has_indexed_files(conn: Conn, dataset_id: UUID) -> bool:
    """Whether the dataset has an indexed image with a file (not only imported vectors)."""
    row = conn.execute(
        f"SELECT EXISTS ({_INDEXED_FILE.format(d='%s')}) AS found", (dataset_id,)
    ).fetchone()
    return bool(row is not None and row["found"])


def model_info(conn: Conn, model: str) -> ModelInfo:
    row = conn.execute(
        "SELECT name, dim, encodes_text, tags, metric, imported FROM embedding_models"
        " WHERE name = %s",
        (model,),
    ).fetchone()
    if row is None:
        raise model_not_found(model)
    return model_from_row(row)


def model_not_found(model: str) -> NotFoundError:
    return NotFoundError(f"no images were embedded with model {model!r}", field="model")


def model_from_row(row: dict[str, object]) -> ModelInfo:
    """An ``embedding_models`` row (name, dim, encodes_text, tags, metric, imported)."""
    metric = str(row["metric"])
    assert metric in OPCLASS
    return ModelInfo(
        str(row["name"]), int(str(row["dim"])), bool(row["encodes_text"]), bool(row["tags"]),
        "ip" if metric == "ip" else "cosine", bool(row["imported"]),
    )


def model_dim(conn: Conn, model: str) -> int:
    return model_info(conn, model).dim
