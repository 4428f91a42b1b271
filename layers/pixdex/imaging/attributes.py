"""Pixel-statistics auto-tags ("attributes") for a decoded RGB image.

:func:`compute_attributes` returns ``{name: score}`` for each attribute that applies;
attributes that do not apply are omitted. A score in (0, 1] says how far past its
threshold the image is: just past the threshold ~0.01, at the "full" point or beyond 1.0.

Statistics are computed on a working copy of :data:`WORKING_SIZE` px on its longer side
when the original is larger (a picture decoded reduced to about that size is resampled to
it, so the blur statistic sees what the full decode would give), and on the picture as
it is when the original is smaller (upscaling would invent blur). Luminance is Rec.601
``Y = .299 R + .587 G + .114 B`` on the 0-255 scale. So the decoder may hand over a
reduced picture as long as its longer side keeps :data:`ATTRIBUTES_FLOOR` (480 px);
``size`` then gives the original's size, which is what ``small`` judges and what decides
the working copy's size.

Rules (threshold -> full-score point):

* ``small``: ``min(width, height)`` of the *original* image < 256 px (-> 32 px).
* ``dark``: mean luminance < 55 (-> 15). ``bright``: mean luminance > 195 (-> 235).
* ``low-contrast``: luminance std < 20 (-> 5). ``high-contrast``: std > 85 (-> 115; the
  maximum possible std is 127.5, a black/white checkerboard).
* ``grayscale``: mean absolute difference between channels < 2 (-> 0).
* ``blurry``: variance of the 3x3 Laplacian of luminance < 20 (-> 2, on a log scale, since
  the variance spans orders of magnitude). Not judged when luminance std < 5: a flat image
  has no edges to be sharp or blurry (it is tagged ``low-contrast`` instead).

Measured on scikit-image sample photos (working size), for the record:
astronaut mean 115.4 / std 75.1 / Laplacian var 860; chelsea 119.5 / 32.1 / 402;
coffee 103.6 / 58.0 / 1391; rocket (dusk) 61.0 / 30.3 / 680; moon 112.2 / 13.3 / 65
(legitimately low-contrast); hubble_deep_field 19.3 / 25.7 / 1084 (legitimately dark).
Sharpest-looking smooth photo seen: retina, Laplacian var 90. A Gaussian blur of radius 4
brings every one of them to <= 6, radius 3 to <= 16, hence the blur threshold of 20.
The high-contrast threshold is above spec-suggested 80 because astronaut (75) and
camera (74) are ordinary photos too close to 80.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image

from pixdex.imaging.floor import SizeFloor

__all__ = [
    "ATTRIBUTES_FLOOR",
    "BLUR_FLAT_STD",
    "BLUR_LAPLACIAN_VAR",
    "BRIGHT_MEAN",
    "DARK_MEAN",
    "GRAYSCALE_CHANNEL_DIFF",
    "HIGH_CONTRAST_STD",
    "LOW_CONTRAST_STD",
    "SMALL_MIN_SIDE",
    "WORKING_SIZE",
    "compute_attributes",
]

# Every name compute_attributes can produce: re-tagging keeps these (pixel facts) and
# replaces the zero-shot ones.
PIXEL_ATTRIBUTES = frozenset(
    {"small", "dark", "bright", "low-contrast", "high-contrast", "grayscale", "blurry"}
)
WORKING_SIZE = 512
# What the statistics need of a decoded picture: about the working copy's size. 480, not
# 512: a 12 MP phone photo (4032 or 4000 px wide) then decodes at 1/8 scale (504 / 500
# px) instead of 1/4, and the statistics of a 500 px copy are those of a 512 px one
# (bench/bench_decode_quality.py, docs/benchmarks.md).
ATTRIBUTES_FLOOR = SizeFloor(long=480)

SMALL_MIN_SIDE = 256
_SMALL_FULL = 32
DARK_MEAN = 55.0
_DARK_FULL = 15.0
BRIGHT_MEAN = 195.0
_BRIGHT_FULL = 235.0
LOW_CONTRAST_STD = 20.0
_LOW_CONTRAST_FULL = 5.0
HIGH_CONTRAST_STD = 85.0
_HIGH_CONTRAST_FULL = 115.0
GRAYSCALE_CHANNEL_DIFF = 2.0
_GRAYSCALE_FULL = 0.0
BLUR_LAPLACIAN_VAR = 20.0
_BLUR_FULL = 2.0
BLUR_FLAT_STD = 5.0

# Scores are floored so a present attribute never has score 0 (the contract is (0, 1]).
_MIN_SCORE = 0.01

_Array = npt.NDArray[np.float32]


def _score(value: float, threshold: float, full: float) -> float | None:
    """Linear score: None when ``value`` is not past ``threshold`` towards ``full``."""
    past = (value - threshold) / (full - threshold)
    if past <= 0.0:
        return None
    return round(min(max(past, _MIN_SCORE), 1.0), 3)


def _working_copy(image: Image.Image, original_long_side: int) -> _Array:
    """The picture at ``WORKING_SIZE`` px on its longer side when the original was larger
    (whatever size it was decoded at: a 1/8-scale JPEG decode of 504 px is brought to 512
    like the full decode, so the blur statistic sees the same resampling), else as is."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    if max(original_long_side, width, height) > WORKING_SIZE:
        scale = WORKING_SIZE / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # reduce() by an integer factor first (a cheap box filter), then a bilinear finish:
        # several times faster than LANCZOS on camera-sized images, same statistics.
        rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(rgb, dtype=np.float32)


def _laplacian_variance(luma: _Array) -> float:
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    centre = luma[1:-1, 1:-1]
    lap = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * centre
    return float(lap.var())


def compute_attributes(
    image: Image.Image, *, size: tuple[int, int] | None = None
) -> dict[str, float]:
    """Attribute tags for a decoded image; see the module docstring for the rules.

    ``size``: the original's (width, height) when ``image`` was decoded reduced.
    """
    attributes: dict[str, float] = {}
    width, height = size if size is not None else image.size
    if width == 0 or height == 0 or 0 in image.size:
        return attributes

    small = _score(float(min(width, height)), SMALL_MIN_SIDE, _SMALL_FULL)
    if small is not None:
        attributes["small"] = small

    pixels = _working_copy(image, max(width, height))
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    mean = float(luma.mean())
    std = float(luma.std())
    channel_diff = float(
        (np.abs(red - green) + np.abs(green - blue) + np.abs(red - blue)).mean() / 3.0
    )

    candidates: dict[str, float | None] = {
        "dark": _score(mean, DARK_MEAN, _DARK_FULL),
        "bright": _score(mean, BRIGHT_MEAN, _BRIGHT_FULL),
        "low-contrast": _score(std, LOW_CONTRAST_STD, _LOW_CONTRAST_FULL),
        "high-contrast": _score(std, HIGH_CONTRAST_STD, _HIGH_CONTRAST_FULL),
        "grayscale": _score(channel_diff, GRAYSCALE_CHANNEL_DIFF, _GRAYSCALE_FULL),
    }
    if std >= BLUR_FLAT_STD:
        # Log scale: a 10x drop in Laplacian variance is a similar perceptual step anywhere.
        lap_var = max(_laplacian_variance(luma), 1e-6)
        candidates["blurry"] = _score(
            math.log(lap_var), math.log(BLUR_LAPLACIAN_VAR), math.log(_BLUR_FULL)
        )
    for name, value in candidates.items():
        if value is not None:
            attributes[name] = value
    return attributes
