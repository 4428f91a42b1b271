"""The input tensor a model wants for some pictures, whichever model it is.

Models with their own preprocessing (a SigLIP / CLIP export has its own resize and
normalisation) expose ``preprocess(images)``; the others take the default pipeline of
:mod:`.preprocess` at ``spec.input_size``. Ingest's decode threads and the inference server
both go through here, so a model is always fed exactly what it was built for.

:func:`input_side` says how large a picture's shorter side must be for the model's own
resize to still be a reduction (``input_side`` when the model has one, e.g. a CLIP export
resizes to more than it crops; ``spec.input_size`` otherwise): what the decoder may
reduce a picture to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .base import EmbeddingModel
from .preprocess import preprocess_images

__all__ = ["input_side", "model_pixels"]

Preprocess = Callable[[Sequence[Image.Image]], NDArray[np.float32]]


def model_pixels(model: EmbeddingModel, images: Sequence[Image.Image]) -> NDArray[np.float32]:
    own = getattr(model, "preprocess", None)
    if callable(own):
        return cast(Preprocess, own)(images)
    return preprocess_images(images, model.spec.input_size)


def input_side(model: EmbeddingModel) -> int:
    """The shorter side, in px, the model's preprocessing resizes a picture to."""
    own = getattr(model, "input_side", None)
    return own if isinstance(own, int) and own > 0 else model.spec.input_size
