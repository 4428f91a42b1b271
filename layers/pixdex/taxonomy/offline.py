"""The offline model's auto-tags: ImageNet classes, the everyday words above them, scenes.

* objects: the classes at >= ``threshold`` (at most ``top_k``, as before), plus each
  generic label of :mod:`pixdex.text.hierarchy` above one of those classes whose classes
  together hold at least :data:`GENERIC_MIN` of the probability, scored by that sum
  ("tabby cat" 0.17 + "tiger cat" 0.32 + "Egyptian Mau" 0.40 -> "cat" 0.89, "mammal",
  "animal"). Generic labels are not counted against ``top_k``: they are the same
  evidence at coarser grain.
* scenes: :func:`pixdex.taxonomy.scenes.scene_tags` (classes and pixel attributes).
* attributes: the pixel rules' (unchanged).

Why only above a tagged class: a sum over hundreds of classes ("animal" has 398) collects
the small probabilities the softmax spreads everywhere (0.40-0.49 on photos of grass, the
moon or a star field in ``tests/tag_evaluation.py``), so the sum alone is no evidence; a
generic label is exactly as right as the class it generalises.
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

GENERIC_MIN = 0.15


def offline_tags(
    probs_row: NDArray[np.float32], names: Sequence[str], attributes: Mapping[str, float], *,
    threshold: float, top_k: int,
) -> AutoTags:
    """All auto-tags of one image from its class probabilities and pixel attributes."""
    objects = object_tags(probs_row, names, threshold=threshold, top_k=top_k)
    tagged = {idx for idx, name in enumerate(names) if name in objects}
    sums = label_scores(probs_row)
    for label in generic_labels():
        score = sums[label.name]
        if score >= GENERIC_MIN and label.classes & tagged:
            objects[label.name] = max(objects.get(label.name, 0.0), round(score, 4))
    return AutoTags(
        objects=objects, scenes=scene_tags(probs_row, attributes), attributes=dict(attributes)
    )
