"""Clarifai's inputs and searches (v2), with ``Authorization: Key KEY``.

* ``POST /v2/inputs`` (or ``/v2/users/{user_id}/apps/{app_id}/inputs``): up to 128 images
  by ``data.image.url`` or ``.base64``; each input answers its own status (30001 "Download
  pending", 30000 "Download complete", 30002 "Download failed" with the reason), so one bad
  URL fails that input, not the call (the call's status is then 10010 "Mixed Success").
  An app is a dataset (``/v2/inputs``: the dataset ``clarifai``), created on first use.
* ``POST /v2/searches``: ``query.ands`` with a query image (``output.input.data.image``
  url / base64, or ``output.input.id``), a predicted concept (``output.data.concepts``:
  an object auto-tag) and user concepts (``input.data.concepts``: user tags, all must
  match); ``pagination {page, per_page}``. Answers ``{status, hits: [{score, input}]}``;
  the input's source URL is echoed as ``data.image.url``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pixdex.api.deps import Caller, settings
from pixdex.api.dialects import base_url
from pixdex.api.openapi import new_router, responses
from pixdex.app.service.datasets import ensure_dataset, find_dataset
from pixdex.app.service.schemas import AddedImage, NewImage
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import MAX_API_LIMIT, SearchRequest, SearchResult
from pixdex.app.service.uploads import add_images_each
from pixdex.errors import InvalidInputError

router = new_router()
TAGS = ["dialects"]
DEFAULT_APP = "clarifai"
OK = {"code": 10000, "description": "Ok"}
_INPUT_STATUS = {
    "pending": {"code": 30001, "description": "Download pending"},
    "indexed": {"code": 30000, "description": "Download complete"},
    "failed": {"code": 30002, "description": "Download failed"},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClarifaiImage(_Strict):
    url: str | None = None
    base64: str | None = None


class Concept(_Strict):
    id: str | None = None
    name: str | None = None
    value: float = 1.0

    @property
    def label(self) -> str:
        text = self.name or self.id
        if not text:
            raise InvalidInputError("a concept needs a name (or id)", field="concepts")
        if self.value <= 0:
            raise InvalidInputError(
                f"concept {text!r} with value 0 (absent) is not supported: search for "
                "concepts that are present", field="concepts.value",
            )
        return text


class InputData(_Strict):
    image: ClarifaiImage | None = None
    concepts: list[Concept] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ClarifaiInput(_Strict):
    data: InputData


class AddInputs(_Strict):
    inputs: list[ClarifaiInput] = Field(min_length=1)


def _new_image(item: ClarifaiInput) -> NewImage:
    image = item.data.image or ClarifaiImage()
    return NewImage(url=image.url, base64=image.base64, metadata=item.data.metadata,
                    tags=[c.label for c in item.data.concepts])


def _input(added: AddedImage, url: str | None) -> dict[str, Any]:
    status = dict(_INPUT_STATUS[added.status])
    if added.error:
        status["details"] = added.error
    image = {"url": url} if url else {}
    return {"id": str(added.id) if added.id else None,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"image": image}, "status": status}


def _add(app_id: str, body: AddInputs, caller: Caller) -> dict[str, Any]:
    items = [_new_image(item) for item in body.inputs]
    dataset = ensure_dataset(settings(), caller.workspace, app_id)
    added = add_images_each(settings(), caller.workspace, dataset.id, items)
    failed = sum(a.status == "failed" for a in added)
    status = OK if not failed else (
        {"code": 10020, "description": "Failure"} if failed == len(added)
        else {"code": 10010, "description": "Mixed Success"}
    )
    return {
        "status": status,
        "inputs": [_input(a, item.url) for a, item in zip(added, items, strict=True)],
    }


@router.post("/v2/inputs", tags=TAGS, summary="Clarifai: add inputs (images by URL/base64)",
             responses=responses("Clarifai's {status, inputs}", 403, 413))
def add_inputs(body: AddInputs, caller: Caller) -> dict[str, Any]:
    return _add(DEFAULT_APP, body, caller)


@router.post("/v2/users/<user_id>/apps/<app_id>/inputs", tags=TAGS,
             summary="Clarifai: add inputs to an app (a dataset)",
             responses=responses("Clarifai's {status, inputs}", 403, 413))
def add_app_inputs(user_id: str, app_id: str, body: AddInputs, caller: Caller) -> dict[str, Any]:
    del user_id  # the key says whose app it is
    return _add(app_id, body, caller)


class QueryInput(_Strict):
    id: str | None = None
    data: InputData | None = None


class OutputTerm(_Strict):
    input: QueryInput | None = None
    data: InputData | None = None


class AndTerm(_Strict):
    output: OutputTerm | None = None
    input: QueryInput | None = None


class Query(_Strict):
    ands: list[AndTerm] = Field(min_length=1)


class Pagination(_Strict):
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=20, ge=1, le=MAX_API_LIMIT)


class Searches(_Strict):
    query: Query
    pagination: Pagination = Field(default_factory=Pagination)


def _search_request(body: Searches, dataset: str) -> SearchRequest:
    fields: dict[str, Any] = {"in_dataset": dataset, "fields": ["created", "metadata"]}
    objects: list[str] = []
    tags: list[str] = []
    for term in body.query.ands:
        if term.input is not None and term.input.data is not None:
            tags += [c.label for c in term.input.data.concepts]
        if term.output is None:
            continue
        if term.output.data is not None:
            objects += [c.label for c in term.output.data.concepts]
        query = term.output.input
        if query is not None and query.id is not None:
            fields["like_image"] = query.id
        elif query is not None and query.data is not None and query.data.image is not None:
            fields["image"] = query.data.image.url or query.data.image.base64
    if len(objects) > 1:
        raise InvalidInputError(
            "one predicted concept per search is supported (pixdex's auto-tag filter "
            f"matches any of several, Clarifai's all of them): got {objects}",
            field="query.ands",
        )
    page = body.pagination
    return SearchRequest.model_validate({
        **fields, "objects": objects or None, "tag": tags or None,
        "offset": (page.page - 1) * page.per_page, "limit": page.per_page,
    })


def _hit(result: SearchResult, base: str) -> dict[str, Any]:
    source = (result.metadata or {}).get("source_url")
    created = result.created.strftime("%Y-%m-%dT%H:%M:%SZ") if result.created else None
    return {"score": result.score, "input": {
        "id": str(result.id), "created_at": created,
        "data": {"image": {"url": source or f"{base}/v1/images/{result.id}/file"}},
        "status": _INPUT_STATUS["indexed"],
    }}


def _searches(app_id: str, body: Searches, caller: Caller) -> dict[str, Any]:
    dataset = find_dataset(settings(), caller.workspace, app_id, "app_id")
    page = run_search(settings(), caller.workspace, _search_request(body, str(dataset.id)))
    base = base_url(router.current_event.headers)
    return {"status": OK, "hits": [_hit(r, base) for r in page.results]}


@router.post("/v2/searches", tags=TAGS, summary="Clarifai: search by concept or by image",
             responses=responses("Clarifai's {status, hits}", 404, 409))
def searches(body: Searches, caller: Caller) -> dict[str, Any]:
    return _searches(DEFAULT_APP, body, caller)


@router.post("/v2/users/<user_id>/apps/<app_id>/searches", tags=TAGS,
             summary="Clarifai: search an app (a dataset)",
             responses=responses("Clarifai's {status, hits}", 404, 409))
def app_searches(user_id: str, app_id: str, body: Searches, caller: Caller) -> dict[str, Any]:
    del user_id
    return _searches(app_id, body, caller)
