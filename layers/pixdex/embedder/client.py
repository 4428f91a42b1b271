"""The embedder client: one API over the three modes (``PIXDEX_EMBEDDER``).

* ``local``: the engine in this process (no serialisation);
* ``http``: the pixdex inference server at ``PIXDEX_EMBEDDER_URL``;
* ``sagemaker``: the SageMaker endpoint ``PIXDEX_SAGEMAKER_ENDPOINT`` (``invoke_endpoint``).

:class:`EmbedderClient` packs images into requests that respect the transport's payload
limit (6 MB for SageMaker): bytes are sent inline while they fit, an S3 object too large to
fit is sent as its ``s3://`` reference (the server reads it), anything else too large fails
for that image only. :class:`RemoteEmbedder` wraps the client in the
:class:`~pixdex.inference.base.EmbeddingModel` protocol, so search and ingest use a remote
model exactly like the in-process one (:func:`pixdex.engines.get_model` returns it when the
mode is not local).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixdex.blobs import BlobRef
from pixdex.config import Settings
from pixdex.errors import (
    ImageDecodeError,
    InvalidInputError,
    ModelCapabilityError,
    PayloadTooLargeError,
    PixdexError,
)
from pixdex.inference.base import ImageBatchOutput, ModelSpec
from pixdex.inference.preprocess import INPUT_MEAN, INPUT_STD, center_crop_resize
from pixdex.inference.specs import builtin_specs
from pixdex.models import AutoTags

from .errors import EmbedderResponseError
from .protocol import (
    MAX_TEXTS,
    DecodedImageInfo,
    ImageInput,
    InvocationRequest,
    InvocationResponse,
    ItemError,
)
from .transports import Transport, transport_for

__all__ = ["EmbedderClient", "ImageAnalysis", "ImageSource", "RemoteEmbedder"]

# {"base64":""}, per image, and the request envelope.
_ITEM_OVERHEAD = 16
_ENVELOPE = 1024


@dataclass(frozen=True)
class ImageSource:
    """An image to analyse: its bytes, and where it lives (S3 objects can go by reference)."""

    data: bytes | None = None
    ref: BlobRef | None = None


@dataclass(frozen=True)
class ImageAnalysis:
    """What the embedder says about one image: all fields set, or ``error`` alone."""

    embedding: NDArray[np.float32] | None = None
    tags: AutoTags | None = None
    meta: DecodedImageInfo | None = None
    error: ItemError | None = None
    class_scores: NDArray[np.float32] | None = None  # only when asked for


def _inline_size(data: bytes) -> int:
    return 4 * ((len(data) + 2) // 3) + _ITEM_OVERHEAD


class EmbedderClient:
    """Requests to the configured embedder, split to fit its limits; thread-safe."""

    def __init__(
        self, settings: Settings, model: str, *, transport: Transport | None = None
    ) -> None:
        self.settings = settings
        self.model = model
        self.transport = transport or transport_for(settings)

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        response = self.transport.invoke(request)
        if response.model != self.model:
            raise EmbedderResponseError(
                f"{self.transport.where} serves model {response.model!r} but this client is "
                f"configured for {self.model!r} (PIXDEX_MODEL)",
                field="model",
            )
        if len(response.embeddings) != len(request.images) or len(
            response.text_embeddings
        ) != len(request.texts):
            raise EmbedderResponseError(
                f"{self.transport.where} answered {len(response.embeddings)} images and "
                f"{len(response.text_embeddings)} texts for {len(request.images)} and "
                f"{len(request.texts)}"
            )
        return response

    def describe(self) -> InvocationResponse:
        """The model facts the endpoint reports (an empty request)."""
        return self.invoke(InvocationRequest(model=self.model))

    def embed_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        rows: list[list[float]] = []
        for start in range(0, len(texts), MAX_TEXTS):
            chunk = list(texts[start : start + MAX_TEXTS])
            rows += self.invoke(InvocationRequest(texts=chunk, model=self.model)).text_embeddings
        return np.asarray(rows, dtype=np.float32)

    def analyze(
        self, sources: Sequence[ImageSource], *, class_scores: bool = False
    ) -> list[ImageAnalysis]:
        """Embeddings, tags and size of each image, in order; bad images get ``error``."""
        results: list[ImageAnalysis | None] = [None] * len(sources)
        budget = self.transport.max_request_bytes - _ENVELOPE
        max_images = min(
            self.settings.max_images_per_request,
            self.settings.batch_size,
            self.transport.max_images or self.settings.max_images_per_request,
        )
        pending: list[tuple[int, ImageInput]] = []
        used = 0
        for index, source in enumerate(sources):
            item, size = self._item(source, budget)
            if item is None:
                results[index] = ImageAnalysis(error=self._too_large(source, budget))
                continue
            if pending and (used + size > budget or len(pending) >= max_images):
                self._send(pending, results, class_scores)
                pending, used = [], 0
            pending.append((index, item))
            used += size
        if pending:
            self._send(pending, results, class_scores)
        return [r if r is not None else ImageAnalysis(error=_LOST) for r in results]

    def _item(self, source: ImageSource, budget: int) -> tuple[ImageInput | None, int]:
        if source.data is not None and _inline_size(source.data) <= budget:
            text = base64.b64encode(source.data).decode("ascii")
            return ImageInput(base64=text), len(text) + _ITEM_OVERHEAD
        if source.ref is not None and source.ref.store == "s3":
            return ImageInput(s3=source.ref.uri), len(source.ref.uri) + _ITEM_OVERHEAD
        return None, 0

    @staticmethod
    def _too_large(source: ImageSource, budget: int) -> ItemError:
        size = len(source.data or b"")
        error = PayloadTooLargeError(
            f"image is {size:,} bytes: too large to send to the embedder, which accepts "
            f"{budget * 3 // 4:,} bytes per request; store it in S3 so the endpoint reads it"
        )
        return ItemError(code=error.code, message=error.message)

    def _send(
        self,
        pending: list[tuple[int, ImageInput]],
        results: list[ImageAnalysis | None],
        class_scores: bool,
    ) -> None:
        request = InvocationRequest(
            images=[item for _, item in pending],
            model=self.model,
            object_tag_threshold=self.settings.object_tag_threshold,
            object_tag_top_k=self.settings.object_tag_top_k,
            class_scores=class_scores,
        )
        response = self.invoke(request)
        scores = response.class_scores or [None] * len(pending)
        for row, (index, _) in enumerate(pending):
            results[index] = ImageAnalysis(
                embedding=_array(response.embeddings[row]),
                tags=response.tags[row],
                meta=response.images[row],
                error=response.errors[row],
                class_scores=_array(scores[row]),
            )


_LOST = ItemError(code="embedder_bad_response", message="the embedder returned no result")
# Models whose own preprocessing starts with "shorter side to input size, centre crop":
# the client can do that step and send only the crop (see RemoteEmbedder).
CENTER_CROP_MODELS = frozenset({"efficientnet-lite0"})
# Other models get the whole picture, shrunk to at most this many pixels on its long side
# (a query image sent lossless must fit the request, and no model looks at more).
_MAX_SIDE = 1024


def _array(values: list[float] | None) -> NDArray[np.float32] | None:
    return None if values is None else np.asarray(values, dtype=np.float32)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class RemoteEmbedder:
    """An :class:`~pixdex.inference.base.EmbeddingModel` served by a remote embedder.

    For models in :data:`CENTER_CROP_MODELS` pictures are cropped and resized to the model
    input here (the model's own first step) and sent as lossless PNG: a few dozen KB
    instead of the full picture, and the server's resize of a picture already at input size
    is the identity, so the vectors equal the in-process ones. Other models get the whole
    picture (long side at most 1024 px). ``class_names`` is None: tags come from the
    server (:meth:`analyze`).
    """

    class_names: Sequence[str] | None = None

    def __init__(
        self, settings: Settings, name: str, *, client: EmbedderClient | None = None
    ) -> None:
        self.client = client or EmbedderClient(settings, name)
        known = _known_spec(name)
        if known is None:
            facts = self.client.describe()
            known = ModelSpec(
                name=facts.model, dim=facts.dim, encodes_text=facts.encodes_text, tags=True,
                input_size=facts.input_size,
            )
        self.spec: ModelSpec = known
        self._crops = known.name in CENTER_CROP_MODELS

    def analyze(
        self, sources: Sequence[ImageSource], *, class_scores: bool = False
    ) -> list[ImageAnalysis]:
        return self.client.analyze(sources, class_scores=class_scores)

    def embed_images(self, images: Sequence[Image.Image]) -> ImageBatchOutput:
        return self._embed([ImageSource(data=_png(self._wire(image))) for image in images])

    def _wire(self, image: Image.Image) -> Image.Image:
        if self._crops:
            return center_crop_resize(image, self.spec.input_size)
        if max(image.size) <= _MAX_SIDE:
            return image
        smaller = image.copy()
        smaller.thumbnail((_MAX_SIDE, _MAX_SIDE), Image.Resampling.BILINEAR)
        return smaller

    def embed_pixels(self, pixels: NDArray[np.float32]) -> ImageBatchOutput:
        if not self._crops:
            raise ModelCapabilityError(
                f"embed_pixels is not available for {self.spec.name} over a remote embedder "
                "(its preprocessing cannot be undone here); send pictures instead",
                field="model",
            )
        size = self.spec.input_size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, size, size):
            raise InvalidInputError(
                f"pixels must be shaped (n, 3, {size}, {size}), got {pixels.shape}",
                field="pixels",
            )
        if not np.isfinite(pixels).all():
            raise InvalidInputError("pixels must be finite numbers", field="pixels")
        # Preprocessing is (x - 127) / 128 on integers: exactly invertible to the uint8 input.
        restored = np.clip(np.rint(pixels * INPUT_STD + INPUT_MEAN), 0, 255).astype(np.uint8)
        sources = [
            ImageSource(data=_png(Image.fromarray(np.ascontiguousarray(chw.transpose(1, 2, 0)))))
            for chw in restored
        ]
        return self._embed(sources)

    def embed_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.client.embed_texts(texts)

    def _embed(self, sources: list[ImageSource]) -> ImageBatchOutput:
        if not sources:
            return ImageBatchOutput(
                embeddings=np.zeros((0, self.spec.dim), dtype=np.float32), class_scores=None
            )
        rows: list[NDArray[np.float32]] = []
        scores: list[NDArray[np.float32]] = []
        for analysis in self.client.analyze(sources, class_scores=self.spec.tags):
            if analysis.embedding is None:
                raise _typed(analysis.error or _LOST)
            rows.append(analysis.embedding)
            if analysis.class_scores is not None:
                scores.append(analysis.class_scores)
        return ImageBatchOutput(
            embeddings=np.stack(rows),
            class_scores=np.stack(scores) if len(scores) == len(rows) else None,
        )


def _typed(error: ItemError) -> PixdexError:
    if error.code == ImageDecodeError.code:
        return ImageDecodeError(error.message)
    if error.code == PayloadTooLargeError.code:
        return PayloadTooLargeError(error.message)
    return EmbedderResponseError(f"the embedder could not embed the image: {error.message}")


def _known_spec(name: str) -> ModelSpec | None:
    return next((spec for spec in builtin_specs() if spec.name == name), None)
