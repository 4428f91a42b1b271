"""Pixel-mode normalisation: any Pillow mode -> 8-bit RGB.

* Alpha (RGBA, LA, PA, palette with transparency) is composited on white.
* 16/32-bit integer and float greyscale is rescaled to 0..255, never clipped to white.
* Palette, 1-bit, L, CMYK, YCbCr, LAB (colorimetrically) are converted by Pillow.
* A mode Pillow cannot convert raises ``ImageDecodeError`` (Pillow 13 converts every mode
  a decoder can produce; older or newer versions may not).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pixdex.errors import ImageDecodeError

__all__ = ["to_rgb"]


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite on white: transparent regions of logos/screenshots are meant as 'paper'."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _wide_to_rgb(image: Image.Image) -> Image.Image:
    """Rescale 16/32-bit integer and float greyscale to 8 bits without clipping to white.

    ``I;16*`` uses the full 16-bit range (/257). ``I`` (32-bit) is treated as 8-bit when
    its values fit 0..255, as 16-bit when they fit 0..65535, otherwise min-max stretched.
    ``F`` is treated as 0..1 when it fits, 0..255 when it fits, otherwise min-max stretched.
    NaN/inf become 0.
    """
    mode = image.mode
    source = image if mode in ("I", "F") else image.convert("I")
    values = np.asarray(source, dtype=np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    if mode.startswith("I;16"):
        scaled = values / 257.0
    elif mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif low >= 0.0 and high <= 255.0:
        scaled = values
    elif mode == "I" and low >= 0.0 and high <= 65535.0:
        scaled = values / 257.0
    else:
        span = high - low
        scaled = (values - low) * (255.0 / span) if span > 0 else np.zeros_like(values)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
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
