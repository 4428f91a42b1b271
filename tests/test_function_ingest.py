"""The ``ingest`` Lambda with the sample events in events/ingest: embedded PostgreSQL, S3
through moto, and the embedder as the real inference server over loopback HTTP."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

import pixdex.blobs
from pixdex.app.bucket_ingest import handle_s3_message
from pixdex.app.s3_events import dataset_and_folder, parse_s3_message
from pixdex.config import Settings, get_settings
from pixdex.db_secret import lambda_settings
from pixdex.errors import InvalidInputError
from pixdex.models import ImageRecord, ImageStatus
from pixdex.serving.server import EmbedderHTTPServer, running_server
from pixdex.storage.catalog import get_dataset
from pixdex.storage.connection import connect
from pixdex.storage.images import get_image, keys_under, known_images
from pixdex.storage.ingest_events import normalise_sequencer
from tests.lambda_support import ROOT, LambdaContext, load_handler

EVENTS = ROOT / "events" / "ingest"
CONTEXT = LambdaContext("pixdex-ingest")
BUCKET = "pixdex-images"


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _event(name: str, dataset: str, **replace: str) -> dict[str, Any]:
    """A sample from events/ingest with its dataset (the key's first segment) renamed."""
    text = (EVENTS / f"{name}.json").read_text().replace("holidays/", f"{dataset}/")
    for old, new in replace.items():
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
    return event


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[EmbedderHTTPServer]:
    with running_server(settings) as running:
        yield running


def _configure(monkeypatch: pytest.MonkeyPatch, home: Path, embedder_url: str) -> None:
    monkeypatch.setenv("PIXDEX_HOME", str(home))
    monkeypatch.setenv("PIXDEX_EMBEDDER", "http")
    monkeypatch.setenv("PIXDEX_EMBEDDER_URL", embedder_url)
    monkeypatch.setenv("PIXDEX_BATCH_SIZE", "8")
    get_settings.cache_clear()
    lambda_settings.cache_clear()


@pytest.fixture
def s3(
    settings: Settings, server: EmbedderHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _configure(monkeypatch, settings.home, server.url)
    with mock_aws():
        pixdex.blobs._store.cache_clear()
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
    pixdex.blobs._store.cache_clear()
    get_settings.cache_clear()
    lambda_settings.cache_clear()


@pytest.fixture(scope="module")
def handler() -> ModuleType:
    return load_handler("ingest")


def _records(settings: Settings, dataset: str) -> dict[str, ImageRecord]:
    """Every row of ``dataset`` by storage key."""
    with connect(settings) as conn:
        ds = get_dataset(conn, settings.workspace, dataset)
        known = known_images(conn, ds.id, keys_under(conn, ds.id, f"s3://{BUCKET}/"))
        return {
            key: get_image(conn, settings.workspace, image.id) for key, image in known.items()
        }


def test_created_events_index_objects_once(
    handler: ModuleType, s3: Any, settings: Settings, dataset_name: str,
    photos: dict[str, Image.Image],
) -> None:
    cat_key = f"{dataset_name}/cats/chelsea the cat.jpg"  # the event spells it with '+'
    s3.put_object(Bucket=BUCKET, Key=cat_key, Body=_jpeg(photos["chelsea"]))
    s3.put_object(Bucket=BUCKET, Key=f"{dataset_name}/coffee&cake.png",
                  Body=_png(photos["coffee"]))
    event = _event("sqs-s3-object-created", dataset_name)

    assert handler.handler(event, CONTEXT) == {"batchItemFailures": []}
    records = _records(settings, dataset_name)
    cat = records[f"s3://{BUCKET}/{cat_key}"]
    coffee = records[f"s3://{BUCKET}/{dataset_name}/coffee&cake.png"]
    assert (cat.status, cat.folder) == (ImageStatus.INDEXED, "/cats")
    assert cat.name == "chelsea the cat.jpg"
    assert any("cat" in name for name in cat.auto_tags.objects)
    assert (coffee.folder, coffee.width, coffee.height, coffee.format) == ("/", 600, 400, "PNG")
    assert "espresso" in coffee.auto_tags.objects

    # A redelivery changes nothing, even if the object changed since: that change comes
    # with its own, newer event.
    s3.put_object(Bucket=BUCKET, Key=cat_key, Body=_jpeg(photos["rocket"]))
    assert handler.handler(event, CONTEXT) == {"batchItemFailures": []}
    assert _records(settings, dataset_name) == records
    newer = _event(
        "sqs-s3-object-created", dataset_name, **{"0065F1A2B3C4D5E6F7": "0065F1A2B3C4D5E700"}
    )
    assert handler.handler(newer, CONTEXT) == {"batchItemFailures": []}
    changed = _records(settings, dataset_name)[cat.storage_key]
    assert changed.id == cat.id and changed.sha256 != cat.sha256
    assert not any("cat" in name for name in changed.auto_tags.objects)


def test_removed_event_and_out_of_order_delivery(
    handler: ModuleType, s3: Any, settings: Settings, dataset_name: str,
    photos: dict[str, Image.Image],
) -> None:
    key = f"{dataset_name}/cats/chelsea the cat.jpg"
    uri = f"s3://{BUCKET}/{key}"
    created = _event("sqs-s3-object-created", dataset_name)
    removed = _event("sqs-s3-object-removed", dataset_name)
    s3.put_object(Bucket=BUCKET, Key=key, Body=_jpeg(photos["chelsea"]))
    handler.handler(created, CONTEXT)
    assert uri in _records(settings, dataset_name)

    s3.delete_object(Bucket=BUCKET, Key=key)
    assert handler.handler(removed, CONTEXT) == {"batchItemFailures": []}
    assert uri not in _records(settings, dataset_name)

    # Uploaded again; its (newer) created event is late, and the old one is redelivered
    # first: the old event must not bring back what the removal took away.
    s3.put_object(Bucket=BUCKET, Key=key, Body=_jpeg(photos["chelsea"]))
    handler.handler(created, CONTEXT)
    assert uri not in _records(settings, dataset_name)
    late = _event("sqs-s3-object-created", dataset_name,
                  **{"0065F1A2B3C4D5E6F7": "0065F1A2B3E0000000"})
    handler.handler(late, CONTEXT)
    assert uri in _records(settings, dataset_name)

    # Now the removal is the old event: deleting the object and replaying it changes nothing.
    s3.delete_object(Bucket=BUCKET, Key=key)
    handler.handler(removed, CONTEXT)
    assert uri in _records(settings, dataset_name)


def test_removal_keeps_an_object_that_still_exists(
    s3: Any, settings: Settings, dataset_name: str, photos: dict[str, Image.Image]
) -> None:
    key = f"{dataset_name}/cats/chelsea the cat.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=_jpeg(photos["chelsea"]))
    created = _event("sqs-s3-object-created", dataset_name)["Records"][0]["body"]
    removed = _event("sqs-s3-object-removed", dataset_name)["Records"][0]["body"]
    lambda_settings.cache_clear()
    first = handle_s3_message(created, lambda_settings())
    assert first.objects[0].action == "indexed"
    # e.g. a noncurrent version was deleted in a versioned bucket: the object is still there.
    kept = handle_s3_message(removed, lambda_settings())
    assert [o.action for o in kept.objects] == ["kept"]
    assert f"s3://{BUCKET}/{key}" in _records(settings, dataset_name)
    s3.delete_object(Bucket=BUCKET, Key=key)
    gone = handle_s3_message(removed, lambda_settings())
    assert [o.action for o in gone.objects] == ["removed"]
    assert handle_s3_message(removed, lambda_settings()).objects[0].action == "duplicate"


def test_poison_message_lands_in_batch_failures(
    handler: ModuleType, s3: Any, settings: Settings, dataset_name: str,
    photos: dict[str, Image.Image],
) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{dataset_name}/astronaut.webp",
                  Body=_png(photos["astronaut"]))
    event = _event("sqs-mixed-with-poison", dataset_name)
    poison_id = event["Records"][1]["messageId"]
    assert handler.handler(event, CONTEXT) == {
        "batchItemFailures": [{"itemIdentifier": poison_id}]
    }
    assert f"s3://{BUCKET}/{dataset_name}/astronaut.webp" in _records(settings, dataset_name)

    only_poison = {"Records": [event["Records"][1]]}
    assert handler.handler(only_poison, CONTEXT) == {
        "batchItemFailures": [{"itemIdentifier": poison_id}]
    }


def test_test_event_bad_images_and_keys_outside_datasets(
    handler: ModuleType, s3: Any, settings: Settings, dataset_name: str
) -> None:
    assert handler.handler(_event("sqs-s3-test-event", dataset_name), CONTEXT) == {
        "batchItemFailures": []
    }
    s3.put_object(Bucket=BUCKET, Key=f"{dataset_name}/coffee&cake.png", Body=b"not a picture")
    event = _event("sqs-s3-object-created", dataset_name)
    event["Records"] = event["Records"][1:]
    assert handler.handler(event, CONTEXT) == {"batchItemFailures": []}
    [record] = _records(settings, dataset_name).values()
    assert record.status is ImageStatus.FAILED and "not a recognised image" in (record.error or "")

    root = _event("sqs-s3-object-created", dataset_name,
                  **{f"{dataset_name}/cats/chelsea+the+cat.jpg": "chelsea.jpg"})
    body = root["Records"][0]["body"]
    outcome = handle_s3_message(body, lambda_settings())
    assert [o.action for o in outcome.objects] == ["ignored"]
    assert "<dataset>/" in (outcome.objects[0].reason or "")


def test_embedder_down_is_retried_and_nothing_is_recorded(
    handler: ModuleType, s3: Any, settings: Settings, server: EmbedderHTTPServer,
    dataset_name: str, photos: dict[str, Image.Image], monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{dataset_name}/cats/chelsea the cat.jpg",
                  Body=_jpeg(photos["chelsea"]))
    event = _event("sqs-s3-object-created", dataset_name)
    event["Records"] = event["Records"][:1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    _configure(monkeypatch, settings.home, dead)
    failures = handler.handler(event, CONTEXT)["batchItemFailures"]
    assert failures == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    # The retry, with the endpoint back, is not taken for a duplicate.
    _configure(monkeypatch, settings.home, server.url)
    assert handler.handler(event, CONTEXT) == {"batchItemFailures": []}
    assert len(_records(settings, dataset_name)) == 1


def test_parse_s3_message_rules() -> None:
    body = json.loads((EVENTS / "sqs-s3-object-created.json").read_text())["Records"][0]["body"]
    [event] = parse_s3_message(body).events
    assert (event.kind, event.bucket) == ("created", BUCKET)
    assert event.key == "holidays/cats/chelsea the cat.jpg"
    assert event.sequencer == "0065F1A2B3C4D5E6F7"
    raw = json.loads(body)
    raw["Records"][0]["s3"]["object"]["key"] = "a/b%2Bc+d.jpg"
    raw["Records"][0]["eventName"] = "LifecycleExpiration:Delete"
    [expired] = parse_s3_message(json.dumps(raw)).events
    assert (expired.kind, expired.key) == ("removed", "a/b+c d.jpg")
    raw["Records"][0]["eventName"] = "ObjectRestore:Completed"
    assert parse_s3_message(json.dumps(raw)).events == []
    test_body = json.loads((EVENTS / "sqs-s3-test-event.json").read_text())["Records"][0]["body"]
    assert parse_s3_message(test_body).test_event

    for bad, words in [
        ("{not json", "not JSON"),
        ('{"Records": []}', "Records"),
        ('{"Type": "Notification", "Message": "{}"}', "raw message delivery"),
        ('{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]}',
         "object"),
    ]:
        with pytest.raises(InvalidInputError, match=words):
            parse_s3_message(bad)


def test_key_layout_and_sequencer_order() -> None:
    assert dataset_and_folder("holidays/beach/2024/a.jpg") == ("holidays", "/beach/2024")
    assert dataset_and_folder("holidays/a.jpg") == ("holidays", "/")
    assert dataset_and_folder("holidays//./x/a.jpg") == ("holidays", "/x")
    for outside in ("a.jpg", "holidays/beach/", "/abs.jpg"):
        assert dataset_and_folder(outside) is None
    # S3: right-pad the shorter with zeros, then compare as text.
    assert normalise_sequencer("0055AED6DCD90281E5") < normalise_sequencer("0055AED6DCD90281E6")
    assert normalise_sequencer("0055AED6DCD90281E5") < normalise_sequencer("0055AED6DCD90281E501")
    assert normalise_sequencer("00ff") == normalise_sequencer("00FF00")
    with pytest.raises(InvalidInputError, match="hexadecimal"):
        normalise_sequencer("xyz")
