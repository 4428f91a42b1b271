"""Serving a SigLIP / CLIP model directory with onnxruntime: image and text embeddings.

Implements :class:`pixdex.inference.base.EmbeddingModel` with ``encodes_text=True``.
Sessions are created lazily, once per instance, under a lock (the registry keeps one
instance per process). Embeddings are L2-normalised here, so cosine similarity is a dot
product; :meth:`VisionLanguageModel.logits` turns cosines into the model's own logits
(SigLIP: ``exp(t) * cos + b``, a sigmoid of which is a probability; CLIP: ``exp(t) * cos``,
meaningful through a softmax over candidates).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixdex.config import Settings, get_settings
from pixdex.errors import InvalidInputError
from pixdex.inference.base import ImageBatchOutput, ModelSpec
from pixdex.inference.session import OnnxSession, resolve_providers
from pixdex.inference.vectors import l2_normalise

from .manifest import VlmManifest, read_manifest
from .preprocess import preprocess_for_vlm
from .tokenize import PromptTokenizer

__all__ = [
    "IMAGE_INPUT",
    "IMAGE_OUTPUT",
    "TEXT_INPUT_IDS",
    "TEXT_MASK",
    "TEXT_OUTPUT",
    "VisionLanguageModel",
    "l2_normalise",
]

IMAGE_INPUT, IMAGE_OUTPUT = "pixel_values", "image_embeds"
TEXT_INPUT_IDS, TEXT_MASK, TEXT_OUTPUT = "input_ids", "attention_mask", "text_embeds"


class VisionLanguageModel:
    """A SigLIP or CLIP model directory made by ``pixdex models export``."""

    def __init__(
        self, model_dir: Path, settings: Settings | None = None, *, batch_size: int | None = None
    ) -> None:
        self._settings = settings or get_settings()
        resolve_providers(self._settings.providers)
        self.model_dir = model_dir
        self.manifest: VlmManifest = read_manifest(model_dir)
        self.batch_size = batch_size or self._settings.batch_size
        self.spec = ModelSpec(
            name=self.manifest.name,
            dim=self.manifest.dim,
            encodes_text=True,
            tags=True,
            input_size=self.manifest.image.crop_size,
        )
        self.class_names: Sequence[str] | None = None
        self._lock = threading.Lock()
        self._image: OnnxSession | None = None
        self._text: OnnxSession | None = None
        self._tokenizer: PromptTokenizer | None = None

    def _image_session(self) -> OnnxSession:
        with self._lock:
            if self._image is None:
                path = self.model_dir / self.manifest.image_file
                self._image = OnnxSession(path, self._settings.providers)
            return self._image

    def _text_parts(self) -> tuple[OnnxSession, PromptTokenizer]:
        with self._lock:
            if self._text is None or self._tokenizer is None:
                m = self.manifest
                self._tokenizer = PromptTokenizer(self.model_dir / m.tokenizer_file, m.text)
                self._text = OnnxSession(self.model_dir / m.text_file, self._settings.providers)
            return self._text, self._tokenizer

    @property
    def input_side(self) -> int:
        """The shorter side a picture is resized to (SigLIP squashes both sides to it,
        CLIP resizes its shorter side to it, then crops ``crop_size``)."""
        return self.manifest.image.size

    def preprocess(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """Pixels for :meth:`embed_pixels` (ingest runs this on its decode threads)."""
        return preprocess_for_vlm(images, self.manifest.image)

    def embed_pixels(self, pixels: NDArray[np.float32]) -> ImageBatchOutput:
        size = self.manifest.image.crop_size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, size, size):
            raise InvalidInputError(
                f"pixels must have shape (n, 3, {size}, {size}), got {pixels.shape}; "
                "prepare them with VisionLanguageModel.preprocess",
                field="pixels",
            )
        out = self._image_session().run({IMAGE_INPUT: pixels}, [IMAGE_OUTPUT])
        return ImageBatchOutput(embeddings=l2_normalise(out[IMAGE_OUTPUT]), class_scores=None)

    def embed_images(self, images: Sequence[Image.Image]) -> ImageBatchOutput:
        if not images:
            return ImageBatchOutput(np.zeros((0, self.spec.dim), np.float32), None)
        parts = [
            self.embed_pixels(self.preprocess(images[i : i + self.batch_size])).embeddings
            for i in range(0, len(images), self.batch_size)
        ]
        return ImageBatchOutput(embeddings=np.concatenate(parts), class_scores=None)

    def embed_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """L2-normalised text embeddings, (len(texts), dim)."""
        if isinstance(texts, str):
            raise InvalidInputError("embed_texts takes a list of prompts, not one string")
        if not texts:
            return np.zeros((0, self.spec.dim), np.float32)
        session, tokenizer = self._text_parts()
        parts = []
        for start in range(0, len(texts), self.batch_size):
            ids, mask = tokenizer.encode(texts[start : start + self.batch_size])
            feeds = {TEXT_INPUT_IDS: ids}
            if self.manifest.text.attention_mask:
                feeds[TEXT_MASK] = mask
            parts.append(session.run(feeds, [TEXT_OUTPUT])[TEXT_OUTPUT])
        return l2_normalise(np.concatenate(parts))

    def logits(self, cosine: NDArray[np.float32]) -> NDArray[np.float32]:
        """The model's logits for cosine similarities (see the module docstring)."""
        m = self.manifest
        out: NDArray[np.float32] = (cosine * m.logit_scale + m.logit_bias).astype(np.float32)
        return out
