"""HTTP for the client: one kept-alive connection per thread, JSON and multipart bodies,
and error answers turned into :class:`ApiError`."""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from pixdex.errors import InvalidInputError, PixdexError


class ApiError(PixdexError):
    """An error answer of the API: its status, stable code, message and field."""

    def __init__(self, status: int, code: str, message: str, field: str | None) -> None:
        super().__init__(message, field=field)
        self.http_status = status
        self.code = code

    def __str__(self) -> str:
        where = f" ({self.field})" if self.field else ""
        return f"HTTP {self.http_status} {self.code}{where}: {self.message}"


def multipart(
    fields: Mapping[str, str], files: Sequence[tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """Encode form fields and ``(field, filename, bytes)`` files as multipart/form-data."""
    boundary = f"pixdex-{secrets.token_hex(16)}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode("utf-8") + b"\r\n"
        )
    for name, filename, data in files:
        safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{safe}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Transport:
    def __init__(self, url: str, api_key: str | None, timeout: float) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(f"url must be http(s)://host[:port], got {url!r}", field="url")
        self._parts = parts
        self._base = parts.path
        self._api_key = api_key
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            cls = (http.client.HTTPSConnection if self._parts.scheme == "https"
                   else http.client.HTTPConnection)
            conn = cls(self._parts.hostname or "", self._parts.port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def request(
        self, method: str, path: str, *, json_body: Any = None, query: Mapping[str, Any] | None
        = None, body: bytes | None = None, content_type: str | None = None,
    ) -> tuple[int, str, bytes]:
        """Send and return ``(status, content type, body)``; ``ApiError`` for errors."""
        target = self._base + path
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt == 1)
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive connection the server had closed: retry once on a new one.
                if attempt == 1:
                    raise
        status = response.status
        kind = response.getheader("Content-Type") or ""
        location = response.getheader("Location")
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            self._local.conn = None
        if status >= 400:
            raise _error(status, kind, data)
        if status in _REDIRECTS and location and method == "GET":
            return self._download(location)
        return status, kind, data

    def _download(self, url: str) -> tuple[int, str, bytes]:
        """A presigned link (a file in S3): fetched without our key, which it does not need
        and which S3 would refuse next to the link's own signature."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise ApiError(502, "bad_redirect", f"the server redirected to {url!r}", None)
        request = urllib.request.Request(url, method="GET")  # noqa: S310 (scheme checked)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:  # noqa: S310
                return answer.status, answer.headers.get("Content-Type", ""), answer.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, "download_failed", f"GET {url}: {exc.reason}", None) from exc

    def put_file(self, url: str, headers: Mapping[str, str], path: Path) -> None:
        """PUT a file to an upload slot's URL (S3's or the local server's), streamed from
        disk, without our key: the URL carries its own signature."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise ApiError(502, "bad_upload_url", f"the server gave the upload URL {url!r}", None)
        # Without a type urllib would call the bytes a form, and S3 would store that type.
        sent = {"Content-Type": "application/octet-stream", **headers}
        with path.open("rb") as handle:
            request = urllib.request.Request(  # noqa: S310 (scheme checked)
                url, data=handle, method="PUT", headers=sent
            )
            try:
                with urllib.request.urlopen(request, timeout=self._timeout):  # noqa: S310
                    return
            except urllib.error.HTTPError as exc:
                error = _error(exc.code, exc.headers.get("Content-Type", ""), exc.read())
                raise ApiError(exc.code, error.code, f"PUT {path.name}: {error.message}",
                               error.field) from exc

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        _, _, data = self.request(method, path, **kwargs)
        return json.loads(data)


def _error(status: int, kind: str, data: bytes) -> ApiError:
    if kind.startswith("application/json"):
        try:
            detail = json.loads(data)["error"]
            field = detail.get("field")
            return ApiError(status, str(detail["code"]), str(detail["message"]), field)
        except (ValueError, KeyError, TypeError):
            pass
    return ApiError(status, "http_error", data[:500].decode("utf-8", "replace"), None)
