"""Where the API keeps bytes: uploads, anchors and thumbnails under ``settings.blobs_uri``
(a ``file://`` folder or ``s3://bucket/prefix``).

Layout (keys relative to the root):

* ``uploads/<dataset id>/<sha256[:16]>/<name>``: an uploaded image. The last segment is
  the image's name (ingest names an image after its key) and the hash segment makes the
  same name with different content a different image.
* ``slots/<dataset id>/<random token>/<name>``: a file PUT to an upload slot (see
  :mod:`pixdex.app.service.slots`); in S3 its ``ObjectCreated`` event has it indexed.
* ``thumbnails/<dataset id>/<image id>-<sha256[:16]>-<size>.jpg``: cached thumbnails.
* ``anchors/<uuid>``: uploaded query images.
"""

from __future__ import annotations

import contextlib
from urllib.parse import unquote, urlsplit
from uuid import UUID

from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError


def ref(settings: Settings, key: str) -> BlobRef:
    """The reference of ``key`` under the configured root."""
    root = settings.blobs_uri
    parts = urlsplit(root)
    if parts.scheme == "s3":
        prefix = parts.path.strip("/")
        return BlobRef("s3", parts.netloc, f"{prefix}/{key}" if prefix else key)
    if parts.scheme == "file":
        return BlobRef("file", unquote(parts.path).rstrip("/") or "/", key)
    raise InvalidInputError(
        f"PIXDEX_BLOB_ROOT must be file:///folder or s3://bucket/prefix, got {root!r}",
        field="blob_root",
    )


def upload_key(dataset_id: UUID, sha256: str, name: str) -> str:
    return f"uploads/{dataset_id}/{sha256[:16]}/{name}"


def slot_key(dataset_id: UUID, token: str, name: str) -> str:
    return f"slots/{dataset_id}/{token}/{name}"


def thumbnail_key(dataset_id: UUID, image_id: UUID, sha256: str, size: int) -> str:
    return f"thumbnails/{dataset_id}/{image_id}-{sha256[:16]}-{size}.jpg"


def anchor_key(anchor: UUID) -> str:
    return f"anchors/{anchor}"


def _under(settings: Settings, folder: str, storage_key: str) -> bool:
    return storage_key.startswith(ref(settings, f"{folder}/x").uri[: -len("x")])


def is_upload(settings: Settings, storage_key: str) -> bool:
    """True when the API stored this image (so deleting the image deletes the bytes)."""
    return _under(settings, "uploads", storage_key) or _under(settings, "slots", storage_key)


def is_slot(settings: Settings, storage_key: str) -> bool:
    return _under(settings, "slots", storage_key)


def is_api_storage(settings: Settings, storage_key: str) -> bool:
    """Anything under the blob root (uploads, slots, thumbnails, anchors)."""
    return storage_key.startswith(ref(settings, "x").uri[: -len("x")])


def delete_quietly(target: BlobRef) -> None:
    """Best effort: a row is already gone; a stray file must not turn that into an error."""
    with contextlib.suppress(OSError, NotFoundError, InvalidInputError):
        store_for(target).delete(target)


def delete_dataset_blobs(settings: Settings, dataset_id: UUID) -> int:
    """Delete a dataset's uploads and thumbnails; return how many objects went."""
    removed = 0
    for folder in ("uploads", "slots", "thumbnails"):
        base = ref(settings, f"{folder}/{dataset_id}/x")
        prefix = base.key[: -len("x")]
        store = store_for(base)
        try:
            found = list(store.list(base.bucket, prefix))
        except (NotFoundError, OSError):
            continue
        for info in found:
            delete_quietly(info.ref)
            removed += 1
    return removed
