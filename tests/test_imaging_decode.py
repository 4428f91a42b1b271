"""Decoding real files written by Pillow, hostile inputs, and cropping."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance, ImageFile, ImageFilter

from pixdex.errors import ImageDecodeError, PayloadTooLargeError
from pixdex.imaging import SizeFloor, compute_attributes, crop_to_box, decode_image, sniff_format
from pixdex.imaging.decode import CONTENT_TYPES, heif_supported
from pixdex.inference.specs import EFFICIENTNET_LITE0_SPEC
from pixdex.models import BoundingBox
from pixdex.pipeline import decode_floor

MAX_PIXELS = 10_000_000
MAX_BYTES = 16 * 1024 * 1024


def decode(data: bytes, *, floor: SizeFloor | None = None, **kwargs: int):  # type: ignore[no-untyped-def]
    return decode_image(
        data,
        max_pixels=kwargs.get("max_pixels", MAX_PIXELS),
        max_bytes=kwargs.get("max_bytes", MAX_BYTES),
        floor=floor,
    )


def gradient_rgb(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None].repeat(width, 1)
    arr = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    return Image.fromarray(arr)


def save(tmp_path: Path, image: Image.Image, name: str, **params: object) -> bytes:
    path = tmp_path / name
    image.save(path, **params)
    return path.read_bytes()


def save_bytes(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def assert_rgb(decoded, width: int, height: int, fmt: str) -> None:  # type: ignore[no-untyped-def]
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (width, height)
    assert (decoded.width, decoded.height) == (width, height)
    assert decoded.format == fmt
    # Fully loaded: the pixel data is materialised, not a lazy handle on the source bytes.
    assert len(decoded.image.tobytes()) == width * height * 3


@pytest.mark.parametrize(
    ("name", "fmt", "params"),
    [
        ("a.jpg", "JPEG", {"quality": 90}),
        ("a.png", "PNG", {}),
        ("a.webp", "WEBP", {"quality": 90}),
        ("a.bmp", "BMP", {}),
        ("a.tiff", "TIFF", {}),
        ("a.gif", "GIF", {}),
    ],
)
def test_common_formats(tmp_path: Path, name: str, fmt: str, params: dict[str, object]) -> None:
    data = save(tmp_path, gradient_rgb(), name, **params)
    assert sniff_format(data) == fmt
    decoded = decode(data)
    assert_rgb(decoded, 64, 48, fmt)
    assert fmt in CONTENT_TYPES
    # Content survives: the left-top corner is dark red-ish-blue, right side is bright red.
    r, _, b = decoded.image.getpixel((63, 0))  # type: ignore[misc]
    assert r > 200 and b < 60


def test_animated_gif_yields_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (20, 10), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    decoded = decode(path.read_bytes())
    assert_rgb(decoded, 20, 10, "GIF")
    r, g, b = decoded.image.getpixel((5, 5))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50


def test_16bit_png_gradient_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.linspace(0, 65535, 256 * 16, dtype=np.float64).reshape(16, 256).astype(np.uint16)
    image = Image.fromarray(arr)
    assert image.mode.startswith("I;16")
    data = save(tmp_path, image, "g16.png")
    decoded = decode(data)
    assert_rgb(decoded, 256, 16, "PNG")
    out = np.asarray(decoded.image)[..., 0]
    assert out.min() <= 2 and out.max() >= 253
    assert 100 < out.mean() < 155  # a full ramp, not all white
    assert (np.diff(out.astype(int), axis=1) >= 0).all()


@pytest.mark.parametrize("mode", ["I", "F"])
def test_wide_tiff_modes(tmp_path: Path, mode: str) -> None:
    if mode == "F":
        arr = np.linspace(0.0, 1.0, 100, dtype=np.float32).reshape(10, 10)
    else:
        arr = np.linspace(0, 65535, 100).astype(np.int32).reshape(10, 10)
    data = save(tmp_path, Image.fromarray(arr, mode=mode), f"w_{mode}.tiff")
    out = np.asarray(decode(data).image)[..., 0]
    assert out.min() == 0 and out.max() == 255


def test_cmyk_jpeg(tmp_path: Path) -> None:
    data = save(tmp_path, Image.new("CMYK", (30, 20), (0, 255, 255, 0)), "c.jpg")
    decoded = decode(data)
    assert_rgb(decoded, 30, 20, "JPEG")
    r, g, b = decoded.image.getpixel((10, 10))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60  # cyan-free magenta+yellow = red


def test_palette_png_with_transparency_on_white(tmp_path: Path) -> None:
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    image.paste(1, (0, 0, 5, 10))
    data = save(tmp_path, image, "p.png", transparency=0)
    decoded = decode(data)
    assert_rgb(decoded, 10, 10, "PNG")
    assert decoded.image.getpixel((2, 2)) == (255, 0, 0)
    assert decoded.image.getpixel((8, 2)) == (255, 255, 255)  # transparent -> white


def test_rgba_and_la_png_composited_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.paste((0, 128, 0, 255), (0, 0, 4, 8))
    decoded = decode(save(tmp_path, rgba, "rgba.png"))
    assert decoded.image.getpixel((1, 1)) == (0, 128, 0)
    assert decoded.image.getpixel((6, 1)) == (255, 255, 255)
    la = Image.new("LA", (8, 8), (0, 128))
    r, g, b = decode(save(tmp_path, la, "la.png")).image.getpixel((1, 1))  # type: ignore[misc]
    assert 120 <= r <= 135 and r == g == b


def test_one_bit_and_grey(tmp_path: Path) -> None:
    bw = Image.new("1", (9, 7), 1)
    bw.putpixel((0, 0), 0)
    decoded = decode(save(tmp_path, bw, "bw.png"))
    assert_rgb(decoded, 9, 7, "PNG")
    assert decoded.image.getpixel((0, 0)) == (0, 0, 0)
    assert decoded.image.getpixel((1, 0)) == (255, 255, 255)
    grey = decode(save(tmp_path, Image.new("L", (5, 5), 77), "l.bmp"))
    assert grey.image.getpixel((2, 2)) == (77, 77, 77)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue band on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    data = save(tmp_path, image, "rot.jpg", exif=exif, quality=95)
    decoded = decode(data)
    assert (decoded.width, decoded.height) == (20, 40)
    # After a clockwise turn the left edge is at the top.
    r, _, b = decoded.image.getpixel((10, 2))  # type: ignore[misc]
    assert b > 200 and r < 60


@pytest.mark.skipif(not heif_supported(), reason="pillow_heif not installed")
def test_heic_round_trip(tmp_path: Path) -> None:
    data = save(tmp_path, gradient_rgb(), "a.heic", quality=90)
    assert sniff_format(data) == "HEIF"
    assert_rgb(decode(data), 64, 48, "HEIF")


def test_empty_file() -> None:
    with pytest.raises(ImageDecodeError, match="file is empty"):
        decode(b"")


@pytest.mark.parametrize(
    "data",
    [os.urandom(4096), b"hello, this is a text file\n" * 40, b"%PDF-1.7\n" + b"0" * 200],
)
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="not a recognised image format") as info:
        decode(data)
    assert "JPEG, PNG, WebP, GIF, BMP, TIFF" in info.value.message


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = save(tmp_path, gradient_rgb(400, 300), "t.jpg", quality=95)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def _png(chunks: list[tuple[bytes, bytes]], *, bad_crc: bytes = b"") -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) ^ (1 if kind == bad_crc else 0)
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
    return out


def test_png_with_corrupt_idat(tmp_path: Path) -> None:
    data = save(tmp_path, gradient_rgb(120, 90), "c.png")
    chunks = _png_chunks(data)
    with pytest.raises(ImageDecodeError, match="bad checksum in PNG IDAT"):
        decode(_png(chunks, bad_crc=b"IDAT"))
    assert decode(_png(chunks)).width == 120  # the rebuilt, untouched PNG is fine
    garbled = [(k, b[: len(b) // 2] + b"\x00garbage" * 8 if k == b"IDAT" else b) for k, b in chunks]
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode(_png(garbled))


def test_decompression_bomb_refused_before_decoding() -> None:
    # A 30000x30000 1-bit PNG whose IDAT is tiny: the header alone must stop it.
    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * (30_000 // 8)
    idat = zlib.compress(row * 10)  # deliberately short: decoding would fail anyway
    data = _png([(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")])
    assert len(data) < 2_000
    with pytest.raises(ImageDecodeError) as info:
        decode(data, max_pixels=MAX_PIXELS)
    message = info.value.message
    assert "30000x30000" in message and "10,000,000" in message


def test_bomb_beyond_pillow_global_limit() -> None:
    # Beyond 2x Pillow's own limit, Pillow raises first; it must still come out typed.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    data = _png([(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00")), (b"IEND", b"")])
    with pytest.raises(ImageDecodeError, match=r"100000x100000 .* limit of 178,956,970"):
        decode(data, max_pixels=10**12)
    assert Image.MAX_IMAGE_PIXELS is not None


def test_oversize_bytes() -> None:
    with pytest.raises(PayloadTooLargeError, match="limit of 100 bytes"):
        decode(b"\xff\xd8\xff" + b"\x00" * 200, max_bytes=100)


def test_sniff_format() -> None:
    assert sniff_format(b"") is None
    assert sniff_format(b"GIF89a....") == "GIF"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"MM\x00*\x00\x00\x00\x08") == "TIFF"
    assert sniff_format(b"\x00\x00\x00\x18ftypheic\x00\x00") == "HEIF"
    assert sniff_format(b"\x00\x00\x00\x18ftypavif\x00\x00") == "AVIF"
    assert sniff_format(b"plain text") is None


def test_crop_to_box() -> None:
    image = gradient_rgb(1000, 500)
    crop = crop_to_box(image, BoundingBox(x=0.3, y=0.2, width=0.5, height=0.6))
    assert crop.size == (500, 300)
    whole = crop_to_box(image, BoundingBox(x=0, y=0, width=1, height=1))
    assert whole.size == (1000, 500)
    assert np.array_equal(np.asarray(whole), np.asarray(image))
    tiny_box = BoundingBox(x=0.99, y=0.999, width=0.001, height=1e-6)
    tiny = crop_to_box(Image.new("RGB", (10, 10)), tiny_box)
    assert tiny.size == (1, 1)
    edge = crop_to_box(image, BoundingBox(x=0.0011, y=0.0, width=0.0001, height=0.001))
    assert edge.size[0] >= 1 and edge.size[1] >= 1


def _valid_header_prefixes() -> list[bytes]:
    buffer = io.BytesIO()
    gradient_rgb(16, 16).save(buffer, "PNG")
    png = buffer.getvalue()
    buffer = io.BytesIO()
    gradient_rgb(16, 16).save(buffer, "JPEG")
    riff = b"RIFF\x00\x00\x00\x00WEBP"
    return [png[:40], buffer.getvalue()[:200], b"GIF89a", b"BM", b"II*\x00", riff]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from([b"", *_valid_header_prefixes()]), tail=st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_typed_errors(prefix: bytes, tail: bytes) -> None:
    data = prefix + tail
    try:
        decoded = decode_image(data, max_pixels=1_000_000, max_bytes=500)
    except (ImageDecodeError, PayloadTooLargeError):
        return
    assert decoded.image.mode == "RGB"


def test_lab_tiff_is_converted_colorimetrically(tmp_path: Path) -> None:
    # Pillow's LAB stores a/b offset by 128: (128, 128, 128) is a neutral mid grey.
    data = save(tmp_path, Image.new("LAB", (8, 8), (128, 128, 128)), "lab.tiff")
    decoded = decode(data)
    assert decoded.image.mode == "RGB"
    red, green, blue = decoded.image.getpixel((0, 0))  # type: ignore[misc]
    assert max(red, green, blue) - min(red, green, blue) <= 2
    assert 110 <= red <= 130



_BOMB_PROBE = """
import io, resource, sys
from PIL import Image
from pixdex.imaging.decode import decode_image

buffer = io.BytesIO()
Image.new("I;16", (8000, 8000)).save(buffer, "PNG")
data = buffer.getvalue()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decoded = decode_image(data, max_pixels=64_000_000, max_bytes=64 * 1024 * 1024)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(len(data), decoded.width, grown // 1024)
"""


def test_a_16_bit_bomb_decodes_within_its_own_size() -> None:
    """Issue 14: an 8000x8000 16-bit grey PNG of ~120 KB passes the 64 MP limit and was
    rescaled through full-size float64 copies: 2.3 GB more peak memory, enough to kill
    a 1 GB Lambda from one read-only query image. Measured in a fresh process (peak RSS
    never goes down): now the source picture, the 8-bit result and the RGB copy, plus
    blocks of rows."""
    result = subprocess.run([sys.executable, "-c", _BOMB_PROBE], capture_output=True,
                            text=True, timeout=300, check=True)
    size, width, grown_mb = (int(v) for v in result.stdout.split())
    assert size < 200_000 and width == 8000
    # 64 MP: 128 MB 16-bit source + its array + 64 MB grey + 192 MB RGB, ~550 MB at most.
    assert grown_mb < 700, f"decoding grew the process by {grown_mb} MB"


# --- Decoding at the size the consumers need (issue 13: a SizeFloor) --------------------

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
    bomb = _png([(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00" * 100)), (b"IEND", b"")])
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
