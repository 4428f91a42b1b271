"""Images through the API: get, list with filters, edit tags and metadata, delete, and
their bytes (the original file and a cached JPEG thumbnail).

Every function is scoped to ``workspace``: another workspace's id is "not found".
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from uuid import UUID

from PIL import Image as PILImage

from pixdex.app.service import blobs
from pixdex.app.service.schemas import Deleted, Image, ImageList, ImagePatch
from pixdex.app.sources import normalise_folder
from pixdex.blobs import BlobRef, S3Store, store_for
from pixdex.config import Settings
from pixdex.errors import ConflictError, InvalidInputError, NoFileError, NotFoundError
from pixdex.imaging import CONTENT_TYPES, SizeFloor, decode_image
from pixdex.models import ImageRecord, ImageStatus
from pixdex.storage import catalog, images, slots
from pixdex.storage.connection import connect
from pixdex.storage.images import ListFilters as ListFilters  # the routes' filter record

THUMBNAIL_SIZES = (64, 128, 256, 512)


@dataclass(frozen=True)
class FileBytes:
    data: bytes
    content_type: str
    name: str


@dataclass(frozen=True)
class FileLink:
    """Where the client fetches the bytes itself: a short-lived presigned S3 URL."""

    url: str
    expires_s: int


def to_image(record: ImageRecord) -> Image:
    return Image(
        id=record.id, dataset_id=record.dataset_id, dataset=record.dataset, name=record.name,
        folder=record.folder, status=record.status.value, error=record.error,
        width=record.width, height=record.height, format=record.format,
        byte_size=record.byte_size, sha256=record.sha256, created=record.created_at,
        tags=record.user_tags, annotations=record.annotation_classes, split=record.split,
        batch_id=record.batch_id, annotation_job_id=record.annotation_job_id,
        metadata=record.metadata, auto_tags=record.auto_tags,
        has_file=record.storage_key is not None,
        file_url=file_url(record.id), thumbnail_url=thumbnail_url(record.id),
    )


def file_url(image_id: UUID) -> str:
    return f"/v1/images/{image_id}/file"


def thumbnail_url(image_id: UUID) -> str:
    return f"/v1/images/{image_id}/thumbnail"


def get_image(settings: Settings, workspace: str, image_id: UUID) -> Image:
    with connect(settings) as conn:
        slots.expire_overdue(conn)
        return to_image(images.get_image(conn, workspace, image_id))


def list_images(
    settings: Settings, workspace: str, dataset_id: UUID, filters: images.ListFilters,
    *, offset: int, limit: int,
) -> ImageList:
    with connect(settings) as conn:
        dataset = catalog.get_dataset_by_id(conn, workspace, dataset_id)
        slots.expire_overdue(conn)
        total, records = images.list_records(conn, dataset.id, filters, offset=offset, limit=limit)
    return ImageList(offset=offset, total=total, images=[to_image(r) for r in records])


def update_image(settings: Settings, workspace: str, image_id: UUID, patch: ImagePatch) -> Image:
    given = patch.model_fields_set
    with connect(settings) as conn, conn.transaction():
        current = images.get_image(conn, workspace, image_id)
        changes: dict[str, object] = {}
        if {"tags", "add_tags", "remove_tags"} & given:
            tags = list(current.user_tags) if "tags" not in given else list(patch.tags or [])
            tags += [t for t in patch.add_tags if t not in tags]
            changes["user_tags"] = [t for t in dict.fromkeys(tags) if t not in patch.remove_tags]
        if "annotations" in given:
            changes["annotation_classes"] = patch.annotations or {}
        if "metadata" in given:
            changes["metadata"] = patch.metadata or {}
        for column in ("split", "batch_id", "annotation_job_id"):
            if column in given:
                changes[column] = getattr(patch, column)
        if "folder" in given:
            changes["folder"] = normalise_folder(patch.folder or "/")
        return to_image(images.update_record(conn, workspace, image_id, changes))


def delete_image(settings: Settings, workspace: str, image_id: UUID) -> Deleted:
    with connect(settings) as conn:
        record = images.delete_record(conn, workspace, image_id)
    if record.storage_key is not None and blobs.is_upload(settings, record.storage_key):
        blobs.delete_quietly(_ref(record))
    return Deleted(id=image_id)


def _ref(record: ImageRecord, wanted: str = "file") -> BlobRef:
    if record.storage_key is None:
        raise NoFileError(record.id, wanted=wanted)
    return BlobRef.parse(record.storage_key)


def _read(settings: Settings, record: ImageRecord) -> bytes:
    try:
        return store_for(_ref(record)).get(_ref(record), max_bytes=settings.max_file_bytes)
    except NotFoundError:
        raise NotFoundError(
            f"the file of image {record.id} is gone from storage ({record.storage_key})",
            field="image_id",
        ) from None


def image_file(settings: Settings, workspace: str, image_id: UUID) -> FileBytes | FileLink:
    """The original's bytes, or for an object in S3 a presigned link to them."""
    with connect(settings) as conn:
        record = images.get_image(conn, workspace, image_id)
    ref = _ref(record)
    if record.status is not ImageStatus.INDEXED:
        # A failed row's bytes are whatever a URL answered (a metadata service's JSON, a
        # page on the network): serving them would read back a server-side fetch.
        raise ConflictError(
            f"image {image_id} is {record.status.value}: its file is served once it is "
            "indexed", field="image_id",
        )
    content_type = CONTENT_TYPES.get(record.format or "", "application/octet-stream")
    if ref.store == "s3":
        store = store_for(ref)
        assert isinstance(store, S3Store)
        try:
            url = store.presigned_get(
                ref, expires_s=settings.presigned_url_seconds, content_type=content_type,
                filename=record.name,
            )
        except NotFoundError:
            raise NotFoundError(
                f"the file of image {record.id} is gone from storage ({record.storage_key})",
                field="image_id",
            ) from None
        return FileLink(url, settings.presigned_url_seconds)
    return FileBytes(_read(settings, record), content_type, record.name)


def thumbnail(settings: Settings, workspace: str, image_id: UUID, size: int) -> FileBytes:
    """A JPEG no larger than ``size`` on its longer side, made once and cached."""
    if size not in THUMBNAIL_SIZES:
        raise InvalidInputError(
            f"size must be one of {', '.join(map(str, THUMBNAIL_SIZES))}, got {size}",
            field="size",
        )
    with connect(settings) as conn:
        record = images.get_image(conn, workspace, image_id)
    _ref(record, "thumbnail")
    if record.status is not ImageStatus.INDEXED or record.sha256 is None:
        raise ConflictError(
            f"image {image_id} has no thumbnail: its status is {record.status.value}"
            + (f" ({record.error})" if record.error else ""), field="image_id",
        )
    name = record.name.rsplit(".", 1)[0] + f"-{size}.jpg"
    cached = blobs.ref(
        settings, blobs.thumbnail_key(record.dataset_id, record.id, record.sha256, size)
    )
    store = store_for(cached)
    try:
        return FileBytes(store.get(cached, max_bytes=settings.max_file_bytes), "image/jpeg", name)
    except NotFoundError:
        pass
    # Decoded at twice the thumbnail's size at least (JPEG by DCT scaling), as Pillow's
    # own thumbnail() drafts: LANCZOS then still has pixels to average.
    decoded = decode_image(
        _read(settings, record), max_pixels=settings.max_image_pixels,
        max_bytes=settings.max_file_bytes, floor=SizeFloor(long=2 * size),
    )
    picture = decoded.image.copy()
    picture.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    store.put(cached, data)
    return FileBytes(data, "image/jpeg", name)
