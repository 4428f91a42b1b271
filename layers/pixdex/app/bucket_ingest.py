"""Apply S3 object events to the index: what the ``ingest`` Lambda does per SQS message.

The queue also carries the API's index jobs (images added through the API, stored and
``pending``; see :mod:`pixdex.app.service.indexing`): :func:`handle_queue_message` tells the
two apart.

For each object event in a message (see :mod:`pixdex.app.s3_events` for parsing and the key
layout), under a per-object lock:

1. an event whose ``sequencer`` is not newer than the last one applied for that object
   is a redelivery (equal) or out of order (older) and changes nothing;
2. ``created``: the object is ingested (the same :func:`pixdex.app.ingest.ingest` as the CLI:
   content-idempotent, bad images become ``failed`` rows);
   ``removed``: its row leaves the index, unless the object still exists (a noncurrent
   version was deleted in a versioned bucket, or it was re-created since);
3. the event is recorded as the object's latest, in the same transaction as the lock.

If step 2 fails (database or embedder unavailable) nothing is recorded and the error
propagates: the message is retried, and redoing the work is harmless because ingest and
removal are idempotent. Bad input (a malformed body, an invalid dataset name) raises
``InvalidInputError``: the batch reports it as failed and SQS moves it to the DLQ after its
retries. Objects outside any dataset (bucket root, folder markers) are ignored.

Objects under the API's blob root (``PIXDEX_BLOB_ROOT``) are files PUT to upload slots
(:mod:`pixdex.app.service.slots`): the image the slot made is indexed (in step 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError

from pixdex.app.ingest import IngestItem, ingest
from pixdex.app.removal import remove
from pixdex.app.s3_events import (
    S3Notification,
    S3ObjectEvent,
    dataset_and_folder,
    load_body,
    parse_s3_message,
    parse_s3_notification,
)
from pixdex.app.service import blobs, slots
from pixdex.app.service.indexing import JOB_KEY, IndexJob, fail_job, index_pending, is_index_job
from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError
from pixdex.storage import ingest_events
from pixdex.storage.connection import connect

__all__ = [
    "AddedOutcome",
    "MessageOutcome",
    "ObjectOutcome",
    "apply_object_event",
    "handle_queue_message",
    "handle_s3_message",
]

log = logging.getLogger(__name__)

Action = Literal[
    "indexed", "skipped", "failed", "removed", "absent", "kept", "duplicate", "stale", "ignored"
]


class ObjectOutcome(BaseModel):
    """What one object event did. ``failed`` means indexed as a failed row (bad image)."""

    bucket: str
    key: str
    event: Literal["created", "removed"]
    action: Action
    dataset: str | None = None
    image_id: UUID | None = None
    reason: str | None = None


class AddedOutcome(BaseModel):
    """What indexing images added through the API did (a redelivery finds none pending)."""

    dataset_id: UUID
    indexed: int
    failed: int
    skipped: int


class MessageOutcome(BaseModel):
    test_event: bool = False
    objects: list[ObjectOutcome] = Field(default_factory=list)
    added: AddedOutcome | None = None


def handle_queue_message(
    body: str, settings: Settings, *, receive_count: int = 1
) -> MessageOutcome:
    """One message of the ingest queue: S3 object events, or images the API added.

    ``receive_count``: SQS's ApproximateReceiveCount. An index job failing on its last
    delivery (``settings.index_max_receives``) marks its images failed with the reason
    before the message goes to the dead-letter queue.
    """
    raw = load_body(body)
    if is_index_job(raw):
        try:
            job = IndexJob.model_validate(raw[JOB_KEY])
        except ValidationError as exc:
            raise InvalidInputError(f"malformed index job: {exc.errors()[0]['msg']}",
                                    field="body") from exc
        try:
            report = index_pending(settings, job)
        except Exception as exc:
            last = settings.index_max_receives
            if last is not None and receive_count >= last:
                reason = getattr(exc, "message", None) or type(exc).__name__
                fail_job(settings, job, f"indexing failed {receive_count} times: {reason}")
            raise
        added = AddedOutcome(dataset_id=job.dataset_id, indexed=report.indexed,
                             failed=report.failed, skipped=report.skipped)
        return MessageOutcome(added=added)
    return _apply_notification(parse_s3_notification(raw), settings)


def handle_s3_message(body: str, settings: Settings) -> MessageOutcome:
    """Apply every object event in one SQS message body, in order."""
    return _apply_notification(parse_s3_message(body), settings)


def _apply_notification(notification: S3Notification, settings: Settings) -> MessageOutcome:
    outcome = MessageOutcome(test_event=notification.test_event)
    for event in notification.events:
        result = apply_object_event(event, settings)
        log.info(
            "s3 event applied",
            extra={"bucket": result.bucket, "key": result.key, "action": result.action},
        )
        outcome.objects.append(result)
    return outcome


def apply_object_event(event: S3ObjectEvent, settings: Settings) -> ObjectOutcome:
    base = ObjectOutcome(bucket=event.bucket, key=event.key, event=event.kind, action="ignored")
    ref = BlobRef("s3", event.bucket, event.key)
    apply: Callable[[], ObjectOutcome]
    if blobs.is_api_storage(settings, ref.uri):
        # The API's own bucket: only a file PUT to an upload slot means anything here.
        if not blobs.is_slot(settings, ref.uri):
            return base.model_copy(update={"reason": "the API's own storage, not a slot"})
        apply = partial(_apply_slot, event, ref, settings, base)
    else:
        placement = dataset_and_folder(event.key)
        if placement is None:
            return base.model_copy(
                update={"reason": "key names no dataset (expected <dataset>/<folder...>/<file>)"}
            )
        dataset, folder = placement
        base = base.model_copy(update={"dataset": dataset})
        apply = partial(_apply, event, ref, dataset, folder, settings, base)
    workspace = settings.workspace
    if event.sequencer is None:  # no order known: apply; both actions are idempotent
        return apply()
    sequencer = ingest_events.normalise_sequencer(event.sequencer)
    with connect(settings) as conn:
        ingest_events.lock_object(conn, workspace, event.bucket, event.key)
        last = ingest_events.last_sequencer(conn, workspace, event.bucket, event.key)
        if last is not None and last >= sequencer:
            action: Action = "duplicate" if last == sequencer else "stale"
            return base.model_copy(update={"action": action})
        result = apply()
        if result.action != "kept":  # a kept object's own newer event must still apply
            ingest_events.record_event(
                conn, workspace, event.bucket, event.key, sequencer, event.version_id,
                event.kind,
            )
        return result


def _apply_slot(
    event: S3ObjectEvent, ref: BlobRef, settings: Settings, base: ObjectOutcome
) -> ObjectOutcome:
    """A file PUT to an upload slot: index its (pending) image."""
    if event.kind == "removed":
        return base.model_copy(update={"reason": "an upload slot's file; the image stays"})
    job = slots.received_in_bucket(settings, ref)
    if job is None:
        return base.model_copy(update={"reason": "no image has this upload slot (deleted?)"})
    report = index_pending(settings, job)
    entry = report.images[0] if report.images else None
    return base.model_copy(update={
        "action": entry.status if entry else "skipped", "image_id": job.image_ids[0],
        "reason": entry.error if entry else None,
    })


def _apply(
    event: S3ObjectEvent,
    ref: BlobRef,
    dataset: str,
    folder: str,
    settings: Settings,
    base: ObjectOutcome,
) -> ObjectOutcome:
    if event.kind == "created":
        report = ingest([IngestItem(ref, folder)], dataset, settings=settings)
        entry = report.images[0]
        action: Action = entry.status
        return base.model_copy(
            update={"action": action, "image_id": entry.id, "reason": entry.error}
        )
    try:
        store_for(ref).stat(ref)
    except NotFoundError:
        pass
    else:
        return base.model_copy(
            update={"action": "kept", "reason": "the object still exists (a newer version)"}
        )
    try:
        removed = remove(dataset, uris=[ref.uri], settings=settings)
    except NotFoundError:  # the dataset itself does not exist: nothing to remove
        return base.model_copy(update={"action": "absent"})
    if not removed.images:
        return base.model_copy(update={"action": "absent"})
    return base.model_copy(update={"action": "removed", "image_id": removed.images[0].id})
