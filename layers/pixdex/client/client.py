"""``pixdex.Client``: the HTTP API from Python, with the server's own pydantic models.

    from pixdex import Client
    client = Client("http://127.0.0.1:8080", api_key="pdx_...")
    ds = client.create_dataset("holidays")
    client.add_paths(ds.id, ["photos/"])  # small files in multipart batches, large by slots
    for page in client.search_all(objects=["seashore"], in_dataset="holidays"):
        ...
    client.by_similarity(image_id, threshold=0.6)         # as Pictograph's
    client.by_tag(objects=["car", "truck"], scenes=["outdoor"])
    client.import_parquet(ds.id, "vectors.parquet", model="my-clip")  # your own vectors
    client.by_vector(my_query_vector, model="my-clip", in_dataset="holidays")
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from pixdex.app.curation_schemas import OnDuplicate
from pixdex.app.service.schemas import (
    AddedImage,
    AddedImages,
    Anchor,
    Dataset,
    Deleted,
    Image,
    ImageList,
    ImageMeta,
    ImagePatch,
    NewImage,
    UploadSlots,
)
from pixdex.app.service.search_schemas import (
    MAX_API_LIMIT,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from pixdex.client.curation import CurationCalls
from pixdex.client.transport import ApiError, Transport, multipart
from pixdex.client.vectors import VectorCalls
from pixdex.errors import InvalidInputError
from pixdex.models import (
    BoundingBox,
)

__all__ = ["ApiError", "Client"]
# What one API call may carry behind API Gateway and Lambda: a 6 MB invocation payload,
# base64'd (4/3) by API Gateway, less the multipart framing. Larger files, and batches
# that would outgrow it, go through upload slots (presigned PUTs) instead.
DIRECT_UPLOAD_BYTES = 4 * 1024 * 1024
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"}


def _files(paths: Sequence[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ))
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInputError(f"no such file or directory: {raw}", field="paths")
    return found


def _by_bytes(files: list[Path], count: int, size: int) -> list[list[Path]]:
    """Consecutive batches of at most ``count`` files and ``size`` bytes (one file more
    than ``size`` is its own batch)."""
    batches: list[list[Path]] = []
    current: list[Path] = []
    used = 0
    for path in files:
        length = path.stat().st_size
        if current and (len(current) >= max(1, min(count, 128)) or used + length > size):
            batches.append(current)
            current, used = [], 0
        current.append(path)
        used += length
    if current:
        batches.append(current)
    return batches


def _gate(on_duplicate: OnDuplicate | None, level: int) -> dict[str, Any]:
    """A request's duplicate gate fields (none: the dataset's gate applies)."""
    return {} if on_duplicate is None else {"on_duplicate": on_duplicate, "duplicate_level": level}


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    step = max(1, min(size, 128))
    return [items[start : start + step] for start in range(0, len(items), step)]


def _merged(first: AddedImages, second: AddedImages) -> AddedImages:
    return AddedImages(
        pending=first.pending + second.pending, indexed=first.indexed + second.indexed,
        failed=first.failed + second.failed, images=[*first.images, *second.images],
    )


class Client(CurationCalls, VectorCalls):
    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 300.0) -> None:
        self._http = Transport(url, api_key, timeout)

    # --- datasets ----------------------------------------------------------------------

    def create_dataset(self, name: str) -> Dataset:
        return Dataset.model_validate(self._http.json("POST", "/v1/datasets",
                                                      json_body={"name": name}))

    def datasets(self) -> list[Dataset]:
        data = self._http.json("GET", "/v1/datasets")
        return [Dataset.model_validate(d) for d in data["datasets"]]

    def dataset(self, dataset_id: UUID | str) -> Dataset:
        return Dataset.model_validate(self._http.json("GET", f"/v1/datasets/{dataset_id}"))

    def dataset_by_name(self, name: str) -> Dataset:
        for dataset in self.datasets():
            if dataset.name == name:
                return dataset
        raise ApiError(404, "not_found", f"dataset {name!r} does not exist", "name")

    def delete_dataset(self, dataset_id: UUID | str) -> Deleted:
        return Deleted.model_validate(self._http.json("DELETE", f"/v1/datasets/{dataset_id}"))

    # --- images ------------------------------------------------------------------------

    def add_images(
        self, dataset_id: UUID | str, images: Sequence[NewImage | dict[str, Any]], *,
        wait: bool = True, timeout: float = 600, on_duplicate: OnDuplicate | None = None,
        duplicate_level: int = 1,
    ) -> AddedImages:
        """Add images given as base64 or URL (``NewImage`` or dicts), at most 128 a call.

        The server answers once the images are stored (``pending``); with ``wait`` this
        returns when each is ``indexed`` or ``failed`` (``TimeoutError`` after ``timeout``).
        ``on_duplicate``: this call's duplicate gate (default: the dataset's).
        """
        body = {"images": [
            i.model_dump(exclude_none=True) if isinstance(i, NewImage) else i for i in images
        ], **_gate(on_duplicate, duplicate_level)}
        added = AddedImages.model_validate(
            self._http.json("POST", f"/v1/datasets/{dataset_id}/images", json_body=body)
        )
        return self.wait_until_indexed(added, timeout=timeout) if wait else added

    def add_urls(
        self, dataset_id: UUID | str, urls: Sequence[str], *, meta: ImageMeta | None = None,
        batch_size: int = 32, progress: bool = True, wait: bool = True, timeout: float = 600,
    ) -> AddedImages:
        extra = (meta or ImageMeta()).model_dump(exclude_none=True)
        added = self._batched(
            _chunks(list(urls), batch_size), progress,
            lambda chunk: self.add_images(
                dataset_id, [{"url": u, **extra} for u in chunk], wait=False
            ),
        )
        return self.wait_until_indexed(added, timeout=timeout) if wait else added

    def add_paths(
        self, dataset_id: UUID | str, paths: Sequence[str | Path], *,
        meta: ImageMeta | None = None, batch_size: int = 16, progress: bool = True,
        wait: bool = True, timeout: float = 600, direct_upload_bytes: int = DIRECT_UPLOAD_BYTES,
        on_duplicate: OnDuplicate | None = None, duplicate_level: int = 1,
    ) -> AddedImages:
        """Upload files (directories recursively, hidden entries skipped).

        Files up to ``direct_upload_bytes`` go in multipart batches of at most that many
        bytes (and ``batch_size`` files); larger ones through upload slots
        (:meth:`upload_files`). Results keep the order of the files. ``on_duplicate``:
        the duplicate gate for these files (default: the dataset's).
        """
        meta = meta or ImageMeta()
        gate = _gate(on_duplicate, duplicate_level)
        files = _files(paths)
        large = [p for p in files if p.stat().st_size > direct_upload_bytes]
        small = [p for p in files if p.stat().st_size <= direct_upload_bytes]
        added = self._multipart(dataset_id, _by_bytes(small, batch_size, direct_upload_bytes),
                                meta, progress, gate)
        if large:
            sent = self.upload_files(dataset_id, large, meta=meta, progress=progress, wait=False,
                                     on_duplicate=on_duplicate, duplicate_level=duplicate_level)
            added = _merged(added, sent)
        by_path = dict(zip(small + large, added.images, strict=True))
        added.images = [by_path[p] for p in files]
        return self.wait_until_indexed(added, timeout=timeout) if wait else added

    def upload_files(
        self, dataset_id: UUID | str, paths: Sequence[str | Path], *,
        meta: ImageMeta | None = None, progress: bool = True, wait: bool = True,
        timeout: float = 600, on_duplicate: OnDuplicate | None = None, duplicate_level: int = 1,
    ) -> AddedImages:
        """Upload files through upload slots: ask the API for presigned PUT URLs (128 a
        call), PUT each file straight to storage, and let the storage events index them.
        No size limit but the server's per-image one (``PIXDEX_MAX_FILE_BYTES``).
        ``on_duplicate``: the gate each file passes when it arrives (default: the
        dataset's)."""
        extra = (meta or ImageMeta()).model_dump(exclude_none=True, exclude={"name"})
        gate = _gate(on_duplicate, duplicate_level)

        def send(chunk: list[Path]) -> AddedImages:
            files = [{"name": p.name, "size": p.stat().st_size, **extra} for p in chunk]
            slots = UploadSlots.model_validate(self._http.json(
                "POST", f"/v1/datasets/{dataset_id}/uploads",
                json_body={"files": files, **gate},
            ))
            for path, slot in zip(chunk, slots.uploads, strict=True):
                self._http.put_file(slot.url, slot.headers, path)
            return AddedImages(pending=len(chunk), indexed=0, failed=0, images=[
                AddedImage(id=s.image_id, name=s.name, status="pending") for s in slots.uploads
            ])

        added = self._batched(_chunks(_files(paths), 16), progress, send)
        return self.wait_until_indexed(added, timeout=timeout) if wait else added

    def _multipart(
        self, dataset_id: UUID | str, batches: list[list[Path]], meta: ImageMeta, progress: bool,
        gate: dict[str, Any],
    ) -> AddedImages:
        fields = {**{key: str(value) for key, value in gate.items()}, **{
            key: value for key, value in {
                "folder": meta.folder, "tags": ",".join(meta.tags), "split": meta.split,
                "batch_id": meta.batch_id, "annotation_job_id": meta.annotation_job_id,
                "metadata": json.dumps(meta.metadata) if meta.metadata else None,
                "annotations": json.dumps(meta.annotations) if meta.annotations else None,
            }.items() if value
        }}

        def send(chunk: list[Path]) -> AddedImages:
            body, kind = multipart(fields, [("file", p.name, p.read_bytes()) for p in chunk])
            _, _, data = self._http.request(
                "POST", f"/v1/datasets/{dataset_id}/images/upload", body=body, content_type=kind
            )
            return AddedImages.model_validate_json(data)

        return self._batched(batches, progress, send)

    def wait_until_indexed(self, added: AddedImages, *, timeout: float = 600) -> AddedImages:
        """``added`` with every ``pending`` image followed to ``indexed`` or ``failed``."""
        deadline = time.monotonic() + timeout
        images = list(added.images)
        delay = 0.1
        while True:
            waiting = [n for n, a in enumerate(images) if a.status == "pending" and a.id]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} images still pending after {timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            for n in waiting:
                now = self.image(images[n].id)  # type: ignore[arg-type]
                images[n] = images[n].model_copy(update={"status": now.status,
                                                         "error": now.error})
        return AddedImages(
            pending=sum(a.status == "pending" for a in images),
            indexed=sum(a.status == "indexed" for a in images),
            failed=sum(a.status == "failed" for a in images),
            images=images,
        )

    @staticmethod
    def _batched(batches: list[list[Any]], progress: bool, send: Any) -> AddedImages:
        from tqdm import tqdm

        total = AddedImages(indexed=0, failed=0, images=[])
        with tqdm(total=sum(map(len, batches)), unit="img", disable=not progress) as bar:
            for batch in batches:
                total = _merged(total, send(batch))
                bar.update(len(batch))
        return total

    def image(self, image_id: UUID | str) -> Image:
        return Image.model_validate(self._http.json("GET", f"/v1/images/{image_id}"))

    def images(self, dataset_id: UUID | str, **filters: Any) -> ImageList:
        """One page: status, folder, tag, split, batch_id, annotation_job_id, offset, limit."""
        return ImageList.model_validate(
            self._http.json("GET", f"/v1/datasets/{dataset_id}/images", query=filters)
        )

    def update_image(self, image_id: UUID | str, **changes: Any) -> Image:
        patch = ImagePatch.model_validate(changes)
        return Image.model_validate(self._http.json(
            "PATCH", f"/v1/images/{image_id}", json_body=patch.model_dump(mode="json",
                                                                          exclude_unset=True)
        ))

    def delete_image(self, image_id: UUID | str) -> Deleted:
        return Deleted.model_validate(self._http.json("DELETE", f"/v1/images/{image_id}"))

    def image_file(self, image_id: UUID | str) -> bytes:
        return self._http.request("GET", f"/v1/images/{image_id}/file")[2]

    def thumbnail(self, image_id: UUID | str, size: int = 256) -> bytes:
        return self._http.request("GET", f"/v1/images/{image_id}/thumbnail",
                                  query={"size": size})[2]

    # --- search by your own vectors (importing them: client.vectors) -----------------

    def by_vector(
        self, vector: Sequence[float] | Any, *, model: str, threshold: float | None = None,
        limit: int = 50, **filters: Any,
    ) -> list[SearchResult]:
        """Images nearest to a raw ``vector`` of ``model`` (e.g. an imported model), best
        first; ``filters`` are any other search fields (``in_dataset``, ``tag``, ...)."""
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit must be 1-500", field="limit")
        filters.setdefault("fields", ["name", "folder", "dataset"])
        request = SearchRequest(vector=vector, model=model, threshold=threshold,
                                limit=min(limit, MAX_API_LIMIT), **filters)
        return self._collect(request, limit)

    # --- anchors -----------------------------------------------------------------------

    def create_anchor(
        self, image: bytes | Path | str, bounding_box: BoundingBox | None = None
    ) -> Anchor:
        """Upload a query image: bytes, a file path, or an http(s) URL."""
        if isinstance(image, str) and image.startswith(("http://", "https://")):
            source = image
        else:
            data = image if isinstance(image, bytes) else Path(image).read_bytes()
            source = base64.b64encode(data).decode("ascii")
        body: dict[str, Any] = {"image": source}
        if bounding_box is not None:
            body["bounding_box"] = bounding_box.model_dump()
        return Anchor.model_validate(self._http.json("POST", "/v1/anchors", json_body=body))

    def delete_anchor(self, anchor_id: UUID | str) -> Deleted:
        return Deleted.model_validate(self._http.json("DELETE", f"/v1/anchors/{anchor_id}"))

    # --- search ------------------------------------------------------------------------

    def search(self, request: SearchRequest | None = None, **fields: Any) -> SearchResponse:
        """One page. Give a ``SearchRequest`` or its fields as keyword arguments."""
        request = request or SearchRequest.model_validate(fields)
        body = request.model_dump(mode="json", exclude_none=True)
        return SearchResponse.model_validate(self._http.json("POST", "/v1/search", json_body=body))

    def search_all(
        self, request: SearchRequest | None = None, **fields: Any
    ) -> Iterator[list[SearchResult]]:
        """Every page of a search, in order (``limit`` is the page size)."""
        request = request or SearchRequest.model_validate(fields)
        offset = request.offset
        while True:
            page = self.search(request.model_copy(update={"offset": offset}))
            if page.results:
                yield page.results
            offset += len(page.results)
            if len(page.results) < request.limit or offset >= page.total:
                return

    def _collect(self, request: SearchRequest, limit: int) -> list[SearchResult]:
        out: list[SearchResult] = []
        for page in self.search_all(request):
            out.extend(page)
            if len(out) >= limit:
                break
        return out[:limit]

    def by_similarity(
        self, image_id: UUID | str, threshold: float | None = 0.6, limit: int = 50,
        folder_path: str | None = None, *, min_similarity: float | None = None,
    ) -> list[SearchResult]:
        """Images like ``image_id`` (left out), most similar first, scoped to its dataset
        and, unless ``folder_path`` says otherwise ("/" = whole dataset), its folder.
        ``threshold`` floors the raw cosine, ``min_similarity`` the calibrated similarity
        (the same scale on every model, docs/models.md); results carry both."""
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit must be 1-500", field="limit")
        reference = self.image(image_id)
        request = SearchRequest(
            like_image=reference.id, threshold=threshold, min_similarity=min_similarity,
            in_dataset=str(reference.dataset_id), folder_path=folder_path or reference.folder,
            limit=min(limit, MAX_API_LIMIT), fields=["name", "folder", "dataset", "similarity"],
        )
        return self._collect(request, limit)

    def by_tag(
        self, objects: Sequence[str] | None = None, scenes: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None, dataset_name: str | None = None,
        limit: int = 50,
    ) -> list[SearchResult]:
        """Images with these auto-tags (any within a kind, all kinds), best first. An
        empty filter is refused rather than returning everything."""
        if not (objects or scenes or attributes):
            raise InvalidInputError(
                "give at least one of objects, scenes, attributes", field="objects"
            )
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit must be 1-500", field="limit")
        request = SearchRequest(
            objects=list(objects or []) or None, scenes=list(scenes or []) or None,
            attributes=list(attributes or []) or None, in_dataset=dataset_name,
            limit=min(limit, MAX_API_LIMIT), fields=["name", "folder", "dataset", "auto_tags"],
        )
        return self._collect(request, limit)
