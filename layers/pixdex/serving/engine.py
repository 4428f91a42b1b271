"""The work behind ``POST /invocations``: decode in parallel, run the model in batches.

The steps are :mod:`pixdex.pipeline`'s (the same ingest runs with a local model); this
module only schedules them for one request:

* Images are read (base64 or S3) and prepared on a process-wide thread pool; each worker
  keeps only what the model needs (the tensor) plus the pixel attributes and size, so
  memory stays bounded however large the originals are.
* The calling thread consumes results in request order and runs the model as soon as a
  full batch is ready, so decoding of the next batch overlaps inference (onnxruntime
  releases the GIL).
* Model calls are serialised: concurrent requests would only fight over the same cores
  (or GPU queue); decoding of every request keeps going meanwhile.
* A bad image becomes an error entry for that image only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings
from pixdex.embedder.protocol import (
    DecodedImageInfo,
    ImageInput,
    InvocationRequest,
    InvocationResponse,
    ItemError,
)
from pixdex.engines import get_model
from pixdex.errors import ConflictError, PayloadTooLargeError, PermissionDeniedError, PixdexError
from pixdex.imaging.base64_text import decode_base64
from pixdex.inference.base import EmbeddingModel
from pixdex.pipeline import Prepared, analyse, prepare

__all__ = ["Engine"]


log = logging.getLogger(__name__)


class Engine:
    """Serves invocation requests with one model; thread-safe, created once per process."""

    def __init__(
        self,
        settings: Settings,
        model: EmbeddingModel | None = None,
        *,
        max_images: int | None = None,
    ) -> None:
        # The server *is* the embedder: whatever the environment says, its model runs here.
        self.settings = settings.model_copy(update={"embedder": "local"})
        if model is None:
            model = get_model(self.settings.model, self.settings)
        self.model = model
        self.max_images = max_images or self.settings.max_images_per_request
        self._pool = ThreadPoolExecutor(
            self.settings.decode_workers, thread_name_prefix="pixdex-embedder-decode"
        )
        self._model_lock = threading.Lock()
        self._ready = threading.Event()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def warm_up(self) -> None:
        """Load the model (building its ONNX graph if needed) and run it once."""
        size = self.model.spec.input_size
        with self._model_lock:
            self.model.embed_images([Image.new("RGB", (size, size), (127, 127, 127))])
        self._ready.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        spec = self.model.spec
        if request.model is not None and request.model != spec.name:
            raise ConflictError(
                f"this endpoint serves model {spec.name!r}, not {request.model!r}; point the "
                "client at an endpoint for that model or change PIXDEX_MODEL",
                field="model",
            )
        if len(request.images) > self.max_images:
            raise PayloadTooLargeError(
                f"{len(request.images)} images in one request; the limit is {self.max_images}. "
                "Split the batch.",
                field="images",
            )
        response = InvocationResponse(
            model=spec.name, dim=spec.dim, encodes_text=spec.encodes_text,
            input_size=spec.input_size,
        )
        if request.texts:
            with self._model_lock:
                vectors = self.model.embed_texts(request.texts)
            response.text_embeddings = np.asarray(vectors, dtype=np.float32).tolist()
        if request.images:
            self._embed_images(request, response)
        return response

    def _embed_images(self, request: InvocationRequest, response: InvocationResponse) -> None:
        futures: list[Future[Prepared | ItemError]] = [
            self._pool.submit(self._prepare, item) for item in request.images
        ]
        count = len(futures)
        response.embeddings = [None] * count
        response.tags = [None] * count
        response.images = [None] * count
        response.errors = [None] * count
        if request.class_scores:
            response.class_scores = [None] * count
        threshold = request.object_tag_threshold
        top_k = request.object_tag_top_k
        batch: list[tuple[int, Prepared]] = []
        for index, future in enumerate(futures):
            outcome = future.result()
            if isinstance(outcome, ItemError):
                response.errors[index] = outcome
            else:
                batch.append((index, outcome))
            if len(batch) >= self.settings.batch_size or (batch and index == count - 1):
                self._run_batch(batch, response, threshold, top_k)
                batch = []

    def _run_batch(
        self,
        batch: Sequence[tuple[int, Prepared]],
        response: InvocationResponse,
        threshold: float | None,
        top_k: int | None,
    ) -> None:
        with self._model_lock:
            analyses = analyse(
                self.model, [prepared for _, prepared in batch], self.settings,
                threshold=threshold, top_k=top_k,
            )
        for (index, prepared), analysis in zip(batch, analyses, strict=True):
            response.embeddings[index] = analysis.embedding.tolist()
            response.tags[index] = analysis.tags
            response.images[index] = DecodedImageInfo(
                width=prepared.width, height=prepared.height, format=prepared.format
            )
            if response.class_scores is not None and analysis.class_scores is not None:
                response.class_scores[index] = analysis.class_scores.tolist()

    def _prepare(self, item: ImageInput) -> Prepared | ItemError:
        try:
            return prepare(self._read(item), self.model, self.settings)
        except PixdexError as exc:
            return ItemError(code=exc.code, message=exc.message)
        except (ClientError, BotoCoreError) as exc:
            # AWS's text (account ids, bucket policies) goes to the log, not to the caller.
            log.warning("cannot read %s: %s", item.s3, exc)
            return ItemError(code="blob_unreadable",
                             message=f"cannot read {item.s3}: missing or not readable here")

    def _read(self, item: ImageInput) -> bytes:
        limit = self.settings.max_file_bytes
        if item.s3 is not None:
            allowed = self.settings.embedder_s3_prefixes
            if allowed is not None and not item.s3.startswith(allowed):
                raise PermissionDeniedError(
                    f"{item.s3} is outside what this endpoint reads ({', '.join(allowed)})",
                    field="images",
                )
            ref = BlobRef.parse(item.s3)
            return store_for(ref).get(ref, max_bytes=limit)
        return decode_base64(item.base64 or "", max_bytes=limit, field="images")


class LocalTransport:
    """An engine in this process behind the client's transport interface: no
    serialisation at all (tests compare it with the HTTP and SageMaker transports)."""

    where = "in-process"
    max_images: int | None = None

    def __init__(self, engine: Engine, max_request_bytes: int) -> None:
        self.engine = engine
        self.max_request_bytes = max_request_bytes

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        return self.engine.invoke(request)
