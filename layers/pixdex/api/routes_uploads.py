"""Adding images to a dataset: JSON (base64 or URLs), multipart file uploads, or upload
slots (presigned PUT URLs, for originals larger than a request may carry).

202: the images are stored and ``pending``; they are indexed after the answer
(:mod:`pixdex.app.service.indexing`), so no call waits on the model.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import File, Form, UploadFile

from pixdex.api.deps import Caller, settings
from pixdex.api.openapi import new_router, responses
from pixdex.app.curation_schemas import DuplicateGate
from pixdex.app.service import slots, uploads
from pixdex.app.service.schemas import AddedImages, AddImages, CreateSlots, ImageMeta, UploadSlots
from pixdex.errors import InvalidInputError
from pixdex.models import split_csv

router = new_router()
TAGS = ["images"]


@router.post(
    "/v1/datasets/<dataset_id>/images", tags=TAGS, status_code=202,
    summary="Add images by base64 or URL (up to 128 per call); indexed after the answer",
    responses=responses(
        "One {id, status} per image, in order; pending ones are indexed next",
        403, 404, 413, 415, status=202,
    ),
)
def add_images(dataset_id: UUID, body: AddImages, caller: Caller) -> AddedImages:
    return uploads.add_images(settings(), caller.workspace, dataset_id, body.images,
                              body.duplicate_gate())


def _json_form(text: str | None, field: str) -> Any:
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{field} must be JSON: {exc.msg}", field=field) from None


@router.post(
    "/v1/datasets/<dataset_id>/images/upload", tags=TAGS, status_code=202,
    summary="Upload image files (multipart/form-data, field 'file', repeatable)",
    responses=responses(
        "One {id, status} per file, in order; pending ones are indexed next",
        403, 404, 413, 415, status=202,
    ),
)
def upload_images(
    dataset_id: UUID,
    caller: Caller,
    file: Annotated[list[UploadFile], File(description="one or more image files")],
    name: Annotated[str | None, Form(max_length=255)] = None,
    folder: Annotated[str | None, Form(max_length=1000)] = None,
    tags: Annotated[str | None, Form(description="comma-separated user tags")] = None,
    split: Annotated[str | None, Form(max_length=200)] = None,
    batch_id: Annotated[str | None, Form(max_length=200)] = None,
    annotation_job_id: Annotated[str | None, Form(max_length=200)] = None,
    metadata: Annotated[str | None, Form(description="a JSON object")] = None,
    annotations: Annotated[str | None, Form(description='JSON class counts {"cat": 2}')] = None,
    on_duplicate: Annotated[
        Literal["allow", "skip", "link"] | None,
        Form(description="the duplicate gate for these files; default: the dataset's"),
    ] = None,
    duplicate_level: Annotated[int, Form(description="the gate's level, 0-4")] = 1,
) -> AddedImages:
    files = file if isinstance(file, list) else [file]
    meta = ImageMeta.model_validate({
        "name": name, "folder": folder,
        "tags": split_csv(tags),
        "split": split, "batch_id": batch_id, "annotation_job_id": annotation_job_id,
        "metadata": _json_form(metadata, "metadata") or {},
        "annotations": _json_form(annotations, "annotations") or {},
    })
    gate = None
    if on_duplicate is not None:
        gate = DuplicateGate.model_validate({"on_duplicate": on_duplicate,
                                             "level": duplicate_level})
    return uploads.upload_files(
        settings(), caller.workspace, dataset_id,
        [(f.filename, f.content) for f in files if isinstance(f, UploadFile)], meta, gate,
    )


def _server_url() -> str:
    """This server as the caller reached it: where a local slot's PUT URL points."""
    headers = router.current_event.headers
    scheme = headers.get("x-forwarded-proto") or "http"
    return f"{scheme}://{headers.get('host') or 'localhost'}"


@router.post(
    "/v1/datasets/<dataset_id>/uploads", tags=TAGS, status_code=201,
    summary="Ask for upload slots: one presigned PUT URL per file (large originals)",
    description=(
        "Each file gets an image id (pending at once) and a URL to PUT exactly `size` "
        "bytes to, with the given headers and without the API key. The image is indexed "
        "once its bytes arrive; follow it with GET /v1/images/{id}. A slot unused by "
        "`expires_at` (plus a short grace) ends failed."
    ),
    responses=responses("One slot per file, in order", 403, 404, 413, status=201),
)
def create_upload_slots(dataset_id: UUID, body: CreateSlots, caller: Caller) -> UploadSlots:
    return slots.create_slots(
        settings(), caller.workspace, dataset_id, body, server_url=_server_url()
    )
