"""Removing images from the index (rows and embeddings; the files themselves stay)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from pixdex.config import Settings, get_settings
from pixdex.models import IndexedFile, IndexReport
from pixdex.storage import catalog, images
from pixdex.storage.connection import connect


def remove(
    dataset: str,
    *,
    uris: Sequence[str] = (),
    uri_prefixes: Sequence[str] = (),
    ids: Sequence[UUID] = (),
    workspace: str | None = None,
    settings: Settings | None = None,
) -> IndexReport:
    """Remove by exact storage URI, by URI prefix (a directory) or by image id."""
    settings = settings or get_settings()
    workspace = workspace or settings.workspace
    report = IndexReport()
    with connect(settings) as conn, conn.transaction():
        ds = catalog.get_dataset(conn, workspace, dataset)
        keys = list(uris)
        for prefix in uri_prefixes:
            keys.extend(images.keys_under(conn, ds.id, prefix))
        for key, image_id in images.delete_by_keys(conn, ds.id, keys):
            report.images.append(IndexedFile(path=key, id=image_id, status="removed"))
        removed_ids = images.delete_by_ids(conn, workspace, ids, dataset_id=ds.id)
        for image_id in removed_ids:
            report.images.append(IndexedFile(path=str(image_id), id=image_id, status="removed"))
    report.removed = len(report.images)
    return report
