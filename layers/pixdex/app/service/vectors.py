"""``POST /v1/datasets/{id}/vectors``: import a small batch of vectors (bring your own
embeddings) as images without a file; see :mod:`pixdex.app.vectors`."""

from __future__ import annotations

from uuid import UUID

import numpy as np

from pixdex.app.service.schemas import ImportVectors
from pixdex.app.vector_rows import VectorBatch
from pixdex.app.vectors import import_rows
from pixdex.config import Settings
from pixdex.models import VectorImportReport
from pixdex.storage import catalog
from pixdex.storage.connection import connect


def batch_of(body: ImportVectors) -> VectorBatch:
    """The request's rows as one columnar batch (row k is ``vectors[k]``)."""
    rows = body.vectors
    arrays = [np.asarray(r.embedding if r.embedding is not None else (), dtype=np.float32)
              for r in rows]
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)])
    return VectorBatch(
        first_row=0,
        names=[r.name for r in rows],
        values=np.concatenate(arrays) if arrays else np.zeros(0, np.float32),
        offsets=offsets,
        present=np.array([r.embedding is not None for r in rows], dtype=bool),
        folders=[r.folder for r in rows],
        splits=[r.split for r in rows],
        batch_ids=[r.batch_id for r in rows],
        annotation_job_ids=[r.annotation_job_id for r in rows],
        tags=[r.tags for r in rows],
        metadata=[r.metadata for r in rows],
    )


def import_vectors(
    settings: Settings, workspace: str, dataset_id: UUID, body: ImportVectors
) -> VectorImportReport:
    with connect(settings) as conn:
        dataset = catalog.get_dataset_by_id(conn, workspace, dataset_id)
    return import_rows(settings, dataset.id, dataset.name, body.model, batch_of(body))
