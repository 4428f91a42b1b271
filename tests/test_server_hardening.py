"""Security hardening (issue 14): requests another web page can make the browser send (to
a keyless local server under a rebound DNS name, cross-site POSTs, "simple" text/plain
bodies), keys kept out of the access log, and database errors that name no host."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from pixdex.app.service import blobs
from pixdex.config import Settings
from pixdex.server import RunningServer, start
from tests.test_server_support import Api, FileHost, Keys, b64, new_dataset

pytest_plugins = ["tests.test_server_support"]
PIXDEX = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", ".venv", "bin", "pixdex")


@pytest.fixture(scope="module")
def keyless(settings: Settings) -> Iterator[RunningServer]:
    server = start(settings.model_copy(update={"require_api_keys": False}))
    yield server
    server.stop()


def test_a_keyless_server_answers_only_loopback_host_names(keyless: RunningServer) -> None:
    api = Api(keyless.url, None)
    port = urlsplit(keyless.url).port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert api.call("GET", "/v1/datasets", headers={"Host": host}).status == 200, host
    for host in (f"rebind.attacker.example:{port}", "192.168.1.20", "evil.localhost.example"):
        refused = api.call("GET", "/v1/datasets", headers={"Host": host})
        assert (refused.status, refused.error["field"]) == (403, "host"), host
        assert "localhost" in refused.error["message"]


def test_cross_site_state_changes_are_refused(api: Api) -> None:
    name = f"xsite-{uuid.uuid4().hex[:8]}"
    evil = api.call("POST", "/v1/datasets", {"name": name},
                    headers={"Origin": "https://attacker.example"})
    assert (evil.status, evil.error["field"]) == (403, "origin")
    assert name not in {d["name"] for d in api.ok("GET", "/v1/datasets")["datasets"]}
    own = urlsplit(api.url).netloc
    assert api.call("POST", "/v1/datasets", {"name": name},
                    headers={"Origin": f"http://{own}"}).status == 201


def test_simple_request_bodies_are_refused(api: Api, keyless: RunningServer) -> None:
    """A page elsewhere may POST text/plain (or a Blob without a type) with no preflight."""
    for server in (api, Api(keyless.url, None)):
        for kind in ("text/plain", None):
            headers = {"Content-Type": kind} if kind else {}
            reply = server.call("POST", "/v1/search", raw=b'{"tag": "cat"}', headers=headers)
            assert (reply.status, reply.error["field"]) == (415, "content-type"), kind
        assert server.call("POST", "/v1/search", {"tag": "cat"}).status == 200


def test_keyless_mode_refuses_to_serve_beyond_loopback(cli_env: dict[str, str]) -> None:
    for extra, env in (
        (["--no-auth"], cli_env),
        ([], {**cli_env, "PIXDEX_REQUIRE_API_KEYS": "false"}),
    ):
        result = subprocess.run([PIXDEX, "serve", *extra, "--host", "0.0.0.0", "--port", "8799"],
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (extra, result.stdout, result.stderr)
        assert "only on 127.0.0.1" in result.stderr


def test_the_access_log_masks_keys_in_query_strings(
    settings: Settings, api_keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    server = start(settings, access_log=True)
    try:
        with caplog.at_level(logging.INFO, logger="pixdex.server"):
            reply = Api(server.url, None).call("GET", f"/v1/datasets?api_key={api_keys.a}")
    finally:
        server.stop()
    assert reply.status == 200  # the key in the query string still works
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "api_key=***" in logged and api_keys.a not in logged


def test_an_unreachable_database_answers_503_without_its_details(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Settings(
        home=tmp_path, require_api_keys=False,
        database_url=SecretStr("postgresql://pixdex_owner:hunter2@127.0.0.1:1/secretdb"),
    )
    server = start(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="pixdex.api"):
            reply = Api(server.url, None).call("GET", "/v1/datasets")
    finally:
        server.stop()
    assert (reply.status, reply.error["code"]) == (503, "database_unavailable")
    assert reply.headers["retry-after"] == "5"
    for secret in (b"127.0.0.1", b"pixdex_owner", b"hunter2", b"secretdb", b"port"):
        assert secret not in reply.body, secret
    assert "127.0.0.1" in caplog.text  # the operator still sees why


def test_urls_of_one_call_fetch_within_a_budget_and_a_refused_call_leaves_nothing(
    settings: Settings, api_keys: Keys, file_host: FileHost, image_files: dict[str, bytes]
) -> None:
    """Issue 14: 128 URLs x 64 MiB were held in memory before anything was stored. Now
    each image is stored as it arrives, the call's URLs may fetch a bounded total, and a
    call refused half-way deletes what it had stored."""
    budget = 3 * 1024 * 1024
    server = start(settings.model_copy(update={"max_fetch_bytes_per_request": budget}))
    try:
        api = Api(server.url, api_keys.a)
        dataset = new_dataset(api, f"budget-{uuid.uuid4().hex[:8]}")
        big = f"{file_host.url}/big.jpg"  # 2 MiB: the second one passes the budget
        body = {"images": [{"base64": b64(image_files["coffee.jpg"]), "name": "first.jpg"},
                           {"url": big, "name": "a.jpg"}, {"url": big, "name": "b.jpg"}]}
        refused = api.call("POST", f"/v1/datasets/{dataset}/images", body)
        assert (refused.status, refused.error["field"]) == (413, "images.2.url")
        assert "at most 3,145,728 bytes in all" in refused.error["message"]
        stored = Path(urlsplit(blobs.ref(settings, f"uploads/{dataset}").uri).path)
        assert not stored.exists() or not [p for p in stored.rglob("*") if p.is_file()]
        assert api.ok("GET", f"/v1/datasets/{dataset}")["images"]["total"] == 0
        one = api.call("POST", f"/v1/datasets/{dataset}/images", {"images": body["images"][:2]})
        assert one.status == 202, one.body[:300]
    finally:
        server.stop()


def _raw_request(url: str, head: bytes, timeout: float = 10) -> bytes:
    """Send ``head`` (request line and headers, no body) and read the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
        conn.sendall(head)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def test_a_large_body_without_a_valid_key_is_refused_before_it_is_read(api: Api) -> None:
    """The client declares 30 MiB and sends none of it: the answer comes at once."""
    host = urlsplit(api.url).netloc
    for auth in (b"", b"Authorization: Bearer pdx_nosuchkey_0000\r\n"):
        head = (b"POST /v1/search HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + auth
                + b"Content-Type: application/json\r\nContent-Length: 31457280\r\n\r\n")
        answer = _raw_request(api.url, head)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"API key" in answer
    # A valid key still has its (small) body read and answered as before.
    assert api.call("POST", "/v1/search", {"tag": "cat"}).status == 200


def test_connections_beyond_the_cap_are_answered_503_at_once(settings: Settings) -> None:
    server = start(settings.model_copy(update={"max_connections": 2}))
    parts = urlsplit(server.url)
    held = [socket.create_connection((parts.hostname, parts.port)) for _ in range(2)]
    try:
        time.sleep(0.2)  # both accepted and waiting on their request line
        busy = _raw_request(server.url, b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert busy.startswith(b"HTTP/1.1 503"), busy[:200]
        assert b"Retry-After: 1" in busy
        held.pop().close()
        time.sleep(0.2)
        health = _raw_request(
            server.url, b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        assert health.startswith(b"HTTP/1.1 200"), health[:200]
    finally:
        for conn in held:
            conn.close()
        server.stop()


def test_each_key_has_a_request_quota(settings: Settings, api_keys: Keys) -> None:
    limited = settings.model_copy(update={"key_requests_per_second": 0.5, "key_burst": 3})
    server = start(limited)
    try:
        first, second = Api(server.url, api_keys.a), Api(server.url, api_keys.b)
        assert [first.call("GET", "/v1/datasets").status for _ in range(3)] == [200] * 3
        refused = first.call("GET", "/v1/datasets")
        assert (refused.status, refused.error["code"]) == (429, "rate_limited")
        assert refused.headers["retry-after"] == "2"
        assert "0.5 requests a second" in refused.error["message"]
        assert second.call("GET", "/v1/datasets").status == 200  # another key's own bucket
    finally:
        server.stop()
