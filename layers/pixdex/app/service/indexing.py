"""Indexing images added through the API after the answer (202 + ``pending``).

The API stores the bytes and ``pending`` rows, answers at once, and hands the ids on:

* with ``PIXDEX_INDEX_QUEUE_URL`` (the AWS stack) as one SQS message on the object-event
  queue, which the ``ingest`` function drains like the bucket's events: retried on
  failure, dead-lettered after the queue's receive limit, and never bounded by API
  Gateway's 29 s;
* otherwise to this process's background indexer (``pixdex serve``): one thread, jobs in
  order; an indexing run that raises marks its rows ``failed`` with the reason.

Either way :func:`index_pending` does the work: the same :func:`pixdex.app.ingest.ingest` as
every other path, over the rows' own folder, tags and metadata.
"""

from __future__ import annotations

import logging
import queue
import threading
from functools import cache
from typing import TYPE_CHECKING, Any, TypeGuard
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from pixdex.app.curation_schemas import DuplicateGate
from pixdex.app.ingest import IngestItem, ingest
from pixdex.app.service import blobs
from pixdex.blobs import BlobRef
from pixdex.config import Settings
from pixdex.errors import NotFoundError, ServiceUnavailableError
from pixdex.models import IndexReport
from pixdex.storage import catalog, pending
from pixdex.storage.connection import connect

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

__all__ = [
    "IndexJob", "fail_job", "index_pending", "is_index_job", "resume_waiting", "submit",
]

log = logging.getLogger(__name__)
JOB_KEY = "pixdex_index"


class IndexJob(BaseModel):
    """The queue message's body: ``{"pixdex_index": {...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace: str = Field(min_length=1, max_length=100)
    dataset_id: UUID
    image_ids: list[UUID] = Field(min_length=1, max_length=1024)
    # The request's duplicate gate; None: the dataset's.
    gate: DuplicateGate | None = None

    def body(self) -> str:
        return f'{{"{JOB_KEY}": {self.model_dump_json()}}}'


def is_index_job(raw: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(raw, dict) and JOB_KEY in raw


def index_pending(settings: Settings, job: IndexJob) -> IndexReport:
    """Index the job's rows that are still pending (a redelivered job finds none).

    Rows are completed in place, never re-created: a row deleted while it waited stays
    deleted, and tags a user set meanwhile stay (``pending_only`` writes). A job whose
    dataset was deleted since has nothing to do.
    """
    with connect(settings) as conn:
        try:
            dataset = catalog.get_dataset_by_id(conn, job.workspace, job.dataset_id)
        except NotFoundError:
            return IndexReport()
        rows = pending.pending_rows(conn, dataset.id, job.image_ids)
    items = [
        IngestItem(BlobRef.parse(r.storage_key), r.folder, r.meta, pending_only=True)
        for r in rows
    ]
    return ingest(items, dataset.name, workspace=job.workspace, settings=settings,
                  gate=job.gate)


def fail_job(settings: Settings, job: IndexJob, reason: str) -> None:
    """The job's images still pending become ``failed`` with ``reason``."""
    with connect(settings) as conn:
        try:
            dataset = catalog.get_dataset_by_id(conn, job.workspace, job.dataset_id)
        except NotFoundError:
            return
        pending.fail_pending(conn, dataset.id, job.image_ids, reason)


class _BackgroundIndexer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jobs: queue.SimpleQueue[IndexJob] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="pixdex-indexer", daemon=True).start()

    def submit(self, job: IndexJob) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                index_pending(self._settings, job)
            except Exception as exc:
                log.exception("indexing %d added images failed", len(job.image_ids))
                reason = getattr(exc, "message", None) or type(exc).__name__
                try:
                    fail_job(self._settings, job, f"indexing failed: {reason}")
                except Exception:
                    log.exception("could not mark the images failed")


_indexers: dict[Settings, _BackgroundIndexer] = {}
_lock = threading.Lock()


@cache
def _sqs(region: str | None) -> SQSClient:
    import boto3  # deferred: only the AWS API function sends jobs to a queue

    return boto3.client("sqs", region_name=region)


def submit(settings: Settings, job: IndexJob) -> None:
    """Have ``job`` indexed after this request (see the module docstring)."""
    if settings.index_queue_url:
        try:
            _sqs(settings.aws_region).send_message(
                QueueUrl=settings.index_queue_url, MessageBody=job.body()
            )
        except (BotoCoreError, ClientError) as exc:
            # Nothing would ever index these rows: say so on them and to the caller.
            fail_job(settings, job, "could not be queued for indexing; add it again")
            log.error("index job not queued: %s", exc)
            raise ServiceUnavailableError(
                "the images were stored but could not be queued for indexing; add them again"
            ) from exc
        return
    with _lock:
        indexer = _indexers.get(settings)
        if indexer is None:
            indexer = _indexers[settings] = _BackgroundIndexer(settings)
    indexer.submit(job)


def resume_waiting(settings: Settings) -> int:
    """Resubmit the API's uploads still ``pending`` (a server stopped before indexing
    them); the number of images. ``pixdex serve`` calls it when it starts."""
    waiting: dict[tuple[str, UUID], list[UUID]] = {}
    with connect(settings) as conn:
        for folder in ("uploads/", "slots/"):
            found = pending.waiting_uploads(conn, blobs.ref(settings, folder).uri)
            for place, ids in found.items():
                waiting.setdefault(place, []).extend(ids)
    for (workspace, dataset_id), ids in waiting.items():
        for start in range(0, len(ids), 1024):
            chunk = ids[start : start + 1024]
            submit(settings, IndexJob(workspace=workspace, dataset_id=dataset_id,
                                      image_ids=chunk))
    return sum(len(ids) for ids in waiting.values())
