"""Visual Layer's visual search, with the API key as the ``Bearer`` token.

* ``POST /api/v1/dataset/{dataset_id}/search-image-similarity?threshold=&entity_type=
  [&bounding_box=JSON]``, multipart ``file``: stores the query image as an anchor and
  answers ``{"anchor_media_id", "anchor_type": "UPLOAD"}``.
* ``GET /api/v1/explore/{dataset_id}?anchor_media_id=&anchor_type=UPLOAD|MEDIA
  &entity_type=&threshold=&page_number=``: the dataset's images ranked by similarity to
  the anchor (an uploaded image, or an indexed one for ``MEDIA``), grouped into clusters at
  ``threshold`` 0-4 (0 finest), 100 clusters a page (:mod:`pixdex.app.service.explore`);
  ``relevance_score`` is the cosine *distance* (lower is closer), as Visual Layer's.

Both answer 409 while the dataset is not READY. ``entity_type=OBJECTS`` answers 400:
pixdex indexes whole images (a region of the query image is ``bounding_box``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import File, Query, UploadFile

from pixdex.api.deps import Caller, settings
from pixdex.api.dialects import base_url
from pixdex.api.openapi import new_router, responses
from pixdex.api.routes_anchors import anchor_from_upload, parse_bounding_box
from pixdex.app.service.datasets import require_ready
from pixdex.app.service.explore import Member, explore
from pixdex.errors import BadRequestError

router = new_router()
TAGS = ["dialects"]
EntityType = Annotated[str, Query(description="IMAGES (OBJECTS is not supported)")]
Threshold = Annotated[int, Query(ge=0, le=4, description="cluster granularity, 0 finest")]


def _check_entity_type(entity_type: str) -> None:
    if entity_type != "IMAGES":
        raise BadRequestError(
            f"entity_type {entity_type!r} is not supported: pixdex indexes whole images, so "
            "use entity_type=IMAGES (to search with a region of the query image, add "
            "bounding_box)", field="entity_type",
        )


@router.post(
    "/api/v1/dataset/<dataset_id>/search-image-similarity", tags=TAGS,
    summary="Visual Layer: upload a query image (multipart 'file') as a search anchor",
    responses=responses("{anchor_media_id, anchor_type}", 400, 403, 404, 409, 413, 415),
)
def search_image_similarity(
    dataset_id: str, caller: Caller, entity_type: EntityType,
    file: Annotated[UploadFile, File(description="the query image")],
    threshold: Threshold = 0,
    bounding_box: Annotated[str | None, Query(description='JSON {"x","y","width","height"}')]
    = None,
) -> dict[str, str]:
    del threshold  # the clusters are chosen when exploring (Visual Layer asks for both)
    _check_entity_type(entity_type)
    require_ready(settings(), caller.workspace, dataset_id, "dataset_id")
    anchor = anchor_from_upload(caller.workspace, file, parse_bounding_box(bounding_box))
    return {"anchor_media_id": str(anchor.anchor_id), "anchor_type": "UPLOAD"}


def _preview(member: Member, base: str) -> dict[str, Any]:
    return {
        "type": "IMAGE", "media_id": str(member.id),
        "media_uri": f"{base}/v1/images/{member.id}/file",
        "media_thumb_uri": f"{base}/v1/images/{member.id}/thumbnail",
        "caption": None, "file_name": member.name, "bounding_box": None,
        "relevance_score": round(1.0 - member.score, 6),
        "relevance_score_type": "cosine_distance",
        "width": member.width, "height": member.height,
    }


def _cluster(members: list[Member], level: int, base: str) -> dict[str, Any]:
    return {
        "cluster_id": str(members[0].id), "type": "IMAGES", "n_images": len(members),
        "n_objects": 0, "n_videos": 0, "similarity_threshold": str(level),
        "relevance_score": round(1.0 - members[0].score, 6),
        "relevance_score_type": "cosine_distance",
        "previews": [_preview(m, base) for m in members],
        "labels": None, "user_tags": None, "captions": None,
    }


@router.get(
    "/api/v1/explore/<dataset_id>", tags=TAGS,
    summary="Visual Layer: clusters of images similar to an anchor, 100 a page",
    responses=responses("{clusters, metadata}", 400, 404, 409),
)
def explore_dataset(
    dataset_id: str, caller: Caller, entity_type: EntityType,
    anchor_media_id: Annotated[UUID, Query()],
    anchor_type: Annotated[Literal["UPLOAD", "MEDIA"], Query()],
    threshold: Threshold = 0,
    page_number: Annotated[int, Query(ge=0, le=1000)] = 0,
) -> dict[str, Any]:
    _check_entity_type(entity_type)
    uploaded = anchor_type == "UPLOAD"
    page = explore(
        settings(), caller.workspace, dataset_id, level=threshold, page=page_number,
        anchor_id=anchor_media_id if uploaded else None,
        like_image=None if uploaded else anchor_media_id,
    )
    base = base_url(router.current_event.headers)
    return {"clusters": [_cluster(c, threshold, base) for c in page.clusters],
            "metadata": {"has_next_page": page.more}}
