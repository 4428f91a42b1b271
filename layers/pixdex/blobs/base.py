"""Blob references and the store protocol shared by the local-folder and S3 backends.

A :class:`BlobRef` names one object as ``(store, bucket, key)``:

* ``store="file"``: ``bucket`` is an absolute folder (the root), ``key`` a POSIX path
  relative to it. URI: ``file:///abs/root/key`` (percent-encoded, RFC 8089).
* ``store="s3"``: ``bucket`` is an S3 bucket name, ``key`` the object key.
  URI: ``s3://bucket/key`` (not percent-encoded, as the AWS CLI writes it).

Keys are never empty, never start with ``/`` and never contain NUL. Stores add their own
checks (the local store refuses keys that escape the root).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Literal, Protocol
from urllib.parse import quote, unquote, urlsplit

from pixdex.errors import InvalidInputError

__all__ = ["STORES", "BlobInfo", "BlobRef", "BlobStore", "StoreName"]

StoreName = Literal["file", "s3"]
STORES: tuple[StoreName, ...] = ("file", "s3")

# S3 bucket naming rules (general-purpose buckets): 3-63 chars, lower-case, digits, '.', '-'.
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class BlobRef:
    """One object in a store. Validated on construction (``InvalidInputError``)."""

    store: StoreName
    bucket: str
    key: str

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise InvalidInputError(
                f"unknown blob store {self.store!r}; expected one of {', '.join(STORES)}",
                field="uri",
            )
        if not self.key or self.key.startswith("/") or "\x00" in self.key:
            raise InvalidInputError(
                f"blob key must be a non-empty relative path, got {self.key!r}", field="uri"
            )
        if self.store == "file":
            if not self.bucket.startswith("/") or "\x00" in self.bucket:
                raise InvalidInputError(
                    f"local folder must be an absolute path, got {self.bucket!r}", field="uri"
                )
        elif not _S3_BUCKET.match(self.bucket):
            raise InvalidInputError(
                f"invalid S3 bucket name {self.bucket!r} (3-63 chars: a-z, 0-9, '.', '-')",
                field="uri",
            )

    @property
    def uri(self) -> str:
        if self.store == "s3":
            return f"s3://{self.bucket}/{self.key}"
        root = self.bucket.rstrip("/") or ""
        return "file://" + quote(f"{root}/{self.key}")

    @classmethod
    def parse(cls, uri: str, *, root: str | None = None) -> BlobRef:
        """Parse ``s3://bucket/key`` or ``file:///abs/path``.

        A file URI does not record where the root folder ends, so ``root`` picks it (the
        path must lie under it); without ``root`` the parent folder is the root and the
        file name is the key. ``BlobRef.parse(ref.uri, root=ref.bucket) == ref``.
        """
        if not isinstance(uri, str) or "://" not in uri:
            raise InvalidInputError(
                f"not a blob URI: {uri!r} (expected s3://bucket/key or file:///path)",
                field="uri",
            )
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme == "s3":
            # Take the key from the raw text: urlsplit would eat '#'/'?' inside keys.
            rest = uri.split("://", 1)[1]
            bucket, _, key = rest.partition("/")
            if not bucket or not key:
                raise InvalidInputError(
                    f"S3 URI needs a bucket and a key: {uri!r} (s3://bucket/key)", field="uri"
                )
            return cls("s3", bucket, key)
        if scheme == "file":
            if parts.query or parts.fragment:  # '?'/'#' in names are percent-encoded
                raise InvalidInputError(
                    f"file URI must not have a query or fragment: {uri!r}", field="uri"
                )
            if parts.netloc not in ("", "localhost"):
                raise InvalidInputError(
                    f"file URI must be local (file:///path), got host {parts.netloc!r}",
                    field="uri",
                )
            path = unquote(parts.path)
            if not path.startswith("/") or path.endswith("/"):
                raise InvalidInputError(
                    f"file URI must name a file by absolute path: {uri!r}", field="uri"
                )
            return cls._split_file(path, root)
        raise InvalidInputError(
            f"unsupported blob URI scheme {parts.scheme!r}; expected s3:// or file://",
            field="uri",
        )

    @classmethod
    def _split_file(cls, path: str, root: str | None) -> BlobRef:
        full = PurePosixPath(path)
        if root is None:
            return cls("file", str(full.parent), full.name)
        base = PurePosixPath(root)
        if not full.is_relative_to(base) or full == base:
            raise InvalidInputError(f"{path!r} is not inside folder {root!r}", field="uri")
        return cls("file", str(base), full.relative_to(base).as_posix())


@dataclass(frozen=True)
class BlobInfo:
    """Metadata of a stored object. ``etag`` changes whenever the content may have."""

    ref: BlobRef
    size: int
    etag: str | None = None
    modified: datetime | None = None


class ByteSource(Protocol):
    """Anything bytes can be read from in chunks (a file, a request body)."""

    def read(self, size: int, /) -> bytes: ...


class BlobStore(Protocol):
    """A place images are read from (and written to, for uploads).

    * ``get``: ``NotFoundError`` when missing; ``PayloadTooLargeError`` when the object is
      larger than ``max_bytes`` (checked from its size, before reading the content).
    * ``list``: every object under ``prefix`` (a plain string prefix of the key, not a
      folder), recursively, in ascending key order (Unicode code point = S3's UTF-8 order).
    * ``put``: create or replace. ``delete``: idempotent (missing is not an error).
    * ``stat``: ``NotFoundError`` when missing.
    """

    def get(self, ref: BlobRef, *, max_bytes: int) -> bytes: ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]: ...

    def put(self, ref: BlobRef, data: bytes) -> None: ...

    def delete(self, ref: BlobRef) -> None: ...

    def stat(self, ref: BlobRef) -> BlobInfo: ...
