"""Wire models of the HTTP API (datasets, images, anchors, errors), shared by the server
and the Python client so both sides agree on every field.

Search request/response models are in :mod:`pixdex.app.service.search_schemas`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixdex.app.curation_schemas import LEVELS, DuplicateGate, OnDuplicate, threshold
from pixdex.models import MAX_VECTORS_PER_REQUEST, AutoTags, BoundingBox

DatasetStatus = Literal["READY", "INDEXING"]
UploadStatus = Literal["indexed", "failed", "pending"]

ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable identifier, e.g. not_found.")
    message: str = Field(description="What went wrong and what to change.")
    field: str | None = Field(default=None, description="The offending input, when one is.")


class ErrorResponse(BaseModel):
    """Every error answer of the API has this shape."""

    error: ErrorDetail


class Me(BaseModel):
    """Who the caller's key acts as (the web app shows or hides its edit controls)."""

    workspace: str
    scope: Literal["read", "write"]
    auth: Literal["key", "none"] = Field(description="none: the server runs without keys.")


# --- datasets ------------------------------------------------------------------------------


class CreateDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique in the workspace.")


class ImageCounts(BaseModel):
    total: int
    indexed: int
    pending: int
    failed: int


class Dataset(BaseModel):
    id: UUID
    name: str
    status: DatasetStatus = Field(
        description="READY: no image is waiting to be indexed; INDEXING: some are."
    )
    created: datetime
    images: ImageCounts


class DatasetList(BaseModel):
    datasets: list[Dataset]


class Deleted(BaseModel):
    id: UUID
    deleted: bool = True
    images: int | None = Field(default=None, description="Images deleted with a dataset.")


# --- images --------------------------------------------------------------------------------


class ImageMeta(BaseModel):
    """What a user can attach to an image when adding it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=255,
        description="File name shown in results; default: derived from the content hash.",
    )
    folder: str | None = Field(default=None, max_length=1000, description="e.g. /beach/2024")
    tags: list[str] = Field(default_factory=list, max_length=100)
    annotations: dict[str, int] = Field(
        default_factory=dict, description="Annotation class counts, e.g. {\"cat\": 2}."
    )
    split: ShortText | None = None
    batch_id: ShortText | None = None
    annotation_job_id: ShortText | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class NewImage(ImageMeta):
    """One image to add: exactly one of ``base64`` and ``url``."""

    base64: str | None = Field(default=None, description="The file's bytes, base64-encoded.")
    url: str | None = Field(default=None, max_length=2048, description="http(s) URL to fetch.")

    @model_validator(mode="after")
    def _one_source(self) -> NewImage:
        if (self.base64 is None) == (self.url is None):
            raise ValueError("give exactly one of base64 and url for each image")
        return self


class GatedRequest(BaseModel):
    """A request whose files pass the duplicate gate: its own gate, or the dataset's."""

    model_config = ConfigDict(extra="forbid")

    on_duplicate: OnDuplicate | None = Field(
        default=None, description="near-duplicates of images the dataset has: index them "
        "(allow), leave them out (skip: the image ends failed, naming its match) or index "
        "and record the relation (link); default: the dataset's duplicate gate",
    )
    duplicate_level: int = Field(default=1, description=f"the gate's level, {LEVELS}")

    def duplicate_gate(self) -> DuplicateGate | None:
        if self.on_duplicate is None:
            return None
        return DuplicateGate(on_duplicate=self.on_duplicate, level=self.duplicate_level)

    @model_validator(mode="after")
    def _level(self) -> GatedRequest:
        threshold(self.duplicate_level)  # 0-4, or a 422 naming the range
        return self


class AddImages(GatedRequest):
    images: list[NewImage] = Field(min_length=1, description="Up to 128 images per call.")


class AddedImage(BaseModel):
    id: UUID | None
    name: str
    status: UploadStatus
    error: str | None = None


class AddedImages(BaseModel):
    """What a call to add images did. ``pending`` images are indexed after the answer:
    follow them with ``GET /v1/images/{id}`` (or the dataset's counts)."""

    pending: int = 0
    indexed: int
    failed: int
    images: list[AddedImage]


class NewSlot(ImageMeta):
    """One file to upload with a presigned PUT URL (large originals: over API Gateway's
    10 MB, or simply many of them)."""

    name: str = Field(min_length=1, max_length=255, description="The file's name.")
    size: int = Field(ge=1, description="The file's exact size in bytes; the PUT must match.")


class CreateSlots(GatedRequest):
    """Upload slots; the gate (``on_duplicate``) applies when each file arrives."""

    files: list[NewSlot] = Field(min_length=1, description="Up to 128 files per call.")


class UploadSlot(BaseModel):
    image_id: UUID = Field(description="The image the file becomes (pending until indexed).")
    name: str
    method: Literal["PUT"] = "PUT"
    url: str = Field(description="PUT the file's bytes here, without the API key.")
    headers: dict[str, str] = Field(description="Send exactly these headers with the PUT.")


class UploadSlots(BaseModel):
    """Where to PUT each file. Each is indexed once its bytes arrive; a slot not used
    by ``expires_at`` (plus a short grace for uploads under way) ends ``failed``."""

    expires_at: datetime
    uploads: list[UploadSlot]


class Image(BaseModel):
    id: UUID
    dataset_id: UUID
    dataset: str
    name: str
    folder: str
    status: UploadStatus
    error: str | None
    width: int | None
    height: int | None
    format: str | None
    byte_size: int | None
    sha256: str | None
    created: datetime
    tags: list[str]
    annotations: dict[str, int]
    split: str | None
    batch_id: str | None
    annotation_job_id: str | None
    metadata: dict[str, Any]
    auto_tags: AutoTags
    has_file: bool = Field(
        default=True, description="False for an image imported with its vector: it has no "
        "file, and its file_url / thumbnail_url answer 409 no_file."
    )
    file_url: str
    thumbnail_url: str


class ImageList(BaseModel):
    offset: int
    total: int
    images: list[Image]


class ImagePatch(BaseModel):
    """Fields to change; a field set to null is cleared, a field left out is kept."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] | None = Field(default=None, max_length=100, description="Replace all.")
    add_tags: list[str] = Field(default_factory=list, max_length=100)
    remove_tags: list[str] = Field(default_factory=list, max_length=100)
    annotations: dict[str, int] | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Replaces the metadata.")
    split: ShortText | None = None
    batch_id: ShortText | None = None
    annotation_job_id: ShortText | None = None
    folder: str | None = Field(default=None, max_length=1000)


# --- anchors -------------------------------------------------------------------------------


class CreateAnchor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(
        min_length=1, description="The query image: base64 (or a data: URI) or an http(s) URL."
    )
    bounding_box: BoundingBox | None = Field(
        default=None, description="Only this region of it (fractions of width and height)."
    )


class Anchor(BaseModel):
    anchor_id: UUID
    anchor_type: Literal["UPLOAD"] = "UPLOAD"
    model: str
    width: int
    height: int
    format: str
    bounding_box: BoundingBox | None
    created: datetime


# --- imported vectors ----------------------------------------------------------------------


class NewVector(BaseModel):
    """One row to import: an image without a file, with its vector. A row that breaks a
    rule (no name, wrong dimension, NaN, zero vector, a name taken) is refused on its own
    and reported; the others are imported."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, description="Unique in the dataset; up to 255 characters."
    )
    embedding: list[float] | None = Field(
        default=None,
        description="The vector: the model's dimension (a new model takes the batch's).",
    )
    folder: str | None = Field(default=None, description="e.g. /beach/2024 (default /)")
    split: str | None = None
    tags: list[str] | None = Field(default=None, description="User tags.")
    batch_id: str | None = None
    annotation_job_id: str | None = None
    metadata: dict[str, Any] | str | None = Field(
        default=None, description="A JSON object, or its JSON text."
    )


class ImportVectors(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1, max_length=63, description="The named vector: created with the "
        "vectors' dimension if new; an existing one must be an imported one of the same "
        "dimension. a-z, 0-9, '.', '_', '-'."
    )
    vectors: list[NewVector] = Field(
        min_length=1, description=f"Up to {MAX_VECTORS_PER_REQUEST} rows per call (413 past "
        "that); a file of any size goes through `pixdex vectors import`."
    )
