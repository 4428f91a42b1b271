"""Pydantic models shared by the library, the CLI and (later) the HTTP API."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The largest page any interface returns (CLI, API, library): one limit, stated once.
MAX_SEARCH_LIMIT = 250
DEFAULT_SEARCH_LIMIT = 50
TagKind = Literal["objects", "scenes", "attributes"]
TAG_KINDS: tuple[TagKind, ...] = ("objects", "scenes", "attributes")


class ImageStatus(StrEnum):
    PENDING = "pending"
    INDEXED = "indexed"
    FAILED = "failed"


class AutoTags(BaseModel):
    """Automatic content tags: name -> score in [0, 1] per kind."""

    model_config = ConfigDict(frozen=True)

    objects: dict[str, float] = Field(default_factory=dict)
    scenes: dict[str, float] = Field(default_factory=dict)
    attributes: dict[str, float] = Field(default_factory=dict)


class BoundingBox(BaseModel):
    """A region of an image as fractions of its width and height."""

    model_config = ConfigDict(frozen=True)

    x: Annotated[float, Field(ge=0.0, le=1.0)]
    y: Annotated[float, Field(ge=0.0, le=1.0)]
    width: Annotated[float, Field(gt=0.0, le=1.0)]
    height: Annotated[float, Field(gt=0.0, le=1.0)]

    @model_validator(mode="after")
    def _inside_image(self) -> BoundingBox:
        if self.x + self.width > 1.0 + 1e-9 or self.y + self.height > 1.0 + 1e-9:
            raise ValueError(
                "bounding box must lie inside the image: x + width <= 1 and y + height <= 1"
            )
        return self

    @classmethod
    def parse(cls, text: str) -> BoundingBox:
        """Parse ``"x,y,w,h"`` (fractions)."""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 4:
            raise ValueError("box must be four comma-separated fractions: x,y,width,height")
        try:
            x, y, w, h = (float(p) for p in parts)
        except ValueError as exc:
            raise ValueError(f"box values must be numbers between 0 and 1, got {text!r}") from exc
        return cls(x=x, y=y, width=w, height=h)


class ImageRecord(BaseModel):
    """One image row as stored (no embedding)."""

    id: UUID
    dataset_id: UUID
    dataset: str
    folder: str
    name: str
    storage_key: str | None  # None: no file (imported with its vector)
    sha256: str | None
    byte_size: int | None
    width: int | None
    height: int | None
    format: str | None
    created_at: datetime
    status: ImageStatus
    error: str | None
    user_tags: list[str]
    annotation_classes: dict[str, int]
    batch_id: str | None
    annotation_job_id: str | None
    split: str | None
    metadata: dict[str, object]
    auto_tags: AutoTags


class UserMetadata(BaseModel):
    """User-supplied metadata attached at ingest, as the library stores it (the API's
    ``ImageMeta`` is the same on the wire, with its names: ``tags``, ``annotations``).
    A name it does not know is refused: ``tags=`` here would otherwise be dropped."""

    model_config = ConfigDict(extra="forbid")

    folder: str | None = None
    user_tags: list[str] = Field(default_factory=list)
    annotation_classes: dict[str, int] = Field(default_factory=dict)
    batch_id: str | None = None
    annotation_job_id: str | None = None
    split: str | None = None
    metadata: dict[str, object] = Field(default_factory=dict)


class IndexedFile(BaseModel):
    path: str
    id: UUID | None
    status: Literal["indexed", "skipped", "failed", "removed"]
    error: str | None = None
    # The duplicate gate: the image this one duplicates (skipped, or indexed and linked).
    duplicate_of: UUID | None = None


class FacetValue(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    """Counts over the images a search's filters admit (not only the page shown); at most
    the first 50,000 of them are counted (``complete`` False past that)."""

    objects: list[FacetValue] = Field(default_factory=list)
    scenes: list[FacetValue] = Field(default_factory=list)
    attributes: list[FacetValue] = Field(default_factory=list)
    tags: list[FacetValue] = Field(default_factory=list)
    annotations: list[FacetValue] = Field(default_factory=list)
    folders: list[FacetValue] = Field(
        default_factory=list, description="Each folder counts the images in and below it."
    )
    split: list[FacetValue] = Field(default_factory=list)
    batch_id: list[FacetValue] = Field(default_factory=list)
    annotation_job_id: list[FacetValue] = Field(default_factory=list)
    scanned: int = Field(description="Matching images counted.")
    complete: bool = Field(description="False when more images matched than were counted.")


class IndexReport(BaseModel):
    indexed: int = 0
    skipped: int = 0
    failed: int = 0
    removed: int = 0
    images: list[IndexedFile] = Field(default_factory=list)


# The longest prompt (and negative prompt) any interface accepts.
MAX_PROMPT_CHARS = 1000


def split_csv(values: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a,b", "c"]`` -> ``["a", "b", "c"]``: how every interface reads
    comma-separated tags (query strings, form fields, CLI flags)."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else values
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


class SearchQuery(BaseModel):
    """A search over one dataset. Every part is optional but at least one must be given.

    Similarity sources (at most one image): ``like_vector`` (already-encoded query image),
    ``like_image_id`` (an indexed image, excluded from its own results); or ``vector``, a
    raw query vector of ``model`` (required with it: e.g. an imported model's), used as
    it is and combined with nothing but filters; and/or ``prompt``
    (text; ``negative_prompt`` says what to push down). With a vision-language model an
    image and a prompt combine: ``image_weight`` (0..1) blends the two normalised query
    vectors. The offline model answers prompts through its ImageNet class scores.
    Tag filters: OR within a kind, AND across kinds. ``dataset=None`` searches every
    dataset of the workspace. ``match_all`` lists everything (newest first) when no other
    criterion is given; without it such a query is refused as a likely mistake.
    """

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(default=None, min_length=1)
    workspace: str = "default"
    model: str | None = None
    like_vector: list[float] | None = None
    like_image_id: UUID | None = None
    vector: list[float] | None = Field(default=None, min_length=1)
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    image_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    objects: list[str] = Field(default_factory=list)
    scenes: list[str] = Field(default_factory=list)
    attributes: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    class_names: list[str] = Field(default_factory=list)
    folder: str | None = None
    batch_id: str | None = None
    annotation_job_id: str | None = None
    split: str | None = None
    in_batch: bool | None = None
    in_annotation_job: bool | None = None
    match_all: bool = False
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    # On the calibrated scale of pixdex.app.calibration: means the same on every model.
    min_similarity: float | None = Field(default=None, ge=0.0, le=1.0)
    offset: int = Field(default=0, ge=0, le=100_000)
    limit: int = Field(default=DEFAULT_SEARCH_LIMIT, ge=1, le=MAX_SEARCH_LIMIT)

    @field_validator("objects", "scenes", "attributes", "tags", "class_names", mode="after")
    @classmethod
    def _normalise_lists(cls, values: list[str]) -> list[str]:
        return split_csv(values)

    @model_validator(mode="after")
    def _one_similarity_source(self) -> SearchQuery:
        if self.like_vector is not None and self.like_image_id is not None:
            raise ValueError("give either a query image or an image id to search like, not both")
        if self.negative_prompt is not None and self.prompt is None:
            raise ValueError("negative_prompt needs a prompt: say what to find as well")
        if self.vector is not None:
            others = [name for name, given in (
                ("a query image", self.like_vector is not None),
                ("an image id", self.like_image_id is not None),
                ("a prompt", self.prompt is not None),
            ) if given]
            if others:
                raise ValueError(
                    f"a query vector is the whole query: give it with filters, not with "
                    f"{' and '.join(others)}"
                )
            if self.model is None:
                raise ValueError("a query vector needs model: the named vector it belongs to")
        return self

    @field_validator("prompt", "negative_prompt", mode="after")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty: describe what to find, e.g. 'a cat on a sofa'")
        return value

    @property
    def is_similarity(self) -> bool:
        return self.has_image or self.prompt is not None or self.vector is not None

    @property
    def has_image(self) -> bool:
        return self.like_vector is not None or self.like_image_id is not None

    @property
    def has_tag_filter(self) -> bool:
        return bool(self.objects or self.scenes or self.attributes)


class SearchHit(BaseModel):
    id: UUID
    name: str
    folder: str
    score: float
    # The score on the calibrated scale (pixdex.app.calibration); None where the model
    # has no calibration or the score is no cosine (offline prompts, tag searches).
    similarity: float | None = None
    width: int | None = None
    height: int | None = None
    storage_key: str | None = Field(description="Where its file is; None: no file (an "
                                    "imported vector).")
    user_tags: list[str] = Field(default_factory=list)
    auto_tags: AutoTags = Field(default_factory=AutoTags)


class SearchPage(BaseModel):
    total: int
    offset: int
    results: list[SearchHit]
    exact: bool = Field(
        default=True,
        description="True when results were computed exactly; False when from the ANN index.",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What the search could not use, e.g. prompt words the model's classes "
        "do not cover.",
    )


# --- imported vectors (bring your own embeddings) ------------------------------------------

# Refused rows an import report lists with their row number: enough to see the pattern.
MAX_VECTOR_EXAMPLES = 20
# Rows one HTTP call may import (a 1152-d row is ~12 kB of JSON: 500 stay under the 6 MB a
# Lambda invocation carries). Files of any size go through `pixdex vectors import`.
MAX_VECTORS_PER_REQUEST = 500

VectorRowReason = Literal[
    "no_name", "bad_name", "no_embedding", "wrong_dimension", "not_finite", "zero_vector",
    "bad_folder", "bad_text", "bad_tags", "bad_metadata", "duplicate_name", "name_in_dataset",
]


class RowProblem(BaseModel):
    """One refused row of an import."""

    row: int = Field(description="The row's 0-based position in the file (or request).")
    name: str | None
    reason: VectorRowReason
    message: str


class VectorImportReport(BaseModel):
    """What an import of vectors did: rows refused are counted per reason, and the first
    few are listed with their row numbers. A refused row never stops the import."""

    dataset: str
    dataset_id: UUID
    model: str
    dim: int
    model_created: bool = Field(description="True when this import created the model.")
    rows: int = Field(description="Rows read.")
    imported: int
    rejected: int
    reasons: dict[str, int] = Field(default_factory=dict, description="Refused rows per reason.")
    examples: list[RowProblem] = Field(
        default_factory=list, description=f"The first {MAX_VECTOR_EXAMPLES} rows refused."
    )
    index: Literal["built", "updated", "deferred"] = Field(
        description="The model's HNSW index: built after loading the rows, updated row by "
        "row, or deferred (not built: searches of the model rank exactly, slowly at scale, "
        "until an import builds it)."
    )
    seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)
