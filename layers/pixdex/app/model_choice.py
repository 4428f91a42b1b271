"""The named vectors ingest fills besides the default model's embedding.

* ``<model>-classes``: the offline model's ImageNet class probabilities (prompt search).
* Models a dataset gained through ``pixdex reembed`` (e.g. a vision-language model):
  ingest runs each on every new image so the dataset keeps listing it, and the first
  vision-language model among them also computes zero-shot auto-tags, merged with the
  pixel attributes (:func:`pixdex.taxonomy.merge_auto_tags`).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import numpy as np

from pixdex.app.retag import workspace_taxonomy
from pixdex.config import Settings
from pixdex.embedder.client import RemoteEmbedder
from pixdex.engines import get_model
from pixdex.errors import ModelCapabilityError
from pixdex.inference.base import EmbeddingModel
from pixdex.inference.specs import class_vector_spec
from pixdex.models import AutoTags
from pixdex.pipeline import Prepared
from pixdex.storage import catalog, images
from pixdex.storage.connection import Conn
from pixdex.taxonomy import ZeroShotModel, ZeroShotTagger, get_tagger, merge_auto_tags

__all__ = ["Tagging", "embed_extras", "extra_models", "register_models"]


def register_models(conn: Conn, model: EmbeddingModel, dataset_id: UUID) -> None:
    catalog.register_model(conn, model.spec, dataset_id)
    classes = class_vector_spec(model.spec)
    if classes is None:
        return
    # The dataset lists the class vector only when every indexed image has one: a dataset
    # indexed before class vectors existed gets it from ``pixdex reembed``, and until then
    # a prompt search there says so instead of silently skipping the older images.
    complete = (
        classes.name in catalog.dataset_models(conn, dataset_id)
        or not catalog.has_indexed_files(conn, dataset_id)
    )
    catalog.register_model(conn, classes, dataset_id if complete else None, metric="ip")


def extra_models(
    conn: Conn, model: EmbeddingModel, dataset_id: UUID, settings: Settings
) -> list[EmbeddingModel]:
    """The dataset's other named vectors (models added by ``pixdex reembed``)."""
    classes = class_vector_spec(model.spec)
    own = {model.spec.name, classes.name if classes else ""}
    names = [m for m in catalog.dataset_models(conn, dataset_id) if m not in own]
    if names and isinstance(model, RemoteEmbedder):
        raise ModelCapabilityError(
            f"this dataset also has vectors of {', '.join(names)}, which the remote embedder "
            "does not serve; index it where those models are installed (PIXDEX_EMBEDDER=local)",
            field="model",
        )
    return [get_model(name, settings) for name in names]


class Tagging:
    """Zero-shot tags from the first vision-language model among the extra models."""

    def __init__(self, extras: Sequence[EmbeddingModel], settings: Settings, workspace: str):
        self.model: str | None = None
        self._tagger: ZeroShotTagger | None = None
        for extra in extras:
            if extra.spec.tags and isinstance(extra, ZeroShotModel):
                taxonomy = workspace_taxonomy(settings, workspace)
                self._tagger = get_tagger(extra, settings, taxonomy)
                self.model = extra.spec.name
                break

    def apply(self, writes: Sequence[images.ImageWrite]) -> None:
        if self._tagger is None or self.model is None or not writes:
            return
        model = self.model
        tags = self._tagger.tag(np.stack([w.vectors[model] for w in writes]))
        for write, zero_shot in zip(writes, tags, strict=True):
            merged = merge_auto_tags(write.auto_tags, zero_shot)
            # The classifier's object tags stay when the zero-shot taxonomy found none.
            objects = merged.objects or write.auto_tags.objects
            write.auto_tags = AutoTags(
                objects=objects, scenes=merged.scenes, attributes=merged.attributes
            )


def embed_extras(
    ready: Sequence[tuple[Prepared, images.ImageWrite]], settings: Settings
) -> None:
    """Each extra model once over the batch, from the tensors :func:`pixdex.pipeline.prepare`
    made for it."""
    names = ready[0][0].extra_pixels.keys() if ready else ()
    for name in list(names):
        extra = get_model(name, settings)
        output = extra.embed_pixels(
            np.concatenate([prepared.extra_pixels.pop(name) for prepared, _ in ready])
        )
        for row, (_, write) in enumerate(ready):
            write.vectors[name] = output.embeddings[row]
