"""Adding images through the API: JSON (base64 or URL, up to 128 per call) or multipart.

Each image's bytes are obtained (decoded or fetched) and written to the blob store one
after the other; if any cannot be obtained, the call fails and the files it stored are
deleted again, so nothing of it remains. ``pending`` rows are then created with the
user's metadata (the dataset reads INDEXING meanwhile); the answer
(202) gives each image's id and status, and :mod:`pixdex.app.service.indexing` indexes them
afterwards: each becomes ``indexed``, or ``failed`` with the reason (e.g. a corrupt file).
Adding the same bytes under the same name again returns the same image id; its tags and
metadata become the new ones at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from pixdex.app.curation_schemas import DuplicateGate
from pixdex.app.service import blobs, indexing
from pixdex.app.service.fetch import fetch_url
from pixdex.app.service.indexing import IndexJob
from pixdex.app.service.schemas import AddedImage, AddedImages, ImageMeta, NewImage
from pixdex.app.sources import normalise_folder
from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError, PayloadTooLargeError, PixdexError
from pixdex.imaging import sniff_format
from pixdex.imaging.base64_text import decode_base64
from pixdex.models import UserMetadata
from pixdex.storage import catalog, pending
from pixdex.storage.connection import connect
from pixdex.storage.pending import PendingRow

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
               "TIFF": "tiff", "HEIF": "heic", "AVIF": "avif"}


@dataclass(frozen=True)
class Upload:
    data: bytes
    meta: ImageMeta
    filename: str | None = None  # from a multipart part


def check_count(count: int, settings: Settings, field: str = "images") -> None:
    if count > settings.max_images_per_request:
        raise PayloadTooLargeError(
            f"{count} images in one call; send at most {settings.max_images_per_request} "
            "per call", field=field,
        )
    if count == 0:
        raise InvalidInputError("no image given", field=field)


def check_name(name: str, field: str) -> str:
    if (
        "/" in name or "\\" in name or "\x00" in name or name.startswith(".")
        or name != name.strip() or len(name.encode("utf-8")) > 255 or not name
    ):
        raise InvalidInputError(
            f"{field}: {name[:80]!r} is not a usable file name (no '/', '\\', leading '.', "
            "surrounding spaces; at most 255 bytes)", field=field,
        )
    return name


def add_images(
    settings: Settings, workspace: str, dataset_id: UUID, items: Sequence[NewImage],
    gate: DuplicateGate | None = None,
) -> AddedImages:
    """Add images given as base64 or URLs (the JSON route).

    Each image is stored as soon as it is obtained, so a call holds one fetched image in
    memory at a time (not 128 x 64 MiB), and the URLs of one call may fetch at most
    ``settings.max_fetch_bytes_per_request`` in all. If any image cannot be obtained, the
    files this call stored are deleted again: nothing of a refused call remains.
    """
    check_count(len(items), settings)
    for n, item in enumerate(items):
        if item.name is not None:
            check_name(item.name, f"images.{n}.name")
    with connect(settings) as conn:
        dataset = catalog.get_dataset_by_id(conn, workspace, dataset_id)
    stored: list[_Stored] = []
    fetched = 0
    try:
        for n, item in enumerate(items):
            meta = ImageMeta.model_validate(item.model_dump(exclude={"base64", "url"}))
            data = _obtain(settings, item, n, fetched)
            stored.append(_store(settings, dataset.id, Upload(data, meta)))
            del data  # one image in memory at a time
            if item.url is not None:
                fetched += stored[-1].size
    except BaseException:
        for done in stored:
            if done.created:
                blobs.delete_quietly(done.ref)
        raise
    return _index(settings, workspace, dataset.id, [done.row for done in stored], gate)


def add_images_each(
    settings: Settings, workspace: str, dataset_id: UUID, items: Sequence[NewImage]
) -> list[AddedImage]:
    """As :func:`add_images`, but each image stands alone (Clarifai's inputs): one whose
    bytes cannot be obtained (a bad URL, bad base64) is answered ``failed`` with the reason
    and the others are added. A URL is kept as the image's ``metadata.source_url``."""
    check_count(len(items), settings)
    with connect(settings) as conn:
        dataset = catalog.get_dataset_by_id(conn, workspace, dataset_id)
    answers: list[AddedImage | None] = []
    rows: list[PendingRow] = []
    fetched = 0
    for n, item in enumerate(items):
        try:
            if item.name is not None:
                check_name(item.name, f"images.{n}.name")
            meta = ImageMeta.model_validate(item.model_dump(exclude={"base64", "url"}))
            if item.url is not None:
                meta.metadata = {**meta.metadata, "source_url": item.url}
            data = _obtain(settings, item, n, fetched)
        except PixdexError as exc:
            name = item.name or item.url or f"images.{n}"
            answers.append(AddedImage(id=None, name=name[:255], status="failed",
                                      error=exc.message))
            continue
        done = _store(settings, dataset.id, Upload(data, meta))
        del data  # one image in memory at a time
        fetched += done.size if item.url is not None else 0
        rows.append(done.row)
        answers.append(None)
    added = iter(_index(settings, workspace, dataset.id, rows).images if rows else [])
    return [answer if answer is not None else next(added) for answer in answers]


def _obtain(settings: Settings, item: NewImage, n: int, fetched: int) -> bytes:
    limit = settings.max_file_bytes
    if item.base64 is not None:
        return decode_base64(item.base64, max_bytes=limit, field=f"images.{n}.base64")
    assert item.url is not None
    budget = settings.max_fetch_bytes_per_request - fetched
    over_budget = PayloadTooLargeError(
        f"images.{n}.url: the URLs of one call may fetch at most "
        f"{settings.max_fetch_bytes_per_request:,} bytes in all; send fewer per call",
        field=f"images.{n}.url",
    )
    if budget <= 0:
        raise over_budget
    try:
        return fetch_url(
            item.url, max_bytes=min(limit, budget), field=f"images.{n}.url",
            allow_private=settings.url_fetch_allow_private,
        )
    except PayloadTooLargeError:
        if budget < limit:  # too large for what is left of the call, not for one image
            raise over_budget from None
        raise


def upload_files(
    settings: Settings, workspace: str, dataset_id: UUID,
    files: Sequence[tuple[str | None, bytes]], meta: ImageMeta,
    gate: DuplicateGate | None = None,
) -> AddedImages:
    """Add uploaded files (the multipart route); ``meta`` applies to every file."""
    check_count(len(files), settings, field="file")
    if meta.name is not None and len(files) > 1:
        raise InvalidInputError("name applies to a single file; leave it out", field="name")
    uploads: list[Upload] = []
    for filename, data in files:
        if len(data) > settings.max_file_bytes:
            raise PayloadTooLargeError(
                f"{filename or 'file'} is {len(data):,} bytes, more than the limit of "
                f"{settings.max_file_bytes:,} bytes", field="file",
            )
        if not data:
            raise InvalidInputError(f"{filename or 'file'} is empty", field="file")
        uploads.append(Upload(data, meta, filename))
    return store_and_index(settings, workspace, dataset_id, uploads, gate)


def _name(upload: Upload, sha256: str) -> str:
    if upload.meta.name is not None:
        return check_name(upload.meta.name, "name")
    if upload.filename:
        base = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
        if base:
            return check_name(base[:200], "file")
    return f"{sha256[:12]}.{_EXTENSIONS.get(sniff_format(upload.data) or '', 'bin')}"


def image_metadata(meta: ImageMeta) -> UserMetadata:
    return UserMetadata(
        user_tags=meta.tags, annotation_classes=meta.annotations, batch_id=meta.batch_id,
        annotation_job_id=meta.annotation_job_id, split=meta.split, metadata=meta.metadata,
    )


@dataclass(frozen=True)
class _Stored:
    row: PendingRow
    ref: BlobRef
    size: int
    created: bool  # False: the same bytes under the same name were stored already


def _store(settings: Settings, dataset_id: UUID, upload: Upload) -> _Stored:
    sha256 = hashlib.sha256(upload.data).hexdigest()
    key = blobs.upload_key(dataset_id, sha256, _name(upload, sha256))
    target: BlobRef = blobs.ref(settings, key)
    store = store_for(target)
    try:
        store.stat(target)
        created = False  # its key holds its hash: the same bytes, nothing to write
    except NotFoundError:
        store.put(target, upload.data)
        created = True
    folder = normalise_folder(upload.meta.folder or "/")
    name = key.rsplit("/", 1)[-1]
    row = PendingRow(target.uri, name, folder, image_metadata(upload.meta))
    return _Stored(row, target, len(upload.data), created)


def store_and_index(
    settings: Settings, workspace: str, dataset_id: UUID, uploads: Sequence[Upload],
    gate: DuplicateGate | None = None,
) -> AddedImages:
    """Store the bytes and ``pending`` rows, hand the new ones to the indexer, answer."""
    with connect(settings) as conn:
        dataset = catalog.get_dataset_by_id(conn, workspace, dataset_id)
    rows = [_store(settings, dataset.id, upload).row for upload in uploads]
    return _index(settings, workspace, dataset.id, rows, gate)


def _index(
    settings: Settings, workspace: str, dataset_id: UUID, rows: Sequence[PendingRow],
    gate: DuplicateGate | None = None,
) -> AddedImages:
    with connect(settings) as conn:
        found = pending.insert_pending(conn, dataset_id, rows)
    added = [
        AddedImage(id=found[row.storage_key][0], name=row.name,
                   status=found[row.storage_key][1].value)
        for row in rows
    ]
    waiting = list(dict.fromkeys(a.id for a in added if a.status == "pending" and a.id))
    if waiting:
        indexing.submit(settings, IndexJob(workspace=workspace, dataset_id=dataset_id,
                                           image_ids=waiting, gate=gate))
    return AddedImages(
        pending=sum(a.status == "pending" for a in added),
        indexed=sum(a.status == "indexed" for a in added),
        failed=sum(a.status == "failed" for a in added),
        images=added,
    )
