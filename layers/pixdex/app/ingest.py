"""Ingest: storage references in, indexed (or failed) image rows out.

The pipeline keeps the model busy (ingest is meant to be model-bound):

* a thread pool reads and hashes files and runs :func:`pixdex.pipeline.prepare` (decode,
  pixel attributes, the model's preprocessing), handing over only the small model tensors
  (the decoded full-size picture is dropped in the worker, so memory stays bounded by
  the look-ahead window);
* the calling thread runs :func:`pixdex.pipeline.analyse` on full batches (onnxruntime
  releases the GIL, so decoding of the next batch overlaps inference);
* a writer thread upserts each finished batch in one transaction.

With a remote embedder (``PIXDEX_EMBEDDER=http|sagemaker``) the workers only read and hash
the files: the original bytes (or, when too large for one request, the S3 reference) go to
the inference server, which decodes, tags and embeds them next to the model, and answers
with everything a row needs (size, format, attributes, objects, embedding), computed by
the same pipeline there.

Besides the model's embedding each image gets the dataset's other named vectors
(:mod:`pixdex.app.model_choice`): the offline model's ImageNet class probabilities (prompt
search) and any model added with ``pixdex reembed``.

Idempotent by content: a reference whose sha256 matches an indexed row is skipped without
decoding; a changed file is re-indexed in place (same id). Bad files (empty, truncated,
corrupt, not an image, too large, decompression bombs) become ``failed`` rows with the
reason; nothing else in the run is affected.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from uuid import UUID

from pixdex.app.curation import refresh_images
from pixdex.app.curation_schemas import DuplicateGate
from pixdex.app.duplicate_gate import GateCheck, Match, dataset_gate
from pixdex.app.model_choice import Tagging, embed_extras, extra_models, register_models
from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings, get_settings
from pixdex.embedder.client import ImageSource, RemoteEmbedder
from pixdex.engines import get_model
from pixdex.errors import PixdexError
from pixdex.inference.base import EmbeddingModel
from pixdex.inference.specs import class_vector_spec
from pixdex.models import AutoTags, ImageStatus, IndexedFile, IndexReport, UserMetadata
from pixdex.pipeline import Prepared, analyse, prepare
from pixdex.storage import catalog, curation, dataset_indexes, images
from pixdex.storage.connection import connect
from pixdex.storage.vectors import index_dataset_if_over

ProgressCallback = Callable[[int], None]
# Autovacuum catches up eventually; a run this large refreshes statistics at once.
_ANALYZE_AFTER = 1000


@dataclass(frozen=True)
class IngestItem:
    """One object to index: where it is, the folder it is shown under, what the user said."""

    ref: BlobRef
    folder: str = "/"
    meta: UserMetadata = field(default_factory=UserMetadata)
    display: str | None = None  # what reports call it (a local path); defaults to the URI
    # An image the API added: complete its pending row, never (re)create one.
    pending_only: bool = False

    @property
    def label(self) -> str:
        return self.display or self.ref.uri


@dataclass
class _Loaded:
    item: IngestItem
    write: images.ImageWrite
    prepared: Prepared | None = None  # local model: decoded, reduced to the model tensors
    data: bytes | None = None  # remote embedder: the original bytes, decoded over there
    skipped: bool = False
    duplicate: Match | None = None  # what the duplicate gate matched it with


def ingest(
    items: Sequence[IngestItem],
    dataset: str,
    *,
    workspace: str | None = None,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    gate: DuplicateGate | None = None,
) -> IndexReport:
    """Index ``items`` into ``dataset`` (created if needed) and report per item.

    ``gate``: what to do with near-duplicates of images the dataset (or this run) has;
    None: the dataset's own gate (:mod:`pixdex.app.duplicate_gate`)."""
    settings = settings or get_settings()
    workspace = workspace or settings.workspace
    items = list({item.ref.uri: item for item in items}.values())  # same object twice: once
    model = get_model(settings.model, settings)
    with connect(settings) as conn:
        ds = catalog.ensure_dataset(conn, workspace, dataset)
        register_models(conn, model, ds.id)
        extras = extra_models(conn, model, ds.id, settings)
        known: dict[str, images.KnownImage] = {}
        uris = [item.ref.uri for item in items]
        for start in range(0, len(uris), 1000):
            known.update(images.known_images(conn, ds.id, uris[start : start + 1000]))
        checker = GateCheck(settings, gate or dataset_gate(conn, ds.id), ds.id, model.spec.name)

    tagging = Tagging(extras, settings, workspace)
    report = IndexReport()
    writer = _BatchWriter(settings, model.spec.name, report, ds.id)
    try:
        batch: list[_Loaded] = []
        for loaded in _load_all(items, ds.id, known, settings, model, extras):
            if loaded.skipped:
                previous = known[loaded.item.ref.uri]
                report.skipped += 1
                report.images.append(
                    IndexedFile(path=loaded.item.label, id=previous.id, status="skipped")
                )
                if progress:
                    progress(1)
                continue
            batch.append(loaded)
            if len(batch) >= settings.batch_size:
                writer.submit(
                    _gated(checker, _embed(model, batch, settings, tagging), report, progress),
                    progress,
                )
                batch = []
        if batch:
            gated = _gated(checker, _embed(model, batch, settings, tagging), report, progress)
            writer.submit(gated, progress)
    finally:
        writer.close()
    _resolve_duplicates(settings, checker, report)
    if report.indexed:
        with connect(settings) as conn:
            if report.indexed >= _ANALYZE_AFTER:
                images.refresh_statistics(conn)
            # Checked on the pooled connection: most ingests need no index.
            due = dataset_indexes.needs_index(
                conn, model=model.spec.name, dataset_id=ds.id,
                min_rows=settings.exact_search_max_rows,
            )
        if due:
            # A dataset outgrowing the exact path gets its own HNSW index (once), built
            # CONCURRENTLY: a plain build would hold off every writer of image_embeddings,
            # in every dataset, for as long as it runs (minutes past 100k rows).
            index_dataset_if_over(
                settings, model.spec.name, model.spec.dim, "cosine", ds.id,
                min_rows=settings.exact_search_max_rows,
                rows=settings.exact_search_max_rows + report.indexed,
            )
    position = {item.label: index for index, item in enumerate(items)}
    report.images.sort(key=lambda entry: position.get(entry.path, len(position)))
    return report


def _gated(
    checker: GateCheck, batch: list[_Loaded], report: IndexReport,
    progress: ProgressCallback | None,
) -> list[_Loaded]:
    """Match each embedded image at the gate. ``skip``: a match is not written (an API
    image's pending row becomes failed, saying what it duplicates, so its caller sees why)."""
    if not checker.active:
        return batch
    kept: list[_Loaded] = []
    with connect(checker.settings) as conn:
        for loaded in batch:
            write = loaded.write
            if write.embedding is not None and write.status is ImageStatus.INDEXED:
                loaded.duplicate = checker.check(conn, loaded.item.label, write.embedding)
            if loaded.duplicate is None or checker.gate.on_duplicate != "skip":
                kept.append(loaded)
                continue
            reason = loaded.duplicate.describe(checker.gate.level)
            if loaded.item.pending_only:
                write.status, write.error = ImageStatus.FAILED, reason
                write.embedding, write.vectors = None, {}
                kept.append(loaded)
                continue
            report.skipped += 1
            report.images.append(IndexedFile(path=loaded.item.label, id=None,
                                             status="skipped", error=reason))
            if progress:
                progress(1)
    return kept


def _resolve_duplicates(settings: Settings, checker: GateCheck, report: IndexReport) -> None:
    """Name each gated image's match by id (one earlier in the run had none yet) and
    record the ``link`` relations."""
    ids = {entry.path: entry.id for entry in report.images}
    links = []
    for entry, match in checker.matches:
        entry_id = ids.get(entry)
        match_id = match.id if match.id is not None else ids.get(match.label or "")
        for found in report.images:
            if found.path == entry:
                found.duplicate_of = match_id
        if checker.gate.on_duplicate == "link" and entry_id is not None and match_id is not None:
            links.append((entry_id, match_id, checker.gate.level, match.score))
    if links:
        with connect(settings) as conn:
            curation.record_links(conn, links)


def _load_all(
    items: Sequence[IngestItem],
    dataset_id: object,
    known: dict[str, images.KnownImage],
    settings: Settings,
    model: EmbeddingModel,
    extras: Sequence[EmbeddingModel] = (),
) -> Iterator[_Loaded]:
    """Load items in a thread pool, yielding in input order with a bounded look-ahead."""
    lookahead = max(2 * settings.batch_size, 4 * settings.decode_workers)
    with ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="pixdex-decode") as pool:
        pending: queue.SimpleQueue[Future[_Loaded]] = queue.SimpleQueue()
        in_flight = 0
        iterator = iter(items)
        exhausted = False
        while True:
            while not exhausted and in_flight < lookahead:
                try:
                    item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                pending.put(
                    pool.submit(_load_one, item, dataset_id, known, settings, model, extras)
                )
                in_flight += 1
            if in_flight == 0:
                return
            in_flight -= 1
            yield pending.get().result()


def _load_one(
    item: IngestItem,
    dataset_id: object,
    known: dict[str, images.KnownImage],
    settings: Settings,
    model: EmbeddingModel,
    extras: Sequence[EmbeddingModel] = (),
) -> _Loaded:
    name = PurePosixPath(item.ref.key).name
    write = images.ImageWrite(
        dataset_id=dataset_id,  # type: ignore[arg-type]
        storage_key=item.ref.uri,
        name=name,
        folder=item.folder,
        sha256=None,
        byte_size=None,
        status=ImageStatus.FAILED,
        meta=item.meta,
        pending_only=item.pending_only,
    )
    try:
        data = store_for(item.ref).get(item.ref, max_bytes=settings.max_file_bytes)
        write.byte_size = len(data)
        write.sha256 = hashlib.sha256(data).hexdigest()
        previous = known.get(item.ref.uri)
        if (
            previous is not None
            and previous.sha256 == write.sha256
            and previous.status is ImageStatus.INDEXED
        ):
            return _Loaded(item, write, skipped=True)
        if isinstance(model, RemoteEmbedder):
            return _Loaded(item, write, data=data)
        prepared = prepare(data, model, settings, extras)
        write.width, write.height, write.format = prepared.width, prepared.height, prepared.format
        write.auto_tags = AutoTags(attributes=prepared.attributes)
        return _Loaded(item, write, prepared=prepared)
    except PixdexError as exc:
        write.error = exc.message
        return _Loaded(item, write)
    except OSError as exc:  # unreadable file (permissions, vanished mid-run)
        write.error = f"cannot read file: {exc.strerror or exc}"
        return _Loaded(item, write)


def _embed(
    model: EmbeddingModel, batch: list[_Loaded], settings: Settings,
    tagging: Tagging | None = None,
) -> list[_Loaded]:
    if isinstance(model, RemoteEmbedder):
        return _embed_remote(model, batch)
    ready = [(loaded.prepared, loaded.write) for loaded in batch if loaded.prepared is not None]
    if ready:
        classes = class_vector_spec(model.spec)
        analyses = analyse(model, [prepared for prepared, _ in ready], settings)
        for (_, write), analysis in zip(ready, analyses, strict=True):
            write.embedding = analysis.embedding
            if classes is not None and analysis.class_scores is not None:
                write.vectors[classes.name] = analysis.class_scores
            write.auto_tags = analysis.tags
            write.status = ImageStatus.INDEXED
        embed_extras(ready, settings)
        if tagging is not None:
            tagging.apply([write for _, write in ready])
        for loaded in batch:
            loaded.prepared = None
    return batch


def _embed_remote(model: RemoteEmbedder, batch: list[_Loaded]) -> list[_Loaded]:
    ready = [loaded for loaded in batch if loaded.data is not None]
    sources = [ImageSource(data=loaded.data, ref=loaded.item.ref) for loaded in ready]
    # Transport failures raise (the run stops, nothing half-written); bad images come back
    # as per-image errors and become failed rows like local decode errors do.
    classes = class_vector_spec(model.spec)
    analyses = model.analyze(sources, class_scores=classes is not None)
    for loaded, analysis in zip(ready, analyses, strict=True):
        write = loaded.write
        loaded.data = None
        if analysis.error is not None or analysis.embedding is None or analysis.meta is None:
            write.error = analysis.error.message if analysis.error else "no embedding returned"
            continue
        write.width, write.height = analysis.meta.width, analysis.meta.height
        write.format = analysis.meta.format
        write.auto_tags = analysis.tags or AutoTags()
        write.embedding = analysis.embedding
        if classes is not None and analysis.class_scores is not None:
            write.vectors[classes.name] = analysis.class_scores
        write.status = ImageStatus.INDEXED
    return batch


class _BatchWriter:
    """Writes finished batches on its own thread and connection, in submission order."""

    def __init__(
        self, settings: Settings, model: str, report: IndexReport, dataset_id: UUID
    ) -> None:
        self._settings = settings
        self._model = model
        self._dataset_id = dataset_id
        self._report = report
        self._queue: queue.Queue[tuple[list[_Loaded], ProgressCallback | None] | None] = (
            queue.Queue(maxsize=2)
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pixdex-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: list[_Loaded], progress: ProgressCallback | None) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((batch, progress))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain; the error is raised to the caller
            batch, progress = job
            try:
                with connect(self._settings) as conn:
                    ids = images.write_images(conn, self._model, [b.write for b in batch])
                # Live curation: the new images get their neighbours now (one kNN each).
                refresh_images(self._settings, self._dataset_id, self._model)
            except BaseException as exc:
                self._error = exc
                continue
            for loaded, image_id in zip(batch, ids, strict=True):
                if image_id is None:  # its pending row was deleted or done meanwhile
                    self._report.skipped += 1
                    self._report.images.append(
                        IndexedFile(path=loaded.item.label, id=None, status="skipped",
                                    error="no longer pending (deleted or indexed meanwhile)")
                    )
                    continue
                failed = loaded.write.status is ImageStatus.FAILED
                self._report.images.append(
                    IndexedFile(
                        path=loaded.item.label,
                        id=image_id,
                        status="failed" if failed else "indexed",
                        error=loaded.write.error,
                    )
                )
                if failed:
                    self._report.failed += 1
                else:
                    self._report.indexed += 1
            if progress:
                progress(len(batch))
