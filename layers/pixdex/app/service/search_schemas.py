"""Wire models of ``POST /v1/search``: a superset of Roboflow's search body, plus query
images (bytes, URL, anchors, regions), auto-tag filters, folders, a similarity floor and
grouping of near-identical results into clusters (as Visual Layer's explore does)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

from pixdex.models import (
    MAX_PROMPT_CHARS,
    MAX_SEARCH_LIMIT,
    AutoTags,
    BoundingBox,
    Facets,
    split_csv,
)

MAX_API_LIMIT = MAX_SEARCH_LIMIT
DEFAULT_FIELDS = ("id", "score", "name")
SEARCH_FIELDS = (
    "id", "score", "name", "folder", "dataset", "dataset_id", "status", "tags", "auto_tags",
    "annotations", "split", "batch_id", "annotation_job_id", "width", "height", "created",
    "metadata", "embedding", "thumbnail_url", "file_url", "similarity",
)
# The most dimensions a model can have (halfvec's HNSW limit): a query vector's cap.
MAX_QUERY_DIM = 4000
# Cosine similarity two images need to fall in one cluster, per granularity level.
GROUP_THRESHOLDS = (0.98, 0.95, 0.90, 0.85, 0.80)

StrOrList = str | list[str]


def _as_list(value: StrOrList | None) -> list[str]:
    return split_csv(value)


class SearchRequest(BaseModel):
    """Every part is optional; with none, the images are listed newest first."""

    model_config = ConfigDict(extra="forbid")

    like_image: UUID | None = Field(
        default=None, description="Id of an indexed image: results are ranked by similarity "
        "to it (it is left out of its own results)."
    )
    prompt: str | None = Field(
        default=None, max_length=MAX_PROMPT_CHARS,
        description="Text search, e.g. 'a cat on a sofa'. "
        "Vision-language models rank by image-text cosine similarity; the offline model maps "
        "the prompt onto its 1000 ImageNet classes and ranks by class probability."
    )
    negative_prompt: str | None = Field(
        default=None, max_length=MAX_PROMPT_CHARS, description="What to push down, e.g. 'drawings'."
    )
    image_weight: float = Field(
        default=0.5, ge=0.0, le=1.0, description="With a prompt and a query image "
        "(vision-language models): the image's share of the blended query."
    )
    model: str | None = Field(
        default=None, min_length=1, max_length=63,
        description="Named vector (model) to search; default: the server's model.",
    )
    vector: list[float] | None = Field(
        default=None, min_length=1, max_length=MAX_QUERY_DIM,
        description="A raw query vector of `model` (required with it), e.g. one of your own "
        "embeddings searched against vectors imported with POST /v1/datasets/{id}/vectors. "
        "It must have the model's dimension (the error names it); it combines with every "
        "filter, not with another query image, image id or prompt.",
    )
    image: str | None = Field(
        default=None, description="A query image: base64 (or a data: URI), an http(s) URL, "
        "or the id of an uploaded anchor."
    )
    anchor_id: UUID | None = Field(default=None, description="An uploaded query image.")
    bounding_box: BoundingBox | None = Field(
        default=None, description="Search with this region of the query image only."
    )
    offset: int = Field(default=0, ge=0, le=100_000)
    limit: int = Field(default=50, ge=1, le=MAX_API_LIMIT)
    tag: StrOrList | None = Field(default=None, description="User tags: all must match.")
    class_name: StrOrList | None = Field(
        default=None, description="Annotation class names: any may match."
    )
    in_dataset: str | None = Field(
        default=None, min_length=1, description="Dataset name or id; default: every dataset."
    )
    batch: bool | None = Field(default=None, description="true: only images in a batch.")
    batch_id: str | None = Field(default=None, min_length=1)
    annotation_job: bool | None = Field(
        default=None, description="true: only images in an annotation job."
    )
    annotation_job_id: str | None = Field(default=None, min_length=1)
    split: str | None = Field(default=None, min_length=1)
    objects: StrOrList | None = Field(default=None, description="Any of these object tags.")
    scenes: StrOrList | None = Field(default=None, description="Any of these scene tags.")
    attributes: StrOrList | None = Field(default=None, description="Any of these attributes.")
    folder_path: str | None = Field(
        default=None, min_length=1, max_length=1000, description="This folder and below."
    )
    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Minimum score of results: cosine "
        "similarity, or for prompts on the offline model the weighted class probability."
    )
    min_similarity: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Minimum calibrated similarity (the same "
        "scale on every model: 0.5 as alike as the closest 1 % of unrelated photos, 0.6 "
        "visually related, 1.0 a typical edited copy; docs/models.md). Image and "
        "vision-language searches only."
    )
    group: int | None = Field(
        default=None, ge=0, le=4, description="Group near-identical results into clusters: "
        "0 finest (cosine >= 0.98) ... 4 coarsest (>= 0.80)."
    )
    facets: bool = Field(
        default=False, description="Also count, over every image the filters admit, each "
        "object / scene / attribute, user tag, annotation class, folder, split, batch and "
        "annotation job (a filter panel's counts)."
    )
    fields: list[str] | None = Field(
        default=None, description=f"What each result carries; default {list(DEFAULT_FIELDS)}; "
        f"allowed: {', '.join(SEARCH_FIELDS)}. id and score are always included."
    )

    @field_validator("vector", mode="before")
    @classmethod
    def _array_to_list(cls, value: Any) -> Any:
        # A numpy array (or anything with tolist) from Python callers of the client.
        return value.tolist() if hasattr(value, "tolist") else value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        for value in values:
            if value not in SEARCH_FIELDS:
                raise ValueError(
                    f"unknown field {value!r}; allowed: {', '.join(SEARCH_FIELDS)}"
                )
        return values

    def tag_list(self, kind: str) -> list[str]:
        value: StrOrList | None = getattr(self, kind)
        return _as_list(value)

    @property
    def selected_fields(self) -> tuple[str, ...]:
        chosen = DEFAULT_FIELDS if self.fields is None else ("id", "score", *self.fields)
        return tuple(dict.fromkeys(chosen))


class SearchResult(BaseModel):
    """One hit. Carries ``id``, ``score`` and exactly the ``fields`` asked for."""

    id: UUID
    score: float
    similarity: float | None = None
    name: str | None = None
    folder: str | None = None
    dataset: str | None = None
    dataset_id: UUID | None = None
    status: str | None = None
    tags: list[str] | None = None
    auto_tags: AutoTags | None = None
    annotations: dict[str, int] | None = None
    split: str | None = None
    batch_id: str | None = None
    annotation_job_id: str | None = None
    width: int | None = None
    height: int | None = None
    created: datetime | None = None
    metadata: dict[str, Any] | None = None
    embedding: list[float] | None = None
    thumbnail_url: str | None = None
    file_url: str | None = None
    cluster: UUID | None = Field(default=None, description="Its cluster, when grouping.")

    @model_serializer(mode="wrap")
    def _only_selected(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Fields not selected are left out (not sent as null): "fields" decides the shape.
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if key in self.model_fields_set}


class ClusterPreview(BaseModel):
    id: UUID
    name: str
    score: float
    thumbnail_url: str


class Cluster(BaseModel):
    id: UUID = Field(description="The id of its best-ranked image.")
    size: int
    score: float = Field(description="The score of its best-ranked image.")
    members: list[UUID]
    previews: list[ClusterPreview]


class SearchResponse(BaseModel):
    offset: int
    total: int
    exact: bool = Field(description="False when ranked by the approximate (HNSW) index.")
    results: list[SearchResult]
    warnings: list[str] = Field(
        default_factory=list, description="What the search could not use, e.g. prompt words "
        "the model does not understand."
    )
    clusters: list[Cluster] | None = Field(
        default=None, description="With group: the page's results grouped, best first."
    )
    facets: Facets | None = Field(default=None, description="With facets: true.")
