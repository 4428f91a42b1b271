"""Turning what a request carries into image bytes: base64 text and http(s) URLs.

Limits are enforced before the expensive step: a base64 string longer than the byte limit
allows is refused before it is decoded, and a URL body is refused from its
Content-Length or, failing that, as soon as the stream passes the limit.

URLs: http and https only; redirects are followed (at most 5) and every hop is checked
again. Link-local, multicast and unspecified addresses are always refused: 169.254.169.254
is where cloud instance credentials live. Private and loopback addresses are allowed only
with ``allow_private`` (``PIXDEX_URL_FETCH_ALLOW_PRIVATE``, on by default for a self-hosted
service fetching from its own network; the AWS stack turns it off so an API caller cannot
make the function probe the VPC).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import urllib.error
import urllib.request
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from pixdex.errors import InvalidInputError, PayloadTooLargeError

FETCH_TIMEOUT_S = 10.0
_CHUNK = 256 * 1024
_MAX_REDIRECTS = 5


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


def check_url(url: str, field: str, *, allow_private: bool = True) -> None:
    """Refuse anything but http(s) to a host whose addresses are all fetchable."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"{field} must be an http:// or https:// URL, got {url[:100]!r}", field=field
        )
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInputError(f"cannot resolve {parts.hostname!r}: {exc}", field=field) from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        internal = address.is_private or address.is_loopback or address.is_reserved
        if (
            address.is_link_local
            or address.is_multicast
            or address.is_unspecified
            or (internal and not allow_private)
        ):
            raise InvalidInputError(
                f"{field}: {parts.hostname} resolves to {address}, which may not be fetched",
                field=field,
            )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = _MAX_REDIRECTS

    def __init__(self, field: str, allow_private: bool) -> None:
        self.field = field
        self.allow_private = allow_private

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
        headers: HTTPMessage, newurl: str,
    ) -> urllib.request.Request | None:
        check_url(newurl, self.field, allow_private=self.allow_private)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(
    url: str, *, max_bytes: int, field: str, allow_private: bool = True,
    timeout: float = FETCH_TIMEOUT_S,
) -> bytes:
    check_url(url, field, allow_private=allow_private)
    opener = urllib.request.build_opener(_CheckedRedirects(field, allow_private))
    # check_url allowed only http(s) here and _CheckedRedirects re-checks every hop.
    request = urllib.request.Request(  # noqa: S310
        url, headers={"User-Agent": "pixdex", "Accept": "image/*"}
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise PayloadTooLargeError(
                    f"{field}: {url} is {int(declared):,} bytes, more than the limit of "
                    f"{max_bytes:,} bytes", field=field,
                )
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLargeError(
                        f"{field}: {url} is more than the limit of {max_bytes:,} bytes",
                        field=field,
                    )
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise InvalidInputError(
            f"{field}: fetching {url} failed with HTTP {exc.code} {exc.reason}", field=field
        ) from None
    except urllib.error.URLError as exc:
        raise InvalidInputError(f"{field}: cannot fetch {url}: {exc.reason}", field=field) from None
    except (TimeoutError, OSError) as exc:
        raise InvalidInputError(f"{field}: cannot fetch {url}: {exc}", field=field) from None
    data = b"".join(chunks)
    if not data:
        raise InvalidInputError(f"{field}: {url} returned an empty body", field=field)
    return data
