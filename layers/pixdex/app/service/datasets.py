"""Datasets: create, list, get (status and counts), delete (images, embeddings, bytes).

Status: READY when no image of the dataset is waiting to be indexed, INDEXING otherwise.
Every function is scoped to ``workspace``: another workspace's id is "not found".
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pixdex.app.service import blobs
from pixdex.app.service.schemas import Dataset, DatasetList, Deleted, ImageCounts
from pixdex.config import Settings
from pixdex.errors import ConflictError, InvalidInputError, NotFoundError
from pixdex.storage import catalog, dataset_indexes, slots
from pixdex.storage.connection import Conn, connect


def _dataset(row: dict[str, object]) -> Dataset:
    counts = ImageCounts(
        total=int(str(row["images"])),
        indexed=int(str(row["indexed"])),
        pending=int(str(row["pending"])),
        failed=int(str(row["failed"])),
    )
    created = row["created_at"]
    assert isinstance(created, datetime)
    return Dataset(
        id=UUID(str(row["id"])),
        name=str(row["name"]),
        status="INDEXING" if counts.pending else "READY",
        created=created,
        images=counts,
    )


def summary(conn: Conn, workspace: str, dataset_id: UUID) -> Dataset:
    rows = catalog.dataset_summaries(conn, workspace, dataset_id)
    if not rows:
        raise NotFoundError(f"dataset {dataset_id} does not exist", field="dataset_id")
    return _dataset(rows[0])


def create_dataset(settings: Settings, workspace: str, name: str) -> Dataset:
    with connect(settings) as conn:
        try:
            row = catalog.create_dataset(conn, workspace, name)
        except InvalidInputError as exc:
            raise InvalidInputError(exc.message, field="name") from None
        return summary(conn, workspace, row.id)


def list_datasets(settings: Settings, workspace: str) -> DatasetList:
    with connect(settings) as conn:
        slots.expire_overdue(conn)
        return DatasetList(
            datasets=[_dataset(r) for r in catalog.dataset_summaries(conn, workspace)]
        )


def get_dataset(settings: Settings, workspace: str, dataset_id: UUID) -> Dataset:
    with connect(settings) as conn:
        slots.expire_overdue(conn)
        return summary(conn, workspace, dataset_id)


def delete_dataset(settings: Settings, workspace: str, dataset_id: UUID) -> Deleted:
    with connect(settings) as conn:
        count = catalog.delete_dataset(conn, workspace, dataset_id)
        dataset_indexes.drop_dataset_indexes(conn, dataset_id)
    # Rows first: once they are gone nothing refers to the bytes any more.
    blobs.delete_dataset_blobs(settings, dataset_id)
    return Deleted(id=dataset_id, images=count)


def resolve_dataset(conn: Conn, workspace: str, name_or_id: str) -> catalog.DatasetRow:
    """A dataset given by id or by name (``in_dataset`` accepts both)."""
    try:
        dataset_id = UUID(name_or_id)
    except ValueError:
        return catalog.get_dataset(conn, workspace, name_or_id)
    try:
        return catalog.get_dataset_by_id(conn, workspace, dataset_id)
    except NotFoundError:
        return catalog.get_dataset(conn, workspace, name_or_id)  # a name that looks like a UUID


def ensure_dataset(settings: Settings, workspace: str, name: str) -> Dataset:
    """The dataset called ``name``, created if missing (a vendor's app or class that a
    client uses without creating it first)."""
    with connect(settings) as conn:
        try:
            row = catalog.get_dataset(conn, workspace, name)
        except NotFoundError:
            return create_dataset(settings, workspace, name)
        return summary(conn, workspace, row.id)


def find_dataset(settings: Settings, workspace: str, name_or_id: str, field: str) -> Dataset:
    """A dataset by id or name, or 404 naming ``field``."""
    with connect(settings, readonly=True) as conn:
        try:
            row = resolve_dataset(conn, workspace, name_or_id)
        except NotFoundError:
            raise NotFoundError(f"dataset {name_or_id!r} does not exist", field=field) from None
        return summary(conn, workspace, row.id)


def require_ready(settings: Settings, workspace: str, name_or_id: str, field: str) -> Dataset:
    """The dataset, or 409 while any of its images is still being indexed."""
    dataset = find_dataset(settings, workspace, name_or_id, field)
    if dataset.status != "READY":
        raise ConflictError(
            f"dataset {dataset.name!r} is {dataset.status} ({dataset.images.pending} images "
            "pending); retry when its status is READY", field=field,
        )
    return dataset
