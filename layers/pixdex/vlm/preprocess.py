"""Pixels for a vision-language model, reproducing transformers' PIL image processors.

Same arithmetic as ``SiglipImageProcessor`` / ``CLIPImageProcessor`` (PIL backend), so the
exported towers see exactly the tensors they saw in transformers (the parity test checks
it end to end):

* ``squash`` (SigLIP): ``Image.resize((size, size), resample)``;
* ``shortest_edge`` (CLIP): the shorter side becomes ``size`` and the longer
  ``int(size * long / short)`` (truncated, as transformers does), then a centre crop with
  ``top = (height - crop) // 2``;
* ``uint8 * rescale`` computed in float64 then cast to float32, ``(x - mean) / std`` in
  float32, NCHW.

One deliberate difference: transparent pixels are composited onto white before dropping
alpha (transformers' bare ``convert("RGB")`` exposes whatever colour hides under alpha 0);
the parity photos are opaque, where both agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .manifest import ImageConfig

__all__ = ["preprocess_for_vlm", "resize_for_vlm"]

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def resize_for_vlm(image: Image.Image, cfg: ImageConfig) -> NDArray[np.uint8]:
    """One image as uint8 HWC at ``crop_size`` x ``crop_size``."""
    rgb = _to_rgb(image)
    width, height = rgb.size
    if width < 1 or height < 1:
        raise ValueError("image has no pixels")
    resample = _RESAMPLE[cfg.resample]
    if cfg.resize == "squash":
        return np.asarray(rgb.resize((cfg.size, cfg.size), resample=resample), dtype=np.uint8)
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = cfg.size, int(cfg.size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    pixels = np.asarray(rgb.resize((new_w, new_h), resample=resample), dtype=np.uint8)
    top = (new_h - cfg.crop_size) // 2
    left = (new_w - cfg.crop_size) // 2
    return pixels[top : top + cfg.crop_size, left : left + cfg.crop_size]


def preprocess_for_vlm(images: Sequence[Image.Image], cfg: ImageConfig) -> NDArray[np.float32]:
    """A contiguous float32 NCHW batch, shape (len(images), 3, crop_size, crop_size)."""
    size = cfg.crop_size
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        batch[i] = resize_for_vlm(image, cfg)
    scaled = (batch.astype(np.float64) * cfg.rescale).astype(np.float32)
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    normalised = (scaled - mean) / std
    return np.ascontiguousarray(normalised.transpose(0, 3, 1, 2))
