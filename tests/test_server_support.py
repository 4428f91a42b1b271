"""Fixtures and helpers for the HTTP API tests: one real server on loopback (the same app
Lambda runs, over real HTTP), real API keys in two workspaces, real photos, and a
loopback web server that hosts image files for the URL tests.

Other test modules import the fixtures from here.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageOps

from pixdex.app.service.keys import create_key
from pixdex.config import Settings
from pixdex.server import RunningServer, start


def jpeg(picture: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        payload: dict[str, Any] = self.json["error"]
        return payload


class Api:
    """Real HTTP calls to the server (a fresh connection each, like curl)."""

    def __init__(self, url: str, key: str | None) -> None:
        self.url = url
        self.key = key

    def as_key(self, key: str | None) -> Api:
        return Api(self.url, key)

    def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=300)
        sent = dict(headers or {})
        if self.key is not None:
            sent.setdefault("Authorization", f"Bearer {self.key}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         response.read())
        finally:
            conn.close()

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        reply = self.call(method, path, body, **kwargs)
        assert reply.status < 300, (reply.status, reply.body[:500])
        return reply.json


@dataclass(frozen=True)
class Keys:
    workspace_a: str
    workspace_b: str
    a: str
    b: str
    a_read: str


@pytest.fixture(scope="session")
def api_server(settings: Settings) -> Iterator[RunningServer]:
    server = start(settings)
    yield server
    server.stop()


def make_keys(settings: Settings, prefix: str) -> Keys:
    """Two fresh workspaces ``<prefix>-a-<pid>`` / ``-b-``: a write key for each, a read
    key for the first."""
    a, b = f"{prefix}-a-{os.getpid()}", f"{prefix}-b-{os.getpid()}"
    return Keys(
        workspace_a=a, workspace_b=b,
        a=create_key(settings, a).key,
        b=create_key(settings, b).key,
        a_read=create_key(settings, a, scope="read").key,
    )


@pytest.fixture(scope="session")
def api_keys(settings: Settings) -> Keys:
    return make_keys(settings, "ws")


@pytest.fixture(scope="session")
def api(api_server: RunningServer, api_keys: Keys) -> Api:
    return Api(api_server.url, api_keys.a)


@pytest.fixture(scope="session")
def api_b(api_server: RunningServer, api_keys: Keys) -> Api:
    return Api(api_server.url, api_keys.b)


@pytest.fixture(scope="session")
def image_files(
    tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Image.Image]
) -> dict[str, bytes]:
    """Real photos and edited copies, as file bytes, also written to a folder."""
    folder = tmp_path_factory.mktemp("api-images")
    files: dict[str, bytes] = {}
    for name in ("chelsea", "coffee", "rocket", "astronaut", "camera"):
        files[f"{name}.jpg"] = jpeg(photos[name])
    files["chelsea_flip.jpg"] = jpeg(ImageOps.mirror(photos["chelsea"]))
    files["coffee_flip.jpg"] = jpeg(ImageOps.mirror(photos["coffee"]))
    buffer = io.BytesIO()
    photos["coins"].save(buffer, "PNG")
    files["coins.png"] = buffer.getvalue()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path.removeprefix("/redirect/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


@dataclass
class FileHost:
    url: str
    root: Path


@pytest.fixture(scope="session")
def file_host(
    tmp_path_factory: pytest.TempPathFactory, image_files: dict[str, bytes]
) -> Iterator[FileHost]:
    """A real web server on loopback serving the photos (the URL tests never go online)."""
    root = tmp_path_factory.mktemp("web")
    for name, data in image_files.items():
        (root / name).write_bytes(data)
    (root / "page.html").write_text("<html>not an image</html>")
    (root / "big.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(2 * 1024 * 1024))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FileHost(f"http://127.0.0.1:{server.server_address[1]}", root)
    server.shutdown()
    server.server_close()


def new_dataset(api: Api, name: str) -> str:
    created = api.ok("POST", "/v1/datasets", {"name": name})
    return str(created["id"])


def add(api: Api, dataset_id: str, images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add images and wait for the server's background indexer to finish them."""
    reply = api.call("POST", f"/v1/datasets/{dataset_id}/images", {"images": images})
    assert reply.status == 202, (reply.status, reply.body[:500])
    return wait_indexed(api, reply.json["images"])


def wait_indexed(
    api: Api, added: list[dict[str, Any]], timeout: float = 120
) -> list[dict[str, Any]]:
    """``added`` (a 202 answer's images) once none is ``pending`` any more."""
    deadline = time.monotonic() + timeout
    result = [dict(a) for a in added]
    while any(a["status"] == "pending" for a in result):
        assert time.monotonic() < deadline, f"still pending after {timeout} s: {result}"
        time.sleep(0.1)
        for entry in result:
            if entry["status"] == "pending":
                now = api.ok("GET", f"/v1/images/{entry['id']}")
                entry.update(status=now["status"], error=now["error"])
    return result
