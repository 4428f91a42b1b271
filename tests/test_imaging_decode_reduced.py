"""Decoding at the size the consumers need (a ``SizeFloor``): 12 MP phone JPEGs with EXIF
rotation, large PNGs and other formats reduced, the original's size kept."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from pixdex.errors import ImageDecodeError
from pixdex.imaging import SizeFloor, compute_attributes
from pixdex.imaging.decode import heif_supported
from pixdex.inference.specs import EFFICIENTNET_LITE0_SPEC
from pixdex.models import BoundingBox
from pixdex.pipeline import decode_floor
from tests.decode_support import (
    MAX_BYTES,
    decode,
    gradient_rgb,
    png,
    save,
    save_bytes,
)

# What ingest asks of a picture for EfficientNet-Lite0: the model's 224 px x 1.5, and the
# pixel attributes' 480 px (pixdex.pipeline.decode_floor).
INGEST_FLOOR = decode_floor([SimpleNamespace(spec=EFFICIENTNET_LITE0_SPEC)])  # type: ignore[list-item]
PHONE = (4032, 3024)
BIG_LIMITS = {"max_pixels": 64_000_000, "max_bytes": 64 * 1024 * 1024}


def photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")


def _tiled(name: str, size: tuple[int, int]) -> Image.Image:
    """A real photo tiled (with mirrored copies) over ``size``: detail everywhere."""
    tile = photo(name)
    mirrored = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    canvas = Image.new("RGB", size)
    for row, top in enumerate(range(0, size[1], tile.height)):
        for col, left in enumerate(range(0, size[0], tile.width)):
            canvas.paste(tile if (row + col) % 2 == 0 else mirrored, (left, top))
    return canvas


def _phone_jpeg(upright: Image.Image, orientation: int) -> bytes:
    """A camera JPEG: pixels stored turned so that the EXIF tag brings them upright."""
    store = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
             8: Image.Transpose.ROTATE_270}[orientation]
    stored = upright if store is None else upright.transpose(store)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def _marked_portrait() -> Image.Image:
    """An upright 3024x4032 photo with a red top-left and a blue bottom-right corner."""
    upright = _tiled("astronaut", (PHONE[1], PHONE[0]))
    upright.paste((255, 0, 0), (0, 0, 600, 600))
    upright.paste((0, 0, 255), (PHONE[1] - 600, PHONE[0] - 600, PHONE[1], PHONE[0]))
    return upright


@pytest.fixture(scope="module")
def portrait_jpeg() -> bytes:
    return _phone_jpeg(_marked_portrait(), 6)


def _close(reduced: Image.Image, full: Image.Image) -> float:
    """Mean absolute difference (0-255) between a reduced decode and the full decode
    brought to the same size."""
    shrunk = full.resize(reduced.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(reduced, np.float32) - np.asarray(shrunk, np.float32)).mean())


def test_12mp_jpeg_with_exif_rotation_decodes_reduced_upright(portrait_jpeg: bytes) -> None:
    decoded = decode(portrait_jpeg, **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    # The original's displayed size, whatever size the pixels were decoded at.
    assert (decoded.width, decoded.height, decoded.format) == (3024, 4032, "JPEG")
    # DCT-scaled by 8: 504 px on the long side (the attributes want 480), 378 on the short
    # (the model wants 336).
    assert decoded.image.size == (378, 504) and decoded.reduced
    assert decoded.image.mode == "RGB"
    width, height = decoded.image.size
    r, g, b = decoded.image.getpixel((20, 20))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60, "top-left corner must be the red mark"
    r, g, b = decoded.image.getpixel((width - 20, height - 20))  # type: ignore[misc]
    assert b > 200 and r < 60 and g < 60, "bottom-right corner must be the blue mark"
    full = decode(portrait_jpeg, **BIG_LIMITS)  # type: ignore[arg-type]
    assert (full.width, full.height) == (3024, 4032) and full.image.size == (3024, 4032)
    assert not full.reduced
    assert _close(decoded.image, full.image) < 4.0


@pytest.mark.parametrize("orientation", [1, 3, 8])
def test_other_orientations_keep_the_original_size(orientation: int) -> None:
    upright = _marked_portrait() if orientation == 8 else _tiled("coffee", PHONE)
    upright.paste((255, 0, 0), (0, 0, 500, 500))
    data = _phone_jpeg(upright, orientation)
    decoded = decode(data, **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    assert (decoded.width, decoded.height) == upright.size
    assert decoded.image.size == (upright.width // 8, upright.height // 8)
    r, g, b = decoded.image.getpixel((10, 10))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("plain", set()), ("dark", {"dark"}), ("blurry", {"blurry"}), ("grey", {"grayscale"})],
)
def test_attributes_of_a_reduced_12mp_photo_match_the_full_decode(
    variant: str, expected: set[str]
) -> None:
    upright = _tiled("chelsea", PHONE)
    if variant == "dark":
        upright = ImageEnhance.Brightness(upright).enhance(0.25)
    elif variant == "blurry":
        upright = upright.filter(ImageFilter.GaussianBlur(24))
    elif variant == "grey":
        upright = upright.convert("L").convert("RGB")
    data = _phone_jpeg(upright, 6)
    full = decode(data, **BIG_LIMITS)  # type: ignore[arg-type]
    reduced = decode(data, **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    assert reduced.image.size == (504, 378) and (reduced.width, reduced.height) == PHONE
    before = compute_attributes(full.image)
    after = compute_attributes(reduced.image, size=(reduced.width, reduced.height))
    assert expected <= set(before)
    assert set(after) == set(before)
    for name, score in before.items():
        assert abs(after[name] - score) <= 0.05, (name, score, after[name])


def test_small_is_judged_on_the_original_size() -> None:
    wide = Image.new("RGB", (4000, 300), (90, 120, 150))  # not small: 300 >= 256
    data = save_bytes(wide, "PNG")
    decoded = decode(data, **BIG_LIMITS, floor=SizeFloor(long=512))  # type: ignore[arg-type]
    assert decoded.image.size == (572, 43) and (decoded.width, decoded.height) == (4000, 300)
    assert "small" in compute_attributes(decoded.image)  # 43 px: as if it were the original
    after = compute_attributes(decoded.image, size=(4000, 300))
    assert "small" not in after and after == compute_attributes(wide)
    # Ingest's floor keeps the shorter side at 336 px: a picture under it is not reduced.
    assert not decode(data, **BIG_LIMITS, floor=INGEST_FLOOR).reduced  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "I;16"])
def test_large_png_is_box_reduced_after_decoding(mode: str) -> None:
    screen = _tiled("coffee", (2560, 1440))
    if mode == "RGBA":
        screen = screen.convert("RGBA")
        screen.paste((0, 0, 0, 0), (0, 0, 400, 400))  # transparent: composited on white
    elif mode == "P":
        screen = screen.convert("P", palette=Image.Palette.ADAPTIVE)
    elif mode == "I;16":
        screen = Image.fromarray(np.asarray(screen.convert("L"), np.uint16) * 257)
    data = save_bytes(screen, "PNG")
    full = decode(data, **BIG_LIMITS)  # type: ignore[arg-type]
    decoded = decode(data, **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    assert (decoded.width, decoded.height, decoded.format) == (2560, 1440, "PNG")
    # Shorter side 1440 / 4 = 360 >= 336 (224 x 1.5); / 5 = 288 would not be.
    assert decoded.image.size == (640, 360) and decoded.image.mode == "RGB"
    assert _close(decoded.image, full.image) < 1.0
    if mode == "RGBA":
        assert decoded.image.getpixel((10, 10)) == (255, 255, 255)


@pytest.mark.parametrize(("fmt", "params"), [("WEBP", {"quality": 90}), ("TIFF", {}),
                                              ("BMP", {}), ("GIF", {})])
def test_other_formats_reduce_too(fmt: str, params: dict[str, object]) -> None:
    data = save_bytes(_tiled("rocket", (2000, 1500)), fmt, **params)
    decoded = decode(data, **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    assert (decoded.width, decoded.height, decoded.format) == (2000, 1500, fmt)
    # 2000 / 4 = 500 >= 480 (the attributes) and 1500 / 4 = 375 >= 336 (the model).
    assert decoded.image.size == (500, 375)


def test_pictures_under_the_floor_decode_exactly_as_without_one(tmp_path: Path) -> None:
    for name in ("a.jpg", "a.png", "a.webp"):
        data = save(tmp_path, photo("chelsea"), name)  # 451 x 300: under 480 on the long side
        plain = decode(data)
        floored = decode(data, floor=INGEST_FLOOR)  # type: ignore[arg-type]
        assert not floored.reduced
        assert floored.image.tobytes() == plain.image.tobytes()
    # A floor never enlarges: a tiny picture stays tiny.
    tiny = decode(save(tmp_path, gradient_rgb(20, 10), "t.png"), floor=SizeFloor(800, 800))  # type: ignore[arg-type]
    assert tiny.image.size == (20, 10)


def test_limits_still_apply_to_the_original_with_a_floor(portrait_jpeg: bytes) -> None:
    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0)
    bomb = png([(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 100)), (b"IEND", b"")])
    with pytest.raises(ImageDecodeError, match="30000x30000"):
        decode(bomb, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    # 12 MP is over a 10 MP limit even though only 0.76 MP would be decoded.
    with pytest.raises(ImageDecodeError, match=r"4032x3024 = 12,192,768 pixels"):
        decode(portrait_jpeg, max_pixels=10_000_000, max_bytes=MAX_BYTES, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    # A truncated file still fails: DCT scaling still reads every coefficient.
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode(portrait_jpeg[: len(portrait_jpeg) * 2 // 3], **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]


@pytest.mark.skipif(not heif_supported(), reason="pillow_heif not installed")
def test_heic_uses_an_embedded_thumbnail_large_enough(tmp_path: Path) -> None:
    data = save(tmp_path, _tiled("coffee", (640, 480)), "t.heic", quality=60, thumbnails=[320])
    decoded = decode(data, floor=SizeFloor(long=300))
    assert (decoded.width, decoded.height) == (640, 480)
    assert decoded.image.size == (320, 240)
    assert not decode(data, floor=SizeFloor(long=400)).reduced  # the thumbnail is too small


def test_size_floor_arithmetic() -> None:
    floor = SizeFloor(short=336) | SizeFloor(long=512)
    assert floor == SizeFloor(short=336, long=512)
    assert floor.target(4032, 3024) == (512, 384)  # the long side decides
    assert floor.factor(4032, 3024) == 7  # 576 x 432
    assert floor.target(2560, 1440) == (598, 336)  # the short side decides
    assert floor.factor(2560, 1440) == 4
    assert floor.factor(600, 400) == 1 and floor.target(600, 400) is None
    assert SizeFloor(short=224).within(BoundingBox(x=0, y=0, width=0.5, height=0.25)) == \
        SizeFloor(short=896)
    assert SizeFloor(short=224).within(None) == SizeFloor(short=224)
    with pytest.raises(ValueError):
        SizeFloor(short=-1)


@pytest.mark.parametrize(
    ("mode", "params"),
    [("CMYK", {}), ("L", {}), ("RGB", {"progressive": True}), ("RGB", {"subsampling": 0})],
)
def test_jpeg_variants_are_dct_scaled(mode: str, params: dict[str, object]) -> None:
    picture = _tiled("astronaut", (3000, 2000))
    data = save_bytes(picture.convert(mode), "JPEG", quality=90, **params)
    full = decode(data, **BIG_LIMITS)  # type: ignore[arg-type]
    decoded = decode(data, **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    assert (decoded.width, decoded.height) == (3000, 2000) and decoded.image.mode == "RGB"
    assert decoded.image.size == (750, 500)
    assert _close(decoded.image, full.image) < 3.0


def test_multi_picture_jpeg_is_dct_scaled() -> None:
    picture = _tiled("coffee", (3000, 2000))
    buffer = io.BytesIO()
    picture.save(buffer, "MPO", save_all=True, quality=90,
                 append_images=[picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    decoded = decode(buffer.getvalue(), **BIG_LIMITS, floor=INGEST_FLOOR)  # type: ignore[arg-type]
    assert (decoded.format, decoded.width, decoded.height) == ("JPEG", 3000, 2000)
    assert decoded.image.size == (750, 500)
