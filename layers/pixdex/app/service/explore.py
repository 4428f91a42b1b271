"""Explore: the images of one dataset ranked by similarity to an anchor (an uploaded query
image or an indexed image), grouped into clusters of near-identical images, a page of
clusters at a time (Visual Layer's ``explore``).

The best :data:`MAX_EXPLORE_ROWS` images are ranked (the one search path,
:func:`pixdex.app.service.search.run_search`) and grouped by :func:`dataset_clusters`:
the one place that decides which images belong together, so it can later read the
dataset-wide clusters the curation work computes instead of grouping the ranked rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from pixdex.app.service import clusters
from pixdex.app.service.datasets import require_ready
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import MAX_API_LIMIT, SearchRequest
from pixdex.config import Settings
from pixdex.storage import images
from pixdex.storage.connection import connect

CLUSTERS_PER_PAGE = 100
# How many of the best-ranked images are grouped: explore answers "what looks like this",
# and past the first thousand a dataset-wide cluster listing is the better tool.
MAX_EXPLORE_ROWS = 1000


@dataclass(frozen=True)
class Member:
    id: UUID
    name: str
    score: float  # cosine similarity to the anchor
    width: int | None
    height: int | None


@dataclass(frozen=True)
class ExplorePage:
    clusters: list[list[Member]]  # best first; each cluster's best-ranked member first
    more: bool


def explore(
    settings: Settings, workspace: str, dataset: str, *, level: int, page: int,
    anchor_id: UUID | None = None, like_image: UUID | None = None,
) -> ExplorePage:
    """One page of clusters. 409 while the dataset is not READY."""
    ready = require_ready(settings, workspace, dataset, "dataset_id")
    ranked = _ranked(settings, workspace, str(ready.id), anchor_id, like_image)
    grouped = dataset_clusters(settings, ready.id, ranked, level)
    start = page * CLUSTERS_PER_PAGE
    end = start + CLUSTERS_PER_PAGE
    return ExplorePage(grouped[start:end], more=len(grouped) > end)


def _ranked(
    settings: Settings, workspace: str, dataset_id: str, anchor_id: UUID | None,
    like_image: UUID | None,
) -> list[Member]:
    ranked: list[Member] = []
    while len(ranked) < MAX_EXPLORE_ROWS:
        request = SearchRequest(
            in_dataset=dataset_id, anchor_id=anchor_id, like_image=like_image,
            offset=len(ranked), limit=min(MAX_API_LIMIT, MAX_EXPLORE_ROWS - len(ranked)),
            fields=["name", "width", "height"],
        )
        page = run_search(settings, workspace, request)
        ranked.extend(
            Member(r.id, r.name or "", r.score, r.width, r.height) for r in page.results
        )
        if len(page.results) < request.limit:
            break
    return ranked


def dataset_clusters(
    settings: Settings, dataset_id: UUID, ranked: Sequence[Member], level: int
) -> list[list[Member]]:
    """``ranked`` grouped into clusters at ``level`` (0 finest ... 4 coarsest), in rank
    order. Today: leader clustering of these rows (:mod:`pixdex.app.service.clusters`);
    this is the function to point at dataset-wide clusters once they exist."""
    del dataset_id  # what dataset-wide clusters will be looked up by
    with connect(settings, readonly=True) as conn:
        vectors = images.embeddings_by_ids(conn, [m.id for m in ranked], settings.model)
    grouped = clusters.group([(m.id, m.name, m.score) for m in ranked], vectors, level)
    by_id = {m.id: m for m in ranked}
    return [[by_id[i] for i in cluster.members] for cluster in grouped]
