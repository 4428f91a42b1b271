"""``/v1/anchors``: upload a query image once, search with it (``anchor_id``) many times."""

from __future__ import annotations

import json
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import File, Form, UploadFile
from pydantic import ValidationError

from pixdex.api.deps import Caller, settings
from pixdex.api.openapi import new_router, responses
from pixdex.app.service import anchors
from pixdex.app.service.schemas import Anchor, CreateAnchor, Deleted
from pixdex.errors import InvalidInputError, PayloadTooLargeError
from pixdex.models import BoundingBox

router = new_router()
TAGS = ["anchors"]


@router.post(
    "/v1/anchors", status_code=201, tags=TAGS, summary="Upload a query image (base64 or URL)",
    responses=responses("The anchor", 403, 413, 415, status=201),
)
def create_anchor(body: CreateAnchor, caller: Caller) -> Anchor:
    data = anchors.image_bytes(settings(), body.image, "image")
    return anchors.create_anchor(settings(), caller.workspace, data, body.bounding_box)


@router.post(
    "/v1/anchors/upload", status_code=201, tags=TAGS,
    summary="Upload a query image file (multipart/form-data, field 'file')",
    responses=responses("The anchor", 403, 413, 415, status=201),
)
def upload_anchor(
    caller: Caller,
    file: Annotated[UploadFile, File(description="the query image")],
    bounding_box: Annotated[
        str | None, Form(description='JSON: {"x":0.1,"y":0.2,"width":0.5,"height":0.6}')
    ] = None,
) -> Anchor:
    return anchor_from_upload(caller.workspace, file, parse_bounding_box(bounding_box))


def parse_bounding_box(text: str | None) -> BoundingBox | None:
    """A form or query-string ``bounding_box``: JSON ``{x, y, width, height}`` fractions."""
    if not text:
        return None
    try:
        return BoundingBox.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InvalidInputError(
            f"bounding_box must be JSON {{x, y, width, height}} fractions: {exc}",
            field="bounding_box",
        ) from None


def anchor_from_upload(workspace: str, file: object, box: BoundingBox | None) -> Anchor:
    """An anchor from a multipart ``file`` part (checked: present, not too large)."""
    if not isinstance(file, UploadFile) or not file.content:
        raise InvalidInputError("file must be a non-empty file part", field="file")
    if len(file.content) > settings().max_file_bytes:
        raise PayloadTooLargeError(
            f"file is {len(file.content):,} bytes; the limit is {settings().max_file_bytes:,}",
            field="file",
        )
    return anchors.create_anchor(settings(), workspace, file.content, box)


@router.get("/v1/anchors/<anchor_id>", tags=TAGS, summary="An anchor",
            responses=responses("The anchor", 404))
def get_anchor(anchor_id: UUID, caller: Caller) -> Anchor:
    return anchors.get_anchor(settings(), caller.workspace, anchor_id)


@router.delete("/v1/anchors/<anchor_id>", tags=TAGS, summary="Delete an anchor",
               responses=responses("Deleted", 403, 404))
def delete_anchor(anchor_id: UUID, caller: Caller) -> Deleted:
    return anchors.delete_anchor(settings(), caller.workspace, anchor_id)
