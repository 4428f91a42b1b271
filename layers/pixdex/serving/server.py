"""The inference server: the SageMaker container contract over the standard library.

* ``GET /ping``: 200 once the model is loaded and has run once, 503 before.
* ``POST /invocations``: the protocol of :mod:`.protocol`, served by :class:`.engine.Engine`.
* Port 8080 by default (SageMaker's), ``ThreadingHTTPServer`` (one thread per connection,
  HTTP/1.1 keep-alive), no web framework.

Request checks, in order, each before any more work is done: path (404), media type
``application/json`` (415), ``Content-Length`` present (411) and within the limit (413,
before reading the body), JSON (400), shape (422), then the engine's own limits (413 for
too many images, 409 for a model mismatch). Errors are ``{"error": {"code", "message",
"field"}}``; one bad image is reported in ``errors[i]`` of a 200 answer instead.

Run it with ``pixdex embedder serve`` or ``python -m pixdex.serving.server``.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import ValidationError

from pixdex.config import Settings, get_settings
from pixdex.embedder.errors import describe_json_error
from pixdex.embedder.protocol import ErrorBody, ErrorEnvelope, InvocationRequest
from pixdex.errors import PayloadTooLargeError, PixdexError
from pixdex.inference.base import ModelSpec
from pixdex.serving.engine import Engine

__all__ = ["EmbedderHTTPServer", "main", "make_server", "prepare", "running_server", "serve"]

log = logging.getLogger(__name__)

# An over-limit body is read and discarded up to this size so the client can read our 413
# (closing mid-upload makes it see a reset instead); anything larger is cut off.
_DRAIN_LIMIT = 64 * 1024 * 1024
_SOCKET_TIMEOUT_S = 120


class EmbedderHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], engine: Engine, *, max_request_bytes: int
    ) -> None:
        self.engine = engine
        self.max_request_bytes = max_request_bytes
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pixdex-embedder"
    timeout = _SOCKET_TIMEOUT_S
    server: EmbedderHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s - " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/ping":
            self._error(HTTPStatus.NOT_FOUND, "not_found", "only GET /ping and POST /invocations")
            return
        engine = self.server.engine
        if not engine.ready:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, "loading", "the model is still loading")
            return
        self._send(HTTPStatus.OK, json.dumps({"status": "ok", "model": engine.model.spec.name}))

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/invocations":
            self._refuse(HTTPStatus.NOT_FOUND, "not_found", "only GET /ping and POST /invocations")
            return
        media = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if media != "application/json":
            self._refuse(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media",
                f"send Content-Type: application/json (got {media or 'none'!r})",
            )
            return
        length = self._content_length()
        if length is None:
            return
        body = self.rfile.read(length)
        try:
            raw = json.loads(body)
        except json.JSONDecodeError as exc:
            self._error(HTTPStatus.BAD_REQUEST, "invalid_json", describe_json_error(exc))
            return
        except UnicodeDecodeError:
            self._error(HTTPStatus.BAD_REQUEST, "invalid_json", "request body is not UTF-8 JSON")
            return
        try:
            request = InvocationRequest.model_validate(raw)
        except ValidationError as exc:
            where, message = _first_error(exc)
            self._error(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", message, where)
            return
        try:
            response = self.server.engine.invoke(request)
        except PixdexError as exc:
            self._error(HTTPStatus(exc.http_status), exc.code, exc.message, exc.field)
            return
        except Exception:
            log.exception("invocation failed")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal", "the model server failed")
            return
        self._send(HTTPStatus.OK, response.model_dump_json())

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            self._refuse(
                HTTPStatus.LENGTH_REQUIRED, "length_required",
                "send the body with a Content-Length header (chunked uploads are not accepted)",
            )
            return None
        try:
            length = int(raw)
            if length < 0:
                raise ValueError(raw)
        except ValueError:
            self._refuse(HTTPStatus.BAD_REQUEST, "invalid_input", f"bad Content-Length {raw!r}")
            return None
        limit = self.server.max_request_bytes
        if length > limit:
            if length <= _DRAIN_LIMIT:
                self._drain(length)
            error = PayloadTooLargeError(
                f"request body is {length:,} bytes, more than the limit of {limit:,} bytes; "
                "send fewer images per request, or S3 references instead of bytes",
                field="images",
            )
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, error.code, error.message, "images")
            return None
        return length

    def _drain(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _refuse(
        self, status: HTTPStatus, code: str, message: str, field: str | None = None
    ) -> None:
        """An error sent without (fully) reading the body: the connection cannot be reused."""
        self.close_connection = True
        self._error(status, code, message, field)

    def _error(
        self, status: HTTPStatus, code: str, message: str, field: str | None = None
    ) -> None:
        envelope = ErrorEnvelope(error=ErrorBody(code=code, message=message, field=field))
        self._send(status, envelope.model_dump_json())

    def _send(self, status: HTTPStatus, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def _first_error(exc: ValidationError) -> tuple[str | None, str]:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err.get("loc", ())) or None
    message = str(err["msg"]).removeprefix("Value error, ")
    return where, f"{where}: {message}" if where else message


def make_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    engine: Engine | None = None,
    max_request_bytes: int | None = None,
    max_images: int | None = None,
) -> EmbedderHTTPServer:
    """Bind (port 0: any free port) without loading the model yet."""
    engine = engine or Engine(settings, max_images=max_images)
    limit = max_request_bytes or settings.max_request_bytes
    return EmbedderHTTPServer((host, port), engine, max_request_bytes=limit)


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    max_request_bytes: int | None = None,
    max_images: int | None = None,
) -> None:
    """Serve until interrupted; the model loads in the background while /ping says 503."""
    server = make_server(
        settings, host, port, max_request_bytes=max_request_bytes, max_images=max_images
    )
    loader = threading.Thread(target=server.engine.warm_up, name="pixdex-model-load")
    loader.start()
    log.info("pixdex embedder listening on %s", server.url)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        server.engine.close()


@contextmanager
def running_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_request_bytes: int | None = None,
    max_images: int | None = None,
) -> Iterator[EmbedderHTTPServer]:
    """A warmed-up server on a background thread (tests, benchmarks); stopped on exit."""
    server = make_server(
        settings, host, port, max_request_bytes=max_request_bytes, max_images=max_images
    )
    server.engine.warm_up()
    thread = threading.Thread(target=server.serve_forever, name="pixdex-embedder", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        server.engine.close()


def prepare(settings: Settings) -> ModelSpec:
    """Build (or load) the model and run it once, then exit: e.g. at image build time."""
    engine = Engine(settings)
    try:
        engine.warm_up()
    finally:
        engine.close()
    return engine.model.spec


def main(argv: list[str] | None = None) -> None:
    """The container's entry point (``serve``): all interfaces, port 8080."""
    parser = argparse.ArgumentParser(prog="python -m pixdex.serving.server")
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 (container entry point)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--prepare", action="store_true", help="build the model and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings().model_copy(update={"embedder": "local"})
    if args.prepare:
        spec = prepare(settings)
        print(json.dumps({"model": spec.name, "dim": spec.dim, "ready": True}))
        return
    serve(settings, args.host, args.port)


if __name__ == "__main__":
    main()
