"""What zero-shot tagging needs of a vision-language model, as a protocol.

The taxonomy package is used by ingest, which also runs in the Lambda functions; naming
the concrete :class:`pixdex.vlm.VisionLanguageModel` here would put the model runtime on
their import path (see ``.importlinter``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from pixdex.inference.base import ModelSpec

__all__ = ["ModelManifest", "ZeroShotModel"]


class ModelManifest(Protocol):
    @property
    def family(self) -> str: ...

    def model_dump_json(self) -> str: ...


@runtime_checkable
class ZeroShotModel(Protocol):
    """A model with an image and a text tower in one space (SigLIP, CLIP)."""

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def model_dir(self) -> Path: ...

    @property
    def manifest(self) -> ModelManifest: ...

    def embed_texts(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def logits(self, cosines: NDArray[np.float32]) -> NDArray[np.float32]: ...
