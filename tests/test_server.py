"""The local host: API Gateway v2 events built faithfully, limits enforced before the body
is read, concurrent requests kept apart, and the Lambda handler answering the same app."""

from __future__ import annotations

import base64
import importlib.util
import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pixdex.api import deps
from pixdex.server.events import build_event, response_parts
from pixdex.server.http import RunningServer
from tests.test_server_support import Api, Keys, add, b64, new_dataset

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.test_server_support"]


def test_event_is_api_gateway_v2() -> None:
    event = build_event(
        "post", "/v1/search?a=1&a=2&b=x%20y&api_key=k",
        [("Content-Type", "application/json"), ("X-Thing", "1"), ("x-thing", "2"),
         ("Cookie", "s=1; t=2")],
        b'{"limit": 5}', "127.0.0.9",
    )
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/v1/search"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y&api_key=k"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y", "api_key": "k"}
    assert event["headers"] == {"content-type": "application/json", "x-thing": "1,2"}
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["requestContext"]["http"] == {
        "method": "POST", "path": "/v1/search", "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.9", "userAgent": "",
    }
    assert event["body"] == '{"limit": 5}' and event["isBase64Encoded"] is False

    binary = b"--b\r\n\xff\xd8\xff\x00 image bytes\r\n--b--\r\n"
    upload = build_event("POST", "/x", [("Content-Type", "multipart/form-data; boundary=b")],
                         binary, "::1")
    assert upload["isBase64Encoded"] is True and base64.b64decode(upload["body"]) == binary
    latin = build_event("POST", "/x", [("Content-Type", "application/json")], b"\xff", "::1")
    assert latin["isBase64Encoded"] is True
    empty = build_event("GET", "/", [], b"", "::1")
    assert "body" not in empty and "queryStringParameters" not in empty

    status, headers, body = response_parts({
        "statusCode": 201, "headers": {"Content-Type": "image/jpeg"}, "cookies": ["a=b"],
        "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True,
    })
    assert (status, body) == (201, b"\x00\x01")
    assert ("Set-Cookie", "a=b") in headers


def _raw(server: RunningServer, request: bytes, *, read_until_close: bool = True) -> bytes:
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close and b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def test_body_limit_is_enforced_before_the_body_is_read(api_server: RunningServer,
                                                        api_keys: Keys) -> None:
    auth = f"Authorization: Bearer {api_keys.a}\r\n".encode()
    # 100 MB announced, nothing sent: the answer comes at once, from the headers alone.
    started = time.monotonic()
    answer = _raw(api_server, b"POST /v1/search HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"payload_too_large"' in answer and time.monotonic() - started < 5
    # Expect: 100-continue: refused before the client sends a byte of the body.
    answer = _raw(api_server, b"POST /v1/search HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413") and b"100 Continue" not in answer
    bad_length = _raw(api_server, b"POST /v1/search HTTP/1.1\r\nHost: x\r\n" + auth +
                      b"Content-Length: lots\r\n\r\n")
    assert bad_length.startswith(b"HTTP/1.1 400")
    # Chunked bodies are read up to the limit.
    body = b'{"limit": 1}'
    chunked = (b"POST /v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth +
               b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
               f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    assert _raw(api_server, chunked).startswith(b"HTTP/1.1 200")
    endless = (b"POST /v1/search HTTP/1.1\r\nHost: x\r\n" + auth +
               b"Transfer-Encoding: chunked\r\n\r\n" + b"3000000\r\n" + b"x" * 100)
    assert _raw(api_server, endless).startswith(b"HTTP/1.1 413")


def test_concurrent_requests_are_kept_apart(api: Api, api_b: Api,
                                            image_files: dict[str, bytes]) -> None:
    """The app resolves requests on many threads at once; each gets its own answer."""
    expected: dict[str, tuple[Api, str]] = {}
    for client in (api, api_b, api, api_b):
        name = f"conc-{uuid.uuid4().hex[:8]}"
        expected[new_dataset(client, name)] = (client, name)
    images = {}
    for dataset_id, (client, _) in list(expected.items())[:2]:
        photo = "chelsea.jpg" if client is api else "coffee.jpg"
        images[photo] = (client, add(client, dataset_id, [{"base64": b64(image_files[photo]),
                                                           "name": photo}])[0]["id"])
    failures: list[Any] = []

    def worker(n: int) -> None:
        try:
            work(n)
        except BaseException as exc:  # a thread's exception would otherwise only warn
            failures.append(("raised", n, repr(exc)))

    def work(n: int) -> None:
        for i in range(12):
            if (n + i) % 2:
                dataset_id = list(expected)[(n + i) % len(expected)]
                client, name = expected[dataset_id]
                reply = client.call("GET", f"/v1/datasets/{dataset_id}")
                if reply.status != 200 or reply.json["name"] != name:
                    failures.append((dataset_id, reply.status, reply.body[:200]))
            else:
                photo = "chelsea.jpg" if (n + i) % 4 else "coffee.jpg"
                client, image_id = images[photo]
                reply = client.call("POST", "/v1/search", {"tag": "nothing-" + photo,
                                                           "limit": 1 + n % 5})
                got = client.call("GET", f"/v1/images/{image_id}")
                if reply.status != 200 or got.status != 200 or got.json["name"] != photo:
                    failures.append((photo, reply.status, got.status))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def _lambda_handler() -> Any:
    spec = importlib.util.spec_from_file_location("api_handler", ROOT / "functions/api/handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_lambda_handler_answers_api_gateway_events(api_keys: Keys, api_server: RunningServer
                                                   ) -> None:
    lambda_handler = _lambda_handler()

    def handler(event: dict[str, Any], context: Any) -> Any:
        # As the function would in AWS, but against the test database.
        with deps.serving(api_server.server.settings):
            return lambda_handler(event, context)

    health = json.loads((ROOT / "events/api/get_health.json").read_text())
    answer = handler(health, None)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["status"] == "ok"

    search = json.loads((ROOT / "events/api/post_search.json").read_text())
    denied = handler(search, None)
    assert denied["statusCode"] == 401
    assert json.loads(denied["body"])["error"]["code"] == "unauthorized"
    search["headers"]["authorization"] = f"Bearer {api_keys.a}"
    found = handler(search, None)
    assert found["statusCode"] == 200, found["body"]
    assert set(json.loads(found["body"])) >= {"offset", "total", "results"}
    search["body"] = base64.b64encode(b'{"limit": 0}').decode()
    search["isBase64Encoded"] = True
    invalid = handler(search, None)
    assert invalid["statusCode"] == 422
    assert json.loads(invalid["body"])["error"]["field"] == "limit"
