"""Fetching images by URL without reaching inside (server-side request forgery): real
HTTP on loopback, and a resolver the test controls (no DNS, no traffic off the machine)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from pixdex.app.service.fetch import check_url, fetch_url
from pixdex.errors import InvalidInputError, PayloadTooLargeError

IMAGE = b"\x89PNG fake image bytes"


class _Site(BaseHTTPRequestHandler):
    hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hosts.append(self.headers.get("Host", ""))
        if self.path == "/redirect-inside":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
            return
        if self.path == "/slow-headers":  # the status line, then a header byte at a time
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Slow: " + b"y" * 1000:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
            return
        if self.path == "/missing" or (self.path.endswith(".jpg") and "%" not in self.path
                                        and "caf" in self.path):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(IMAGE)))
        self.end_headers()
        self.wfile.write(IMAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _resolver(*answers: list[str]) -> tuple[list[str], object]:
    """Answers in turn, one list per lookup (a rebinding name answers differently)."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked), len(answers)) - 1]

    return asked, resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:169.254.169.254]/latest/meta-data/",  # IPv4-mapped IPv6
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
        "http://[2002:a9fe:a9fe::1]/",  # 6to4
        "http://2852039166/",  # decimal
        "http://0251.0376.0251.0376/",  # octal
        "http://169.254.43518/",  # short form
        "http://[fe80::1]/", "http://0.0.0.0/", "http://224.0.0.1/", "http://240.0.0.1/",
    ],
)
def test_link_local_and_special_addresses_in_any_spelling_are_refused(url: str) -> None:
    for allow_private in (True, False):
        with pytest.raises(InvalidInputError, match="may not be fetched"):
            check_url(url, "url", allow_private=allow_private)


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3/", "http://[::ffff:10.1.2.3]/", "http://0x7f.1/", "http://[::1]/",
            "http://100.64.0.1/", "http://192.168.0.1/"],
)
def test_without_private_fetching_only_global_addresses_pass(url: str) -> None:
    with pytest.raises(InvalidInputError, match="may not be fetched"):
        check_url(url, "url", allow_private=False)


def test_a_name_with_one_private_answer_among_public_ones_is_refused() -> None:
    _, resolve = _resolver(["93.184.215.14", "10.0.0.7"])
    with pytest.raises(InvalidInputError):
        check_url("http://mixed.example/", "url", allow_private=False, resolver=resolve)


def test_the_connection_goes_to_the_address_that_was_checked(site: int) -> None:
    """A rebinding name: the check's answer is where the bytes come from; the name is
    resolved once per hop, never again by the HTTP library."""
    asked, resolve = _resolver(["127.0.0.1"], ["127.0.0.2"])
    data = fetch_url(
        f"http://rebind.example:{site}/a.png", max_bytes=1024, field="url", resolver=resolve
    )
    assert data == IMAGE
    assert asked == ["rebind.example"]
    assert _Site.hosts[-1] == f"rebind.example:{site}"  # virtual hosting still works


def test_every_redirect_hop_is_checked(site: int) -> None:
    _, resolve = _resolver(["127.0.0.1"])
    with pytest.raises(InvalidInputError, match="may not be fetched"):
        fetch_url(f"http://files.example:{site}/redirect-inside", max_bytes=1024,
                  field="url", resolver=resolve)


def test_failures_do_not_tell_what_is_behind_the_url(site: int) -> None:
    _, resolve = _resolver(["127.0.0.1"])
    messages = []
    for url in (f"http://files.example:{site}/missing", "http://files.example:1/closed",
                "http://10.9.9.9/", "http://[::ffff:169.254.169.254]/"):
        with pytest.raises(InvalidInputError) as caught:
            fetch_url(url, max_bytes=1024, field="url", resolver=resolve,
                      allow_private="10.9" not in url)
        messages.append(caught.value.message)
    assert len(set(messages)) == 1, messages  # 404, refused port, private, metadata: alike
    assert not any(s in messages[0] for s in ("404", "refused", "10.9", "169.254"))


@pytest.mark.parametrize("path", ["/drip", "/slow-headers"])
def test_a_dripping_server_is_cut_off_at_the_deadline(site: int, path: str) -> None:
    """A byte every 0.2 s never trips a per-read timeout: only the whole-fetch deadline
    (the watchdog, for headers) ends it."""
    _, resolve = _resolver(["127.0.0.1"])
    started = time.monotonic()
    with pytest.raises(InvalidInputError, match="did not deliver the file within 2 s"):
        fetch_url(f"http://slow.example:{site}{path}", max_bytes=10_000, field="url",
                  resolver=resolve, timeout=1.5)
    assert time.monotonic() - started < 4


def test_urls_with_odd_parts_get_answers_not_crashes(site: int) -> None:
    _, resolve = _resolver(["127.0.0.1"])
    # A non-ASCII path goes out percent-encoded (the server sees /caf%C3%A9.jpg).
    assert fetch_url(f"http://files.example:{site}/café.jpg", max_bytes=1024, field="url",
                     resolver=resolve) == IMAGE
    with pytest.raises(InvalidInputError, match="port"):
        fetch_url("http://1.2.3.4:99999/x.jpg", max_bytes=1024, field="url", resolver=resolve)


def test_the_byte_limit_holds(site: int) -> None:
    _, resolve = _resolver(["127.0.0.1"])
    with pytest.raises(PayloadTooLargeError):
        fetch_url(f"http://files.example:{site}/a.png", max_bytes=4, field="url",
                  resolver=resolve)
