"""Explore: the images of one dataset ranked by similarity to an anchor (an uploaded query
image or an indexed image), grouped into clusters of near-identical images, a page of
clusters at a time (Visual Layer's ``explore``).

The best :data:`MAX_EXPLORE_ROWS` images are ranked (the one search path,
:func:`pixdex.app.service.search.run_search`) and grouped by :func:`dataset_clusters`
into the dataset-wide near-duplicate clusters curation keeps (:mod:`pixdex.app.curation`;
its levels 0-4 are Visual Layer's thresholds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from pixdex.app import curation
from pixdex.app.service.datasets import require_ready
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import MAX_API_LIMIT, SearchRequest
from pixdex.config import Settings

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
    grouped = dataset_clusters(settings, workspace, ready.id, ranked, level)
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
    settings: Settings, workspace: str, dataset_id: UUID, ranked: Sequence[Member], level: int
) -> list[list[Member]]:
    """``ranked`` grouped by the dataset-wide near-duplicate clusters at ``level`` (0
    near-identical ... 4 similar scene, :mod:`pixdex.app.curation`), in rank order: each
    cluster is led by its best-ranked image; an image in no cluster stands alone."""
    groups = curation.cluster_ids(settings, workspace, dataset_id, level)
    cluster_of = {member: n for n, group in enumerate(groups) for member in group}
    grouped: dict[object, list[Member]] = {}
    for member in ranked:
        grouped.setdefault(cluster_of.get(member.id, member.id), []).append(member)
    return list(grouped.values())
