"""One similarity scale for every model: each model's cosine mapped onto [0, 1].

A cosine means different things on different models: EfficientNet-Lite0's pooled
features put unrelated photos at ~0.2 and their augmented copies at ~0.8, a SigLIP model
elsewhere. ``similarity`` maps a model's cosine through three anchor points measured on
that model by ``bench/bench_calibration.py`` (photos and their augmented copies: crops,
flips, JPEG, brightness, rotation, downscaling, grayscale):

* ``unrelated_median`` -> 0.0: a typical pair of unrelated photos;
* ``unrelated_p99`` -> 0.5: as similar as the most similar 1 % of unrelated pairs;
* ``copy_median`` -> 1.0: a typical augmented copy;

linear in between, clipped to [0, 1]. So on every calibrated model, similarity 0.5 is
the edge of chance resemblance, 0.6 "visually related" (Pictograph's default), 0.9 nearly
a copy. The fit ships as ``data/similarity-calibration.json``; a fit for another model
(``bench/bench_calibration.py --model NAME --out $PIXDEX_HOME/similarity-calibration.json``)
is read from ``$PIXDEX_HOME`` and wins. Models without a fit have no similarity (None);
``min_similarity`` is refused for them. Raw cosine stays the hit's ``score``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from pixdex.config import Settings
from pixdex.errors import ModelCapabilityError

__all__ = ["CALIBRATION_FILE", "Calibration", "calibration_for", "load_calibrations"]

CALIBRATION_FILE = "similarity-calibration.json"


@dataclass(frozen=True)
class Calibration:
    model: str
    unrelated_median: float
    unrelated_p99: float
    copy_median: float

    def __post_init__(self) -> None:
        if not self.unrelated_median < self.unrelated_p99 < self.copy_median:
            raise ValueError(
                f"{self.model}: calibration anchors must increase "
                "(unrelated_median < unrelated_p99 < copy_median)"
            )

    def _anchors(self) -> tuple[tuple[float, float], ...]:
        return ((self.unrelated_median, 0.0), (self.unrelated_p99, 0.5), (self.copy_median, 1.0))

    def similarity(self, cosine: float) -> float:
        """The calibrated similarity of a raw cosine, in [0, 1]."""
        (c0, _), (c1, _), (c2, _) = self._anchors()
        if cosine <= c0:
            return 0.0
        if cosine >= c2:
            return 1.0
        if cosine <= c1:
            return 0.5 * (cosine - c0) / (c1 - c0)
        return 0.5 + 0.5 * (cosine - c1) / (c2 - c1)

    def cosine(self, similarity: float) -> float:
        """The raw cosine a calibrated similarity corresponds to (the inverse map)."""
        (c0, _), (c1, _), (c2, _) = self._anchors()
        if similarity <= 0.0:
            return -1.0  # every cosine at or below c0 maps to 0: nothing is cut
        if similarity <= 0.5:
            return c0 + (c1 - c0) * similarity / 0.5
        return c1 + (c2 - c1) * (min(similarity, 1.0) - 0.5) / 0.5


def _parse(text: str, origin: str) -> dict[str, Calibration]:
    try:
        data = json.loads(text)
        return {
            name: Calibration(
                model=name,
                unrelated_median=float(fit["unrelated_median"]),
                unrelated_p99=float(fit["unrelated_p99"]),
                copy_median=float(fit["copy_median"]),
            )
            for name, fit in data["models"].items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{origin}: not a similarity calibration ({exc})") from exc


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Calibration]:
    text = (resources.files("pixdex.app") / "data" / CALIBRATION_FILE).read_text("utf-8")
    return _parse(text, CALIBRATION_FILE)


def load_calibrations(settings: Settings) -> dict[str, Calibration]:
    """The shipped fits, overridden by ``$PIXDEX_HOME/similarity-calibration.json``."""
    found = dict(_shipped())
    local: Path = settings.home / CALIBRATION_FILE
    if local.is_file():
        found.update(_parse(local.read_text("utf-8"), str(local)))
    return found


def calibration_for(model: str, settings: Settings, *, required: bool) -> Calibration | None:
    """``model``'s fit; None (or, when ``required``, a 400 naming the fix) without one."""
    fit = load_calibrations(settings).get(model)
    if fit is None and required:
        raise ModelCapabilityError(
            f"model {model} has no similarity calibration, so min_similarity cannot be "
            f"applied; use threshold (raw cosine), or fit one with "
            f"`bench/bench_calibration.py --model {model}` into $PIXDEX_HOME/{CALIBRATION_FILE}",
            field="min_similarity",
        )
    return fit
