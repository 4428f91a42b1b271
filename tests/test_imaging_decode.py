"""Decoding real files written by Pillow, hostile inputs, and cropping."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from pixdex.errors import ImageDecodeError, PayloadTooLargeError
from pixdex.imaging import crop_to_box, decode_image, sniff_format
from pixdex.imaging.decode import CONTENT_TYPES, heif_supported
from pixdex.models import BoundingBox
from tests.decode_support import (
    MAX_PIXELS,
    assert_rgb,
    decode,
    gradient_rgb,
    png,
    png_chunks,
    save,
)


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


def test_png_with_corrupt_idat(tmp_path: Path) -> None:
    data = save(tmp_path, gradient_rgb(120, 90), "c.png")
    chunks = png_chunks(data)
    with pytest.raises(ImageDecodeError, match="bad checksum in PNG IDAT"):
        decode(png(chunks, bad_crc=b"IDAT"))
    assert decode(png(chunks)).width == 120  # the rebuilt, untouched PNG is fine
    garbled = [(k, b[: len(b) // 2] + b"\x00garbage" * 8 if k == b"IDAT" else b) for k, b in chunks]
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode(png(garbled))


def test_decompression_bomb_refused_before_decoding() -> None:
    # A 30000x30000 1-bit PNG whose IDAT is tiny: the header alone must stop it.
    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * (30_000 // 8)
    idat = zlib.compress(row * 10)  # deliberately short: decoding would fail anyway
    data = png([(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")])
    assert len(data) < 2_000
    with pytest.raises(ImageDecodeError) as info:
        decode(data, max_pixels=MAX_PIXELS)
    message = info.value.message
    assert "30000x30000" in message and "10,000,000" in message


def test_bomb_beyond_pillow_global_limit() -> None:
    # Beyond 2x Pillow's own limit, Pillow raises first; it must still come out typed.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    data = png([(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\x00")), (b"IEND", b"")])
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
