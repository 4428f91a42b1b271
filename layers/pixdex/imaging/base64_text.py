"""Base64 text a request carries, turned into image bytes (URLs: `app.service.fetch`).

The limit is enforced before the expensive step: a base64 string longer than the byte
limit allows is refused before it is decoded.
"""

from __future__ import annotations

import base64
import binascii

from pixdex.errors import InvalidInputError, PayloadTooLargeError


def decode_base64(text: str, *, max_bytes: int, field: str) -> bytes:
    """Decode standard or URL-safe base64 (whitespace and a ``data:`` prefix allowed)."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise InvalidInputError(
                f"{field}: a data: URI must be base64 (data:image/jpeg;base64,...)", field=field
            )
    compact = "".join(text.split())
    if len(compact) // 4 * 3 > max_bytes + 2:
        raise PayloadTooLargeError(
            f"{field}: the image is larger than the limit of {max_bytes:,} bytes", field=field
        )
    try:
        if "-" in compact or "_" in compact:
            data = base64.urlsafe_b64decode(compact.encode("ascii"))
        else:
            data = base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidInputError(f"{field} is not valid base64", field=field) from None
    if not data:
        raise InvalidInputError(f"{field} is empty", field=field)
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"{field}: the image is {len(data):,} bytes, more than the limit of "
            f"{max_bytes:,} bytes", field=field,
        )
    return data
