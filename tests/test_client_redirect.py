"""``Client.image_file`` when the server answers with a presigned link (files in S3): real
HTTP on loopback, the API and the "bucket" as two servers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

import pixdex
from pixdex.client import ApiError

FILE = b"\xff\xd8\xff original bytes"


class _Bucket(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(FILE)))
        self.end_headers()
        self.wfile.write(FILE)

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers() -> Iterator[tuple[str, list[dict[str, str]]]]:
    bucket = _serve(_Bucket)
    link = f"http://127.0.0.1:{bucket.server_address[1]}/b/k.jpg?X-Amz-Signature=abc"

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            target = link if self.path.endswith("/good/file") else "file:///etc/passwd"
            self.send_response(307)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    api = _serve(Api)
    _Bucket.seen = []
    yield f"http://127.0.0.1:{api.server_address[1]}", _Bucket.seen
    for server in (api, bucket):
        server.shutdown()
        server.server_close()


def test_the_link_is_followed_without_sending_the_api_key(
    servers: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = servers
    client = pixdex.Client(url, "pdx_secret_key")
    assert client.image_file("good") == FILE
    assert len(seen) == 1
    assert "Authorization" not in seen[0] and "pdx_secret_key" not in str(seen[0])


def test_a_redirect_to_anything_but_http_is_refused(
    servers: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = servers
    with pytest.raises(ApiError, match="redirected"):
        pixdex.Client(url, "pdx_secret_key").image_file("evil")
    assert seen == []
