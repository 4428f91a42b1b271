"""Blob stores: where image bytes live (a local folder or an S3 bucket).

:func:`store_for` returns the process-wide store for a ``BlobRef``, a URI
(``s3://...``, ``file:///...``) or a bare scheme (``"s3"``, ``"file"``). Stores are created
once per process and reused, so the S3 client (and its connection pool) is shared.
"""

from __future__ import annotations

from functools import cache

from pixdex.blobs.base import STORES, BlobInfo, BlobRef, BlobStore, StoreName
from pixdex.blobs.local import LocalFolderStore
from pixdex.blobs.s3 import S3Store
from pixdex.errors import InvalidInputError

__all__ = [
    "STORES",
    "BlobInfo",
    "BlobRef",
    "BlobStore",
    "LocalFolderStore",
    "S3Store",
    "StoreName",
    "store_for",
]


@cache
def _store(scheme: StoreName) -> BlobStore:
    if scheme == "s3":
        return S3Store()
    return LocalFolderStore()


def store_for(ref_or_scheme: BlobRef | str) -> BlobStore:
    """The shared store for a reference, a URI or a scheme (``InvalidInputError`` if unknown)."""
    if isinstance(ref_or_scheme, BlobRef):
        scheme: str = ref_or_scheme.store
    else:
        scheme = ref_or_scheme.split("://", 1)[0].lower() if ref_or_scheme else ""
    if scheme == "s3":
        return _store("s3")
    if scheme == "file":
        return _store("file")
    raise InvalidInputError(
        f"unknown blob store {ref_or_scheme!r}; expected s3, file or a s3:// / file:// URI"
    )
