"""How small a decoded picture may be: :class:`SizeFloor`.

Nothing downstream of the decoder looks at a 12 MP photo's every pixel: a model wants its
input size (224 px for EfficientNet-Lite0, 384 for SigLIP2-so400m-384), the pixel
attributes a 512 px working copy, a thumbnail its own size. A floor says what the
consumers need (the shorter side at least ``short`` px, the longer at least ``long`` px)
and the decoder decodes at the smallest size that still meets it: JPEG by DCT scaling
(1/2, 1/4, 1/8), HEIC from an embedded thumbnail, everything else by an integer box
reduction right after decoding. It never enlarges: a picture already below the floor is
decoded as it is.

Floors combine with ``|`` (each side the larger need). :meth:`SizeFloor.within` turns a
need for a region (a query image's bounding box) into a need for the whole picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pixdex.models import BoundingBox

__all__ = ["SizeFloor"]


@dataclass(frozen=True)
class SizeFloor:
    """The least size a decoded picture must keep: shorter side >= ``short`` px and
    longer side >= ``long`` px (orientation does not matter)."""

    short: int = 0
    long: int = 0

    def __post_init__(self) -> None:
        if self.short < 0 or self.long < 0:
            raise ValueError("a size floor cannot be negative")

    def __or__(self, other: SizeFloor) -> SizeFloor:
        return SizeFloor(short=max(self.short, other.short), long=max(self.long, other.long))

    def within(self, box: BoundingBox | None) -> SizeFloor:
        """The floor for the whole picture when only ``box`` of it is used at this floor.

        Conservative: both sides are scaled by the box's smaller fraction, so the region
        keeps at least the floor whatever its shape and the picture's orientation.
        """
        if box is None:
            return self
        fraction = max(min(box.width, box.height), 1e-6)
        return SizeFloor(
            short=math.ceil(self.short / fraction), long=math.ceil(self.long / fraction)
        )

    def target(self, width: int, height: int) -> tuple[int, int] | None:
        """The smallest (width, height) of the same shape that meets the floor, or None
        when only the full size does (nothing to gain by reducing)."""
        if width < 1 or height < 1:
            return None
        ratio = max(self.short / min(width, height), self.long / max(width, height))
        if ratio >= 0.5:  # not even a 2x reduction fits
            return None
        return max(1, math.ceil(width * ratio)), max(1, math.ceil(height * ratio))

    def factor(self, width: int, height: int) -> int:
        """The largest integer reduction (as ``Image.reduce`` does it: each side divided,
        rounded up) whose result still meets the floor; 1 when none does."""
        target = self.target(width, height)
        if target is None:
            return 1
        return max(1, min(width // target[0], height // target[1]))
