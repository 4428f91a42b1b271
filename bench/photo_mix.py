"""A realistic mix of image files, made at bench time from photos shipped in scikit-image.

What people index is not 640x480 JPEGs: phone photos (12 MP JPEG, many shot in portrait
and stored landscape with an EXIF orientation tag), screenshots (large PNG), and small web
images. The generators here make each kind from scikit-image's bundled photos (no
download), seeded:

* :func:`phone_jpeg`: 4032x3024 (or 3024x4032 displayed), quality-90 JPEG with camera-like
  EXIF. Either the photo upscaled to cover the frame ("upscaled": smooth, ~0.5-1 MB) or
  scaled 1-2.5x and tiled with mirrored copies ("tiled": photo-level detail over the
  whole frame, 1.5-3.5 MB; real phone photos are 2-5 MB). Orientation tag 1 for about half, 6 (shot
  in portrait) for a third, 8 or 3 for the rest; the pixels are stored turned so that the
  tag brings them upright, as a camera does.
* :func:`screenshot_png`: 2560x1440 PNG, a desktop-like page: flat panels, a grid of photo
  thumbnails, text blocks; a quarter RGBA (opaque alpha, as macOS writes them).
* :func:`web_image`: 400-800 px on the long side; JPEG q75-85, PNG or WebP.

:func:`make_mix` writes a seeded mix to a folder and lists what it wrote.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

__all__ = [
    "PHONE_SIZE",
    "PHOTOS",
    "MixFile",
    "load_photos",
    "make_mix",
    "phone_jpeg",
    "screenshot_png",
    "web_image",
]

PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "clock", "colorwheel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "text", "brick",
    "grass", "gravel", "motorcycle",
)  # fmt: skip
PHONE_SIZE = (4032, 3024)
SCREEN_SIZE = (2560, 1440)
# Stored pixels for each EXIF orientation: the upright picture turned the other way, so
# that applying the tag (ImageOps.exif_transpose) brings it back upright.
_STORE = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,  # tag 6 = display rotated 90 degrees clockwise
    8: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class MixFile:
    path: str
    kind: str  # "phone" | "screenshot" | "web"
    source: str  # the scikit-image photo it was made from (main one for screenshots)
    format: str
    width: int  # displayed size
    height: int
    orientation: int
    bytes: int


def load_photos() -> dict[str, Image.Image]:
    import skimage.data

    photos: dict[str, Image.Image] = {}
    for name in PHOTOS:
        if name == "motorcycle":
            array = skimage.data.stereo_motorcycle()[0]
        else:
            array = getattr(skimage.data, name)()
        array = np.asarray(array)
        if array.dtype != np.uint8:
            span = max(1e-9, float(np.ptp(array)))
            array = (255 * (array - array.min()) / span).astype(np.uint8)
        photos[name] = Image.fromarray(array).convert("RGB")
    return photos


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return ImageOps.fit(image, size, Image.Resampling.BICUBIC)


def _tiled(image: Image.Image, size: tuple[int, int], scale: float) -> Image.Image:
    tile = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.BICUBIC,
    )
    mirrored = ImageOps.mirror(tile)
    canvas = Image.new("RGB", size)
    for row, top in enumerate(range(0, size[1], tile.height)):
        for col, left in enumerate(range(0, size[0], tile.width)):
            canvas.paste(tile if (row + col) % 2 == 0 else mirrored, (left, top))
    return canvas


def _camera_exif(orientation: int, rng: np.random.Generator) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Pixdex"  # Make
    exif[0x0110] = "Bench Phone 12"  # Model
    exif[0x0132] = f"2024:0{int(rng.integers(1, 9))}:1{int(rng.integers(0, 9))} 12:00:00"
    exif[0x0112] = orientation
    return exif


def phone_jpeg(
    photo: Image.Image, rng: np.random.Generator, *, orientation: int | None = None,
    style: str | None = None,
) -> tuple[bytes, int, tuple[int, int]]:
    """(JPEG bytes, orientation tag, displayed size) of a 12 MP phone-like photo."""
    import io

    if orientation is None:
        draw = rng.random()
        orientation = 1 if draw < 0.5 else 6 if draw < 0.83 else 8 if draw < 0.92 else 3
    if style is None:
        style = "tiled" if rng.random() < 0.7 else "upscaled"
    portrait = orientation in (6, 8)
    shown = (PHONE_SIZE[1], PHONE_SIZE[0]) if portrait else PHONE_SIZE
    if style == "tiled":
        upright = _tiled(photo, shown, float(rng.uniform(1.0, 2.5)))
    else:
        upright = _cover(photo, shown)
    upright = ImageEnhance.Brightness(upright).enhance(float(rng.uniform(0.9, 1.1)))
    method = _STORE[orientation]
    stored = upright if method is None else upright.transpose(method)
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=90, exif=_camera_exif(orientation, rng))
    return buffer.getvalue(), orientation, shown


def screenshot_png(
    photos: dict[str, Image.Image], rng: np.random.Generator, *, rgba: bool | None = None
) -> tuple[bytes, str]:
    """(PNG bytes, main photo) of a 2560x1440 desktop-like screenshot."""
    import io

    names = list(photos)
    width, height = SCREEN_SIZE
    shade = int(rng.integers(235, 250))
    canvas = Image.new("RGB", SCREEN_SIZE, (shade, shade, shade))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 56), fill=(40, 44, 52))
    draw.rectangle((0, 56, 320, height), fill=(250, 250, 252))
    for i in range(14):  # sidebar entries
        top = 90 + 44 * i
        draw.rectangle((24, top, 24 + int(rng.integers(120, 260)), top + 14), fill=(120, 124, 130))
    main = names[int(rng.integers(0, len(names)))]
    hero = _cover(photos[main], (1360, 760))
    canvas.paste(hero, (380, 96))
    for i in range(8):  # thumbnail grid under and beside the main picture
        name = names[int(rng.integers(0, len(names)))]
        thumb = _cover(photos[name], (300, 200))
        left = 380 + (i % 4) * 340
        top = 900 + (i // 4) * 240
        canvas.paste(thumb, (left, top))
    text = ImageOps.fit(photos["page"], (700, 760)).convert("L").convert("RGB")
    canvas.paste(text, (1800, 96))
    for i in range(12):  # text lines
        top = 900 + 36 * i
        draw.rectangle((1800, top, 1800 + int(rng.integers(300, 700)), top + 12), fill=(60, 60, 60))
    if rgba is None:
        rgba = rng.random() < 0.25
    image: Image.Image = canvas.convert("RGBA") if rgba else canvas
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue(), main


def web_image(photo: Image.Image, rng: np.random.Generator) -> tuple[bytes, str, tuple[int, int]]:
    """(bytes, format, size) of a small web image: 400-800 px on its long side."""
    import io

    long_side = int(rng.integers(400, 801))
    scale = long_side / max(photo.size)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    image = photo.resize(size, Image.Resampling.LANCZOS)
    draw = rng.random()
    buffer = io.BytesIO()
    if draw < 0.6:
        image.save(buffer, "JPEG", quality=int(rng.integers(75, 86)))
        fmt = "JPEG"
    elif draw < 0.8:
        image.save(buffer, "WEBP", quality=80)
        fmt = "WEBP"
    else:
        image.save(buffer, "PNG")
        fmt = "PNG"
    return buffer.getvalue(), fmt, size


_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def make_mix(
    folder: Path, count: int, seed: int = 0, *, phone: float = 0.5, screenshots: float = 0.15
) -> list[MixFile]:
    """Write ``count`` files (``phone`` 12 MP JPEGs, ``screenshots`` PNG screenshots, the
    rest web images), reusing what an earlier call with the same arguments wrote."""
    manifest = folder.parent / f"{folder.name}.json"  # outside: the folder is ingested
    key = {"count": count, "seed": seed, "phone": phone, "screenshots": screenshots}
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("key") == key and all(Path(f["path"]).exists() for f in saved["files"]):
            return [MixFile(**f) for f in saved["files"]]
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("mix-*"):
        old.unlink()
    photos = load_photos()
    names = list(photos)
    rng = np.random.default_rng(seed)
    phones = round(count * phone)
    shots = round(count * screenshots)
    kinds = ["phone"] * phones + ["screenshot"] * shots + ["web"] * (count - phones - shots)
    order = rng.permutation(len(kinds))  # kinds interleaved, as in a real folder
    files: list[MixFile] = []
    for i in range(count):
        source = names[i % len(names)]
        kind = kinds[int(order[i])]
        if kind == "phone":
            data, orientation, (width, height) = phone_jpeg(photos[source], rng)
            fmt = "JPEG"
        elif kind == "screenshot":
            data, source = screenshot_png(photos, rng)
            fmt, orientation, (width, height) = "PNG", 1, SCREEN_SIZE
        else:
            data, fmt, (width, height) = web_image(photos[source], rng)
            orientation = 1
        path = folder / f"mix-{i:05d}-{kind}-{source}{_SUFFIX[fmt]}"
        path.write_bytes(data)
        files.append(MixFile(str(path), kind, source, fmt, width, height, orientation, len(data)))
    manifest.write_text(json.dumps({"key": key, "files": [asdict(f) for f in files]}))
    return files
