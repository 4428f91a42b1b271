"""Image decoding (untrusted bytes -> RGB) and pixel-statistics attribute tags."""

from pixdex.imaging.attributes import ATTRIBUTES_FLOOR, compute_attributes
from pixdex.imaging.decode import (
    CONTENT_TYPES,
    DecodedImage,
    SizeFloor,
    crop_to_box,
    decode_image,
    heif_supported,
    sniff_format,
    supported_formats,
)

__all__ = [
    "ATTRIBUTES_FLOOR",
    "CONTENT_TYPES",
    "DecodedImage",
    "SizeFloor",
    "compute_attributes",
    "crop_to_box",
    "decode_image",
    "heif_supported",
    "sniff_format",
    "supported_formats",
]
