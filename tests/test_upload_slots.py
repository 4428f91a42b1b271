"""Upload slots on the local server: ask for presigned PUT URLs, PUT the files, the
background indexer indexes them. Real HTTP, real PostgreSQL, the real model, real files
(a 12 MP phone photo among them). The same contract against S3 runs in the twin."""

from __future__ import annotations

import base64
import json
import logging
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import pixdex
from pixdex.app.bucket_ingest import handle_queue_message
from pixdex.app.service import blobs
from pixdex.app.service.schemas import ImageMeta
from pixdex.app.service.slots import _sign
from pixdex.client import ApiError, Client
from pixdex.config import Settings
from pixdex.models import UserMetadata
from pixdex.server import RunningServer, start
from pixdex.storage import slots as slot_rows
from pixdex.storage.connection import connect
from pixdex.storage.pending import PendingRow
from tests.conftest import photo
from tests.lambda_support import ROOT
from tests.test_server_support import Api, Keys, new_dataset, wait_indexed
from tests.twin.photos import phone_photo

pytest_plugins = ["tests.test_server_support"]


@pytest.fixture(scope="module")
def client(api_server: RunningServer, api_keys: Keys) -> Client:
    return pixdex.Client(api_server.url, api_keys.a)


@pytest.fixture(scope="module")
def phone_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("phone") / "IMG_0042.jpg"
    path.write_bytes(phone_photo(photo("coffee")))
    return path


def _slots(api: Api, dataset: str, files: list[dict[str, Any]]) -> Any:
    reply = api.call("POST", f"/v1/datasets/{dataset}/uploads", {"files": files})
    assert reply.status == 201, (reply.status, reply.body[:500])
    return reply.json


def _put(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    parts = urlsplit(url)
    api = Api(f"{parts.scheme}://{parts.netloc}", None)
    reply = api.call("PUT", f"{parts.path}?{parts.query}", raw=data,
                     headers=headers if headers is not None else {"Content-Length": str(len(data))})
    return reply.status, reply.json


def test_a_12_mp_phone_photo_goes_through_an_upload_slot_and_is_indexed(
    client: Client, phone_file: Path, image_files: dict[str, bytes], tmp_path: Path
) -> None:
    size = phone_file.stat().st_size
    assert size > pixdex.client.client.DIRECT_UPLOAD_BYTES  # a real phone-sized original
    (tmp_path / "coffee.jpg").write_bytes(image_files["coffee.jpg"])
    dataset = client.create_dataset(f"slots-{uuid.uuid4().hex[:8]}")
    added = client.add_paths(dataset.id, [tmp_path / "coffee.jpg", phone_file],
                             meta=ImageMeta(folder="/phone", tags=["trip"]), progress=False)
    assert [(i.name, i.status) for i in added.images] == [
        ("coffee.jpg", "indexed"), ("IMG_0042.jpg", "indexed")]
    big = client.image(added.images[1].id)  # type: ignore[arg-type]
    assert (big.width, big.height, big.byte_size) == (4000, 3000, size)
    assert (big.folder, big.tags) == ("/phone", ["trip"])
    assert client.image_file(big.id) == phone_file.read_bytes()
    found = client.search(prompt="a cup of coffee", in_dataset=dataset.name, limit=2)
    assert {r.name for r in found.results} == {"coffee.jpg", "IMG_0042.jpg"}
    assert client.dataset(dataset.id).status == "READY"


def test_every_file_can_go_by_slot_and_results_keep_the_files_order(
    client: Client, tmp_path: Path, image_files: dict[str, bytes]
) -> None:
    names = ["rocket.jpg", "coins.png", "camera.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(image_files[name])
    (tmp_path / "zbroken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg at all")
    dataset = client.create_dataset(f"slots-{uuid.uuid4().hex[:8]}")
    added = client.add_paths(dataset.id, [tmp_path], progress=False, direct_upload_bytes=1)
    assert [(i.name, i.status) for i in added.images] == [
        ("camera.jpg", "indexed"), ("coins.png", "indexed"), ("rocket.jpg", "indexed"),
        ("zbroken.jpg", "failed")]
    assert added.images[3].error
    assert (added.indexed, added.failed, added.pending) == (3, 1, 0)


def test_slot_requests_with_bad_input_get_clear_errors(
    api: Api, settings: Settings, api_keys: Keys
) -> None:
    dataset = new_dataset(api, f"slots-{uuid.uuid4().hex[:8]}")
    path = f"/v1/datasets/{dataset}/uploads"
    cases: list[tuple[Any, int, str]] = [
        ({"files": [{"name": "a.jpg", "size": 10, "colour": "red"}]}, 422, "files.0.colour"),
        ({"files": [{"name": "a.jpg"}]}, 422, "files.0.size"),
        ({"files": [{"name": "a.jpg", "size": 0}]}, 422, "files.0.size"),
        ({"files": [{"name": "../a.jpg", "size": 10}]}, 422, "files.0.name"),
        ({"files": [{"name": "a.jpg", "size": settings.max_file_bytes + 1}]}, 413,
         "files.0.size"),
        ({"files": []}, 422, "files"),
        ({"files": [{"name": f"{n}.jpg", "size": 9} for n in range(129)]}, 413, "files"),
        ({"files": [{"name": "a.jpg", "size": 9}], "slots": 3}, 422, "slots"),
        ({"files": [{"name": "a.jpg", "size": 9}], "on_duplicate": "drop"}, 422, "on_duplicate"),
    ]
    for body, status, field in cases:
        reply = api.call("POST", path, body)
        assert (reply.status, reply.error["field"]) == (status, field), (body, reply.body)
        assert reply.error["message"]
    assert api.as_key(None).call("POST", path, {"files": []}).status == 401
    assert api.as_key(api_keys.a_read).call(
        "POST", path, {"files": [{"name": "a.jpg", "size": 9}]}).status == 403
    other = Api(api.url, api_keys.b).call("POST", path, {"files": [{"name": "a.jpg", "size": 9}]})
    assert other.status == 404  # another workspace's dataset does not exist for this key
    with connect(settings) as conn:
        left = conn.execute(
            "SELECT count(*) AS n FROM images WHERE dataset_id = %s", (dataset,)
        ).fetchone()
    assert left is not None and left["n"] == 0  # nothing half-made by a refused call


def test_an_upload_slot_carries_its_own_duplicate_gate(
    client: Client, api: Api, tmp_path: Path, image_files: dict[str, bytes]
) -> None:
    for name in ("coffee.jpg", "coffee_flip.jpg"):
        (tmp_path / name).write_bytes(image_files[name])
    (tmp_path / "again.jpg").write_bytes(image_files["coffee_flip.jpg"])
    dataset = client.create_dataset(f"slots-gate-{uuid.uuid4().hex[:8]}")
    [original] = client.add_paths(dataset.id, [tmp_path / "coffee.jpg"], progress=False).images
    # The gate is kept with the slot and applied when the file arrives (a mirrored copy is
    # a level-1 near-duplicate): skipped, naming its match.
    [skipped] = client.upload_files(dataset.id, [tmp_path / "coffee_flip.jpg"],
                                    on_duplicate="skip", progress=False).images
    assert skipped.status == "failed" and str(original.id) in (skipped.error or "")
    # The client's small-file path (multipart) carries the same choice.
    [by_form] = client.add_paths(dataset.id, [tmp_path / "again.jpg"], on_duplicate="skip",
                                 progress=False).images
    assert by_form.status == "failed" and str(original.id) in (by_form.error or "")
    [by_json] = client.add_images(dataset.id, [{
        "name": "json.jpg", "base64": base64.b64encode(image_files["coffee_flip.jpg"]).decode(),
    }], on_duplicate="skip").images
    assert by_json.status == "failed" and str(original.id) in (by_json.error or "")
    # Without one the dataset's gate applies (allow): the same picture is indexed.
    [allowed] = client.upload_files(dataset.id, [tmp_path / "again.jpg"], progress=False).images
    assert allowed.status == "indexed"
    bad = api.call("POST", f"/v1/datasets/{dataset.id}/uploads", {
        "files": [{"name": "b.jpg", "size": 9}], "on_duplicate": "skip", "duplicate_level": 7})
    assert bad.status == 422 and "0-4" in bad.error["message"]


def test_bad_puts_are_refused_and_store_nothing(
    api: Api, settings: Settings, image_files: dict[str, bytes]
) -> None:
    dataset = new_dataset(api, f"slots-{uuid.uuid4().hex[:8]}")
    data = image_files["rocket.jpg"]
    (slot,) = _slots(api, dataset, [{"name": "rocket.jpg", "size": len(data)}])["uploads"]
    url = slot["url"]
    assert slot["headers"] == {"Content-Length": str(len(data))}

    tampered = url.replace("signature=", "signature=0")
    assert _put(tampered, data)[0] == 403
    status, body = _put(url.replace(f"size={len(data)}", f"size={len(data) + 1}"), data)
    assert (status, body["error"]["field"]) == (403, "signature")
    status, body = _put(url, data + b"x")
    assert (status, body["error"]["field"]) == (422, "Content-Length")
    status, body = _put(url + "&extra=1", data)
    assert (status, body["error"]["field"]) == (422, "extra")
    assert _put(url.split("?")[0], data)[0] == 403  # no signature at all

    # A client that hangs up half-way: nothing is stored, the slot still waits for a file.
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as raw:
        raw.sendall(
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data[: len(data) // 2]
        )
        raw.shutdown(socket.SHUT_WR)
        assert raw.recv(64).startswith(b"HTTP/1.1 422")
    image = api.ok("GET", f"/v1/images/{slot['image_id']}")
    assert (image["status"], image["sha256"]) == ("pending", None)
    stored = blobs.ref(settings, f"slots/{dataset}").uri
    assert not list(Path(urlsplit(stored).path).rglob("rocket.jpg"))

    assert _put(url, data)[0] == 200
    (done,) = wait_indexed(api, [{"id": slot["image_id"], "status": "pending"}])
    assert done["status"] == "indexed"
    api.ok("DELETE", f"/v1/images/{slot['image_id']}")
    status, body = _put(url, data)
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_an_expired_url_is_refused_and_an_unused_slot_ends_failed(
    api: Api, settings: Settings, api_keys: Keys
) -> None:
    dataset = new_dataset(api, f"slots-{uuid.uuid4().hex[:8]}")
    (slot,) = _slots(api, dataset, [{"name": "late.jpg", "size": 3}])["uploads"]
    past = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())
    # Signed with the server's own key: only the time is wrong.
    signature = _sign(settings, uuid.UUID(slot["image_id"]), past, 3)
    base = slot["url"].split("?")[0]
    status, body = _put(f"{base}?expires={past}&size=3&signature={signature}", b"abc")
    assert (status, body["error"]["field"]) == (403, "expires")
    assert "ask for a new upload slot" in body["error"]["message"]

    # A slot nobody used: once its time is up the dataset is READY and the image failed.
    key = blobs.ref(settings, blobs.slot_key(uuid.UUID(dataset), "0" * 16, "never.jpg")).uri
    with connect(settings) as conn:
        (abandoned,) = slot_rows.insert_slots(
            conn, uuid.UUID(dataset), [PendingRow(key, "never.jpg", "/", UserMetadata())],
            datetime.now(UTC) - timedelta(seconds=1),
        )
    api.ok("DELETE", f"/v1/images/{slot['image_id']}")
    summary = api.ok("GET", f"/v1/datasets/{dataset}")
    assert (summary["status"], summary["images"]["failed"]) == ("READY", 1)
    image = api.ok("GET", f"/v1/images/{abandoned}")
    assert image["status"] == "failed" and "expired" in image["error"]


def test_the_upload_signing_key_survives_a_restart_and_stays_private(
    settings: Settings, api_keys: Keys, image_files: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = start(settings, access_log=True)
    try:
        api = Api(first.url, api_keys.a)
        dataset = new_dataset(api, f"slots-{uuid.uuid4().hex[:8]}")
        data = image_files["camera.jpg"]
        (slot,) = _slots(api, dataset, [{"name": "camera.jpg", "size": len(data)}])["uploads"]
    finally:
        first.stop()
    assert oct((settings.home / "upload-signing.key").stat().st_mode & 0o777) == "0o600"
    second = start(settings, access_log=True)
    try:
        url = slot["url"].replace(urlsplit(slot["url"]).netloc, urlsplit(second.url).netloc)
        with caplog.at_level(logging.INFO, logger="pixdex.server"):
            assert _put(url, data)[0] == 200
        (done,) = wait_indexed(Api(second.url, api_keys.a),
                               [{"id": slot["image_id"], "status": "pending"}])
        assert done["status"] == "indexed"
    finally:
        second.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/uploads/" in logged and "signature=***" in logged
    assert urlsplit(slot["url"]).query.split("signature=")[1] not in logged


def test_the_client_reports_a_refused_slot_request(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    too_big = tmp_path / "huge.jpg"
    with too_big.open("wb") as handle:  # sparse: the size is what the server judges
        handle.truncate(settings.max_file_bytes + 1)
    dataset = client.create_dataset(f"slots-{uuid.uuid4().hex[:8]}")
    with pytest.raises(ApiError) as caught:
        client.upload_files(dataset.id, [too_big], progress=False)
    assert (caught.value.http_status, caught.value.field) == (413, "files.0.size")


def test_the_sample_slot_event_for_a_deleted_image_is_acknowledged(settings: Settings) -> None:
    """events/ingest/sqs-s3-upload-slot.json: a file PUT to a slot whose image no longer
    exists is acknowledged (nothing to index, nothing to retry), and is never mistaken for
    a drop into a dataset called "uploads"."""
    event = json.loads((ROOT / "events" / "ingest" / "sqs-s3-upload-slot.json").read_text())
    (record,) = event["Records"]
    in_aws = settings.model_copy(update={"blob_root": "s3://pixdex-uploads/uploads"})
    outcome = handle_queue_message(record["body"], in_aws)
    (applied,) = outcome.objects
    assert (applied.action, applied.dataset) == ("ignored", None)
    assert applied.reason == "no image has this upload slot (deleted?)"
