"""The real parts standing in for AWS services: moto in server mode (S3, SQS, Secrets
Manager), ``pixdex embedder serve`` as the GPU endpoint, and a SageMaker runtime front
for it (the ``InvokeEndpoint`` HTTP API, relaying the container's answer as SageMaker
does, ``ModelError`` included)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def _notify_delete_markers() -> None:
    """S3 sends ``ObjectRemoved:DeleteMarkerCreated`` when a DELETE in a versioned bucket
    creates a delete marker; moto 5 creates the marker without any notification. This
    patch (moto runs in this process) adds the event, so the stack's versioned bucket can be
    twinned as it is. The object in the event is the version the marker hides, as in S3."""
    from moto.s3 import models, notifications

    original = models.S3Backend._set_delete_marker
    if getattr(original, "twin_notifies", False):
        return

    def set_delete_marker(self: Any, bucket_name: str, key_name: str) -> Any:
        bucket = self.get_bucket(bucket_name)
        hidden = bucket.keys.get(key_name)
        marker = original(self, bucket_name, key_name)
        if hidden is not None and not isinstance(hidden, models.FakeDeleteMarker):
            event = notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT
            notifications.send_event(self.account_id, event, bucket, hidden)
        return marker

    set_delete_marker.twin_notifies = True  # type: ignore[attr-defined]
    models.S3Backend._set_delete_marker = set_delete_marker  # type: ignore[method-assign]


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's HTTP server on loopback: every AWS call of the twin goes over real HTTP."""
    _notify_delete_markers()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass
class EmbedderProcess:
    """``pixdex embedder serve`` in its own process, which a fault test may stop and start."""

    home: Path
    environment: dict[str, str]
    log_file: Path
    port: int = 0
    _process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = self.port or free_port()
        pixdex = Path(sys.executable).with_name("pixdex")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PIXDEX_")},
            **self.environment,
            "PIXDEX_HOME": str(self.home),
        }
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [str(pixdex), "embedder", "serve", "--port", str(self.port)],
                stdout=log,
                stderr=log,
                env=env,
            )
        wait_until(self._ready, 180, "the embedder")

    def _ready(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"the embedder exited; see {self.log_file}")
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(30)
            self._process = None


class SageMakerRuntime(ThreadingHTTPServer):
    """``POST /endpoints/{name}/invocations`` relayed to the container's ``/invocations``.

    Like SageMaker: a container answer other than 200 becomes ``424 ModelError`` with
    ``OriginalStatusCode`` / ``OriginalMessage``; an unreachable container a 5xx.
    """

    def __init__(self, endpoint_name: str, container_url: str) -> None:
        self.endpoint_name = endpoint_name
        self.container_url = container_url
        self.invocations = 0
        super().__init__(("127.0.0.1", 0), _SageMakerHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _SageMakerHandler(BaseHTTPRequestHandler):
    server: SageMakerRuntime

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, **extra: Any) -> None:
        body = json.dumps({"__type": code, "message": message, **extra}).encode()
        self._answer(status, body, "application/x-amz-json-1.1", **{"x-amzn-ErrorType": code})

    def do_POST(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if len(parts) != 3 or parts[0] != "endpoints" or parts[2] != "invocations":
            self._error(404, "UnknownOperationException", f"no operation at {self.path}")
            return
        if parts[1] != self.server.endpoint_name:
            self._error(400, "ValidationError", f"Endpoint {parts[1]} not found.")
            return
        if length > 6 * 1024 * 1024:  # InvokeEndpoint's payload limit
            self._error(413, "ValidationError", "Request payload exceeds 6 MB")
            return
        self.server.invocations += 1
        request = urllib.request.Request(
            f"{self.server.container_url}/invocations",
            data=body,
            headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                self._answer(
                    200,
                    answer.read(),
                    answer.headers.get("Content-Type", "application/json"),
                    **{"x-Amzn-Invoked-Production-Variant": "AllTraffic"},
                )
        except urllib.error.HTTPError as exc:
            self._error(
                424,
                "ModelError",
                f"Received client error ({exc.code}) from primary",
                OriginalStatusCode=exc.code,
                OriginalMessage=exc.read().decode("utf-8", "replace"),
            )
        except (urllib.error.URLError, OSError) as exc:
            self._error(503, "ServiceUnavailable", f"the model container is unreachable: {exc}")


@contextmanager
def sagemaker_runtime(endpoint_name: str, container_url: str) -> Iterator[SageMakerRuntime]:
    server = SageMakerRuntime(endpoint_name, container_url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

