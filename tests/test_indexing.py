"""Images added through the API are indexed after the answer: the background indexer of
``pixdex serve``, its restart recovery, and index jobs arriving through the ingest queue.
Real PostgreSQL, the real model, real files."""

from __future__ import annotations

import io
import json
import socket
import time
from uuid import UUID

import pytest
from PIL import Image

from pixdex.app.bucket_ingest import handle_queue_message
from pixdex.app.ingest import IngestItem, ingest
from pixdex.app.service import blobs, indexing
from pixdex.app.service.datasets import create_dataset
from pixdex.app.service.images import delete_image, update_image
from pixdex.app.service.indexing import IndexJob
from pixdex.app.service.schemas import ImagePatch
from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings, get_settings
from pixdex.db_secret import lambda_settings
from pixdex.errors import InvalidInputError, NotFoundError, PixdexError
from pixdex.models import UserMetadata
from pixdex.storage import pending
from pixdex.storage.connection import connect
from pixdex.storage.images import get_image
from tests.lambda_support import ROOT, LambdaContext, load_handler


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _stored_pending(
    settings: Settings, dataset_id: UUID, files: dict[str, bytes]
) -> dict[str, UUID]:
    """What the API leaves behind when it stops right after storing: bytes and rows."""
    rows = []
    for name, data in files.items():
        ref = blobs.ref(settings, blobs.upload_key(dataset_id, "0" * 64, name))
        store_for(ref).put(ref, data)
        rows.append(pending.PendingRow(ref.uri, name, "/kept", UserMetadata(user_tags=["t"])))
    with connect(settings) as conn:
        found = pending.insert_pending(conn, dataset_id, rows)
    return {row.name: found[row.storage_key][0] for row in rows}


def _wait(settings: Settings, ids: list[UUID], timeout: float = 120) -> dict[UUID, str]:
    deadline = time.monotonic() + timeout
    while True:
        with connect(settings) as conn:
            statuses = {i: get_image(conn, settings.workspace, i).status.value for i in ids}
        if "pending" not in statuses.values() or time.monotonic() > deadline:
            return statuses
        time.sleep(0.1)


def test_a_restarted_server_indexes_what_was_left_pending(
    settings: Settings, dataset_name: str, photos: dict[str, Image.Image]
) -> None:
    dataset = create_dataset(settings, settings.workspace, dataset_name)
    ids = _stored_pending(settings, dataset.id, {
        "cat.jpg": _jpeg(photos["chelsea"]), "broken.jpg": b"\xff\xd8\xff truncated",
    })
    assert indexing.resume_waiting(settings) >= 2
    statuses = _wait(settings, list(ids.values()))
    assert statuses == {ids["cat.jpg"]: "indexed", ids["broken.jpg"]: "failed"}
    with connect(settings) as conn:
        cat = get_image(conn, settings.workspace, ids["cat.jpg"])
    assert (cat.folder, cat.user_tags) == ("/kept", ["t"])  # what the user sent survives


def test_an_index_job_from_the_queue_indexes_only_what_is_still_pending(
    settings: Settings, dataset_name: str, photos: dict[str, Image.Image]
) -> None:
    dataset = create_dataset(settings, settings.workspace, dataset_name)
    ids = _stored_pending(settings, dataset.id, {"coffee.jpg": _jpeg(photos["coffee"])})
    job = IndexJob(workspace=settings.workspace, dataset_id=dataset.id,
                   image_ids=list(ids.values()))
    first = handle_queue_message(job.body(), settings)
    assert first.added is not None and first.added.indexed == 1
    again = handle_queue_message(job.body(), settings)  # redelivered: nothing left to do
    assert again.added is not None and (again.added.indexed, again.added.failed) == (0, 0)


@pytest.mark.parametrize(
    "body",
    [
        '{"pixdex_index": {"workspace": "default"}}',
        '{"pixdex_index": {"workspace": "default", "dataset_id": "nope", "image_ids": []}}',
        '{"pixdex_index": {"workspace": "default", "dataset_id": '
        '"00000000-0000-0000-0000-000000000000", "image_ids": ['
        '"00000000-0000-0000-0000-000000000001"], "colour": "red"}}',
    ],
)
def test_a_malformed_index_job_is_bad_input(settings: Settings, body: str) -> None:
    with pytest.raises(InvalidInputError, match="malformed index job"):
        handle_queue_message(body, settings)


def test_an_image_deleted_or_retagged_while_pending_stays_as_the_user_left_it(
    settings: Settings, dataset_name: str, photos: dict[str, Image.Image]
) -> None:
    dataset = create_dataset(settings, settings.workspace, dataset_name)
    ids = _stored_pending(settings, dataset.id, {
        "rocket.jpg": _jpeg(photos["rocket"]), "camera.jpg": _jpeg(photos["camera"]),
    })
    delete_image(settings, settings.workspace, ids["rocket.jpg"])
    update_image(settings, settings.workspace, ids["camera.jpg"], ImagePatch(tags=["new"]))
    report = indexing.index_pending(settings, IndexJob(
        workspace=settings.workspace, dataset_id=dataset.id, image_ids=list(ids.values())
    ))
    assert (report.indexed, report.skipped) == (1, 0)  # the deleted one is not even read
    with connect(settings) as conn:
        with pytest.raises(NotFoundError):
            get_image(conn, settings.workspace, ids["rocket.jpg"])  # not resurrected
        camera = get_image(conn, settings.workspace, ids["camera.jpg"])
    assert (camera.status.value, camera.user_tags) == ("indexed", ["new"])


def test_a_row_done_meanwhile_is_not_written_twice(
    settings: Settings, dataset_name: str, photos: dict[str, Image.Image]
) -> None:
    dataset = create_dataset(settings, settings.workspace, dataset_name)
    ids = _stored_pending(settings, dataset.id, {"coins.jpg": _jpeg(photos["coins"])})
    with connect(settings) as conn:
        rows = pending.pending_rows(conn, dataset.id, list(ids.values()))
    items = [IngestItem(BlobRef.parse(r.storage_key), r.folder, r.meta, pending_only=True)
             for r in rows]
    first = ingest(items, dataset.name, settings=settings)
    second = ingest(items, dataset.name, settings=settings)  # e.g. two deliveries racing
    assert first.indexed == 1
    assert second.indexed == 0 and second.skipped == 1


def test_an_index_job_failing_on_its_last_delivery_marks_its_images_failed(
    settings: Settings, dataset_name: str, photos: dict[str, Image.Image]
) -> None:
    """Not pending forever behind a dead-lettered message: the endpoint here is a closed
    port, so indexing raises on every delivery."""
    dataset = create_dataset(settings, settings.workspace, dataset_name)
    ids = _stored_pending(settings, dataset.id, {"astronaut.jpg": _jpeg(photos["astronaut"])})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    remote = settings.model_copy(update={
        "embedder": "http", "embedder_url": f"http://127.0.0.1:{closed}",
        "index_max_receives": 3,
    })
    job = IndexJob(workspace=settings.workspace, dataset_id=dataset.id,
                   image_ids=list(ids.values()))
    for receive in (1, 2):
        with pytest.raises(PixdexError):
            handle_queue_message(job.body(), remote, receive_count=receive)
        assert _wait(settings, list(ids.values()), timeout=0) == {ids["astronaut.jpg"]: "pending"}
    with pytest.raises(PixdexError):
        handle_queue_message(job.body(), remote, receive_count=3)
    with connect(settings) as conn:
        image = get_image(conn, settings.workspace, ids["astronaut.jpg"])
    assert image.status.value == "failed" and image.error
    assert image.error.startswith("indexing failed 3 times")


def test_the_sample_index_job_for_a_deleted_dataset_is_acknowledged(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """events/ingest/sqs-api-index-job.json through the ingest handler: its dataset does
    not exist (deleted after the images were added), so there is nothing to do and
    nothing to retry."""
    monkeypatch.setenv("PIXDEX_HOME", str(settings.home))  # the handler reads the env
    get_settings.cache_clear()
    lambda_settings.cache_clear()
    event = json.loads((ROOT / "events" / "ingest" / "sqs-api-index-job.json").read_text())
    (record,) = event["Records"]
    outcome = handle_queue_message(record["body"], settings, receive_count=1)
    assert outcome.added is not None
    assert (outcome.added.indexed, outcome.added.failed, outcome.added.skipped) == (0, 0, 0)
    handler = load_handler("ingest")
    try:
        answer = handler.handler(event, LambdaContext("pixdex-ingest"))
    finally:
        get_settings.cache_clear()
        lambda_settings.cache_clear()
    assert answer == {"batchItemFailures": []}
