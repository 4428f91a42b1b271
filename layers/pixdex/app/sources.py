"""Turn local paths given on the command line into ingest items and storage keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pixdex.app.ingest import IngestItem
from pixdex.blobs import BlobRef, LocalFolderStore
from pixdex.errors import InvalidInputError
from pixdex.models import IndexedFile, UserMetadata

_store = LocalFolderStore()


@dataclass(frozen=True)
class LocalSelection:
    items: list[IngestItem]
    missing: list[IndexedFile]


def normalise_folder(folder: str) -> str:
    """``"a/b/"`` -> ``"/a/b"``; ``""`` / ``"/"`` -> ``"/"``."""
    parts = [p for p in folder.replace("\\", "/").split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise InvalidInputError(f"folder must not contain '..': {folder!r}", field="folder")
    return "/" + "/".join(parts)


def local_items(
    paths: Sequence[str | Path], *, folder: str | None, meta: UserMetadata
) -> LocalSelection:
    """Files are taken as given; directories recursively (hidden entries skipped).

    Without ``folder`` an image's folder is its sub-directory below the directory given
    (``photos/cats/a.jpg`` indexed as ``photos`` -> ``/cats``); files given directly go to
    ``/``. With ``folder`` every image goes there.
    """
    items: list[IngestItem] = []
    missing: list[IndexedFile] = []
    fixed = normalise_folder(folder) if folder is not None else None
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if path.is_file():
            ref = BlobRef("file", str(path.parent), path.name)
            items.append(IngestItem(ref, fixed or "/", meta, display=str(raw)))
        elif path.is_dir():
            for info in _store.list(str(path)):
                sub = str(PurePosixPath(info.ref.key).parent)
                own_folder = fixed or normalise_folder("" if sub == "." else sub)
                display = str(Path(raw) / info.ref.key)
                items.append(IngestItem(info.ref, own_folder, meta, display=display))
        else:
            missing.append(
                IndexedFile(
                    path=str(raw), id=None, status="failed",
                    error="no such file or directory",
                )
            )
    return LocalSelection(items, missing)


def local_uris(paths: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """(exact URIs of files, URI prefixes of directories) for removal."""
    exact: list[str] = []
    prefixes: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        file_uri = BlobRef("file", str(path.parent), path.name).uri
        if path.is_dir():
            prefixes.append(file_uri + "/")
        elif path.exists():
            exact.append(file_uri)
        else:  # gone from disk: it may have been a file or a whole directory
            exact.append(file_uri)
            prefixes.append(file_uri + "/")
    return exact, prefixes
