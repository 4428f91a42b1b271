"""Model-agnostic contracts shared by every embedding model pixdex can serve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["EmbeddingModel", "ImageBatchOutput", "ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """Static facts about a model; stored alongside vectors so indexes never mix models."""

    name: str
    dim: int
    encodes_text: bool
    tags: bool
    input_size: int


@dataclass(frozen=True)
class ImageBatchOutput:
    embeddings: NDArray[np.float32]  # (n, dim), L2-normalised
    class_scores: NDArray[np.float32] | None  # (n, num_classes) probabilities


@runtime_checkable
class EmbeddingModel(Protocol):
    """What ingest and search need from a model.

    ``embed_pixels`` takes input already prepared by :func:`preprocess_images` at
    ``spec.input_size``: ingest prepares it on decode threads so the model thread only
    runs the network.
    """

    spec: ModelSpec
    class_names: Sequence[str] | None

    def embed_images(self, images: Sequence[Image.Image]) -> ImageBatchOutput: ...

    def embed_pixels(self, pixels: NDArray[np.float32]) -> ImageBatchOutput: ...

    def embed_texts(self, texts: Sequence[str]) -> NDArray[np.float32]: ...
