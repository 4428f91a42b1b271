"""Container-level knowledge: magic-byte sniffing, MIME types, optional HEIC support,
and the PNG checksum check Pillow does not do.

``sniff_format`` only looks at magic bytes; a match does not mean the file is valid.
HEIC/HEIF support depends on the optional ``pillow_heif`` package; its opener is
registered lazily, once per process, on first use.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Mapping

from pixdex.errors import ImageDecodeError

__all__ = [
    "CONTENT_TYPES",
    "check_png_crcs",
    "heif_supported",
    "sniff_format",
    "supported_formats",
    "unsupported_message",
]

CONTENT_TYPES: Mapping[str, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

_heif_lock = threading.Lock()
_heif_state: list[bool] = []  # empty: not tried yet; [True]/[False]: registration result


def heif_supported() -> bool:
    """Register the pillow_heif opener on first call (once per process); report success."""
    with _heif_lock:
        if not _heif_state:
            try:
                import pillow_heif  # optional dependency; absent means no HEIC support

                pillow_heif.register_heif_opener()
                _heif_state.append(True)
            except Exception:  # any import/registration failure simply disables HEIC
                _heif_state.append(False)
        return _heif_state[0]


def supported_formats() -> tuple[str, ...]:
    """Human-readable names of the formats :func:`decode_image` accepts right now."""
    names = ("JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF")
    return (*names, "HEIC") if heif_supported() else names


def sniff_format(data: bytes) -> str | None:
    """Identify an image container from its magic bytes, without parsing it.

    Returns a format id (``"JPEG"``, ``"PNG"``, ``"WEBP"``, ``"GIF"``, ``"BMP"``, ``"TIFF"``,
    ``"HEIF"``, ``"AVIF"``) or ``None``. A match does not mean the file is valid.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data.startswith(b"BM") and len(data) >= 14:
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIF_BRANDS:
            return "HEIF"
        if brand in _AVIF_BRANDS:
            return "AVIF"
    return None


def unsupported_message() -> str:
    return f"not a recognised image format (supported: {', '.join(supported_formats())})"


_PNG_CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})


def check_png_crcs(data: bytes) -> None:
    """Verify CRCs of critical PNG chunks, as libpng does; Pillow skips the IDAT CRCs.

    Ancillary chunks are not checked: a bad CRC there (common from sloppy writers) does
    not affect the pixels. Structural problems are left for the decoder to report.
    """
    pos = 8
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            return
        if kind in _PNG_CRITICAL:
            (stored,) = struct.unpack(">I", data[end : end + 4])
            if zlib.crc32(data[pos + 4 : end]) != stored:
                raise ImageDecodeError(
                    f"image data is truncated or corrupt: bad checksum in PNG {kind.decode()} chunk"
                )
        if kind == b"IEND":
            return
        pos = end + 4
