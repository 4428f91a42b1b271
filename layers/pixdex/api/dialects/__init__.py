"""Vendor dialects: each vendor's documented requests, translated onto the one
application layer (search, anchors, ingest) and answered in the vendor's shape. No
dialect searches by itself; each module only translates (docs/api.md, "Coming from ...").

* :mod:`.roboflow`: ``POST /{workspace}/{project}/search?api_key=``
* :mod:`.clarifai`: ``POST /v2/inputs``, ``POST /v2/searches`` (``Authorization: Key``)
* :mod:`.visual_layer`: ``/api/v1/dataset/{id}/search-image-similarity``,
  ``/api/v1/explore/{id}``
* :mod:`.weaviate`: ``POST /v1/graphql`` (the ``Get`` query)

Pictograph's API is a Python client: :mod:`pixdex.client.pictograph`.
"""

from __future__ import annotations

from collections.abc import Mapping


def base_url(headers: Mapping[str, str]) -> str:
    """This server as the caller reached it, for the absolute URLs vendors answer with."""
    scheme = headers.get("x-forwarded-proto") or "http"
    return f"{scheme}://{headers.get('host') or 'localhost'}"
