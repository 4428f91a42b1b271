"""A labelled photo set for the offline model's generic object labels and scenes.

Photos: scikit-image's bundled pictures (as in :mod:`tests.prompt_evaluation`) and
scikit-learn's two sample photos (``china.jpg``: a temple roof against the sky;
``flower.jpg``: a daisy outdoors). The labels were written by looking at the photos, not
at the model's output: ``objects`` are the everyday words of
``pixdex/text/data/imagenet-hierarchy.json`` a person would tag the photo with,
``scenes`` the scene names that hold. ``acceptable`` lists names that are not wrong but
not required either (the cat may well be indoors; a palace is a house in WordNet); they
count neither way. ImageNet class names (the leaf tags) are not scored here.

Used by ``bench/bench_tags.py`` (prints the table for docs/models.md) and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixdex.imaging.attributes import compute_attributes
from pixdex.inference.imagenet import imagenet_class_names
from pixdex.models import AutoTags
from pixdex.taxonomy.offline import offline_tags
from pixdex.text.hierarchy import generic_labels
from tests.prompt_evaluation import load_photos

__all__ = ["LABELS", "Label", "Scores", "evaluate", "load_labelled_photos", "tag_photos"]


@dataclass(frozen=True)
class Label:
    objects: frozenset[str] = frozenset()
    scenes: frozenset[str] = frozenset()
    acceptable: frozenset[str] = frozenset()


_F = frozenset
LABELS: dict[str, Label] = {
    "astronaut": Label(_F({"person"}), _F({"indoor"})),
    "chelsea": Label(_F({"cat", "mammal", "animal"}), acceptable=_F({"indoor"})),
    "coffee": Label(_F({"food"}), acceptable=_F({"indoor"})),
    "rocket": Label(_F({"vehicle"}), _F({"outdoor"}), _F({"daytime", "nighttime"})),
    "camera": Label(_F({"person"}), _F({"outdoor", "daytime"}), _F({"clothing"})),
    "coins": Label(),
    "clock": Label(_F({"clock"}), acceptable=_F({"indoor"})),
    "colorwheel": Label(),
    "hubble_deep_field": Label(acceptable=_F({"outdoor", "nighttime"})),
    "moon": Label(acceptable=_F({"outdoor", "nighttime"})),
    "page": Label(),
    "text": Label(),
    "brick": Label(acceptable=_F({"building", "outdoor", "daytime"})),
    "grass": Label(acceptable=_F({"outdoor", "daytime"})),
    "gravel": Label(acceptable=_F({"outdoor", "daytime"})),
    "retina": Label(),
    "immunohistochemistry": Label(),
    # Middlebury's stereo motorcycle stands in a lab, indoors.
    "motorcycle": Label(_F({"motorcycle", "vehicle"}), _F({"indoor"})),
    "china": Label(
        _F({"building"}), _F({"outdoor", "daytime"}), _F({"house", "tower", "church"})
    ),
    "flower": Label(_F({"flower"}), acceptable=_F({"outdoor", "daytime", "plant"})),
}


@dataclass(frozen=True)
class Scores:
    """Precision and recall of one kind over the labelled set, with the mistakes."""

    true_positives: int
    false_positives: list[tuple[str, str]]
    misses: list[tuple[str, str]]

    @property
    def precision(self) -> float:
        found = self.true_positives + len(self.false_positives)
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + len(self.misses)
        return self.true_positives / wanted if wanted else 1.0


def load_labelled_photos() -> dict[str, Image.Image]:
    from sklearn.datasets import load_sample_image

    photos = load_photos()
    for name in ("china", "flower"):
        photos[name] = Image.fromarray(load_sample_image(f"{name}.jpg")).convert("RGB")
    assert set(photos) == set(LABELS)
    return photos


def tag_photos(
    photos: dict[str, Image.Image], class_scores: NDArray[np.float32]
) -> dict[str, AutoTags]:
    names = imagenet_class_names()
    return {
        name: offline_tags(
            probs, names, compute_attributes(picture), threshold=0.10, top_k=5
        )
        for (name, picture), probs in zip(photos.items(), class_scores, strict=True)
    }


def evaluate(tags: dict[str, AutoTags]) -> dict[str, Scores]:
    """Generic object labels and scenes against :data:`LABELS`."""
    generic = {label.name for label in generic_labels()}
    out: dict[str, Scores] = {}
    for kind in ("objects", "scenes"):
        hits, wrong, missed = 0, [], []
        for photo, label in LABELS.items():
            expected: frozenset[str] = getattr(label, kind)
            given = set(getattr(tags[photo], kind))
            if kind == "objects":
                given &= generic
            given -= label.acceptable - expected
            hits += len(given & expected)
            wrong.extend((photo, n) for n in sorted(given - expected))
            missed.extend((photo, n) for n in sorted(expected - given))
        out[kind] = Scores(hits, wrong, missed)
    return out
