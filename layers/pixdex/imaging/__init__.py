"""Image decoding (untrusted bytes -> RGB) and pixel-statistics attribute tags."""

from pixdex.imaging.attributes import compute_attributes
from pixdex.imaging.decode import (
    CONTENT_TYPES,
    DecodedImage,
    crop_to_box,
    decode_image,
    heif_supported,
    sniff_format,
    supported_formats,
)

__all__ = [
    "CONTENT_TYPES",
    "DecodedImage",
    "compute_attributes",
    "crop_to_box",
    "decode_image",
    "heif_supported",
    "sniff_format",
    "supported_formats",
]
