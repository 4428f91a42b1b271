"""Shared by the decoding tests: the decoder with test limits, and pictures to feed it."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from pixdex.imaging import SizeFloor, decode_image

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


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's (kind, body) chunks."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png(chunks: list[tuple[bytes, bytes]], *, bad_crc: bytes = b"") -> bytes:
    """A PNG of ``chunks`` (hand-made headers, bombs), the CRC of ``bad_crc`` chunks wrong."""
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) ^ (1 if kind == bad_crc else 0)
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
    return out
