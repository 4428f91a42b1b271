"""``POST /v1/search``: turn an API search body into an engine query and shape the page.

* Similarity sources (one at most): ``like_image`` (an indexed image id), ``image``
  (base64, an http(s) URL or an anchor id) or ``anchor_id``; ``bounding_box`` narrows
  ``image`` / ``anchor_id`` to a region. Or ``vector``: a raw query vector of ``model``
  (required), alone with the filters. ``prompt`` (+ ``negative_prompt``) ranks by
  text: see :mod:`pixdex.app.query_vector` (combining it with an image needs a
  vision-language model; the offline model answers 400 ``model_capability``).
* No dataset (``in_dataset``): every dataset of the workspace. With one, the dataset must
  have indexed images: an empty dataset, or one whose images are all still pending,
  answers 409 (``conflict``). A dataset that is partly indexed is searched as it is.
* With no criterion at all, images are listed newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from pixdex.app.search import search, search_facets
from pixdex.app.service import anchors, clusters
from pixdex.app.service.datasets import resolve_dataset
from pixdex.app.service.images import file_url, thumbnail_url
from pixdex.app.service.search_schemas import SearchRequest, SearchResponse, SearchResult
from pixdex.app.sources import normalise_folder
from pixdex.config import Settings
from pixdex.errors import ConflictError, InvalidInputError, NotFoundError
from pixdex.models import ImageRecord, SearchHit, SearchQuery
from pixdex.storage import catalog, images
from pixdex.storage.connection import connect

# Fields a SearchHit does not carry: asking for any of them costs one more lookup.
_RECORD_FIELDS = frozenset({
    "dataset", "dataset_id", "status", "annotations", "split", "batch_id",
    "annotation_job_id", "created", "metadata",
})


def _query_vector(
    settings: Settings, workspace: str, request: SearchRequest, vector: list[float] | None
) -> list[float] | None:
    sources = [
        name for name in ("like_image", "image", "anchor_id") if getattr(request, name) is not None
    ]
    if request.vector is not None:
        _check_raw_vector(request, sources)
    if vector is not None:
        sources.insert(0, "vector")
    if len(sources) > 1:
        raise InvalidInputError(
            f"give one query image, not {' and '.join(sources)}", field=sources[1]
        )
    if request.bounding_box is not None and not {"image", "anchor_id"} & set(sources):
        raise InvalidInputError(
            "bounding_box applies to a query image: give image or anchor_id with it",
            field="bounding_box",
        )
    # The query image is embedded by the model the search ranks with.
    model = request.model or settings.model
    if vector is not None:
        return vector  # checked against the model's dimension where it is ranked
    if request.anchor_id is not None:
        return anchors.anchor_vector(
            settings, workspace, request.anchor_id, request.bounding_box, "anchor_id", model
        )
    if request.image is None:
        return None
    try:
        anchor_id = UUID(request.image)
    except ValueError:
        data = anchors.image_bytes(settings, request.image, "image")
        decoded = anchors.decode(
            settings, data, "image", box=request.bounding_box, model=model
        )
        return anchors.embed(settings, decoded, request.bounding_box, model)
    return anchors.anchor_vector(
        settings, workspace, anchor_id, request.bounding_box, "image", model
    )


def _check_raw_vector(request: SearchRequest, sources: list[str]) -> None:
    """A raw ``vector`` is the whole query: with the model it belongs to, and filters."""
    others = [*sources, *(["prompt"] if request.prompt is not None else [])]
    if others:
        raise InvalidInputError(
            f"vector is a query of its own: give it with filters, not with "
            f"{' and '.join(others)}", field="vector",
        )
    if request.model is None:
        raise InvalidInputError(
            "vector needs model: the named vector it belongs to (e.g. the model you "
            "imported vectors as)", field="model",
        )


def _dataset_scope(settings: Settings, workspace: str, request: SearchRequest) -> _Scope:
    if request.in_dataset is None:
        return _Scope(None)
    with connect(settings, readonly=True) as conn:
        try:
            dataset = resolve_dataset(conn, workspace, request.in_dataset)
        except NotFoundError:
            raise NotFoundError(
                f"dataset {request.in_dataset!r} does not exist", field="in_dataset"
            ) from None
        # Probes, not counts: this runs on every search of a possibly huge dataset.
        indexed, pending = catalog.readiness(conn, dataset.id)
    if not indexed:
        why = (
            "its images are still being indexed; retry when its status is READY"
            if pending else "it has no indexed images; add images first"
        )
        raise ConflictError(f"dataset {dataset.name!r} cannot be searched yet: {why}",
                            field="in_dataset")
    return _Scope(dataset.name, still_indexing=bool(pending))


@dataclass(frozen=True)
class _Scope:
    dataset: str | None
    still_indexing: bool = False

    def warnings(self) -> list[str]:
        if not self.still_indexing:
            return []
        return [
            f"dataset {self.dataset!r} is still indexing: these results cover the images "
            "indexed so far; search again when its status is READY for all of them"
        ]


def run_search(
    settings: Settings, workspace: str, request: SearchRequest, *,
    vector: list[float] | None = None,
) -> SearchResponse:
    """One page of results. ``vector``: a raw query vector in the searched model's space
    (Weaviate's ``nearVector``), instead of a query image."""
    if request.negative_prompt is not None and request.prompt is None:
        raise InvalidInputError(
            "negative_prompt needs a prompt: say what to find as well", field="negative_prompt"
        )
    empty = [kind for kind in ("objects", "scenes", "attributes")
             if getattr(request, kind) is not None and not request.tag_list(kind)]
    if empty:
        # As Pictograph's: an empty tag filter matches nothing rather than everything.
        return SearchResponse(offset=request.offset, total=0, exact=True, results=[], warnings=[
            f"{empty[0]} is empty: an empty tag filter matches nothing; leave it out to "
            "search without it"])
    vector = _query_vector(settings, workspace, request, vector)
    scope = _dataset_scope(settings, workspace, request)
    query = SearchQuery(
        dataset=scope.dataset,
        workspace=workspace,
        model=request.model,
        like_vector=vector,
        like_image_id=request.like_image,
        vector=request.vector,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        image_weight=request.image_weight,
        objects=request.tag_list("objects"),
        scenes=request.tag_list("scenes"),
        attributes=request.tag_list("attributes"),
        tags=request.tag_list("tag"),
        class_names=request.tag_list("class_name"),
        folder=None if request.folder_path is None else normalise_folder(request.folder_path),
        batch_id=request.batch_id,
        annotation_job_id=request.annotation_job_id,
        split=request.split,
        in_batch=request.batch,
        in_annotation_job=request.annotation_job,
        threshold=request.threshold,
        min_similarity=request.min_similarity,
        offset=request.offset,
        limit=request.limit,
        match_all=True,
    )
    page = search(query, settings)
    fields = request.selected_fields
    ids = [hit.id for hit in page.results]
    records: dict[UUID, ImageRecord] = {}
    vectors: dict[UUID, NDArray[np.float32]] = {}
    with connect(settings, readonly=True) as conn:
        if _RECORD_FIELDS & set(fields):
            records = images.records_by_ids(conn, workspace, ids)
        if "embedding" in fields or request.group is not None:
            vectors = images.embeddings_by_ids(conn, ids, request.model or settings.model)
    results = [
        SearchResult(**_project(hit, records.get(hit.id), vectors.get(hit.id), fields))
        for hit in page.results
    ]
    grouped = None
    if request.group is not None:
        grouped = clusters.group(
            [(hit.id, hit.name, hit.score) for hit in page.results], vectors, request.group
        )
        cluster_of = {member: c.id for c in grouped for member in c.members}
        for result in results:
            result.cluster = cluster_of[result.id]
    return SearchResponse(
        offset=page.offset, total=page.total, exact=page.exact, results=results,
        warnings=[*scope.warnings(), *page.warnings], clusters=grouped,
        facets=search_facets(query, settings) if request.facets else None,
    )


def _project(
    hit: SearchHit, record: ImageRecord | None, vector: NDArray[np.float32] | None,
    fields: tuple[str, ...],
) -> dict[str, object]:
    values: dict[str, object] = {
        "id": hit.id, "score": hit.score, "similarity": hit.similarity, "name": hit.name,
        "folder": hit.folder,
        "tags": hit.user_tags, "auto_tags": hit.auto_tags, "width": hit.width,
        "height": hit.height, "thumbnail_url": thumbnail_url(hit.id), "file_url": file_url(hit.id),
    }
    if record is not None:
        values.update(
            dataset=record.dataset, dataset_id=record.dataset_id, status=record.status.value,
            annotations=record.annotation_classes, split=record.split, batch_id=record.batch_id,
            annotation_job_id=record.annotation_job_id, created=record.created_at,
            metadata=record.metadata,
        )
    if vector is not None:
        values["embedding"] = [round(float(v), 6) for v in vector]
    return {name: values.get(name) for name in fields}
