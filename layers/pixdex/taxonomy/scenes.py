"""Scene tags for the offline model, from what its ImageNet classes and the pixels say.

EfficientNet-Lite0 has no scene classifier, but ImageNet has ten landscape classes and
many classes that only occur in one kind of place. Every rule is a sum of class
probabilities (the model's probability that the picture shows one of those things) over
a threshold; the score is that sum (capped at 1). When the evidence is weak the scene is
left out: an empty scene list is better than a wrong one.

* Named scenes: the landscape classes themselves (mountain, cliff, coral reef, geyser,
  lakeshore, promontory, sandbar, beach, valley, volcano), each at >= :data:`NAMED_MIN`.
* ``outdoor``: landscapes, vehicles of roads, rails, water and air, outdoor structures
  (bridges, towers, fences, lighthouses, churches...) at >= :data:`PLACE_MIN`.
* ``indoor``: furniture, home appliances, computers and screens, indoor rooms (library,
  home theater, restaurant) at >= :data:`PLACE_MIN`. Only the stronger of indoor and
  outdoor is kept.
* ``urban``: street furniture and city transport (traffic light, street sign, parking
  meter, tram, trolleybus, taxi); ``rural``: farm machines and buildings, hay, fences,
  livestock; each at >= :data:`SETTING_MIN`.
* ``daytime`` / ``nighttime``: only for outdoor pictures; ``nighttime`` when the pixel
  rule ``dark`` fired (mean luminance < 55, :mod:`pixdex.imaging.attributes`),
  ``daytime`` otherwise, with the outdoor score. Indoors the light says nothing about
  the time of day, so neither is given there.

Thresholds were chosen on the labelled photos of ``tests/tag_evaluation.py`` (measured
precision and recall in docs/models.md); food, animals and people are deliberately not
evidence for any place (a cat or a coffee cup is photographed indoors and out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from pixdex.inference.imagenet import imagenet_class_names

__all__ = [
    "INDOOR",
    "NAMED_MIN",
    "NAMED_SCENES",
    "OUTDOOR",
    "PLACE_MIN",
    "RURAL",
    "SCENE_ALIASES",
    "SETTING_MIN",
    "URBAN",
    "scene_names",
    "scene_tags",
]

NAMED_MIN = 0.15
PLACE_MIN = 0.30
SETTING_MIN = 0.30


def _ids(*items: int | range) -> frozenset[int]:
    out: set[int] = set()
    for item in items:
        out.update(item if isinstance(item, range) else (item,))
    return frozenset(out)


NAMED_SCENES = _ids(970, range(972, 981))
_ROAD = _ids(407, 436, 468, 511, 555, 569, 573, 575, 603, 609, 612, 627, 654, 656, 661,
             665, 670, 671, 675, 717, 734, 751, 757, 779, 817, 864, 866, 867, 874, 444)
_RAIL_WATER_AIR = _ids(403, 404, 405, 408, 417, 466, 472, 484, 510, 547, 554, 565, 576,
                       625, 628, 705, 724, 780, 812, 814, 820, 829, 833, 871, 895, 913, 914)
_OUTDOOR_STRUCTURES = _ids(410, 425, 437, 449, 460, 489, 497, 500, 525, 536, 562, 580,
                           663, 668, 698, 703, 704, 716, 718, 727, 733, 821, 825, 832,
                           839, 858, 888, 900, 912, 919, 920, 958, 795)
OUTDOOR = NAMED_SCENES | _ROAD | _RAIL_WATER_AIR | _OUTDOOR_STRUCTURES
INDOOR = _ids(423, 453, 493, 495, 508, 516, 520, 526, 527, 532, 534, 548, 550, 553, 559,
              564, 590, 598, 619, 620, 624, 648, 651, 664, 673, 713, 736, 742, 760, 762,
              765, 782, 799, 831, 846, 851, 854, 857, 859, 882, 891, 894, 897, 904)
URBAN = _ids(468, 704, 829, 874, 919, 920, 734, 779)
RURAL = _ids(425, 595, 730, 856, 866, 912, 958, 339, 345, 346, 348, 349, 410)



@lru_cache(maxsize=1)
def scene_names() -> tuple[str, ...]:
    """Every scene name the rules can give (read lazily: Lambda cold starts import this)."""
    named = tuple(imagenet_class_names()[i] for i in sorted(NAMED_SCENES))
    return (*named, "outdoor", "indoor", "urban", "rural", "daytime", "nighttime")

# Everyday words for the scene names, for tag filters (plurals and case are handled by
# the matcher): "outdoors", "night", "seaside" find what the rules above tag.
SCENE_ALIASES = {
    "outdoors": "outdoor", "outside": "outdoor", "exterior": "outdoor",
    "indoors": "indoor", "inside": "indoor", "interior": "indoor",
    "day": "daytime", "daylight": "daytime", "day time": "daytime",
    "night": "nighttime", "night time": "nighttime", "evening": "nighttime",
    "city": "urban", "street": "urban", "town": "urban",
    "countryside": "rural", "farm": "rural", "farmland": "rural",
    "seashore": "beach", "seaside": "beach", "coast": "beach", "shore": "beach",
    "seacoast": "beach", "alp": "mountain", "lakeside": "lakeshore", "lake": "lakeshore",
    "reef": "coral reef",
}  # fmt: skip


def _mass(probs: NDArray[np.float64], classes: Iterable[int]) -> float:
    return min(float(probs[sorted(classes)].sum()), 1.0)


def scene_tags(probs_row: NDArray[np.float32], attributes: Mapping[str, float]) -> dict[str, float]:
    """Scene name -> score for one image (see the module docstring for the rules)."""
    probs = np.asarray(probs_row, dtype=np.float64).reshape(-1)
    names = imagenet_class_names()
    scenes: dict[str, float] = {}
    for idx in sorted(NAMED_SCENES):
        if probs[idx] >= NAMED_MIN:
            scenes[names[idx]] = float(probs[idx])
    outdoor, indoor = _mass(probs, OUTDOOR), _mass(probs, INDOOR)
    if max(outdoor, indoor) >= PLACE_MIN:
        if outdoor >= indoor:
            scenes["outdoor"] = outdoor
            scenes["nighttime" if "dark" in attributes else "daytime"] = outdoor
        else:
            scenes["indoor"] = indoor
    for name, classes in (("urban", URBAN), ("rural", RURAL)):
        mass = _mass(probs, classes)
        if mass >= SETTING_MIN:
            scenes[name] = mass
    ranked = sorted(scenes.items(), key=lambda item: (-item[1], item[0]))
    return {name: round(score, 4) for name, score in ranked}
