"""Real photos to drop into the twin's bucket: scikit-image's bundled pictures, their
edited copies, several formats, a phone-sized original over SageMaker's 6 MB payload
limit, a truncated file, and a key outside any dataset."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from tests.conftest import photo

ORIGINALS = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "camera", "coins", "moon", "grass", "gravel", "brick", "motorcycle",
)


@dataclass(frozen=True)
class Drop:
    key: str
    data: bytes
    source: str  # the original photo it shows
    valid: bool = True


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _original(name: str) -> Image.Image:
    if name == "motorcycle":
        import skimage.data

        left = skimage.data.stereo_motorcycle()[0]
        return Image.fromarray(np.asarray(left)).convert("RGB")
    return photo(name)


def phone_photo(image: Image.Image, seed: int = 7) -> bytes:
    """A 12 MP (4000 x 3000) JPEG at phone quality, with sensor-like noise: over 6 MB."""
    big = image.resize((4000, 3000), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 9, (3000, 4000, 3))
    pixels = np.clip(np.asarray(big, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return _encode(Image.fromarray(pixels), "JPEG", quality=97)


def dataset_drops(dataset: str) -> list[Drop]:
    """42 valid images (14 photos x original JPEG, mirrored PNG, cropped WebP / GIF / TIFF /
    BMP), one 12 MP JPEG, one truncated JPEG."""
    drops: list[Drop] = []
    alternates = ("WEBP", "GIF", "TIFF", "BMP")
    for index, name in enumerate(ORIGINALS):
        image = _original(name)
        width, height = image.size
        crop = image.crop((width // 10, height // 10, width - width // 10, height - height // 10))
        alternate = alternates[index % len(alternates)]
        drops += [
            Drop(f"{dataset}/originals/{name}.jpg", _encode(image, "JPEG", quality=92), name),
            Drop(f"{dataset}/edits/{name}-mirrored.png", _encode(ImageOps.mirror(image), "PNG"),
                 name),
            Drop(
                f"{dataset}/edits/crops/{name}-crop.{alternate.lower()}",
                _encode(crop.filter(ImageFilter.GaussianBlur(0.6)), alternate),
                name,
            ),
        ]
    drops.append(
        Drop(f"{dataset}/phone/IMG_0001.jpg", phone_photo(_original("coffee")), "coffee")
    )
    truncated = _encode(_original("rocket"), "JPEG", quality=92)[:3000]
    drops.append(Drop(f"{dataset}/broken/truncated.jpg", truncated, "rocket", valid=False))
    return drops
