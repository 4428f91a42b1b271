"""Dataset curation: near-duplicate clusters, split leakage and outliers, dataset-wide and
live.

Everything is read from each image's k nearest neighbours (``image_neighbours``, see
:mod:`pixdex.storage.curation`), kept current as images are indexed and removed: every
read first works off the queue of images whose neighbours are due (usually empty: ingest
works it off as it writes), so answers never wait for a full recompute.

Levels are cosine thresholds calibrated with EfficientNet-Lite0 on augmented copies of
real photos (``bench/calibrate_curation.py``, docs/curation.md).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from pixdex.app.curation_schemas import (
    ClusterMember,
    DuplicateCluster,
    Duplicates,
    Leakage,
    LeakPair,
    LeakSide,
    Outlier,
    Outliers,
    Recomputed,
    threshold,
)
from pixdex.config import Settings, get_settings
from pixdex.errors import NotFoundError
from pixdex.storage import catalog, curation, images
from pixdex.storage.connection import Conn, connect

# Up to this many vectors a recompute ranks them all with one matrix product (exact; O(N^2):
# at 20k it took 4x as long as batched HNSW queries, bench/results/curation-20000*.json).
EXACT_GRAPH_MAX_ROWS = 5_000
# Split pairs are named in this order ("train/test"), other names alphabetically after.
_SPLIT_ORDER = ("train", "training", "valid", "validation", "val", "dev", "test", "testing")


def resolve(conn: Conn, workspace: str, dataset: str | UUID) -> catalog.DatasetRow:
    if isinstance(dataset, UUID):
        return catalog.get_dataset_by_id(conn, workspace, dataset)
    return catalog.get_dataset(conn, workspace, dataset)


def curated_model(conn: Conn, settings: Settings) -> catalog.ModelInfo | None:
    """The model curated (the default one); None while nothing was embedded with it."""
    try:
        return catalog.model_info(conn, settings.model)
    except NotFoundError:
        return None


def refresh(conn: Conn, settings: Settings, dataset_id: UUID, model: catalog.ModelInfo,
            *, reverse: bool = True) -> int:
    """Give every queued image of the dataset its neighbours; the number done."""
    done = 0
    cap = settings.exact_search_max_rows
    exact = curation.embedded_count(conn, dataset_id, model.name, cap) <= cap
    k = settings.curation_neighbours
    while ids := curation.pending_ids(conn, dataset_id, model.name, settings.curation_batch):
        edges = curation.knn(conn, model.name, model.dim, dataset_id, ids, k, exact=exact,
                             ef_search=_ef_search(k))
        curation.write_neighbours(conn, model.name, dataset_id, ids, edges, k, reverse=reverse)
        done += len(ids)
    return done


def refresh_images(settings: Settings, dataset_id: UUID, model_name: str) -> int:
    """After ingest wrote a batch: the dataset's queue (those images) worked off."""
    with connect(settings) as conn:
        model = catalog.model_info(conn, model_name)
        if model.metric != "cosine":
            return 0
        return refresh(conn, settings, dataset_id, model)


def recompute(dataset: str | UUID, *, workspace: str | None = None,
              settings: Settings | None = None) -> Recomputed:
    """Rebuild the dataset's whole graph (after a model change, or to repair it)."""
    settings = settings or get_settings()
    started = time.perf_counter()
    with connect(settings) as conn:  # committed here: the workers below see the queue
        ds = resolve(conn, workspace or settings.workspace, dataset)
        model = curated_model(conn, settings)
        images = 0 if model is None else curation.reset(conn, ds.id, model.name)
    if model is not None:
        if images <= min(settings.exact_search_max_rows, EXACT_GRAPH_MAX_ROWS):
            with connect(settings) as conn:
                _exact_graph(conn, settings, ds.id, model.name)
        else:
            _parallel_graph(settings, ds.id, model)
        with connect(settings) as conn:  # whatever was written meanwhile
            refresh(conn, settings, ds.id, model)
    return Recomputed(dataset=ds.name, model=settings.model, images=images,
                      seconds=round(time.perf_counter() - started, 3))


def _parallel_graph(settings: Settings, dataset_id: UUID, model: catalog.ModelInfo) -> None:
    """Every queued image's kNN over the HNSW index, in batches spread over
    ``curation_workers`` connections (each image gets its own full list, so nothing is
    offered back: ``reverse=False``)."""
    with connect(settings) as conn:
        ids = curation.pending_ids(conn, dataset_id, model.name, None)
    step = settings.curation_batch
    k = settings.curation_neighbours

    def work(batch: list[UUID]) -> None:
        with connect(settings) as conn:
            edges = curation.knn(conn, model.name, model.dim, dataset_id, batch, k,
                                 exact=False, ef_search=_ef_search(k))
            curation.write_neighbours(conn, model.name, dataset_id, batch, edges, k,
                                      reverse=False)

    with ThreadPoolExecutor(settings.curation_workers, thread_name_prefix="pixdex-knn") as pool:
        for _ in pool.map(work, [ids[i : i + step] for i in range(0, len(ids), step)]):
            pass


def _ef_search(k: int) -> int:
    """Near-duplicates sit very close: a short candidate list finds them (searches use
    ``hnsw_ef_search`` for recall over the whole ranking)."""
    return max(40, 4 * k)


def _exact_graph(conn: Conn, settings: Settings, dataset_id: UUID, model: str) -> None:
    """A small dataset's graph from one matrix product: exact, and far cheaper than a
    kNN query per image over a scan of the whole dataset."""
    ids, matrix = curation.vectors(conn, dataset_id, model)
    if len(ids) < 2:
        return
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    k = min(settings.curation_neighbours, len(ids) - 1)
    for start in range(0, len(ids), settings.curation_batch):
        block = matrix[start : start + settings.curation_batch] @ matrix.T
        for row in range(block.shape[0]):
            block[row, start + row] = -np.inf  # not its own neighbour
        nearest = np.argpartition(-block, k - 1, axis=1)[:, :k]
        batch = ids[start : start + settings.curation_batch]
        edges = [
            (image, ids[int(j)], float(block[row, j]))
            for row, image in enumerate(batch) for j in nearest[row]
        ]
        curation.write_neighbours(conn, model, dataset_id, batch, edges, k, reverse=False)


def _current_pairs(conn: Conn, settings: Settings, workspace: str, dataset: str | UUID,
                   cut: float) -> tuple[catalog.DatasetRow, list[curation.Pair]]:
    ds = resolve(conn, workspace, dataset)
    model = curated_model(conn, settings)
    if model is None:
        return ds, []
    refresh(conn, settings, ds.id, model)
    return ds, curation.pairs_above(conn, ds.id, model.name, cut)


def clusters_of(pairs: Iterable[curation.Pair]) -> list[list[UUID]]:
    """Connected components of the pairs (union-find), largest first, then by id."""
    parent: dict[UUID, UUID] = {}

    def root(node: UUID) -> UUID:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving
            node = parent[node]
        return node

    for pair in pairs:
        ra, rb = root(pair.a), root(pair.b)
        if ra != rb:
            parent[max(ra, rb, key=str)] = min(ra, rb, key=str)
    groups: dict[UUID, list[UUID]] = {}
    for node in parent:
        groups.setdefault(root(node), []).append(node)
    ordered = [sorted(group, key=str) for group in groups.values()]
    ordered.sort(key=lambda group: (-len(group), str(group[0])))
    return ordered


def cluster_ids(settings: Settings, workspace: str, dataset: str | UUID,
                level: int) -> list[list[UUID]]:
    """The dataset's near-duplicate clusters at ``level`` as ids (two or more members
    each), largest first: what explore groups its ranked images by."""
    with connect(settings) as conn:
        _, pairs = _current_pairs(conn, settings, workspace, dataset, threshold(level))
    return clusters_of(pairs)


def _keeper(members: Sequence[curation.Member]) -> curation.Member:
    """The largest picture, then the sharpest, then the largest file, then the first id."""
    return min(
        members,
        key=lambda m: (-(m.width or 0) * (m.height or 0), m.blurry, -(m.byte_size or 0),
                       str(m.id)),
    )


def duplicates(dataset: str | UUID, *, level: int = 1, offset: int = 0, limit: int = 50,
               workspace: str | None = None, settings: Settings | None = None) -> Duplicates:
    """The dataset's near-duplicate clusters at ``level``, largest first, one page."""
    settings = settings or get_settings()
    cut = threshold(level)
    with connect(settings) as conn:
        _, pairs = _current_pairs(conn, settings, workspace or settings.workspace, dataset, cut)
        groups = clusters_of(pairs)
        page = groups[offset : offset + limit]
        info = curation.members(conn, [node for group in page for node in group])
    best: dict[UUID, float] = {}
    for pair in pairs:
        for node in (pair.a, pair.b):
            best[node] = max(best.get(node, 0.0), pair.score)
    clusters: list[DuplicateCluster] = []
    for group in page:
        found = [info[node] for node in group if node in info]
        if len(found) < 2:
            continue  # removed between the two reads
        keep = _keeper(found)
        ordered = [keep, *(m for m in found if m is not keep)]  # the keeper first
        clusters.append(DuplicateCluster(
            id=found[0].id, size=len(found), keep=keep.id,
            members=[ClusterMember(id=m.id, name=m.name, split=m.split,
                                   score=round(best.get(m.id, 0.0), 4)) for m in ordered],
        ))
    return Duplicates(level=level, threshold=cut, total_clusters=len(groups), clusters=clusters)


def split_pair(a: str, b: str) -> str:
    def rank(name: str) -> tuple[int, str]:
        lowered = name.lower()
        return (_SPLIT_ORDER.index(lowered) if lowered in _SPLIT_ORDER else len(_SPLIT_ORDER),
                name)
    first, second = sorted((a, b), key=rank)
    return f"{first}/{second}"


def leakage(dataset: str | UUID, *, level: int = 1, workspace: str | None = None,
            settings: Settings | None = None) -> Leakage:
    """Pairs of near-duplicates at ``level`` in different splits: every cross-split pair of
    a cluster (A ~ B in valid, B ~ C in test: A and C are the same picture too, even when
    their own cosine is a little under the threshold), with their cosine."""
    settings = settings or get_settings()
    cut = threshold(level)
    with connect(settings) as conn:
        ds, pairs = _current_pairs(conn, settings, workspace or settings.workspace, dataset, cut)
        if not curation.has_splits(conn, ds.id):
            return Leakage(level=level, threshold=cut, pairs=[], counts={},
                           note=f"dataset {ds.name!r} has no splits: no image has a split set")
        info = curation.members(conn, list({n for p in pairs for n in (p.a, p.b)}))
        crossing = _crossing(clusters_of(pairs), info)
        direct = {frozenset((p.a, p.b)): p.score for p in pairs}
        unscored = {n for a, b in crossing if frozenset((a, b)) not in direct for n in (a, b)}
        vectors = images.embeddings_by_ids(conn, list(unscored), settings.model)
    leaks: list[LeakPair] = []
    for a, b in crossing:
        score = direct.get(frozenset((a, b)))
        if score is None and a in vectors and b in vectors:
            score = _cosine(vectors[a], vectors[b])
        first, second = info[a], info[b]
        assert first.split is not None and second.split is not None
        leaks.append(LeakPair(a=LeakSide(id=a, name=first.name, split=first.split),
                              b=LeakSide(id=b, name=second.name, split=second.split),
                              score=round(score or 0.0, 4)))
    leaks.sort(key=lambda p: (-p.score, str(p.a.id), str(p.b.id)))
    counts = Counter(split_pair(p.a.split, p.b.split) for p in leaks)
    return Leakage(level=level, threshold=cut, pairs=leaks, counts=dict(counts))


def _crossing(groups: list[list[UUID]], info: dict[UUID, curation.Member],
              ) -> list[tuple[UUID, UUID]]:
    """Each pair of a cluster's members whose splits are set and differ."""
    found: list[tuple[UUID, UUID]] = []
    for group in groups:
        placed = [n for n in group if n in info and info[n].split is not None]
        for index, a in enumerate(placed):
            found.extend((a, b) for b in placed[index + 1 :] if info[a].split != info[b].split)
    return found


def _cosine(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def outliers(dataset: str | UUID, *, offset: int = 0, limit: int = 50,
             workspace: str | None = None, settings: Settings | None = None) -> Outliers:
    """Images unlike the rest: mean cosine distance to their k nearest, farthest first."""
    settings = settings or get_settings()
    with connect(settings) as conn:
        ds = resolve(conn, workspace or settings.workspace, dataset)
        model = curated_model(conn, settings)
        if model is None:
            return Outliers(total=0, outliers=[])
        refresh(conn, settings, ds.id, model)
        total, ranked = curation.outliers(conn, ds.id, model.name, offset=offset, limit=limit)
        info = curation.members(conn, [image for image, _, _ in ranked])
    return Outliers(total=total, outliers=[
        Outlier(id=image, name=info[image].name, split=info[image].split,
                score=round(distance, 4))
        for image, distance, _ in ranked if image in info
    ])
