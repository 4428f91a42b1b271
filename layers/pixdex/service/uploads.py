"""Adding images through the API: JSON (base64 or URL, up to 128 per call) or multipart.

Every image's bytes are obtained first (decoded or fetched); if any cannot be, the call
fails with nothing stored. The bytes are then written to the blob store and ``pending``
rows created with the user's metadata (the dataset reads INDEXING meanwhile); the answer
(202) gives each image's id and status, and :mod:`pixdex.service.indexing` indexes them
afterwards: each becomes ``indexed``, or ``failed`` with the reason (e.g. a corrupt file).
Adding the same bytes under the same name again returns the same image id; its tags and
metadata become the new ones at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, PayloadTooLargeError
from pixdex.imaging import sniff_format
from pixdex.models import ImageMetadata
from pixdex.service import blobs, indexing
from pixdex.service.fetch import fetch_url
from pixdex.service.indexing import IndexJob
from pixdex.service.inputs import decode_base64
from pixdex.service.schemas import AddedImage, AddedImages, ImageMeta, NewImage
from pixdex.sources import normalise_folder
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
    settings: Settings, workspace: str, dataset_id: UUID, items: Sequence[NewImage]
) -> AddedImages:
    """Add images given as base64 or URLs (the JSON route)."""
    check_count(len(items), settings)
    limit = settings.max_file_bytes
    uploads: list[Upload] = []
    for n, item in enumerate(items):
        if item.name is not None:
            check_name(item.name, f"images.{n}.name")
        if item.base64 is not None:
            data = decode_base64(item.base64, max_bytes=limit, field=f"images.{n}.base64")
        else:
            assert item.url is not None
            data = fetch_url(
                item.url, max_bytes=limit, field=f"images.{n}.url",
                allow_private=settings.url_fetch_allow_private,
            )
        meta = ImageMeta.model_validate(item.model_dump(exclude={"base64", "url"}))
        uploads.append(Upload(data, meta))
    return store_and_index(settings, workspace, dataset_id, uploads)


def upload_files(
    settings: Settings, workspace: str, dataset_id: UUID,
    files: Sequence[tuple[str | None, bytes]], meta: ImageMeta,
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
    return store_and_index(settings, workspace, dataset_id, uploads)


def _name(upload: Upload, sha256: str) -> str:
    if upload.meta.name is not None:
        return check_name(upload.meta.name, "name")
    if upload.filename:
        base = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
        if base:
            return check_name(base[:200], "file")
    return f"{sha256[:12]}.{_EXTENSIONS.get(sniff_format(upload.data) or '', 'bin')}"


def image_metadata(meta: ImageMeta) -> ImageMetadata:
    return ImageMetadata(
        user_tags=meta.tags, annotation_classes=meta.annotations, batch_id=meta.batch_id,
        annotation_job_id=meta.annotation_job_id, split=meta.split, metadata=meta.metadata,
    )


def store_and_index(
    settings: Settings, workspace: str, dataset_id: UUID, uploads: Sequence[Upload]
) -> AddedImages:
    """Store the bytes and ``pending`` rows, hand the new ones to the indexer, answer."""
    with connect(settings) as conn:
        dataset = catalog.get_dataset_by_id(conn, workspace, dataset_id)
    rows: list[PendingRow] = []
    for upload in uploads:
        sha256 = hashlib.sha256(upload.data).hexdigest()
        key = blobs.upload_key(dataset.id, sha256, _name(upload, sha256))
        target: BlobRef = blobs.ref(settings, key)
        folder = normalise_folder(upload.meta.folder or "/")
        store_for(target).put(target, upload.data)
        name = key.rsplit("/", 1)[-1]
        rows.append(PendingRow(target.uri, name, folder, image_metadata(upload.meta)))
    with connect(settings) as conn:
        found = pending.insert_pending(conn, dataset.id, rows)
    added = [
        AddedImage(id=found[row.storage_key][0], name=row.name,
                   status=found[row.storage_key][1].value)
        for row in rows
    ]
    waiting = list(dict.fromkeys(a.id for a in added if a.status == "pending" and a.id))
    if waiting:
        indexing.submit(settings, IndexJob(workspace=workspace, dataset_id=dataset.id,
                                           image_ids=waiting))
    return AddedImages(
        pending=sum(a.status == "pending" for a in added),
        indexed=sum(a.status == "indexed" for a in added),
        failed=sum(a.status == "failed" for a in added),
        images=added,
    )
