"""The embedder client in its three modes against the real server (loopback HTTP).

SageMaker mode: a real boto3 ``sagemaker-runtime`` client whose HTTP send is answered by the
real local server (a botocore ``before-send`` hook relays the exact request body, and
relays server errors the way SageMaker does, as ``ModelError``), so the payload and the
response contract are the server's own, not a copy.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.stub import Stubber
from moto import mock_aws
from PIL import Image

import pixdex.blobs
from pixdex.app.ingest import ingest
from pixdex.app.search import encode_query_image
from pixdex.app.sources import local_items
from pixdex.blobs import BlobRef
from pixdex.config import Settings
from pixdex.embedder.client import EmbedderClient, ImageSource, RemoteEmbedder
from pixdex.embedder.errors import (
    EmbedderResponseError,
    EmbedderUnavailableError,
    error_from_response,
)
from pixdex.embedder.protocol import ImageInput, InvocationRequest, InvocationResponse
from pixdex.embedder.transports import HttpTransport, SageMakerTransport, transport_for
from pixdex.engines import get_model
from pixdex.errors import (
    ConflictError,
    ImageDecodeError,
    InvalidInputError,
    ModelCapabilityError,
    PayloadTooLargeError,
)
from pixdex.inference.specs import class_vector_name
from pixdex.models import UserMetadata
from pixdex.serving.engine import Engine, LocalTransport
from pixdex.serving.server import EmbedderHTTPServer, running_server
from pixdex.storage.connection import connect
from pixdex.storage.images import get_embedding, get_image


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[EmbedderHTTPServer]:
    with running_server(settings) as running:
        yield running


@pytest.fixture(scope="module")
def http_settings(settings: Settings, server: EmbedderHTTPServer) -> Settings:
    return settings.model_copy(update={"embedder": "http", "embedder_url": server.url})


class RecordingTransport:
    """A real HTTP transport that also keeps every request it sent."""

    def __init__(self, inner: HttpTransport) -> None:
        self.inner = inner
        self.where = inner.where
        self.max_request_bytes = inner.max_request_bytes
        self.max_images = inner.max_images
        self.requests: list[InvocationRequest] = []

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        self.requests.append(request)
        return self.inner.invoke(request)


def test_get_model_returns_the_remote_embedder_with_the_same_vectors(
    http_settings: Settings, settings: Settings, photos: dict[str, Image.Image]
) -> None:
    remote = get_model(None, http_settings)
    assert isinstance(remote, RemoteEmbedder)
    assert get_model(None, http_settings) is remote
    assert remote.spec == get_model(None, settings).spec
    local = get_model(None, settings)
    pictures = [photos["chelsea"], photos["astronaut"].crop((10, 20, 300, 500))]
    got, want = remote.embed_images(pictures), local.embed_images(pictures)
    np.testing.assert_array_equal(got.embeddings, want.embeddings)
    assert got.class_scores is not None and want.class_scores is not None
    np.testing.assert_allclose(got.class_scores, want.class_scores, atol=1e-6)
    from pixdex.inference import preprocess_images

    pixels = preprocess_images(pictures, 224)
    np.testing.assert_array_equal(
        remote.embed_pixels(pixels).embeddings, local.embed_pixels(pixels).embeddings
    )
    assert remote.embed_images([]).embeddings.shape == (0, 1280)
    with pytest.raises(InvalidInputError, match="finite"):
        remote.embed_pixels(np.full((1, 3, 224, 224), np.nan, dtype=np.float32))
    with pytest.raises(InvalidInputError, match=r"\(n, 3, 224, 224\)"):
        remote.embed_pixels(np.zeros((1, 3, 100, 100), dtype=np.float32))


def test_query_image_search_vector_is_the_same_over_http(
    http_settings: Settings, settings: Settings, photos: dict[str, Image.Image]
) -> None:
    data = _jpeg(photos["coffee"])
    from pixdex.models import BoundingBox

    box = BoundingBox(x=0.1, y=0.2, width=0.5, height=0.6)
    assert encode_query_image(data, box=box, settings=http_settings) == encode_query_image(
        data, box=box, settings=settings
    )


def test_remote_errors_keep_their_types(http_settings: Settings) -> None:
    remote = get_model(None, http_settings)
    with pytest.raises(ModelCapabilityError, match="no text encoder"):
        remote.embed_texts(["a red car"])
    client = EmbedderClient(http_settings, "efficientnet-lite0")
    [bad] = client.analyze([ImageSource(data=b"GIF89a broken")])
    assert bad.error is not None and bad.error.code == ImageDecodeError.code
    other = EmbedderClient(http_settings, "clip-vit-b32")
    with pytest.raises(ConflictError, match="serves model 'efficientnet-lite0'"):
        other.describe()


def test_ingest_over_http_matches_in_process_ingest(
    http_settings: Settings, settings: Settings, dataset_name: str, tmp_path: Path,
    photos: dict[str, Image.Image],
) -> None:
    root = tmp_path / "shoot"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "chelsea.jpg").write_bytes(_jpeg(photos["chelsea"]))
    photos["coffee"].save(root / "coffee.png")
    photos["hubble_deep_field"].save(root / "sky.webp")
    (root / "notes.txt").write_text("not an image")
    selection = local_items([root], folder=None, meta=UserMetadata(user_tags=["t"]))
    remote_report = ingest(selection.items, dataset_name, settings=http_settings)
    local_report = ingest(selection.items, dataset_name + "-local", settings=settings)
    assert (remote_report.indexed, remote_report.failed) == (3, 1)
    assert [e.status for e in remote_report.images] == [e.status for e in local_report.images]
    with connect(settings) as conn:
        for remote_entry, local_entry in zip(
            remote_report.images, local_report.images, strict=True
        ):
            assert remote_entry.id is not None and local_entry.id is not None
            got = get_image(conn, settings.workspace, remote_entry.id)
            want = get_image(conn, settings.workspace, local_entry.id)
            assert (got.width, got.height, got.format, got.folder, got.status) == (
                want.width, want.height, want.format, want.folder, want.status,
            )
            assert got.auto_tags == want.auto_tags
            assert got.error == want.error
            if got.status == "indexed":
                a = get_embedding(conn, got.id, settings.model)
                b = get_embedding(conn, want.id, settings.model)
                assert a is not None and b is not None
                np.testing.assert_allclose(a, b, atol=1e-3)
                # The class-probability vector (prompt search) comes over the wire too.
                classes = class_vector_name(settings.model)
                pa, pb = get_embedding(conn, got.id, classes), get_embedding(conn, want.id, classes)
                assert pa is not None and pb is not None and pa.shape == (1000,)
                np.testing.assert_allclose(pa, pb, atol=2e-3)
    again = ingest(selection.items, dataset_name, settings=http_settings)
    assert (again.skipped, again.indexed) == (3, 0)  # unchanged content: no model call


def test_requests_are_split_to_fit_and_large_s3_objects_go_by_reference(
    settings: Settings, server: EmbedderHTTPServer, photos: dict[str, Image.Image],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = RecordingTransport(HttpTransport(server.url, max_request_bytes=60_000))
    client = EmbedderClient(settings, "efficientnet-lite0", transport=transport)
    small = [_jpeg(photos[n], quality=60) for n in ("chelsea", "coffee", "rocket")]
    big = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    big_png = io.BytesIO()
    Image.fromarray(big).save(big_png, "PNG")
    assert all(len(s) < 40_000 for s in small) and len(big_png.getvalue()) > 60_000

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        pixdex.blobs._store.cache_clear()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="big-in")
        ref = BlobRef("s3", "big-in", "noise.png")
        pixdex.blobs.store_for(ref).put(ref, big_png.getvalue())
        results = client.analyze(
            [ImageSource(data=small[0]), ImageSource(data=big_png.getvalue(), ref=ref),
             ImageSource(data=small[1]), ImageSource(data=big_png.getvalue()),
             ImageSource(data=small[2])]
        )
    pixdex.blobs._store.cache_clear()
    assert [r.error is None for r in results] == [True, True, True, False, True]
    assert results[1].meta is not None and results[1].meta.width == 400
    assert results[3].error is not None and results[3].error.code == "payload_too_large"
    assert "S3" in results[3].error.message
    assert len(transport.requests) >= 3
    for request in transport.requests:
        assert len(request.model_dump_json(exclude_none=True)) <= 60_000
    sent = [item for request in transport.requests for item in request.images]
    assert [item.s3 for item in sent if item.s3] == ["s3://big-in/noise.png"]


def test_unreachable_server_is_a_clear_503(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = EmbedderClient(
        settings, "efficientnet-lite0",
        transport=HttpTransport(f"http://127.0.0.1:{port}", max_request_bytes=1_000_000),
    )
    with pytest.raises(EmbedderUnavailableError, match="cannot reach the embedder") as info:
        client.describe()
    assert info.value.http_status == 503


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"embedder": "http", "embedder_url": None}, "embedder_url"),
        ({"embedder": "http", "embedder_url": "ftp://host:21"}, "embedder_url"),
        ({"embedder": "sagemaker", "sagemaker_endpoint": None}, "sagemaker_endpoint"),
    ],
)
def test_incomplete_configuration_is_refused(
    settings: Settings, update: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        get_model(None, settings.model_copy(update=update))
    assert info.value.field == field
    assert "PIXDEX_" in info.value.message


def test_error_bodies_map_back_to_types() -> None:
    body = json.dumps({"error": {"code": "payload_too_large", "message": "big", "field": "x"}})
    error = error_from_response(413, body.encode(), "here")
    assert isinstance(error, PayloadTooLargeError) and error.field == "x"
    assert isinstance(error_from_response(500, b"<html>oops", "here"), EmbedderUnavailableError)
    assert isinstance(error_from_response(404, b"not json", "here"), EmbedderResponseError)


def test_local_mode_answers_exactly_like_the_server(
    settings: Settings, server: EmbedderHTTPServer, photos: dict[str, Image.Image]
) -> None:
    with pytest.raises(InvalidInputError, match="no endpoint to call"):
        transport_for(settings)  # local mode: the model runs here, not behind a transport
    local = LocalTransport(Engine(settings), settings.max_request_bytes)
    client_local = EmbedderClient(settings, "efficientnet-lite0", transport=local)
    client_http = EmbedderClient(
        settings, "efficientnet-lite0", transport=HttpTransport(server.url, 10_000_000)
    )
    sources = [ImageSource(data=_jpeg(photos["camera"])), ImageSource(data=b"junk")]
    a, b = client_local.analyze(sources), client_http.analyze(sources)
    assert a[0].tags == b[0].tags and a[0].meta == b[0].meta and a[1].error == b[1].error
    assert a[0].embedding is not None and b[0].embedding is not None
    np.testing.assert_array_equal(a[0].embedding, b[0].embedding)


# --- SageMaker mode -------------------------------------------------------------------


class _Raw(io.BytesIO):
    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.getvalue()


def _relay_to(server: EmbedderHTTPServer, seen: list[bytes]) -> Any:
    host, port = server.server_address[:2]

    def relay(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        seen.append(body)
        conn = http.client.HTTPConnection(str(host), int(port), timeout=60)
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        data = answer.read()
        conn.close()
        if answer.status == 200:
            headers = {"Content-Type": "application/json",
                       "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
            return AWSResponse(request.url, 200, headers, _Raw(data))
        # What SageMaker does with a container's non-200 answer.
        error = {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "Message": f"Received client error ({answer.status}) from primary with message "
            f'"{data.decode()}".',
            "OriginalStatusCode": answer.status,
            "OriginalMessage": data.decode(),
            "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/x",
        }
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"}
        return AWSResponse(request.url, 424, headers, _Raw(json.dumps(error).encode()))

    return relay


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_sagemaker_mode_round_trip(
    settings: Settings, server: EmbedderHTTPServer, photos: dict[str, Image.Image],
    aws_env: None,
) -> None:
    sm_settings = settings.model_copy(
        update={"embedder": "sagemaker", "sagemaker_endpoint": "pixdex-test-roundtrip",
                "aws_region": "us-east-1"}
    )
    transport = transport_for(sm_settings)
    assert isinstance(transport, SageMakerTransport)
    assert transport.max_request_bytes < 6 * 1024 * 1024
    seen: list[bytes] = []
    transport.client.meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpoint", _relay_to(server, seen)
    )
    remote = get_model(None, sm_settings)
    assert isinstance(remote, RemoteEmbedder)
    vector = encode_query_image(_jpeg(photos["chelsea"]), settings=sm_settings)
    assert vector == encode_query_image(_jpeg(photos["chelsea"]), settings=settings)
    [cat, junk] = remote.analyze(
        [ImageSource(data=_jpeg(photos["chelsea"])), ImageSource(data=b"junk")]
    )
    assert cat.tags is not None and any("cat" in n for n in cat.tags.objects)
    assert junk.error is not None and junk.error.code == "image_decode_failed"
    sent = json.loads(seen[-1])
    assert sent["model"] == "efficientnet-lite0" and len(sent["images"]) == 2
    with pytest.raises(ModelCapabilityError, match="no text encoder"):
        remote.embed_texts(["a cat"])  # the server's 400, relayed as ModelError
    too_many = InvocationRequest(images=[ImageInput(base64="AA==")] * 129)
    with pytest.raises(PayloadTooLargeError, match="limit is 128"):
        remote.client.invoke(too_many)  # the server's 413, relayed as ModelError


def test_sagemaker_service_errors_are_unavailable(aws_env: None) -> None:
    client = boto3.client("sagemaker-runtime", region_name="us-east-1")
    transport = SageMakerTransport("no-such-endpoint", "us-east-1", client=client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ValidationError",
            service_message="Endpoint no-such-endpoint of account 123456789012 not found.",
            http_status_code=400,
        )
        with pytest.raises(EmbedderUnavailableError, match="not found") as info:
            transport.invoke(InvocationRequest())
    assert "no-such-endpoint" in info.value.message


def test_models_without_a_centre_crop_get_the_whole_picture(
    http_settings: Settings, settings: Settings, photos: dict[str, Image.Image]
) -> None:
    remote = RemoteEmbedder(http_settings, "efficientnet-lite0")
    remote._crops = False  # what a SigLIP/CLIP export gets: the server does all resizing
    local = get_model(None, settings)
    small = photos["chelsea"]  # 451 x 300: sent as it is
    np.testing.assert_array_equal(
        remote.embed_images([small]).embeddings, local.embed_images([small]).embeddings
    )
    big = photos["astronaut"].resize((2048, 2048))  # shrunk to 1024 on the way
    got = remote.embed_images([big]).embeddings[0]
    want = local.embed_images([big]).embeddings[0]
    assert float(got @ want) > 0.99
    with pytest.raises(ModelCapabilityError, match="send pictures instead"):
        remote.embed_pixels(np.zeros((1, 3, 224, 224), dtype=np.float32))


def test_a_model_the_endpoint_does_not_serve_is_refused(http_settings: Settings) -> None:
    from pixdex.errors import ConflictError

    with pytest.raises(ConflictError, match="serves model 'efficientnet-lite0'") as info:
        get_model("siglip2-so400m", http_settings)
    assert info.value.field == "model"


def test_registry_specs_match_the_models_own() -> None:
    from pixdex.engines import available_models
    from pixdex.inference import EFFICIENTNET_LITE0_SPEC

    assert available_models() == [EFFICIENTNET_LITE0_SPEC]
