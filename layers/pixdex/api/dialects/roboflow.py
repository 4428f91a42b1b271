"""Roboflow's search: ``POST /{workspace}/{project}/search?api_key=KEY``.

The documented body (``like_image``, ``prompt``, ``offset``, ``limit`` <= 250, ``tag``,
``class_name``, ``in_dataset`` as a project name or ``true`` for the path's project,
``batch``, ``batch_id``, ``annotation_job``, ``annotation_job_id``, ``fields``) becomes a
``POST /v1/search`` request; the answer is Roboflow's ``{offset, total, results}`` with
the fields asked for (default ``id``, ``created``). ``workspace`` must be the key's own
(another answers 404, as for every id of another workspace); ``project`` names a dataset.
Unknown body fields are refused (422), as on our own API.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pixdex.api.deps import Caller, settings
from pixdex.api.dialects import lenient_json
from pixdex.api.openapi import new_router, responses
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import MAX_API_LIMIT, SearchRequest, SearchResult
from pixdex.errors import NotFoundError

router = new_router()

RoboflowField = Literal[
    "id", "name", "annotations", "labels", "split", "tags", "owner", "embedding", "created"
]
DEFAULT_FIELDS: tuple[RoboflowField, ...] = ("id", "created")
# Roboflow field -> the /v1/search field that carries it.
_SOURCES: dict[str, str] = {
    "name": "name", "annotations": "annotations", "labels": "auto_tags", "split": "split",
    "tags": "tags", "embedding": "embedding", "created": "created",
}


class RoboflowSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    like_image: str | None = None
    prompt: str | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=50, ge=1, le=MAX_API_LIMIT)
    tag: str | None = None
    class_name: str | None = None
    in_dataset: str | bool | None = None
    batch: bool | None = None
    batch_id: str | None = None
    annotation_job: bool | None = None
    annotation_job_id: str | None = None
    fields: list[RoboflowField] = Field(default_factory=lambda: list(DEFAULT_FIELDS))


def _request(body: RoboflowSearch, project: str) -> SearchRequest:
    in_dataset = project if body.in_dataset is True else body.in_dataset or None
    wanted = {_SOURCES[f] for f in body.fields if f in _SOURCES}
    return SearchRequest.model_validate({
        "like_image": body.like_image, "prompt": body.prompt, "offset": body.offset,
        "limit": body.limit, "tag": body.tag, "class_name": body.class_name,
        "in_dataset": in_dataset, "batch": body.batch, "batch_id": body.batch_id,
        "annotation_job": body.annotation_job, "annotation_job_id": body.annotation_job_id,
        "fields": sorted(wanted),
    })


def _result(hit: SearchResult, fields: list[RoboflowField], owner: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": str(hit.id), "name": hit.name, "split": hit.split, "tags": hit.tags,
        "owner": owner, "embedding": hit.embedding,
        "created": hit.created.isoformat() if hit.created else None,
    }
    if hit.annotations is not None:
        values["annotations"] = {"count": sum(hit.annotations.values()),
                                 "classes": dict(hit.annotations)}
    if hit.auto_tags is not None:
        values["labels"] = sorted(hit.auto_tags.objects)
    return {name: values.get(name) for name in dict.fromkeys(["id", *fields])}


@router.post(
    "/<workspace>/<project>/search", tags=["dialects"],
    summary="Roboflow's search (POST /{workspace}/{project}/search?api_key=KEY)",
    description="Roboflow's documented body and answer; see docs/api.md, 'Coming from "
    "Roboflow'. Trailing commas in the JSON body are accepted, as Roboflow's example has one.",
    responses=responses("Roboflow's {offset, total, results}", 400, 404, 409),
)
def roboflow_search(workspace: str, project: str, caller: Caller) -> dict[str, Any]:
    if workspace != caller.workspace:
        raise NotFoundError(f"workspace {workspace!r} does not exist", field="workspace")
    raw = lenient_json.loads(router.current_event.decoded_body)
    body = RoboflowSearch.model_validate(raw)
    page = run_search(settings(), caller.workspace, _request(body, project))
    return {
        "offset": page.offset, "total": page.total,
        "results": [_result(hit, body.fields, caller.workspace) for hit in page.results],
    }
