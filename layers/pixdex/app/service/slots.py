"""Upload slots: large originals go straight to storage, not through the API's body.

API Gateway takes at most 10 MB per request, and a 12 MP HEIC or TIFF is often more. So
a client asks for slots (``POST /v1/datasets/{id}/uploads``: name, exact size and the
usual metadata per file) and gets, per file, an image id (``pending`` at once) and a URL
to PUT the bytes to without the API key:

* blobs in S3 (the AWS stack): a presigned S3 PUT URL. ``Content-Length`` is signed, so S3
  refuses any other size. The bucket's ``ObjectCreated`` event for the slot's prefix
  reaches the ingest queue, and :func:`received_in_bucket` turns it into the index job;
* blobs in a folder (``pixdex serve``): ``PUT /v1/uploads/{image_id}?expires=&size=
  &signature=`` on the server itself, signed with a key kept in ``PIXDEX_HOME`` (so it
  survives restarts); :func:`receive_local` streams the body to the folder and hands the
  image to the background indexer.

Either way the image is indexed like every other (``indexed`` or ``failed`` with the
reason), and a slot nobody uses before it expires ends ``failed``, so an abandoned upload
cannot keep its dataset INDEXING for ever.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from uuid import UUID

from pixdex.app.curation_schemas import DuplicateGate
from pixdex.app.service import blobs, indexing
from pixdex.app.service.indexing import IndexJob
from pixdex.app.service.schemas import AddedImage, CreateSlots, UploadSlot, UploadSlots
from pixdex.app.service.uploads import check_count, check_name, image_metadata
from pixdex.app.sources import normalise_folder
from pixdex.blobs import BlobRef, LocalFolderStore, S3Store, store_for
from pixdex.blobs.base import ByteSource
from pixdex.config import Settings
from pixdex.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from pixdex.storage import catalog
from pixdex.storage import slots as slot_rows
from pixdex.storage.connection import connect
from pixdex.storage.pending import PendingRow

__all__ = ["create_slots", "receive_local", "received_in_bucket"]

# S3 checks a presigned URL's expiry when the PUT starts; a large file still arriving
# after it must not find its row already failed.
UPLOAD_GRACE = timedelta(minutes=10)
_KEY_FILE = "upload-signing.key"
_key_lock = threading.Lock()


def create_slots(
    settings: Settings, workspace: str, dataset_id: UUID, request: CreateSlots, *,
    server_url: str,
) -> UploadSlots:
    """One pending image and one PUT URL per file. ``server_url``: this server's own
    address as the client reached it (the local PUT URLs point there)."""
    files = request.files
    check_count(len(files), settings, field="files")
    for n, item in enumerate(files):
        check_name(item.name, f"files.{n}.name")
        if item.size > settings.max_file_bytes:
            raise PayloadTooLargeError(
                f"files.{n}.size: {item.size:,} bytes is more than the limit of "
                f"{settings.max_file_bytes:,} bytes per image", field=f"files.{n}.size",
            )
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(
        seconds=settings.upload_slot_seconds
    )
    rows: list[PendingRow] = []
    for item in files:
        key = blobs.slot_key(dataset_id, secrets.token_hex(8), item.name)
        meta = item.model_copy(update={"name": None})
        rows.append(PendingRow(blobs.ref(settings, key).uri, item.name,
                               normalise_folder(item.folder or "/"), image_metadata(meta)))
    with connect(settings) as conn:
        dataset = catalog.get_dataset_by_id(conn, workspace, dataset_id)
        slot_rows.expire_overdue(conn)
        gate = request.duplicate_gate()
        ids = slot_rows.insert_slots(
            conn, dataset.id, rows, expires_at + UPLOAD_GRACE,
            None if gate is None else (gate.on_duplicate, gate.level),
        )
    uploads = [
        UploadSlot(
            image_id=image_id, name=row.name,
            url=_put_url(settings, BlobRef.parse(row.storage_key), image_id, item.size,
                         expires_at, server_url),
            headers={"Content-Length": str(item.size)},
        )
        for image_id, row, item in zip(ids, rows, files, strict=True)
    ]
    return UploadSlots(expires_at=expires_at, uploads=uploads)


def _put_url(
    settings: Settings, ref: BlobRef, image_id: UUID, size: int, expires_at: datetime,
    server_url: str,
) -> str:
    if ref.store == "s3":
        store = store_for(ref)
        assert isinstance(store, S3Store)
        return store.presigned_put(ref, expires_s=settings.upload_slot_seconds, size=size)
    expires = int(expires_at.timestamp())
    signature = _sign(settings, image_id, expires, size)
    return (f"{server_url.rstrip('/')}/v1/uploads/{image_id}"
            f"?expires={expires}&size={size}&signature={signature}")


@cache
def _signing_key(home: Path) -> bytes:
    """The key local upload URLs are signed with: random, made once, kept in home (0600),
    read once per process."""
    path = home / _KEY_FILE
    with _key_lock:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            home.mkdir(parents=True, exist_ok=True)
            key = secrets.token_bytes(32)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                return path.read_bytes()
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
            return key


def _sign(settings: Settings, image_id: UUID, expires: int, size: int) -> str:
    message = f"{image_id}:{expires}:{size}".encode()
    return hmac.new(_signing_key(settings.home), message, hashlib.sha256).hexdigest()


def _checked_url(
    settings: Settings, raw_id: str, query: Mapping[str, str], length: int | None
) -> tuple[UUID, int]:
    unknown = sorted(set(query) - {"expires", "size", "signature"})
    if unknown:
        raise InvalidInputError(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    try:
        image_id = UUID(raw_id)
        expires, size = int(query["expires"]), int(query["size"])
        signature = query["signature"]
    except (KeyError, ValueError):
        raise PermissionDeniedError(
            "this is not an upload URL pixdex made; PUT to the url of an upload slot, "
            "exactly as given", field="url",
        ) from None
    if not hmac.compare_digest(signature, _sign(settings, image_id, expires, size)):
        raise PermissionDeniedError(
            "the upload URL's signature does not match; use the slot's url exactly as "
            "given", field="signature",
        )
    if datetime.now(UTC).timestamp() > expires:
        raise PermissionDeniedError(
            f"the upload URL expired at {datetime.fromtimestamp(expires, UTC).isoformat()}; "
            "ask for a new upload slot", field="expires",
        )
    if length is None:
        raise InvalidInputError(
            f"send the file with Content-Length: {size} (not chunked)", field="Content-Length"
        )
    if length != size:
        raise InvalidInputError(
            f"Content-Length is {length:,} bytes; this slot takes exactly {size:,}",
            field="Content-Length",
        )
    return image_id, size


def receive_local(
    settings: Settings, raw_id: str, query: Mapping[str, str], length: int | None,
    body: ByteSource,
) -> AddedImage:
    """``PUT /v1/uploads/{image_id}``: check the signature, store the body (streamed, never
    held whole in memory), and have the image indexed."""
    image_id, size = _checked_url(settings, raw_id, query, length)
    with connect(settings) as conn:
        slot = slot_rows.find_slot_by_id(conn, image_id)
    if slot is None:
        raise NotFoundError(f"image {image_id} no longer exists (deleted)", field="image_id")
    ref = BlobRef.parse(slot.storage_key)
    store = store_for(ref)
    if not isinstance(store, LocalFolderStore):
        raise ConflictError(
            "this server keeps files in S3: PUT to the presigned URL of a new slot",
            field="url",
        )
    store.put_stream(ref, body, size)
    job = _received(settings, slot)
    indexing.submit(settings, job)
    return AddedImage(id=image_id, name=slot.name, status="pending")


def received_in_bucket(settings: Settings, ref: BlobRef) -> IndexJob | None:
    """An object created under the slots prefix: the job that indexes its image, or None
    when the key is not a slot or its image was deleted meanwhile."""
    if not blobs.is_slot(settings, ref.uri):
        return None
    with connect(settings) as conn:
        slot = slot_rows.find_slot(conn, ref.uri)
    if slot is None:
        return None
    return _received(settings, slot)


def _received(settings: Settings, slot: slot_rows.Slot) -> IndexJob:
    with connect(settings) as conn:
        slot_rows.mark_received(conn, slot.image_id)
    gate = None if slot.gate is None else DuplicateGate.model_validate(
        {"on_duplicate": slot.gate[0], "level": slot.gate[1]})
    return IndexJob(workspace=slot.workspace, dataset_id=slot.dataset_id,
                    image_ids=[slot.image_id], gate=gate)
