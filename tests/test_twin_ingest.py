"""The product's main flow in the twin: objects dropped into the bucket are indexed by the
``ingest`` function (Python 3.12, layers only) through S3 -> SQS -> the event source
mapping, with the GPU endpoint behind the SageMaker runtime API.

Every count is taken from the database the functions wrote to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from tests.twin.checks import dead_letters, rows, rows_per_key
from tests.twin.photos import Drop, dataset_drops
from tests.twin.poller import PollStats
from tests.twin.runtime import LambdaFunction
from tests.twin.stack import IMAGES_BUCKET, Twin


@dataclass
class Dropped:
    dataset: str
    drops: list[Drop]


def _put(twin: Twin, drops: list[Drop]) -> None:
    s3 = twin.client("s3")
    for drop in drops:
        s3.put_object(Bucket=IMAGES_BUCKET, Key=drop.key, Body=drop.data)


@pytest.fixture(scope="module")
def dropped(twin: Twin) -> Iterator[Dropped]:
    """44 objects in one dataset, plus one at the bucket root, drained once."""
    drops = dataset_drops("holidays")
    _put(twin, drops)
    twin.client("s3").put_object(Bucket=IMAGES_BUCKET, Key="stray.jpg", Body=drops[0].data)
    twin.poller.drain()
    yield Dropped("holidays", drops)


def test_every_dropped_object_ends_indexed_or_failed_exactly_once(
    twin: Twin, dropped: Dropped
) -> None:
    found = rows(twin, dropped.dataset)
    per_key = rows_per_key(twin, dropped.dataset)
    assert len(dropped.drops) == 44
    assert set(per_key) == {d.key for d in dropped.drops}, twin.log_tail("ingest")
    assert set(per_key.values()) == {1}
    by_key = {row.key: row for row in found}
    for drop in dropped.drops:
        row = by_key[drop.key]
        if drop.valid:
            assert (row.status, row.error) == ("indexed", None), drop.key
            assert row.embeddings >= 1
        else:
            assert row.status == "failed"
            assert row.error and "truncated" in row.error.lower(), row.error
    assert twin.poller.stats.function_errors == []
    assert dead_letters(twin) == []


def test_a_phone_photo_over_the_payload_limit_goes_by_reference(
    twin: Twin, dropped: Dropped
) -> None:
    phone = next(d for d in dropped.drops if "phone" in d.key)
    assert len(phone.data) > 6 * 1024 * 1024  # over InvokeEndpoint's 6 MB
    row = next(r for r in rows(twin, dropped.dataset) if r.key == phone.key)
    assert row.status == "indexed"


def test_a_key_outside_any_dataset_is_ignored(twin: Twin, dropped: Dropped) -> None:
    import psycopg

    with psycopg.connect(twin.database.url) as conn:
        stray = conn.execute(
            "SELECT count(*) FROM images WHERE storage_key LIKE %s", ("%/stray.jpg",)
        ).fetchone()
    assert stray == (0,)


def test_the_same_event_delivered_twice_changes_nothing(twin: Twin, dropped: Dropped) -> None:
    before = {row.key: row for row in rows(twin, dropped.dataset)}
    sqs = twin.client("sqs")
    # Events of this dataset (keys are URL-encoded in S3 notifications).
    ours = [b for b in twin.poller.bodies if f'"{dropped.dataset}%2F' in b]
    assert len(ours) >= 5
    for body in ours[:5]:
        sqs.send_message(QueueUrl=twin.queue_url, MessageBody=body)
    twin.poller.drain()
    after = {row.key: row for row in rows(twin, dropped.dataset)}
    assert after == before


def test_a_deleted_object_leaves_the_index(twin: Twin) -> None:
    drops = dataset_drops("removals")[:3]
    _put(twin, drops)
    twin.poller.drain()
    assert len(rows(twin, "removals")) == 3
    twin.client("s3").delete_object(Bucket=IMAGES_BUCKET, Key=drops[0].key)
    twin.poller.drain()
    assert {row.key for row in rows(twin, "removals")} == {d.key for d in drops[1:]}


def test_a_poison_message_is_dead_lettered_and_its_neighbours_indexed(twin: Twin) -> None:
    drops = dataset_drops("poison")[:4]
    sqs = twin.client("sqs")
    sqs.send_message(QueueUrl=twin.queue_url, MessageBody='{"Records": [{"eventName": "Obj')
    _put(twin, drops)  # in the same batches as the poison message
    twin.poller.drain()
    assert {row.key: row.status for row in rows(twin, "poison")} == {
        d.key: "indexed" for d in drops
    }
    assert dead_letters(twin) == ['{"Records": [{"eventName": "Obj']


def _when(condition: object, action: object, timeout_s: float = 120) -> threading.Thread:
    """Run ``action`` once ``condition()`` holds (polled), in the background."""

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():  # type: ignore[operator]
                action()  # type: ignore[operator]
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_embedder_down_mid_batch_retries_until_everything_is_indexed(twin: Twin) -> None:
    drops = dataset_drops("embedder-outage")[:18]
    start = twin.sagemaker.invocations
    _put(twin, drops)
    # The endpoint dies after answering its third request: part of a batch is done.
    watcher = _when(lambda: twin.sagemaker.invocations >= start + 3, twin.embedder.stop)
    for _ in range(3):
        twin.poller.poll_once()
    watcher.join()
    assert twin.poller.in_queue() > 0, "the outage hit no message: the test proved nothing"
    twin.embedder.start()
    twin.poller.drain()
    assert rows_per_key(twin, "embedder-outage") == {d.key: 1 for d in drops}
    assert {row.status for row in rows(twin, "embedder-outage")} == {"indexed"}


def test_database_restart_mid_ingest_loses_and_duplicates_nothing(twin: Twin) -> None:
    drops = dataset_drops("db-restart")[:24]
    start = twin.sagemaker.invocations
    left_at_restart: list[int] = []

    def restart() -> None:
        left_at_restart.append(twin.poller.in_queue())
        twin.database.restart()

    _put(twin, drops)
    watcher = _when(lambda: twin.sagemaker.invocations >= start + 2, restart)
    twin.poller.drain()
    watcher.join()
    # Messages were still queued or in flight: the restart cut an ingest under way. Whether
    # one failed and was retried or the pool's connection check absorbed it, the rows below
    # must come out exactly once each.
    assert left_at_restart and left_at_restart[0] > 0, left_at_restart
    assert rows_per_key(twin, "db-restart") == {d.key: 1 for d in drops}
    statuses = {row.key: row.status for row in rows(twin, "db-restart")}
    assert statuses == {d.key: ("indexed" if d.valid else "failed") for d in drops}


def test_the_endpoint_over_plain_http_as_an_ecs_gpu_service_would_serve_it(twin: Twin) -> None:
    """The same ingest function with PIXDEX_EMBEDDER=http (the inference server behind a
    load balancer instead of SageMaker): the other transport the stack can be given."""
    spec = twin.functions["ingest"].spec
    environment = {
        **spec.environment, "PIXDEX_EMBEDDER": "http", "PIXDEX_EMBEDDER_URL": twin.embedder.url,
    }
    over_http = LambdaFunction(replace(spec, name="twin-ingest-http", environment=environment))
    poller = replace(twin.poller, function=over_http, stats=PollStats(), bodies=[])
    drops = dataset_drops("over-http")[:6]
    sagemaker_before = twin.sagemaker.invocations
    try:
        _put(twin, drops)
        poller.drain()
    finally:
        over_http.kill()
    assert {row.key: row.status for row in rows(twin, "over-http")} == {
        d.key: "indexed" for d in drops
    }
    assert twin.sagemaker.invocations == sagemaker_before
