"""Pictograph's Python client on pixdex: code written against Pictograph's ``search``
keeps working with only the import, host and key changed.

    from pixdex.client.pictograph import Client
    client = Client("https://pixdex.example.com", api_key="pdx_...")
    for r in client.search.by_similarity(image_id="...", threshold=0.6, limit=50):
        print(r.image_id, r.filename, f"{r.similarity:.3f}")
    for r in client.search.by_tag(objects=["car", "truck"], scenes=["outdoor"]):
        print(r.image_id, r.tags["objects"])

``Client()`` without arguments reads ``PIXDEX_URL`` and ``PIXDEX_API_KEY`` (Pictograph's
reads its own key from the environment). Errors are Pictograph's: :class:`NotFoundError`
(404: an unknown ``image_id`` or ``dataset_name``) and :class:`ValidationError` (422: e.g.
``by_tag`` with no filter), both :class:`pixdex.client.ApiError`. Each call is one of
:class:`pixdex.Client`'s (``by_similarity``, ``by_tag``), which are the one search path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from uuid import UUID

from pixdex.client.client import Client as PixdexClient
from pixdex.client.transport import ApiError
from pixdex.errors import PixdexError

__all__ = ["Client", "NotFoundError", "SimilarImage", "TaggedImage", "ValidationError"]
T = TypeVar("T")


class NotFoundError(ApiError):
    """404: ``image_id`` (similarity) or ``dataset_name`` (tag) does not exist."""


class ValidationError(ApiError):
    """422: bad arguments, e.g. ``by_tag`` with every filter empty."""


@dataclass(frozen=True)
class SimilarImage:
    image_id: str
    filename: str
    # Calibrated similarity to the reference image (docs/models.md, "One similarity
    # scale"): 0.6 means "visually related" on every model, as Pictograph's threshold does.
    similarity: float
    folder: str | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class TaggedImage:
    image_id: str
    filename: str
    score: float
    tags: dict[str, list[str]] = field(default_factory=dict)  # objects / scenes / attributes
    folder: str | None = None
    dataset: str | None = None


def _pictograph_errors(call: Callable[[], T]) -> T:
    try:
        return call()
    except ApiError as exc:
        kind = {404: NotFoundError, 422: ValidationError}.get(exc.http_status, ApiError)
        raise kind(exc.http_status, exc.code, exc.message, exc.field) from None
    except PixdexError as exc:  # refused by the client before any request
        raise ValidationError(422, exc.code, exc.message, exc.field) from None


class Search:
    def __init__(self, client: PixdexClient) -> None:
        self._client = client

    def by_similarity(
        self, image_id: str | UUID, threshold: float = 0.6, limit: int = 50,
        folder_path: str | None = None,
    ) -> list[SimilarImage]:
        """Images like ``image_id`` (left out), most similar first; scope: its dataset and
        folder unless ``folder_path`` says otherwise (``"/"`` = the whole dataset)."""
        results = _pictograph_errors(lambda: self._client.by_similarity(
            image_id, threshold=None, min_similarity=threshold, limit=limit,
            folder_path=folder_path))
        return [SimilarImage(str(r.id), r.name or "",
                             r.score if r.similarity is None else r.similarity,
                             r.folder, r.dataset)
                for r in results]

    def by_tag(
        self, objects: Sequence[str] | None = None, scenes: Sequence[str] | None = None,
        attributes: Sequence[str] | None = None, dataset_name: str | None = None,
        limit: int = 50,
    ) -> list[TaggedImage]:
        """Any tag within a kind, every kind given; at least one kind is required."""
        results = _pictograph_errors(lambda: self._client.by_tag(
            objects=objects, scenes=scenes, attributes=attributes, dataset_name=dataset_name,
            limit=limit))
        return [
            TaggedImage(
                str(r.id), r.name or "", r.score,
                {kind: sorted(getattr(r.auto_tags, kind)) if r.auto_tags else []
                 for kind in ("objects", "scenes", "attributes")},
                r.folder, r.dataset,
            )
            for r in results
        ]


class Client:
    """Pictograph's ``Client`` with its ``search`` namespace."""

    def __init__(self, url: str | None = None, api_key: str | None = None) -> None:
        self._client = PixdexClient(
            url or os.environ.get("PIXDEX_URL", "http://127.0.0.1:8080"),
            api_key if api_key is not None else os.environ.get("PIXDEX_API_KEY"),
        )
        self.search = Search(self._client)
