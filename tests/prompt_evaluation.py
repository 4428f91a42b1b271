"""A small labeled prompt set over package-shipped photos, and its accuracy measure.

Photos: scikit-image's bundled pictures (no download; the motorcycle is the left frame of
``stereo_motorcycle``). Each labeled prompt lists the photos a person would accept as the
answer; the prompts were written as a user would type them, then the photos ranked by
their scores from the real model's class probabilities. A prompt is a top-k hit when a
relevant photo with a positive score is among the k best. ``OUT_OF_VOCABULARY`` prompts
name things the 1000 ImageNet classes cannot express (several of them are what some photos
show: the moon, coins, gravel); they must come back with low scores.

Used by ``bench/bench_prompts.py`` (prints the table) and by the tests (accuracy floor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixdex.text.prompt import prompt_to_class_weights, score_class_probs

__all__ = [
    "LABELED_PROMPTS",
    "OUT_OF_VOCABULARY",
    "PHOTOS",
    "PromptEvaluation",
    "PromptResult",
    "evaluate_prompts",
    "load_photos",
]

PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "clock", "colorwheel",
    "hubble_deep_field", "moon", "page", "text", "brick", "grass", "gravel", "retina",
    "immunohistochemistry", "motorcycle",
)  # fmt: skip

_P = frozenset
LABELED_PROMPTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("a cat", _P({"chelsea"})),
    ("cats", _P({"chelsea"})),
    ("a kitten", _P({"chelsea"})),
    ("a tabby cat", _P({"chelsea"})),
    ("an orange tabby cat with green eyes", _P({"chelsea"})),
    ("close-up of a cat's face", _P({"chelsea"})),
    ("a pet", _P({"chelsea"})),
    ("an animal", _P({"chelsea"})),
    ("a feline", _P({"chelsea"})),
    ("cute kitty", _P({"chelsea"})),
    ("coffee", _P({"coffee"})),
    ("a cup of coffee", _P({"coffee"})),
    ("espresso", _P({"coffee"})),
    ("a coffee cup on a saucer", _P({"coffee"})),
    ("a hot drink", _P({"coffee"})),
    ("a beverage on a wooden table", _P({"coffee"})),
    ("a cappuccino", _P({"coffee"})),
    ("a tea cup", _P({"coffee"})),
    ("a rocket", _P({"rocket"})),
    ("a rocket on the launch pad", _P({"rocket"})),
    ("a missile", _P({"rocket"})),
    ("a space rocket at night", _P({"rocket"})),
    ("a spacecraft", _P({"rocket", "astronaut"})),
    ("the space shuttle", _P({"rocket", "astronaut"})),
    ("a helmet", _P({"astronaut"})),
    ("an astronaut", _P({"astronaut"})),
    ("a woman in a spacesuit", _P({"astronaut"})),
    ("a person", _P({"astronaut", "camera"})),
    ("an American flag", _P({"astronaut"})),
    ("a tripod", _P({"camera"})),
    ("a camera on a tripod", _P({"camera"})),
    ("a photographer", _P({"camera", "astronaut"})),
    ("a man with a film camera", _P({"camera"})),
    ("a man in a black coat", _P({"camera"})),
    ("a clock", _P({"clock"})),
    ("a wall clock", _P({"clock"})),
    ("an analog clock", _P({"clock"})),
    ("a motorcycle", _P({"motorcycle"})),
    ("a red motorbike", _P({"motorcycle"})),
    ("a scooter", _P({"motorcycle"})),
    ("a motorbike parked in a garage", _P({"motorcycle"})),
    ("a vehicle", _P({"motorcycle", "rocket"})),
    ("a bike", _P({"motorcycle"})),
    ("a page of text", _P({"page", "text"})),
    ("a printed document", _P({"page"})),
    ("handwritten text", _P({"text"})),
    ("a brick wall", _P({"brick"})),
)

OUT_OF_VOCABULARY = (
    "quantum entanglement",
    "a feeling of nostalgia",
    "democracy",
    "the meaning of life",
    "the moon",
    "craters on the lunar surface",
    "galaxies in deep space",
    "old silver coins",
    "gravel",
    "a lawn of grass",
    "a retina scan",
    "stained tissue under a microscope",
    "a colour wheel",
    "an abstract gradient",
)


def load_photos() -> dict[str, Image.Image]:
    """The evaluation photos as RGB images, from scikit-image's bundled data."""
    import skimage.data

    photos: dict[str, Image.Image] = {}
    for name in PHOTOS:
        if name == "motorcycle":
            array = getattr(skimage.data, "stereo_motorcycle")()[0]  # noqa: B009 (untyped)
        else:
            array = getattr(skimage.data, name)()
        photos[name] = Image.fromarray(np.asarray(array)).convert("RGB")
    return photos


@dataclass(frozen=True)
class PromptResult:
    prompt: str
    relevant: frozenset[str]
    ranking: tuple[tuple[str, float], ...]  # photos, best first
    confidence: float
    rank: int | None  # 1-based rank of the first relevant photo with a positive score


@dataclass(frozen=True)
class PromptEvaluation:
    results: tuple[PromptResult, ...]
    top1: float
    top3: float
    oov_scores: tuple[tuple[str, float], ...]  # best score any photo got, per OOV prompt

    @property
    def oov_max(self) -> float:
        return max(score for _, score in self.oov_scores)

    @property
    def labeled_best_scores(self) -> list[float]:
        return [r.ranking[0][1] for r in self.results]


def _rank(prompt: str, names: list[str], probs: NDArray[np.float32]) -> list[tuple[str, float]]:
    scores = score_class_probs(prompt_to_class_weights(prompt), probs)
    order = sorted(range(len(names)), key=lambda i: (-float(scores[i]), names[i]))
    return [(names[i], round(float(scores[i]), 4)) for i in order]


def evaluate_prompts(class_probs: Mapping[str, NDArray[np.float32]]) -> PromptEvaluation:
    """Score every labeled and out-of-vocabulary prompt against the photos' probabilities."""
    names = list(class_probs)
    probs = np.stack([np.asarray(class_probs[n], dtype=np.float32) for n in names])
    results = []
    for prompt, relevant in LABELED_PROMPTS:
        ranking = _rank(prompt, names, probs)
        rank = next((i + 1 for i, (n, s) in enumerate(ranking) if n in relevant and s > 0), None)
        confidence = prompt_to_class_weights(prompt).confidence
        results.append(PromptResult(prompt, relevant, tuple(ranking), confidence, rank))
    hits1 = sum(1 for r in results if r.rank is not None and r.rank <= 1)
    hits3 = sum(1 for r in results if r.rank is not None and r.rank <= 3)
    oov = tuple((p, _rank(p, names, probs)[0][1]) for p in OUT_OF_VOCABULARY)
    return PromptEvaluation(
        results=tuple(results),
        top1=hits1 / len(results),
        top3=hits3 / len(results),
        oov_scores=oov,
    )
