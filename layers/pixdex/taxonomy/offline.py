"""The offline model's auto-tags: ImageNet classes, the everyday words above them, scenes.

* objects: the classes at >= ``threshold`` (at most ``top_k``, as before), plus each
  generic label of :mod:`pixdex.text.hierarchy` one of whose classes has probability
  >= :data:`GENERIC_MIN`, scored by the summed probability of all its classes ("Egyptian
  Mau" 0.40 + "tiger cat" 0.32 + "tabby cat" 0.17 -> "cat" 0.89, "mammal" 0.93,
  "animal" 0.94). Generic labels are not counted against ``top_k`` (they are the same
  evidence at coarser grain) but, like the classes, must reach ``threshold``.
* scenes: :func:`pixdex.taxonomy.scenes.scene_tags` (classes and pixel attributes).
* attributes: the pixel rules' (unchanged).

Why a class at >= 0.20 is needed: a sum over hundreds of classes ("animal" has 398)
collects the small probabilities the softmax spreads everywhere (0.40-0.49 on photos of
grass, the moon or a star field in ``tests/tag_evaluation.py``), so the sum alone is no
evidence; and the generic label reads as the surer claim (its score is the larger), so
it needs a class the model is fairly sure of, twice the object-tag threshold. On the
labelled photos this took generic-label precision from 0.50 (any tagged class, >= 0.10)
to 0.67 at a recall of 0.67 instead of 0.75 (docs/models.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from pixdex.inference.imagenet import object_tags
from pixdex.models import AutoTags
from pixdex.text.hierarchy import generic_labels, label_scores

from .scenes import scene_tags

__all__ = ["GENERIC_MIN", "offline_tags"]

GENERIC_MIN = 0.20


def offline_tags(
    probs_row: NDArray[np.float32], names: Sequence[str], attributes: Mapping[str, float], *,
    threshold: float, top_k: int,
) -> AutoTags:
    """All auto-tags of one image from its class probabilities and pixel attributes."""
    objects = object_tags(probs_row, names, threshold=threshold, top_k=top_k)
    probs = np.asarray(probs_row, dtype=np.float32).reshape(-1)
    sure = {int(idx) for idx in np.flatnonzero(probs >= GENERIC_MIN)}
    sums = label_scores(probs)
    for label in generic_labels():
        score = sums[label.name]
        if label.classes & sure and score >= threshold:
            objects[label.name] = max(objects.get(label.name, 0.0), round(score, 4))
    return AutoTags(
        objects=objects, scenes=scene_tags(probs_row, attributes), attributes=dict(attributes)
    )
