"""Amazon S3 (or any S3-compatible service) as a blob store (``store="s3"``).

Rules:

* One boto3 client per store, created on first use (boto3 clients are thread-safe; creating
  them is slow and not thread-safe), or injected (tests, custom endpoints, credentials).
* ``get`` checks ``ContentLength`` with ``HeadObject`` before downloading, then reads at
  most ``max_bytes + 1`` bytes pinned to the ETag it checked, so a concurrent overwrite
  cannot slip a larger object past the limit.
* Missing keys/buckets (``NoSuchKey``, ``NoSuchBucket``, HTTP 404) become
  ``NotFoundError``; other AWS errors propagate unchanged.
* ``list`` pages through ``ListObjectsV2`` (``page_size`` keys per request) and skips
  "folder" marker keys ending in '/' and keys starting with '/'. S3 already returns keys
  in ascending UTF-8 byte order, which equals Python's string order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from pixdex.blobs.base import BlobInfo, BlobRef
from pixdex.errors import InvalidInputError, NotFoundError, PayloadTooLargeError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["S3Store"]

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})


def _is_not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code", "") in _NOT_FOUND_CODES or status == 404


def _etag(raw: str | None) -> str | None:
    return raw.strip('"') if raw else None


class S3Store:
    """Blob store over S3 buckets."""

    def __init__(self, client: S3Client | None = None, *, page_size: int = 1000) -> None:
        if not 1 <= page_size <= 1000:
            raise InvalidInputError("page_size must be between 1 and 1000 (the S3 maximum)")
        self._client = client
        self._lock = threading.Lock()
        self.page_size = page_size

    @property
    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                import boto3  # deferred: importing boto3 costs ~0.3 s on a cold start
                from botocore.config import Config

                # SigV4 for presigned links too: botocore's default for them is SigV2,
                # which S3 no longer accepts in newer regions.
                self._client = boto3.client("s3", config=Config(signature_version="s3v4"))
            return self._client

    @staticmethod
    def _check(ref: BlobRef) -> None:
        if ref.store != "s3":
            raise InvalidInputError(f"not an S3 reference: {ref.uri}")

    def stat(self, ref: BlobRef) -> BlobInfo:
        self._check(ref)
        try:
            head = self.client.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise NotFoundError(f"no such object: {ref.uri}") from exc
            raise
        return BlobInfo(
            ref=ref,
            size=int(head["ContentLength"]),
            etag=_etag(head.get("ETag")),
            modified=head.get("LastModified"),
        )

    def presigned_get(
        self, ref: BlobRef, *, expires_s: int, content_type: str, filename: str
    ) -> str:
        """A URL anyone may GET the object with for ``expires_s`` seconds (no credentials).

        Used where the bytes must not pass through the function: API Gateway answers at
        most 10 MB and Lambda 6 MB, and phone photos and TIFFs are larger. The URL is signed
        with the function's role, which holds s3:GetObject on the bucket.
        """
        self._check(ref)
        self.stat(ref)  # a vanished object is a 404 here, not an S3 error page later
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:100]
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": ref.bucket,
                "Key": ref.key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": f'inline; filename="{safe or "image"}"',
            },
            ExpiresIn=expires_s,
        )
        return url

    def get(self, ref: BlobRef, *, max_bytes: int) -> bytes:
        info = self.stat(ref)
        if info.size > max_bytes:
            raise PayloadTooLargeError(
                f"{ref.uri} is {info.size:,} bytes, more than the limit of {max_bytes:,} bytes"
            )
        try:
            if info.etag:
                response = self.client.get_object(
                    Bucket=ref.bucket, Key=ref.key, IfMatch=info.etag
                )
            else:
                response = self.client.get_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            if _is_not_found(exc):
                raise NotFoundError(f"no such object: {ref.uri}") from exc
            raise
        body = response["Body"]
        try:
            data = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(data) > max_bytes:
            raise PayloadTooLargeError(f"{ref.uri} is more than {max_bytes:,} bytes")
        return data

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        BlobRef("s3", bucket, "x")  # validates the bucket name with a clear message
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        )
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    key = item.get("Key", "")
                    # Folder markers are not blobs; keys starting with '/' cannot be named
                    # by an s3:// URI without ambiguity, so they are not listed either.
                    if not key or key.endswith("/") or key.startswith("/"):
                        continue
                    yield BlobInfo(
                        ref=BlobRef("s3", bucket, key),
                        size=int(item.get("Size", 0)),
                        etag=_etag(item.get("ETag")),
                        modified=item.get("LastModified"),
                    )
        except ClientError as exc:
            if _is_not_found(exc):
                raise NotFoundError(f"no such bucket: s3://{bucket}") from exc
            raise

    def put(self, ref: BlobRef, data: bytes) -> None:
        self._check(ref)
        self.client.put_object(Bucket=ref.bucket, Key=ref.key, Body=data)

    def presigned_put(self, ref: BlobRef, *, expires_s: int, size: int) -> str:
        """A URL anyone may PUT exactly ``size`` bytes to, at ``ref``, for ``expires_s``.

        ``Content-Length`` is among the signed headers, so S3 itself refuses a body of any
        other size: the declared size is enforced before a byte is stored.
        """
        self._check(ref)
        url: str = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": ref.bucket, "Key": ref.key, "ContentLength": size},
            ExpiresIn=expires_s,
        )
        return url

    def delete(self, ref: BlobRef) -> None:
        self._check(ref)
        self.client.delete_object(Bucket=ref.bucket, Key=ref.key)
