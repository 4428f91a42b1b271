"""The inference server over real HTTP on loopback: contract, limits, per-image errors."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws
from PIL import Image

import pixdex.blobs
from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.inference.imagenet import imagenet_class_names
from pixdex.pipeline import analyse, prepare
from pixdex.serving.server import EmbedderHTTPServer, make_server, running_server


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _b64(data: bytes) -> dict[str, str]:
    return {"base64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[EmbedderHTTPServer]:
    with running_server(settings, max_request_bytes=2_000_000, max_images=6) as running:
        yield running


def _call(
    server: EmbedderHTTPServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def _invoke(server: EmbedderHTTPServer, payload: object) -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload).encode()
    return _call(server, "POST", "/invocations", body, {"Content-Type": "application/json"})


def test_ping_says_ready_with_the_model(server: EmbedderHTTPServer) -> None:
    status, body = _call(server, "GET", "/ping")
    assert status == 200
    assert body == {"status": "ok", "model": "efficientnet-lite0"}


def test_ping_is_503_until_the_model_is_loaded(settings: Settings) -> None:
    server = make_server(settings, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, body = _call(server, "GET", "/ping")
        assert status == 503 and body["error"]["code"] == "loading"
        server.engine.warm_up()
        assert _call(server, "GET", "/ping")[0] == 200
    finally:
        server.shutdown()
        server.server_close()
        server.engine.close()


def test_batch_in_request_order_with_tags_attributes_and_size(
    server: EmbedderHTTPServer, settings: Settings, photos: dict[str, Image.Image]
) -> None:
    names = ["coffee", "chelsea", "hubble_deep_field"]
    status, body = _invoke(server, {"images": [_b64(_jpeg(photos[n])) for n in names]})
    assert status == 200, body
    assert body["model"] == "efficientnet-lite0" and body["dim"] == 1280
    assert body["errors"] == [None, None, None]
    assert "espresso" in body["tags"][0]["objects"]
    assert any("cat" in name for name in body["tags"][1]["objects"])
    assert "dark" in body["tags"][2]["attributes"]
    assert body["images"][1] == {"width": 451, "height": 300, "format": "JPEG"}
    # The vectors are the in-process pipeline's, row for row: the same decode path (at
    # the size the model and the attributes need) and the same model.
    local = get_model(None, settings)
    for name, vector in zip(names, body["embeddings"], strict=True):
        data = _jpeg(photos[name])
        [expected] = analyse(local, [prepare(data, local, settings)], settings)
        np.testing.assert_allclose(np.asarray(vector), expected.embedding, atol=1e-5)
        # ... and that path stays faithful to a full decode (hubble_deep_field, 1000 x
        # 872, is decoded at half size).
        decoded = Image.open(io.BytesIO(data)).convert("RGB")
        full = local.embed_images([decoded]).embeddings[0]
        assert float(np.asarray(vector) @ full) > 0.99


def test_bad_images_fail_alone(server: EmbedderHTTPServer, photos: dict[str, Image.Image]) -> None:
    good = _jpeg(photos["coffee"])
    images = [
        _b64(b"not an image at all"),
        _b64(good),
        _b64(good[: len(good) // 2]),
        {"base64": "%%% not base64 %%%"},
        {"base64": "AA=="},  # one zero byte: not empty, not an image
    ]
    status, body = _invoke(server, {"images": images})
    assert status == 200, body
    errors = body["errors"]
    assert errors[1] is None and body["embeddings"][1] is not None
    assert errors[0]["code"] == "image_decode_failed"
    assert "not a recognised image" in errors[0]["message"]
    assert errors[2]["code"] == "image_decode_failed" and (
        "truncated" in errors[2]["message"] or "corrupt" in errors[2]["message"]
    )
    assert errors[3]["code"] == "invalid_input" and "base64" in errors[3]["message"]
    assert errors[4]["code"] == "image_decode_failed"
    for index in (0, 2, 3, 4):
        assert body["embeddings"][index] is None and body["tags"][index] is None


def test_s3_references_are_read_by_the_server(
    server: EmbedderHTTPServer, photos: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        pixdex.blobs._store.cache_clear()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="embedder-in")
        s3.put_object(Bucket="embedder-in", Key="a/coffee.jpg", Body=_jpeg(photos["coffee"]))
        status, body = _invoke(
            server,
            {"images": [{"s3": "s3://embedder-in/a/coffee.jpg"},
                        {"s3": "s3://embedder-in/a/missing.jpg"}]},
        )
    pixdex.blobs._store.cache_clear()
    assert status == 200, body
    assert "espresso" in body["tags"][0]["objects"]
    assert body["errors"][1]["code"] == "not_found"
    assert "s3://embedder-in/a/missing.jpg" in body["errors"][1]["message"]


def test_an_unreadable_bucket_answers_without_aws_details(
    server: EmbedderHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: the server echoed AWS's error text (endpoints, account ids, policies)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    pixdex.blobs._store.cache_clear()
    try:
        status, body = _invoke(server, {"images": [{"s3": "s3://some-bucket/k.jpg"}]})
    finally:
        pixdex.blobs._store.cache_clear()
    assert status == 200, body
    assert body["errors"][0] == {
        "code": "blob_unreadable",
        "message": "cannot read s3://some-bucket/k.jpg: missing or not readable here",
    }


def test_class_scores_on_request(
    server: EmbedderHTTPServer, photos: dict[str, Image.Image]
) -> None:
    images = [_b64(_jpeg(photos["coffee"])), _b64(b"junk")]
    _, plain = _invoke(server, {"images": images})
    assert plain["class_scores"] is None
    _, scored = _invoke(server, {"images": images, "class_scores": True})
    first, second = scored["class_scores"]
    assert len(first) == 1000 and abs(sum(first) - 1.0) < 1e-3 and second is None


def test_tagging_rule_can_be_set_per_request(
    server: EmbedderHTTPServer, photos: dict[str, Image.Image]
) -> None:
    image = _b64(_jpeg(photos["chelsea"]))
    _, loose = _invoke(server, {"images": [image], "object_tag_threshold": 0.0,
                                "object_tag_top_k": 7})
    _, strict = _invoke(server, {"images": [image], "object_tag_threshold": 0.99})
    classes = set(imagenet_class_names())
    # top_k counts ImageNet classes; the everyday labels above them come on top.
    assert len(set(loose["tags"][0]["objects"]) & classes) == 7
    assert {"cat", "animal"} <= set(loose["tags"][0]["objects"])
    assert strict["tags"][0]["objects"] == {}  # the threshold holds for labels too


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"images": [{}]}, "images.0", 'exactly one of "base64" or "s3"'),
        ({"images": [{"base64": "AA==", "s3": "s3://b/k"}]}, "images.0", "exactly one"),
        ({"images": [{"s3": "file:///etc/passwd"}]}, "images.0.s3", "pattern"),
        ({"images": "nope"}, "images", "list"),
        ({"texts": [""]}, "texts.0", "at least 1 character"),
        ({"texts": ["a cat"] * 257}, "texts", "at most 256 items"),
        ({"images": [], "colour": "red"}, "colour", "Extra inputs"),
        ({"object_tag_threshold": 2}, "object_tag_threshold", "less than or equal to 1"),
    ],
)
def test_malformed_requests_are_422_with_the_field(
    server: EmbedderHTTPServer, payload: object, field: str, words: str
) -> None:
    status, body = _invoke(server, payload)
    assert status == 422
    assert body["error"]["code"] == "invalid_input"
    assert body["error"]["field"] == field
    assert words in body["error"]["message"]


def test_request_level_refusals(server: EmbedderHTTPServer) -> None:
    status, body = _call(server, "POST", "/invocations", b"{nope", {"Content-Type":
                                                                   "application/json"})
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert "not valid JSON" in body["error"]["message"]

    status, body = _call(server, "POST", "/invocations", b"{}", {"Content-Type": "image/jpeg"})
    assert status == 415 and "application/json" in body["error"]["message"]

    status, body = _call(server, "POST", "/predict", b"{}", {"Content-Type": "application/json"})
    assert status == 404
    assert _call(server, "GET", "/nothing")[0] == 404

    status, body = _invoke(server, {"images": [{"base64": "AA=="}] * 7})
    assert status == 413 and "limit is 6" in body["error"]["message"]

    status, body = _invoke(server, {"images": [{"base64": "AA=="}], "model": "clip-vit-b32"})
    assert status == 409 and body["error"]["field"] == "model"

    status, body = _invoke(server, {"texts": ["a cat on a sofa"]})
    assert status == 400 and body["error"]["code"] == "model_capability"


def test_oversize_body_is_refused_before_it_is_parsed(server: EmbedderHTTPServer) -> None:
    body = json.dumps({"images": [{"base64": "A" * 2_100_000}]}).encode()
    status, answer = _call(server, "POST", "/invocations", body,
                           {"Content-Type": "application/json"})
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"
    assert "2,000,000" in answer["error"]["message"]


def test_missing_content_length_is_411(server: EmbedderHTTPServer) -> None:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=30)
    try:
        conn.putrequest("POST", "/invocations")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"2\r\n{}\r\n0\r\n\r\n")
        answer = conn.getresponse()
        assert answer.status == 411
        assert "Content-Length" in json.loads(answer.read())["error"]["message"]
    finally:
        conn.close()


def test_empty_request_describes_the_model(server: EmbedderHTTPServer) -> None:
    status, body = _invoke(server, {})
    assert status == 200
    assert (body["model"], body["dim"], body["input_size"]) == ("efficientnet-lite0", 1280, 224)
    assert body["embeddings"] == [] and body["text_embeddings"] == []


def test_keep_alive_connection_serves_several_requests(
    server: EmbedderHTTPServer, photos: dict[str, Image.Image]
) -> None:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=60)
    body = json.dumps({"images": [_b64(_jpeg(photos["coffee"]))]}).encode()
    try:
        for _ in range(3):
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            assert answer.status == 200
            assert json.loads(answer.read())["errors"] == [None]
    finally:
        conn.close()


def test_s3_references_outside_the_allowed_prefixes_are_refused(
    settings: Settings, photos: dict[str, Image.Image]
) -> None:
    """Issue 14: the endpoint read any bucket its role could reach, and said why it could not."""
    allowed = settings.model_copy(update={"embedder_allowed_s3": "s3://pixdex-images/in/"})
    with running_server(allowed, max_request_bytes=2_000_000, max_images=6) as running:
        status, body = _invoke(running, {"images": [
            {"s3": "s3://other-bucket/in/k.jpg"},
            {"s3": "s3://pixdex-images/private/k.jpg"},
            _b64(_jpeg(photos["coffee"])),
        ]})
    assert status == 200, body
    for error in body["errors"][:2]:
        assert error["code"] == "forbidden", error
        assert "outside what this endpoint reads (s3://pixdex-images/in/)" in error["message"]
    assert body["errors"][2] is None and len(body["embeddings"][2]) == 1280


def test_allowed_s3_prefixes_are_checked_at_start_up() -> None:
    for bad in ("my-bucket/images/", "s3://", "s3://ok/, https://x/"):
        with pytest.raises(ValueError, match="is not an s3:// prefix"):
            Settings(embedder_allowed_s3=bad)
