"""Real photos (scikit-image's data, a dependency) and their augmented copies, shared by
the curation tests and the calibration and benchmark scripts in bench/.

Augmentations, each at a "light" and a "strong" strength, are what a dataset picks up when
the same picture is saved twice: crop, resize, JPEG re-encode, flip, colour shift, blur.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

# Colour or grey photos of distinct subjects (skimage.data function names).
PHOTO_NAMES = (
    "astronaut", "brick", "camera", "cell", "chelsea", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms",
    "moon", "page", "retina", "rocket", "text", "clock", "horse", "motorcycle_left",
)


def photo(name: str) -> Image.Image:
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    if name == "motorcycle_left":  # stereo_motorcycle returns a triple
        array = np.asarray(skimage.data.stereo_motorcycle()[0])
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array).convert("RGB")


def photos() -> dict[str, Image.Image]:
    found: dict[str, Image.Image] = {}
    for name in PHOTO_NAMES:
        try:
            found[name] = photo(name)
        except (AttributeError, OSError, ValueError):
            continue  # not shipped with this scikit-image version
    return found


def _crop(fraction: float) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        w, h = image.size
        dx, dy = int(w * fraction / 2), int(h * fraction / 2)
        return image.crop((dx, dy, w - dx, h - dy))
    return apply


def _resize(scale: float) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        w, h = image.size
        return image.resize((max(16, int(w * scale)), max(16, int(h * scale))))
    return apply


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")
    return apply


def _colour(saturation: float, brightness: float) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        shifted = ImageEnhance.Color(image).enhance(saturation)
        return ImageEnhance.Brightness(shifted).enhance(brightness)
    return apply


def _blur(radius: float) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        return image.filter(ImageFilter.GaussianBlur(radius))
    return apply


AUGMENTATIONS: dict[str, dict[str, Callable[[Image.Image], Image.Image]]] = {
    "light": {
        "crop": _crop(0.10), "resize": _resize(0.5), "jpeg": _jpeg(70), "flip": ImageOps.mirror,
        "colour": _colour(1.3, 0.8), "blur": _blur(1.0),
    },
    "strong": {
        "crop": _crop(0.30), "resize": _resize(0.25), "jpeg": _jpeg(20),
        "flip": lambda image: ImageOps.mirror(_crop(0.15)(image)),
        "colour": _colour(1.8, 0.5), "blur": _blur(3.0),
    },
}


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
