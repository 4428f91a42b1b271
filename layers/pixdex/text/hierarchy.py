"""Everyday words above the ImageNet-1k classes ("dog", "vehicle"), from WordNet.

``data/imagenet-hierarchy.json`` is built at development time by
:mod:`pixdex.text.build_hierarchy` from WordNet 3.0's noun hierarchy: each generic label is
a WordNet synset chosen for being a word people search with, and its classes are every
ImageNet class below it. Used for the offline model's auto-tags (a tabby cat photo is
also tagged "cat", "mammal", "animal") and for matching tag filters ("Dogs", "puppy").

A label's score on an image is the summed probability of its classes: the model's
probability that the picture shows *some* dog, whichever breed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from pixdex.inference.imagenet import NUM_CLASSES

from .lemma import lemmas

__all__ = ["GenericLabel", "generic_labels", "label_for", "label_scores", "name_key"]


@dataclass(frozen=True)
class GenericLabel:
    name: str
    aliases: tuple[str, ...]
    classes: frozenset[int]
    wordnet: tuple[str, ...]


def name_key(text: str) -> tuple[str, ...]:
    """What two tag names are compared by: case, plurals and punctuation ignored."""
    return lemmas(text)


@lru_cache(maxsize=1)
def generic_labels() -> tuple[GenericLabel, ...]:
    raw = (resources.files("pixdex.text") / "data" / "imagenet-hierarchy.json").read_text("utf-8")
    data = json.loads(raw)
    labels = tuple(
        GenericLabel(
            name=str(item["name"]), aliases=tuple(str(a) for a in item["aliases"]),
            classes=frozenset(int(c) for c in item["classes"]),
            wordnet=tuple(str(w) for w in item["wordnet"]),
        )
        for item in data["labels"]
    )
    if any(not 0 <= c < NUM_CLASSES for label in labels for c in label.classes):
        raise RuntimeError("imagenet-hierarchy.json names a class outside 0..999")
    return labels


@lru_cache(maxsize=1)
def _by_key() -> dict[tuple[str, ...], GenericLabel]:
    out: dict[tuple[str, ...], GenericLabel] = {}
    for label in generic_labels():
        for word in (label.name, *label.aliases):
            # A label's own name wins over another label's alias of the same spelling.
            if word == label.name or name_key(word) not in out:
                out[name_key(word)] = label
    return out


def label_for(word: str) -> GenericLabel | None:
    """The generic label ``word`` names (its name or an alias, any case or number)."""
    return _by_key().get(name_key(word))


@lru_cache(maxsize=1)
def _membership() -> NDArray[np.float32]:
    matrix = np.zeros((len(generic_labels()), NUM_CLASSES), dtype=np.float32)
    for row, label in enumerate(generic_labels()):
        matrix[row, sorted(label.classes)] = 1.0
    return matrix


def label_scores(probs_row: NDArray[np.float32]) -> dict[str, float]:
    """Every generic label's summed class probability (capped at 1) for one image."""
    sums = _membership() @ np.asarray(probs_row, dtype=np.float32).reshape(-1)
    return {
        label.name: min(float(s), 1.0) for label, s in zip(generic_labels(), sums, strict=True)
    }
