"""Pixel-mode normalisation: any Pillow mode -> 8-bit RGB.

* Alpha (RGBA, LA, PA, palette with transparency) is composited on white.
* 16/32-bit integer and float greyscale is rescaled to 0..255, never clipped to white.
* Palette, 1-bit, L, CMYK, YCbCr, LAB (colorimetrically) are converted by Pillow.
* A mode Pillow cannot convert raises ``ImageDecodeError`` (Pillow 13 converts every mode
  a decoder can produce; older or newer versions may not).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixdex.errors import ImageDecodeError

__all__ = ["to_rgb"]


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite on white: transparent regions of logos/screenshots are meant as 'paper'."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


# Rows converted at a time: a 64 MP picture is never copied whole in float (an 8000x8000
# 16-bit PNG of 120 KB cost 2.5 GB that way), only this many rows of it.
_BLOCK_ROWS = 256


def _finite_block(values: NDArray[np.generic], start: int) -> NDArray[np.float32]:
    block = values[start : start + _BLOCK_ROWS].astype(np.float32)
    np.nan_to_num(block, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return block


def _range(values: NDArray[np.generic]) -> tuple[float, float]:
    """Min and max over the values, non-finite ones counted as 0, block by block."""
    if not values.size:
        return 0.0, 0.0
    low, high = np.inf, -np.inf
    for start in range(0, values.shape[0], _BLOCK_ROWS):
        block = _finite_block(values, start)
        low, high = min(low, float(block.min())), max(high, float(block.max()))
    return low, high


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """Rescale 16/32-bit integer and float greyscale to 8 bits without clipping to white.

    ``I;16*`` uses the full 16-bit range (/257). ``I`` (32-bit) is treated as 8-bit when
    its values fit 0..255, as 16-bit when they fit 0..65535, otherwise min-max stretched.
    ``F`` is treated as 0..1 when it fits, 0..255 when it fits, otherwise min-max stretched.
    NaN/inf become 0. Converted in blocks of rows, in float32: memory stays near the
    source picture's own size plus the 8-bit result.
    """
    mode = image.mode
    try:
        values: NDArray[np.generic] = np.asarray(image)
    except (KeyError, ValueError, TypeError):  # a 16-bit layout numpy has no dtype for
        values = np.asarray(image.convert("I"))
    if mode.startswith("I;16"):
        offset, scale = 0.0, 1.0 / 257.0
    else:
        low, high = _range(values)
        if mode == "F" and low >= 0.0 and high <= 1.0:
            offset, scale = 0.0, 255.0
        elif low >= 0.0 and high <= 255.0:
            offset, scale = 0.0, 1.0
        elif mode == "I" and low >= 0.0 and high <= 65535.0:
            offset, scale = 0.0, 1.0 / 257.0
        else:
            span = high - low
            offset, scale = low, (255.0 / span if span > 0 else 0.0)
    grey = np.empty(values.shape, dtype=np.uint8)
    for start in range(0, values.shape[0], _BLOCK_ROWS):
        block = _finite_block(values, start)
        block -= offset
        block *= scale
        np.rint(block, out=block)
        np.clip(block, 0, 255, out=block)
        grey[start : start + _BLOCK_ROWS] = block
    del values
    return Image.fromarray(grey).convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    try:
        return _convert(image)
    except ValueError as exc:  # a mode this Pillow has no RGB conversion for
        raise ImageDecodeError(f"unsupported pixel format {image.mode!r}: {exc}") from exc


def _convert(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in image.info
    ):
        return _flatten_alpha(image)
    if mode.startswith("I") or mode == "F":
        return _wide_to_rgb(image)
    return image.convert("RGB")
