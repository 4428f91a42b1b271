"""``/v1/datasets/{id}/vectors``: bring your own vectors (small batches; files through
``pixdex vectors import``)."""

from __future__ import annotations

from uuid import UUID

from pixdex.api.deps import Caller, settings
from pixdex.api.openapi import new_router, responses
from pixdex.app.service import vectors
from pixdex.app.service.schemas import ImportVectors
from pixdex.models import MAX_VECTORS_PER_REQUEST, VectorImportReport

router = new_router()


@router.post(
    "/v1/datasets/<dataset_id>/vectors", tags=["vectors"],
    summary=f"Import vectors as images without a file (up to {MAX_VECTORS_PER_REQUEST} a call)",
    description=(
        "Each row (name, embedding, optional folder, split, tags, batch_id, "
        "annotation_job_id, metadata) becomes an indexed image with no file, searchable with "
        "`vector` + `model` or `like_image` + `model`. The model is created with the "
        "vectors' dimension if new. Bad rows (no name, wrong dimension, NaN or infinity, "
        "zero vector, a name repeated or already in the dataset) are refused one by one and "
        "reported with their 0-based row number; the rest are imported. 409 when the "
        "vectors' dimension is not the model's (the message names it) or the model is one "
        "pixdex computes; 413 past the row cap."
    ),
    responses=responses("What was imported and what was refused", 403, 404, 409, 413),
)
def import_vectors(dataset_id: UUID, body: ImportVectors, caller: Caller) -> VectorImportReport:
    return vectors.import_vectors(settings(), caller.workspace, dataset_id, body)
