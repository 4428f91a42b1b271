"""Build-once cache for generated ONNX files under ``Settings.models_dir``.

Files are content-addressed (weights digest + builder version in the name), so a new
checkpoint or a graph-builder change never reuses a stale file. Writes go to a temporary
file in the same directory followed by ``os.replace``, which is atomic on POSIX and
Windows: a concurrent reader sees either no file or a complete one, and two processes
building at once simply both produce the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["file_digest", "write_atomic"]


def file_digest(path: Path) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader can observe a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates 0600; the cache is shared with other users/services on the host.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
