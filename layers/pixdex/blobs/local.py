"""A folder on the local disk as a blob store (``store="file"``).

Rules:

* ``bucket`` is the absolute root folder; keys are POSIX paths relative to it.
* Keys with ``..``, ``.`` or empty segments, absolute keys, and keys whose resolved path
  (after symlinks) leaves the root are refused with ``InvalidInputError``.
* ``list`` skips hidden files and folders (name starts with '.'), never descends into
  symlinked folders (no cycles, no escapes) and lists a symlinked file only when its
  target is a regular file inside the root.
* ``put`` is atomic: it writes a hidden temporary file next to the target, fsyncs it and
  renames it over the target, so readers never see a half-written image.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat as stat_module
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pixdex.blobs.base import BlobInfo, BlobRef, ByteSource
from pixdex.errors import InvalidInputError, NotFoundError, PayloadTooLargeError

__all__ = ["LocalFolderStore"]

_CHUNK = 1024 * 1024


def _copy_exactly(source: ByteSource, target: BinaryIO, size: int) -> None:
    remaining = size
    while remaining > 0:
        chunk = source.read(min(_CHUNK, remaining))
        if not chunk:
            raise InvalidInputError(
                f"the upload ended after {size - remaining:,} of {size:,} bytes", field="body"
            )
        target.write(chunk)
        remaining -= len(chunk)


def _root(bucket: str) -> Path:
    if not bucket.startswith("/"):
        raise InvalidInputError(f"local folder must be an absolute path, got {bucket!r}")
    return Path(bucket)


def _check_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    segments = key.split("/")
    if not key or path.is_absolute() or any(s in ("", ".", "..") for s in segments):
        raise InvalidInputError(
            f"invalid key {key!r}: must be a relative path without '.', '..' or empty parts",
            field="key",
        )
    return path


class LocalFolderStore:
    """Blob store over local folders. Stateless and thread-safe."""

    def _path(self, ref: BlobRef) -> Path:
        if ref.store != "file":
            raise InvalidInputError(f"not a local file reference: {ref.uri}")
        root = _root(ref.bucket)
        path = root / _check_key(ref.key)
        # resolve() follows symlinks; a link pointing outside the root is an escape.
        if not path.resolve().is_relative_to(root.resolve()):
            raise InvalidInputError(f"key {ref.key!r} resolves outside {ref.bucket!r}")
        return path

    def stat(self, ref: BlobRef) -> BlobInfo:
        path = self._path(ref)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFoundError(f"no such file: {ref.uri}") from exc
        if not stat_module.S_ISREG(st.st_mode):
            raise NotFoundError(f"not a regular file: {ref.uri}")
        return self._info(ref, st)

    @staticmethod
    def _info(ref: BlobRef, st: os.stat_result) -> BlobInfo:
        return BlobInfo(
            ref=ref,
            size=st.st_size,
            # mtime+size is what rsync trusts; good enough to notice a replaced file.
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        )

    def get(self, ref: BlobRef, *, max_bytes: int) -> bytes:
        info = self.stat(ref)
        if info.size > max_bytes:
            raise PayloadTooLargeError(
                f"{ref.uri} is {info.size:,} bytes, more than the limit of {max_bytes:,} bytes"
            )
        try:
            with self._path(ref).open("rb") as handle:
                # Read one byte past the limit: the file may have grown since stat().
                data = handle.read(max_bytes + 1)
        except FileNotFoundError as exc:
            raise NotFoundError(f"no such file: {ref.uri}") from exc
        if len(data) > max_bytes:
            raise PayloadTooLargeError(f"{ref.uri} is more than {max_bytes:,} bytes")
        return data

    def list(self, bucket: str, prefix: str = "") -> Iterator[BlobInfo]:
        root = _root(bucket)
        if not root.is_dir():
            raise NotFoundError(f"no such folder: {bucket}")
        real_root = root.resolve()
        # Only walk the folder that can contain the prefix, not the whole tree.
        start_rel = prefix.rpartition("/")[0]
        start = root / start_rel if start_rel else root
        if start_rel and (not start.is_dir() or not start.resolve().is_relative_to(real_root)):
            return
        found: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue
                full = Path(dirpath, name)
                key = full.relative_to(root).as_posix()
                if not key.startswith(prefix):
                    continue
                try:
                    if full.is_symlink() and not full.resolve().is_relative_to(real_root):
                        continue
                    st = full.stat()
                except OSError:  # vanished, dangling link or unreadable: not listable
                    continue
                if stat_module.S_ISREG(st.st_mode):
                    found.append((key, st))
        found.sort(key=lambda item: item[0])
        for key, st in found:
            yield self._info(BlobRef("file", bucket, key), st)

    def put(self, ref: BlobRef, data: bytes) -> None:
        self.put_stream(ref, io.BytesIO(data), len(data))

    def put_stream(self, ref: BlobRef, source: ByteSource, size: int) -> None:
        """``put`` from a file-like source of exactly ``size`` bytes, never all in memory;
        a source that ends early raises ``InvalidInputError`` and stores nothing."""
        path = self._path(ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                _copy_exactly(source, handle, size)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete(self, ref: BlobRef) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(ref).unlink()
