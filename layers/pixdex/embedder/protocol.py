"""Wire format of the inference server (``POST /invocations``), shared by server and client.

Request (JSON, ``Content-Type: application/json``)::

    {"images": [{"base64": "..."} | {"s3": "s3://bucket/key"}, ...],
     "texts": ["a prompt", ...],
     "model": "efficientnet-lite0",            # optional: refuse if the server runs another
     "object_tag_threshold": 0.1, "object_tag_top_k": 5,   # optional tagging rule
     "class_scores": false}                    # optional: also return raw class scores

Response, every list aligned with the request (``embeddings[i]`` is ``images[i]``)::

    {"model": "efficientnet-lite0", "dim": 1280,
     "embeddings": [[...] | null, ...],
     "tags": [{"objects": {...}, "scenes": {...}, "attributes": {...}} | null, ...],
     "images": [{"width": 451, "height": 300, "format": "JPEG"} | null, ...],
     "errors": [null | {"code": "image_decode_failed", "message": "..."}, ...],
     "text_embeddings": [[...], ...],
     "class_scores": [[...] | null, ...] | null}   # only when asked for

One bad image never fails the batch: its ``embeddings``/``tags``/``images`` entries are
``null`` and ``errors[i]`` says why. A bad *request* (not JSON, wrong shape, too many
images, too large) fails as a whole with ``{"error": {"code", "message", "field"}}``.
An empty request (no images, no texts) is the "describe" call: it returns the model facts
only (SageMaker exposes nothing but ``/invocations`` to callers).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixdex.models import MAX_PROMPT_CHARS, AutoTags

__all__ = [
    "DecodedImageInfo",
    "ErrorBody",
    "ErrorEnvelope",
    "ImageInput",
    "InvocationRequest",
    "InvocationResponse",
    "ItemError",
]

# Texts are prompts, not documents: anything longer is a client bug.
# A text to embed is a prompt: the same limit as everywhere else.
MAX_TEXT_CHARS = MAX_PROMPT_CHARS
# Texts per request: a taxonomy's prompts go in several requests (the client splits them),
# and one request cannot make the endpoint embed an unbounded list.
MAX_TEXTS = 256


class ImageInput(BaseModel):
    """One image: its bytes (base64) or an S3 object the server reads itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base64: str | None = Field(default=None, min_length=1)
    s3: str | None = Field(default=None, pattern=r"^s3://[^/]+/.+")

    @model_validator(mode="after")
    def _exactly_one(self) -> ImageInput:
        if (self.base64 is None) == (self.s3 is None):
            raise ValueError('give exactly one of "base64" or "s3" for each image')
        return self


class InvocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    images: list[ImageInput] = Field(default_factory=list)
    texts: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]] = Field(
        default_factory=list, max_length=MAX_TEXTS
    )
    model: str | None = None
    object_tag_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    object_tag_top_k: int | None = Field(default=None, ge=1, le=50)
    class_scores: bool = False


class DecodedImageInfo(BaseModel):
    """What decoding found: the original's size and format (not user metadata)."""

    width: int
    height: int
    format: str


class ItemError(BaseModel):
    code: str
    message: str


class InvocationResponse(BaseModel):
    model: str
    dim: int
    encodes_text: bool = False
    input_size: int = 224
    embeddings: list[list[float] | None] = Field(default_factory=list)
    tags: list[AutoTags | None] = Field(default_factory=list)
    images: list[DecodedImageInfo | None] = Field(default_factory=list)
    errors: list[ItemError | None] = Field(default_factory=list)
    text_embeddings: list[list[float]] = Field(default_factory=list)
    class_scores: list[list[float] | None] | None = None

    @model_validator(mode="after")
    def _aligned(self) -> InvocationResponse:
        sizes = {len(self.embeddings), len(self.tags), len(self.images), len(self.errors)}
        if self.class_scores is not None:
            sizes.add(len(self.class_scores))
        if len(sizes) != 1:
            raise ValueError(
                "embeddings, tags, images, errors (and class_scores) must have the same length"
            )
        return self


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody
