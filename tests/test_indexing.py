"""Images added through the API are indexed after the answer: the background indexer of
``pixdex serve``, its restart recovery, and index jobs arriving through the ingest queue.
Real PostgreSQL, the real model, real files."""

from __future__ import annotations

import io
import time
from uuid import UUID

import pytest
from PIL import Image

from pixdex.blobs import store_for
from pixdex.config import Settings
from pixdex.errors import InvalidInputError
from pixdex.event_ingest import handle_queue_message
from pixdex.models import ImageMetadata
from pixdex.service import blobs, indexing
from pixdex.service.datasets import create_dataset
from pixdex.service.indexing import IndexJob
from pixdex.storage import pending
from pixdex.storage.connection import connect
from pixdex.storage.images import get_image


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
        rows.append(pending.PendingRow(ref.uri, name, "/kept", ImageMetadata(user_tags=["t"])))
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
