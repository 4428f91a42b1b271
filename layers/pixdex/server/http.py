"""A threaded HTTP/1.1 server on the standard library that hands every request to the API
app as an API Gateway v2 event (:mod:`pixdex.server.events`).

The body size limit (``settings.max_request_bytes``) is checked from ``Content-Length``
before the body is read: a larger request is answered 413 at once (after
``Expect: 100-continue``, before the client sends anything). Chunked bodies are read
until they pass the limit. A refused body is drained (up to 64 MiB, then the
connection is closed) so that ordinary clients read the 413 rather than a reset.

A body over 64 KiB is read only after its API key has been checked (from the headers or the
query string): an anonymous client cannot make the server read 32 MiB. At most
``settings.max_connections`` connections are served at once, each on its own thread; the
next one is answered 503 at once and closed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pixdex.api import deps
from pixdex.api.guard import api_key_from
from pixdex.app.service import slots
from pixdex.app.service.keys import authenticate
from pixdex.blobs.base import ByteSource
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, PixdexError
from pixdex.server.events import build_event, response_parts

log = logging.getLogger("pixdex.server")
_DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
# Bodies up to this size are read before the API app checks the key (one key lookup per
# request); larger ones only after an early check of their own.
_EARLY_AUTH_BYTES = 64 * 1024


class _RefusedError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, drain: int = 0, field: str = "body"
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.drain = status, code, message, drain
        self.field = field


# Capabilities in query strings (an upload URL's signature, a key some clients put in the
# URL) must not end up in the access log.
_SECRET_QUERY = re.compile(r"((?:signature|api_key|X-Amz-Signature|X-Amz-Credential)=)[^&\s]+",
                           re.IGNORECASE)
_UPLOAD_PATH = "/v1/uploads/"


class LambdaContext:
    """The bits of a Lambda context object anything might read."""

    function_name = "pixdex-api-local"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:pixdex-api-local"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


class _CountingReader:
    """The request body as the upload reads it, counting what was consumed (an error
    answer must drain only the rest)."""

    def __init__(self, source: ByteSource) -> None:
        self._source, self.count = source, 0

    def read(self, size: int, /) -> bytes:
        chunk = self._source.read(size)
        self.count += len(chunk)
        return chunk


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pixdex"
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    # Headers and body go out in separate writes: with Nagle's algorithm on, the body
    # would wait for the client's delayed ACK (40 ms on Linux) on every response.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            log.info("%s %s", self.address_string(), _SECRET_QUERY.sub(r"\1***", format % args))

    def handle_expect_100(self) -> bool:
        if self.path.startswith(_UPLOAD_PATH):
            return super().handle_expect_100()  # an upload slot's own size rules apply
        try:
            self._check_key_before_body(self._declared_length())
        except _RefusedError as refused:
            self._refuse(refused, close=True)
            return False
        return super().handle_expect_100()

    def _check_key_before_body(self, length: int | None) -> None:
        """A large (or chunked) body from a caller without a valid key is never read."""
        settings = self.server.settings
        if not settings.require_api_keys or (length is not None and length <= _EARLY_AUTH_BYTES):
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        try:
            authenticate(settings, api_key_from(headers, query))
        except PixdexError as exc:
            if exc.http_status >= 500:
                log.error("early key check: %s: %s", exc.code, exc.message)
            message = exc.message if exc.http_status < 500 else "the service is unavailable"
            raise _RefusedError(
                exc.http_status, exc.code, message, field=exc.field or "authorization"
            ) from None

    def _declared_length(self) -> int | None:
        """Content-Length, refused (413) when over the limit; None for chunked bodies."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        if not raw.strip().isdigit():
            raise _RefusedError(400, "bad_request", f"invalid Content-Length {raw!r}")
        length = int(raw)
        limit = self.server.settings.max_request_bytes
        if length > limit:
            raise _RefusedError(
                413, "payload_too_large",
                f"request body is {length:,} bytes; the limit is {limit:,} "
                "(send fewer or smaller images per call)", drain=length,
            )
        return length

    def _read_chunked(self) -> bytes:
        limit = self.server.settings.max_request_bytes
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                chunk = int(line, 16)
            except ValueError:
                raise _RefusedError(400, "bad_request", "malformed chunked body") from None
            if chunk == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            size += chunk
            if size > limit:
                raise _RefusedError(413, "payload_too_large",
                               f"request body is more than the limit of {limit:,} bytes")
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(8)

    def _refuse(self, refused: _RefusedError, *, close: bool = False) -> None:
        body = json.dumps(
            {"error": {"code": refused.code, "message": refused.message,
                       "field": refused.field}}
        ).encode()
        remaining = refused.drain if refused.drain <= _DRAIN_LIMIT and not close else 0
        while remaining > 0:
            got = self.rfile.read(min(_CHUNK, remaining))
            if not got:
                break
            remaining -= len(got)
        self.close_connection = True
        self.send_response(refused.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _receive_upload(self) -> None:
        """``PUT /v1/uploads/{id}?...``: an upload slot's file, streamed to the blob folder
        (never through the API app: its body would be held, and base64'd, in memory)."""
        parts = urlsplit(self.path)
        raw = self.headers.get("Content-Length")
        length = int(raw) if raw is not None and raw.strip().isdigit() else None
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body = _CountingReader(self.rfile)
        try:
            added = slots.receive_local(
                self.server.settings, parts.path.removeprefix(_UPLOAD_PATH), query, length,
                body,
            )
        except PixdexError as exc:
            if exc.http_status >= 500:
                log.error("upload: %s: %s", exc.code, exc.message)
            unread = max(0, (length or 0) - body.count)
            self._refuse(_RefusedError(exc.http_status, exc.code, exc.message,
                                       drain=unread, field=exc.field or "body"))
            return
        payload = added.model_dump_json().encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self) -> None:
        if self.command == "PUT" and self.path.startswith(_UPLOAD_PATH):
            self._receive_upload()
            return
        try:
            length = self._declared_length()
        except _RefusedError as refused:
            self._refuse(refused)
            return
        try:
            self._check_key_before_body(length)
            body = self._read_chunked() if length is None else self.rfile.read(length)
        except _RefusedError as refused:
            self._refuse(refused, close=True)
            return
        event = build_event(
            self.command, self.path, self.headers.items(), body, self.client_address[0]
        )
        with deps.serving(self.server.settings):
            result = self.server.resolve(
                event, LambdaContext(event["requestContext"]["requestId"])
            )
        status, headers, payload = response_parts(result)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    # http.server dispatches on these names.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle  # noqa: N815


_BUSY_BODY = json.dumps({"error": {
    "code": "unavailable", "field": None,
    "message": "the server is serving as many connections as it allows; retry shortly",
}}).encode()
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n"
    + f"Content-Length: {len(_BUSY_BODY)}\r\n\r\n".encode() + _BUSY_BODY
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], settings: Settings, access_log: bool) -> None:
        from pixdex.api.app import handler

        self.settings = settings
        self.access_log = access_log
        self.resolve = handler
        self._connections = threading.BoundedSemaphore(settings.max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request is routine, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


@dataclass
class RunningServer:
    """A server started in a background thread (tests, benchmarks, ``demo --serve``)."""

    url: str
    server: _Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start(
    settings: Settings, host: str = "127.0.0.1", port: int = 0, *, access_log: bool = False
) -> RunningServer:
    server = _Server((host, port), settings, access_log)
    thread = threading.Thread(target=server.serve_forever, name="pixdex-http", daemon=True)
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    return RunningServer(f"http://{bound_host!s}:{bound_port}", server, thread)


def serve(
    settings: Settings, host: str = "127.0.0.1", port: int = 8080, *, access_log: bool = True,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C); ``on_ready(url)`` once the port is bound."""
    try:
        server = _Server((host, port), settings, access_log)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port",
            field="port",
        ) from None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (docker stop, systemd, kill) ends it as cleanly as Ctrl-C: the process
        # then exits normally and the embedded PostgreSQL is stopped if it was the last user.
        signal.signal(signal.SIGTERM, _interrupt)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background
            signal.signal(signal.SIGINT, _interrupt)
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{server.server_address[1]}")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
