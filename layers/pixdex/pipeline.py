"""The image pipeline: decode -> analyse -> pixels (per image), then embed -> tag (per batch).

One implementation for everything that turns image bytes into a row's facts: ingest with
a local model (:mod:`pixdex.app.ingest`) and the inference server (:mod:`pixdex.serving`),
which is what ingest reaches with a remote model. The two only schedule the steps
differently (ingest overlaps decoding with the model and writing; the server answers one
request), so the facts an image gets never depend on where the model ran.

:func:`prepare` runs in decode threads and keeps only the small model tensors, never the
full-size picture; :func:`analyse` runs the model once per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pixdex.config import Settings
from pixdex.imaging.attributes import compute_attributes
from pixdex.imaging.decode import decode_image
from pixdex.inference.base import EmbeddingModel
from pixdex.inference.pixels import model_pixels
from pixdex.models import AutoTags
from pixdex.taxonomy.offline import offline_tags

__all__ = ["Analysis", "Prepared", "analyse", "prepare"]


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


def prepare(
    data: bytes, model: EmbeddingModel, settings: Settings,
    extras: Sequence[EmbeddingModel] = (),
) -> Prepared:
    """Decode (limits checked before decoding), compute pixel attributes, and each
    model's input tensor. Bad images raise :class:`pixdex.errors.PixdexError`."""
    decoded = decode_image(
        data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes
    )
    return Prepared(
        width=decoded.width, height=decoded.height, format=decoded.format,
        attributes=compute_attributes(decoded.image),
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
