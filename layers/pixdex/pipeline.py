"""The image pipeline: decode -> analyse -> pixels (per image), then embed -> tag (per batch).

One implementation for everything that turns image bytes into a row's facts: ingest with
a local model (:mod:`pixdex.app.ingest`) and the inference server (:mod:`pixdex.serving`),
which is what ingest reaches with a remote model. The two only schedule the steps
differently (ingest overlaps decoding with the model and writing; the server answers one
request), so the facts an image gets never depend on where the model ran.

:func:`prepare` runs in decode threads and keeps only the small model tensors, never the
full-size picture; :func:`analyse` runs the model once per batch.

Pictures are decoded at the size their consumers need (:func:`decode_floor`): every
model's input side times :data:`RESAMPLING_MARGIN`, and the pixel attributes' working size.
A 12 MP phone JPEG is decoded by DCT scaling at 1/4 (1008x756) instead of in full; the
row keeps the original's width and height.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pixdex.config import Settings
from pixdex.imaging.attributes import ATTRIBUTES_FLOOR, compute_attributes
from pixdex.imaging.decode import decode_image
from pixdex.imaging.floor import SizeFloor
from pixdex.inference.base import EmbeddingModel
from pixdex.inference.pixels import input_side, model_pixels
from pixdex.models import AutoTags, BoundingBox
from pixdex.taxonomy.offline import offline_tags

__all__ = [
    "RESAMPLING_MARGIN",
    "Analysis",
    "Prepared",
    "analyse",
    "decode_floor",
    "model_floor",
    "prepare",
]

# A decoded picture keeps at least this many times a model's input side, so the model's
# own (antialiased) resize still has pixels to average: the same idea as Pillow's
# ``thumbnail(reducing_gap=...)``. See docs/benchmarks.md ("Decoding at the size the
# model needs") for the embeddings and tags this gives against full decoding.
RESAMPLING_MARGIN = 1.5


@dataclass
class Prepared:
    """One decoded image, reduced to what the models need and what the row records."""

    width: int
    height: int
    format: str
    attributes: dict[str, float]
    pixels: NDArray[np.float32]  # (1, 3, S, S) for the main model
    extra_pixels: dict[str, NDArray[np.float32]] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    embedding: NDArray[np.float32]
    class_scores: NDArray[np.float32] | None
    tags: AutoTags  # classes, generic labels and scenes (taxonomy.offline), pixel attributes


def model_floor(model: EmbeddingModel, box: BoundingBox | None = None) -> SizeFloor:
    """What ``model`` needs of a decoded picture (of ``box`` of it, when given)."""
    side = math.ceil(input_side(model) * RESAMPLING_MARGIN)
    return SizeFloor(short=side).within(box)


def decode_floor(models: Sequence[EmbeddingModel]) -> SizeFloor:
    """What :func:`prepare` needs of a decoded picture: each model's input and the pixel
    attributes' working copy."""
    floor = ATTRIBUTES_FLOOR
    for model in models:
        floor = floor | model_floor(model)
    return floor


def prepare(
    data: bytes, model: EmbeddingModel, settings: Settings,
    extras: Sequence[EmbeddingModel] = (),
) -> Prepared:
    """Decode at the size the models and the attributes need (limits checked on the
    original before decoding), compute pixel attributes, and each model's input tensor.
    Bad images raise :class:`pixdex.errors.PixdexError`."""
    decoded = decode_image(
        data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes,
        floor=decode_floor([model, *extras]),
    )
    return Prepared(
        width=decoded.width, height=decoded.height, format=decoded.format,
        attributes=compute_attributes(decoded.image, size=(decoded.width, decoded.height)),
        pixels=model_pixels(model, [decoded.image]),
        extra_pixels={m.spec.name: model_pixels(m, [decoded.image]) for m in extras},
    )


def analyse(
    model: EmbeddingModel, batch: Sequence[Prepared], settings: Settings, *,
    threshold: float | None = None, top_k: int | None = None,
) -> list[Analysis]:
    """Run the model once over the batch: embeddings, class scores, object tags."""
    output = model.embed_pixels(np.concatenate([prepared.pixels for prepared in batch]))
    names = model.class_names
    results: list[Analysis] = []
    for row, prepared in enumerate(batch):
        scores = output.class_scores[row] if output.class_scores is not None else None
        tags = AutoTags(attributes=prepared.attributes)
        if scores is not None and names is not None:
            tags = offline_tags(
                scores, names, prepared.attributes,
                threshold=settings.object_tag_threshold if threshold is None else threshold,
                top_k=settings.object_tag_top_k if top_k is None else top_k,
            )
        results.append(Analysis(
            embedding=output.embeddings[row], class_scores=scores, tags=tags,
        ))
    return results
