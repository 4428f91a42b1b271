"""Fetching an image a request names by URL, without letting the URL reach inside.

* http and https only; the host is resolved **once** per hop and the connection goes to
  that very address (TLS still verified against the host name), so a name that answers a
  public address to the check and a private one to the connection (DNS rebinding) gets
  nowhere. Redirects (at most 5) are followed by hand, each hop checked the same way.
* Addresses are judged in their IPv4 form when they embed one (IPv4-mapped ``::ffff:``,
  6to4, NAT64 ``64:ff9b::``), and numeric host spellings (``2852039166``, ``0251.0376.
  0251.0376``, ``169.254.43518``) as the IPv4 address they denote.
* Always refused: link-local (169.254.169.254 is where cloud credentials live), multicast,
  unspecified, reserved. Private and loopback addresses only with ``allow_private``
  (``PIXDEX_URL_FETCH_ALLOW_PRIVATE``, on for a self-hosted service on its own network,
  off in the AWS stack); without it only globally routable addresses are fetched.
* A byte limit (``Content-Length`` first, then the stream) and a deadline for the whole
  fetch, redirects included, so a server dripping bytes cannot hold a worker.
* Failures say what to fix but not what was found behind the URL (no resolved addresses,
  statuses or connection errors), so the API cannot be used as a port scanner.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from pixdex.errors import InvalidInputError, PayloadTooLargeError

__all__ = ["FETCH_TIMEOUT_S", "Resolver", "check_url", "fetch_url", "system_resolver"]

FETCH_TIMEOUT_S = 10.0
_CHUNK = 256 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Characters a URL may carry as they are; anything else (non-ASCII) is percent-encoded.
_URL_SAFE = "/%:@!$&'()*+,;=-._~?#[]"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%")[0] for info in infos]


def _refused(field: str) -> InvalidInputError:
    return InvalidInputError(
        f"{field}: this URL may not be fetched or could not be fetched; give a public "
        "http(s) URL that serves the image", field=field,
    )


def _embedded_ipv4(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _allowed(address: Address, allow_private: bool) -> bool:
    address = _embedded_ipv4(address)
    if (
        address.is_link_local or address.is_multicast or address.is_unspecified
        or address.is_reserved
    ):
        return False
    return allow_private or address.is_global


def _literal(host: str) -> Address | None:
    """The address a numeric host denotes, in any spelling the C library accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))  # decimal, octal, short forms
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    address: str  # the checked address the connection goes to
    https: bool
    path: str  # path and query, percent-encoded


def _resolve(url: str, field: str, allow_private: bool, resolver: Resolver) -> _Target:
    """Where ``url`` leads, checked: its host resolved once, to a fetchable address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"{field} must be an http:// or https:// URL, got {url[:100]!r}", field=field
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInputError(f"{field}: the URL's port is not 1-65535", field=field) from None
    host = parts.hostname
    literal = _literal(host)
    if literal is not None:
        candidates: list[Address] = [literal]
    else:
        try:
            candidates = [ipaddress.ip_address(a) for a in resolver(host, port)]
        except (OSError, UnicodeError, ValueError):
            raise _refused(field) from None
    # Every answer must pass: a name may not mix a public address with a private one.
    if not candidates or not all(_allowed(a, allow_private) for a in candidates):
        raise _refused(field)
    # Non-ASCII paths (café.jpg) are sent percent-encoded, as a browser would.
    path = quote(parts.path or "/", safe=_URL_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_URL_SAFE)
    return _Target(host, port, str(_embedded_ipv4(candidates[0])), parts.scheme == "https", path)


def check_url(
    url: str, field: str, *, allow_private: bool = True, resolver: Resolver = system_resolver
) -> None:
    """Refuse anything but http(s) to a host whose addresses are all fetchable."""
    _resolve(url, field, allow_private, resolver)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # Handshake after self.sock is set, so the deadline's watchdog can cut a slow one.
        self.sock = self._tls.wrap_socket(
            raw, server_hostname=self.host, do_handshake_on_connect=False
        )
        self.sock.do_handshake()


def fetch_url(
    url: str, *, max_bytes: int, field: str, allow_private: bool = True,
    timeout: float = FETCH_TIMEOUT_S, resolver: Resolver = system_resolver,
) -> bytes:
    """The body of ``url`` (after redirects), at most ``max_bytes``, within ``timeout``."""
    deadline = time.monotonic() + timeout
    for _ in range(_MAX_REDIRECTS + 1):
        target = _resolve(url, field, allow_private, resolver)
        kind = _PinnedHTTPSConnection if target.https else _PinnedHTTPConnection
        conn = kind(target.host, target.port, target.address,
                    max(0.1, deadline - time.monotonic()))
        # Socket timeouts bound each read, not their sum: a server sending a byte every few
        # seconds (headers or body) is cut off at the deadline by this timer instead.
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (conn,))
        watchdog.start()
        try:
            conn.request(
                "GET", target.path, headers={"User-Agent": "pixdex", "Accept": "image/*"}
            )
            response = conn.getresponse()
            if response.status in _REDIRECTS and response.getheader("Location"):
                url = urljoin(url, quote(response.getheader("Location", ""), safe=_URL_SAFE))
                continue
            if response.status != 200:
                raise _refused(field)
            return _read_body(response, deadline, max_bytes, field, timeout)
        except (OSError, http.client.HTTPException, UnicodeError):
            if time.monotonic() >= deadline:
                raise _too_slow(field, timeout) from None
            raise _refused(field) from None
        finally:
            watchdog.cancel()
            conn.close()
    raise InvalidInputError(f"{field}: more than {_MAX_REDIRECTS} redirects", field=field)


def _cut(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock  # once: close() on the fetching thread may clear it meanwhile
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _too_slow(field: str, timeout: float) -> InvalidInputError:
    return InvalidInputError(
        f"{field}: the URL did not deliver the file within {timeout:.0f} s", field=field
    )


def _read_body(
    response: http.client.HTTPResponse, deadline: float, max_bytes: int, field: str,
    timeout: float,
) -> bytes:
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(
            f"{field}: the file is {int(declared):,} bytes, more than the limit of "
            f"{max_bytes:,} bytes", field=field,
        )
    chunks: list[bytes] = []
    size = 0
    # read1: whatever one receive brings, so the deadline is looked at between receives.
    while chunk := response.read1(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(
                f"{field}: the file is more than the limit of {max_bytes:,} bytes", field=field
            )
        chunks.append(chunk)
        if time.monotonic() >= deadline:
            raise _too_slow(field, timeout)
    if time.monotonic() >= deadline:  # the watchdog ended the stream
        raise _too_slow(field, timeout)
    if response.length:  # the connection closed before the declared length
        raise _refused(field)
    if not chunks:
        raise InvalidInputError(f"{field}: the URL returned an empty body", field=field)
    return b"".join(chunks)
