"""Safe decoding of untrusted image bytes into an 8-bit RGB :class:`PIL.Image.Image`.

Rules, in the order they are applied:

1. Empty input is refused (``ImageDecodeError``: "file is empty"); input longer than
   ``max_bytes`` is refused with ``PayloadTooLargeError`` before anything is parsed.
2. Only JPEG, PNG, WebP, GIF, BMP and TIFF are parsed (plus HEIC/HEIF when the optional
   ``pillow_heif`` package is installed); Pillow's other plugins (PSD, EPS, ...) are never
   tried, so exotic parsers are not an attack surface.
3. The pixel count from the header is checked against ``max_pixels`` *before* any pixel
   data is decompressed (decompression bombs). Pillow's global ``MAX_IMAGE_PIXELS`` is
   left alone; its hard limit (twice that value) stays a ceiling on ``max_pixels``.
4. The pixels are fully loaded, so truncated or corrupt data fails here and not later.
   ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never touched.
5. EXIF orientation is applied; ``width``/``height`` are the displayed size of the
   original, whatever size ``image`` was decoded at (rule 8).
6. Every pixel mode is normalised to RGB: alpha is composited on white, 16-bit and float
   data are rescaled (not clipped), palette/1-bit/grey/CMYK are converted.
7. Animated images (GIF, WebP, multi-page TIFF) yield their first frame.
8. With a ``floor`` (:class:`~pixdex.imaging.floor.SizeFloor`: what the consumers need),
   the picture is decoded at the smallest size that still meets it, never larger than
   the original: JPEG by DCT scaling in the decoder (1/2, 1/4, 1/8: only the coefficients
   that size needs are inverse-transformed), HEIC from an embedded thumbnail when one is
   large enough, then any format by an integer box reduction (``Image.reduce``) right
   after decoding. Orientation, mode conversion and everything after run on the small
   picture. Rules 1-4 are unchanged: limits are checked on the original's header, and
   every compressed byte is still decoded, DCT scaling included (truncated data still
   fails). The exception is a HEIC decoded from its thumbnail: only the thumbnail is.

Every failure is a typed :mod:`pixdex.errors` exception with a user-facing message.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image, ImageFile

from pixdex.errors import ImageDecodeError, PayloadTooLargeError
from pixdex.imaging.floor import SizeFloor
from pixdex.imaging.formats import (
    CONTENT_TYPES,
    check_png_crcs,
    heif_supported,
    sniff_format,
    supported_formats,
    unsupported_message,
)
from pixdex.imaging.modes import to_rgb
from pixdex.models import BoundingBox

__all__ = [
    "CONTENT_TYPES",
    "DecodedImage",
    "SizeFloor",
    "crop_to_box",
    "decode_image",
    "heif_supported",
    "sniff_format",
    "supported_formats",
]

# Pillow format ids we let Image.open try. The JPEG opener may return an MPO image
# (multi-picture JPEG, common from phones); it is reported as JPEG.
_PIL_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_FORMAT_ALIASES: Mapping[str, str] = {"MPO": "JPEG"}
# Containers whose Pillow plugin can decode at a reduced size (Image.draft): JPEG scales
# in the DCT, pillow_heif picks an embedded thumbnail. The others decode in full first.
_DRAFT_FORMATS = frozenset({"JPEG", "HEIF"})
# Modes Image.reduce box-averages correctly before conversion to RGB; others (palette,
# alpha, 16-bit, ...) are converted first, then reduced.
_REDUCE_FIRST_MODES = frozenset({"RGB", "L"})
# EXIF orientation -> the transposition that shows the picture upright (as
# ImageOps.exif_transpose does it); 5-8 swap width and height.
_UPRIGHT: Mapping[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})

# warnings.catch_warnings mutates process-global state; serialising the (cheap, header-only)
# open step keeps concurrent decoders from restoring each other's filters wrongly.
_open_lock = threading.Lock()


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image: RGB 8-bit pixels, the original's displayed size, and the container
    format. ``image`` is smaller than ``width`` x ``height`` when a floor let the decoder
    reduce it (same shape, up to the rounding of the reduction)."""

    image: Image.Image
    width: int
    height: int
    format: str

    @property
    def reduced(self) -> bool:
        return self.image.size != (self.width, self.height)


def _pixel_limit(max_pixels: int) -> int:
    """Our limit, never looser than Pillow's own hard limit (2x ``MAX_IMAGE_PIXELS``)."""
    pillow_max = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow_max is None else min(max_pixels, 2 * int(pillow_max))


def _identify(data: bytes, formats: tuple[str, ...]) -> ImageFile.ImageFile | None:
    """Image.open's format loop, minus its global-limit check, so ours reports the size.

    Like Image.open, a plugin that rejects the header with SyntaxError/IndexError/
    TypeError/struct.error just means "not this format"; the next one is tried.
    """
    Image.init()
    prefix = data[:16]
    for name in formats:
        if name not in Image.OPEN:
            continue
        factory, accept = Image.OPEN[name]
        matched = accept(prefix) if accept else True
        if not matched or isinstance(matched, str):  # a str is Pillow's "almost" message
            continue
        try:
            return factory(io.BytesIO(data), "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    return None


def _open(data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    """Parse the header only, and enforce the pixel limit before any pixel is decoded."""
    formats = _PIL_FORMATS + (("HEIF",) if heif_supported() else ())
    try:
        with _open_lock, warnings.catch_warnings():
            # Header parsing warns about oddities (e.g. "Corrupt EXIF data"); they are not
            # actionable for the user, and a real problem fails loudly at load().
            warnings.simplefilter("ignore")
            image = _identify(data, formats)
    except Exception as exc:  # plugins raise a zoo of types on malformed headers
        raise ImageDecodeError(f"image data is truncated or corrupt: {_reason(exc)}") from exc
    if image is None:
        sniffed = sniff_format(data)
        if sniffed is None or (sniffed == "HEIF" and not heif_supported()) or sniffed == "AVIF":
            raise ImageDecodeError(unsupported_message())
        raise ImageDecodeError(
            f"image data is truncated or corrupt: {sniffed} header could not be parsed"
        )

    width, height = image.size
    limit = _pixel_limit(max_pixels)
    if width <= 0 or height <= 0:
        image.close()
        raise ImageDecodeError("image data is truncated or corrupt: zero width or height")
    if width * height > limit:
        image.close()
        raise ImageDecodeError(
            f"image is {width}x{height} = {width * height:,} pixels, more than the "
            f"limit of {limit:,} pixels"
        )
    return image


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8, 1 when absent or unreadable)."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # malformed EXIF: no usable hint
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(image: Image.Image, orientation: int) -> Image.Image:
    """The picture upright. Its EXIF goes (its orientation must not be applied twice)."""
    method = _UPRIGHT.get(orientation)
    if method is None:
        return image
    upright = image.transpose(method)
    upright.info.pop("exif", None)
    return upright


def _draft(image: ImageFile.ImageFile, container: str, floor: SizeFloor) -> None:
    """Ask the plugin to decode at the floor's size (JPEG DCT scaling, HEIC thumbnail)."""
    if container not in _DRAFT_FORMATS:
        return
    target = floor.target(*image.size)
    if target is not None:
        image.draft(None, target)


def _reduce(image: Image.Image, floor: SizeFloor | None) -> Image.Image:
    """Box-reduce by the largest integer factor that keeps the floor."""
    if floor is None:
        return image
    factor = floor.factor(*image.size)
    return image.reduce(factor) if factor > 1 else image


def decode_image(
    data: bytes, *, max_pixels: int, max_bytes: int, floor: SizeFloor | None = None
) -> DecodedImage:
    """Decode untrusted bytes; see the module docstring for the rules.

    ``floor``: the least size the caller needs (rule 8); without one the picture is
    decoded at full size.

    Raises ``PayloadTooLargeError`` when ``len(data) > max_bytes`` and ``ImageDecodeError``
    for everything else that makes the bytes unusable.
    """
    if not data:
        raise ImageDecodeError("file is empty")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"file is {len(data):,} bytes, more than the limit of {max_bytes:,} bytes"
        )
    image = _open(data, max_pixels)
    try:
        with image:
            container = _FORMAT_ALIASES.get(image.format or "", image.format or "UNKNOWN")
            if container == "PNG":
                check_png_crcs(data)
            original = image.size  # as stored, before any reduction
            if floor is not None:
                _draft(image, container, floor)
            image.load()
            # A corrupt EXIF block loses the rotation, not the image (orientation 1).
            orientation = _orientation(image)
            rgb: Image.Image = image
            if rgb.mode in _REDUCE_FIRST_MODES:
                rgb = _reduce(rgb, floor)
            # Converted, reduced, then turned upright: each step on the smallest picture.
            rgb = _orient(_reduce(to_rgb(rgb), floor), orientation)
            # Detach from the source file object so closing it never invalidates pixels.
            rgb = rgb.copy() if rgb is image else rgb
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(
            f"image is too large to decode safely ({exc}); limit is {max_pixels:,} pixels"
        ) from exc
    except MemoryError as exc:
        raise ImageDecodeError("image is too large to decode in the available memory") from exc
    except Exception as exc:  # OSError, SyntaxError, ValueError, struct.error, EOFError, ...
        raise ImageDecodeError(f"image data is truncated or corrupt: {_reason(exc)}") from exc
    swapped = orientation in _SWAPPING_ORIENTATIONS
    width, height = original[::-1] if swapped else original
    return DecodedImage(image=rgb, width=width, height=height, format=container)


def crop_to_box(image: Image.Image, box: BoundingBox) -> Image.Image:
    """Crop to a fractional box; edges round outward so the region is covered, >= 1x1 px.

    A tiny epsilon absorbs float noise (0.3 * 1000 == 300.00000000000006 must not become
    301) so exact fractions map to exact pixels.
    """
    width, height = image.size
    eps = 1e-9
    left = min(max(math.floor(box.x * width + eps), 0), width - 1)
    top = min(max(math.floor(box.y * height + eps), 0), height - 1)
    right = min(max(math.ceil((box.x + box.width) * width - eps), left + 1), width)
    bottom = min(max(math.ceil((box.y + box.height) * height - eps), top + 1), height)
    return image.crop((left, top, right, bottom))
