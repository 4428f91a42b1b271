"""The web app's files (``web/static``), shipped inside the package: no CDN, works offline.

Plain ES modules and CSS, no build step. :func:`asset` hands them to the API app, which
serves ``/`` (the page) and ``/static/<name>`` from the same process as the API, locally
and in the ``api`` Lambda.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pixdex.errors import NotFoundError

__all__ = ["Asset", "asset"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
    "json": "application/json",
}


@dataclass(frozen=True)
class Asset:
    data: bytes
    content_type: str
    etag: str  # strong, quoted: the content's hash


@cache
def asset(name: str) -> Asset:
    """The static file ``name`` (one path segment, a known type); ``NotFoundError`` else."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if not _NAME.match(name) or ".." in name or extension not in _TYPES:
        raise NotFoundError(f"no such file: /static/{name[:100]}", field="path")
    entry = resources.files("pixdex.web").joinpath("static", name)
    if not entry.is_file():
        raise NotFoundError(f"no such file: /static/{name}", field="path")
    data = entry.read_bytes()
    return Asset(data, _TYPES[extension], f'"{hashlib.sha256(data).hexdigest()[:32]}"')
