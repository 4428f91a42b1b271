"""``POST /v1/search``."""

from __future__ import annotations

from pixdex.api.deps import Caller, settings
from pixdex.api.openapi import new_router, responses
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import SearchRequest, SearchResponse

router = new_router()


@router.post(
    "/v1/search", tags=["search"],
    summary="Search by similar image, region, tags and metadata; page, select fields, group",
    description=(
        "A superset of Roboflow's search body. One similarity source at most: like_image "
        "(an indexed image id), image (base64, URL or anchor id; bounding_box for a region) "
        "or anchor_id. prompt: offline, ranked by ImageNet class scores (blendable with "
        "like_image, not with a new query image: 400); with a vision-language model by "
        "text embedding. Filters: "
        "tag (all), class_name (any), objects / scenes / attributes (any within a kind, all "
        "kinds), in_dataset (name or id; 409 while it has no indexed image), folder_path, "
        "batch / batch_id, annotation_job / annotation_job_id, split, threshold (minimum "
        "cosine similarity). group 0-4 clusters near-identical results of the page."
    ),
    responses=responses("One page of results", 400, 404, 409, 413, 415),
)
def search(body: SearchRequest, caller: Caller) -> SearchResponse:
    return run_search(settings(), caller.workspace, body)
