"""Grouping ranked results into clusters of near-identical images.

Leader clustering in rank order: each result joins the cluster whose leader (its
best-ranked member) it is most similar to, if that cosine similarity reaches the level's
threshold (:data:`GROUP_THRESHOLDS`: level 0 >= 0.98 ... level 4 >= 0.80); otherwise it
leads a new cluster. Clusters are therefore ordered by their best score, and a result
without an embedding is a cluster of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from pixdex.app.service.search_schemas import GROUP_THRESHOLDS, Cluster, ClusterPreview

MAX_PREVIEWS = 4


def group(
    ranked: Sequence[tuple[UUID, str, float]],
    vectors: Mapping[UUID, NDArray[np.float32]],
    level: int,
    thumbnail_url: str = "/v1/images/{id}/thumbnail",
) -> list[Cluster]:
    """Cluster ``(id, name, score)`` results, given in rank order."""
    threshold = GROUP_THRESHOLDS[level]
    leaders: list[NDArray[np.float32]] = []
    members: list[list[tuple[UUID, str, float]]] = []
    leader_of: list[int] = []  # cluster index of each leader row
    for hit in ranked:
        vector = vectors.get(hit[0])
        chosen: int | None = None
        if vector is not None:
            unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
            if leaders:
                similarity = np.stack(leaders) @ unit
                best = int(np.argmax(similarity))
                if float(similarity[best]) >= threshold - 1e-6:
                    chosen = leader_of[best]
            if chosen is None:
                leaders.append(unit)
                leader_of.append(len(members))
        if chosen is None:
            members.append([hit])
        else:
            members[chosen].append(hit)
    return [
        Cluster(
            id=cluster[0][0],
            size=len(cluster),
            score=cluster[0][2],
            members=[m[0] for m in cluster],
            previews=[
                ClusterPreview(
                    id=m[0], name=m[1], score=m[2],
                    thumbnail_url=thumbnail_url.format(id=m[0]),
                )
                for m in cluster[:MAX_PREVIEWS]
            ],
        )
        for cluster in members
    ]
