"""``/v1/images/{id}`` and ``/v1/datasets/{id}/images``: get, list, edit, delete, bytes.

Adding images is in :mod:`pixdex.api.routes_uploads`.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from pixdex.api.deps import Caller, settings
from pixdex.api.openapi import BINARY, binary_response, new_router, responses
from pixdex.app.service import images
from pixdex.app.service.schemas import Deleted, Image, ImageList, ImagePatch
from pixdex.app.sources import normalise_folder
from pixdex.models import ImageStatus, split_csv

router = new_router()
TAGS = ["images"]


@router.get(
    "/v1/datasets/<dataset_id>/images", tags=TAGS,
    summary="List a dataset's images (newest first) with filters",
    responses=responses("One page of images", 404),
)
def list_images(
    dataset_id: UUID,
    caller: Caller,
    status: Annotated[Literal["pending", "indexed", "failed"] | None, Query()] = None,
    folder: Annotated[str | None, Query(max_length=1000, description="and below")] = None,
    tag: Annotated[str | None, Query(description="user tags, comma-separated: all")] = None,
    split: Annotated[str | None, Query(max_length=200)] = None,
    batch_id: Annotated[str | None, Query(max_length=200)] = None,
    annotation_job_id: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=250)] = 50,
) -> ImageList:
    filters = images.ListFilters(
        status=None if status is None else ImageStatus(status),
        folder=None if folder is None else normalise_folder(folder),
        user_tags=split_csv(tag),
        split=split, batch_id=batch_id, annotation_job_id=annotation_job_id,
    )
    return images.list_images(
        settings(), caller.workspace, dataset_id, filters, offset=offset, limit=limit
    )


@router.get("/v1/images/<image_id>", tags=TAGS, summary="One image: status, tags, metadata",
            responses=responses("The image", 404))
def get_image(image_id: UUID, caller: Caller) -> Image:
    return images.get_image(settings(), caller.workspace, image_id)


@router.patch(
    "/v1/images/<image_id>", tags=TAGS, summary="Edit user tags, metadata, split, folder...",
    responses=responses("The image as it is now", 403, 404),
)
def update_image(image_id: UUID, body: ImagePatch, caller: Caller) -> Image:
    return images.update_image(settings(), caller.workspace, image_id, body)


@router.delete("/v1/images/<image_id>", tags=TAGS, summary="Delete an image",
               responses=responses("Deleted", 403, 404))
def delete_image(image_id: UUID, caller: Caller) -> Deleted:
    return images.delete_image(settings(), caller.workspace, image_id)


@router.get(
    "/v1/images/<image_id>/file", tags=TAGS,
    summary="The original file (a 307 redirect to a short-lived S3 link when it lives in S3)",
    responses={
        **responses("The file's bytes", 404, content={"application/octet-stream": BINARY}),
        307: {"description": "Location: a presigned S3 URL, valid PIXDEX_PRESIGNED_URL_SECONDS"},
    },
)
def image_file(image_id: UUID, caller: Caller) -> Response[str]:
    found = images.image_file(settings(), caller.workspace, image_id)
    if isinstance(found, images.FileLink):
        return Response(
            status_code=307,
            body="",
            headers={"Location": found.url, "Cache-Control": "private, no-store"},
        )
    return binary_response(found.data, found.content_type, found.name,
                           if_none_match=router.current_event.headers.get("if-none-match"))


@router.get(
    "/v1/images/<image_id>/thumbnail", tags=TAGS, summary="A JPEG thumbnail",
    responses=responses("JPEG", 404, 409, content={"image/jpeg": BINARY}),
)
def image_thumbnail(
    image_id: UUID,
    caller: Caller,
    size: Annotated[
        int, Query(ge=64, le=512, description="longer side in pixels: 64, 128, 256 or 512")
    ] = 256,
) -> Response[str]:
    found = images.thumbnail(settings(), caller.workspace, image_id, size)
    return binary_response(found.data, found.content_type, found.name,
                           if_none_match=router.current_event.headers.get("if-none-match"))
