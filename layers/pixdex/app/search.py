"""Search: by similar image (bytes or an indexed id), by text prompt, by auto-tags, by
metadata, combined (how the query vector is made: :mod:`pixdex.app.query_vector`).

Scores: cosine similarity (1 - cosine distance) for image and vision-language prompt
searches; for prompts on the offline model the weighted ImageNet class probability
(inner product, in [0, 1]); for tag-only
searches the mean over queried kinds of the best matching tag score; 1.0 for pure
metadata filters (then newest first).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pixdex.app.calibration import Calibration, calibration_for
from pixdex.app.query_vector import QueryVector, query_vector
from pixdex.app.tag_hints import tag_hints
from pixdex.app.tag_match import query_tag_names
from pixdex.config import Settings, get_settings
from pixdex.engines import get_model
from pixdex.errors import InvalidInputError, ModelCapabilityError
from pixdex.imaging.decode import DecodedImage, crop_to_box, decode_image
from pixdex.models import (
    TAG_KINDS,
    AutoTags,
    BoundingBox,
    Facets,
    FacetValue,
    SearchHit,
    SearchPage,
    SearchQuery,
)
from pixdex.pipeline import model_floor
from pixdex.storage import dataset_indexes, images, search_counts, search_rows, search_sql
from pixdex.storage.connection import Conn, connect, deadline_errors
from pixdex.storage.facets import facet_counts
from pixdex.storage.search_scope import PlanRequest, SearchScope, search_scope

# Values shown per facet: enough for a panel, few enough to send with every search.
FACET_TOP = 30
# How deep similarity results page: past this the index scan gives up and the exact path
# would sort every matching row for one request (a cheap way to pin a connection).
MAX_SIMILARITY_WINDOW = 10_000
# An offline prompt whose best image scores below this found nothing the model saw: the
# score is the probability mass on the named classes, and 0.10 is the object-tag
# threshold (below it a class is noise from visually similar classes).
WEAK_PROMPT_SCORE = 0.10


def encode_query_image(
    data: bytes, *, box: BoundingBox | None = None, model: str | None = None,
    settings: Settings | None = None,
) -> list[float]:
    """Decode a query image (optionally only ``box`` of it) and embed it."""
    settings = settings or get_settings()
    decoded = decode_query_image(data, box=box, model=model, settings=settings)
    return embed_query_image(decoded, box=box, model=model, settings=settings)


def decode_query_image(
    data: bytes, *, box: BoundingBox | None, model: str | None, settings: Settings
) -> DecodedImage:
    """Decode a query image at the size ``model`` (default: the settings' model) needs for
    ``box`` of it (the whole picture without one); width and height stay the original's."""
    runner = get_model(model or settings.model, settings)
    return decode_image(
        data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes,
        floor=model_floor(runner, box),
    )


def embed_query_image(
    decoded: DecodedImage, *, box: BoundingBox | None, model: str | None, settings: Settings
) -> list[float]:
    """A decoded query image's vector from ``model`` (default: the settings' model): the
    model the search then ranks with, whoever asks (CLI, API, anchors)."""
    picture = crop_to_box(decoded.image, box) if box is not None else decoded.image
    embedding = get_model(model or settings.model, settings).embed_images([picture]).embeddings
    return [float(v) for v in embedding[0]]


def search(query: SearchQuery, settings: Settings | None = None) -> SearchPage:
    """One page of results. A tag search that found nothing says which known tag names
    contain the words asked for (tags match whole names: "tabby" is not "tabby cat")."""
    settings = settings or get_settings()
    page = _search(query, settings)
    if page.total == 0 and query.has_tag_filter:
        page.warnings = [*page.warnings, *tag_hints(query, settings)]
    return page


def _search(query: SearchQuery, settings: Settings) -> SearchPage:
    _require_criteria(query)
    if query.is_similarity and query.offset + query.limit > MAX_SIMILARITY_WINDOW:
        raise InvalidInputError(
            f"similarity results page only through the best {MAX_SIMILARITY_WINDOW:,} "
            f"(offset + limit is {query.offset + query.limit:,}); narrow the search with "
            "filters or a threshold to reach the rest", field="offset",
        )
    deadline = settings.search_timeout_ms
    with connect(settings, readonly=True) as conn, deadline_errors(deadline):
        # The model rides along in the first statement when the search ranks by one.
        model = (query.model or settings.model) if query.is_similarity else None
        scope = search_scope(
            conn, workspace=query.workspace, dataset=query.dataset, model=model,
            deadline_ms=deadline, plan=_plan_request(query, model, settings),
        )
        filters = _filters(conn, query, scope)
        if filters is None:  # a workspace without datasets: nothing can match
            if query.like_image_id is not None:  # but a wrong id is still an error
                images.get_image(conn, query.workspace, query.like_image_id)
            return SearchPage(total=0, offset=query.offset, results=[], exact=True)
        if query.is_similarity:
            return _similarity(conn, query, filters, scope, settings)
        ranked = search_rows.tag_ranked(conn, filters, query.offset, query.limit)
        total = search_counts.count_matching(conn, filters)
        rows = search_rows.hit_rows(conn, [i for i, _ in ranked])
        return SearchPage(total=total, offset=query.offset, results=_hits(rows, ranked), exact=True)


def _filters(
    conn: Conn, query: SearchQuery, scope: SearchScope
) -> search_sql.Filters | None:
    """The rows ``query`` may return; None when its workspace has no dataset at all."""
    dataset_id, everywhere = scope.dataset_id, scope.dataset_ids
    if dataset_id is None and not everywhere:
        return None
    # "Dogs", "puppy", "outdoors": every stored tag name the words mean (app.tag_match).
    tag_names = query_tag_names(conn, query)
    return search_sql.Filters(
        dataset_id=dataset_id,
        dataset_ids=everywhere,
        objects=tag_names["objects"],
        scenes=tag_names["scenes"],
        attributes=tag_names["attributes"],
        **_metadata_filters(query),
    )


def _plan_request(
    query: SearchQuery, model: str | None, settings: Settings
) -> PlanRequest | None:
    """What the first statement needs to plan the ranking too (one round trip fewer): a
    similarity search of one dataset filtered at most by one split, folder, batch or
    annotation job (``PlanRequest`` says why). Not a filtered prompt: it may rank by
    another model (an offline model's class vectors), planned again for that one."""
    if model is None or query.dataset is None or query.has_tag_filter:
        return None
    filters = search_sql.Filters(dataset_id=search_sql.SCOPED_DATASET, **_metadata_filters(query))
    if not filters.counted_by_one_range or (query.prompt is not None and not filters.scope_only):
        return None
    return PlanRequest(settings.exact_search_max_rows, settings.hnsw_ef_search, filters)


def _metadata_filters(query: SearchQuery) -> dict[str, Any]:
    """``query``'s filters on what a user or an import recorded (``Filters`` fields)."""
    return {
        "in_batch": query.in_batch, "in_annotation_job": query.in_annotation_job,
        "user_tags": query.tags, "class_names": query.class_names, "folder": query.folder,
        "batch_id": query.batch_id, "annotation_job_id": query.annotation_job_id,
        "split": query.split, "exclude_id": query.like_image_id,
    }


def search_facets(
    query: SearchQuery, settings: Settings | None = None, *, top: int = FACET_TOP
) -> Facets:
    """How many of the images ``query``'s filters admit carry each object / scene /
    attribute, user tag, annotation class, folder (with everything below it), split,
    batch and annotation job: the ``top`` most frequent of each."""
    settings = settings or get_settings()
    deadline = settings.search_timeout_ms
    with connect(settings, readonly=True) as conn, deadline_errors(deadline):
        scope = search_scope(
            conn, workspace=query.workspace, dataset=query.dataset, model=None,
            deadline_ms=deadline,
        )
        filters = _filters(conn, query, scope)
        if filters is None:
            return Facets(scanned=0, complete=True)
        rows = facet_counts(conn, filters)
    by_kind: dict[str, dict[str, int]] = {kind: {} for kind in TAG_KINDS}
    for key, count in rows.counts.get("tag_keys", {}).items():
        kind, _, name = key.partition(":")
        if kind in by_kind:
            by_kind[kind][name] = count
    folders: dict[str, int] = {}
    for folder, count in rows.counts.get("folders", {}).items():
        for ancestor in _folder_and_ancestors(folder):
            folders[ancestor] = folders.get(ancestor, 0) + count

    def ranked(counts: dict[str, int]) -> list[FacetValue]:
        best = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
        return [FacetValue(value=value, count=count) for value, count in best]

    return Facets(
        objects=ranked(by_kind["objects"]), scenes=ranked(by_kind["scenes"]),
        attributes=ranked(by_kind["attributes"]),
        tags=ranked(rows.counts.get("tags", {})),
        annotations=ranked(rows.counts.get("annotations", {})),
        folders=ranked(folders),
        split=ranked(rows.counts.get("split", {})),
        batch_id=ranked(rows.counts.get("batch_id", {})),
        annotation_job_id=ranked(rows.counts.get("annotation_job_id", {})),
        scanned=rows.scanned, complete=rows.complete,
    )


def _folder_and_ancestors(folder: str) -> list[str]:
    """``/a/b`` -> ``["/a/b", "/a"]``: a folder filter matches everything below it."""
    parts = [p for p in folder.split("/") if p]
    return ["/" + "/".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _require_criteria(query: SearchQuery) -> None:
    if (
        query.match_all
        or query.is_similarity
        or query.in_batch is not None
        or query.in_annotation_job is not None
        or query.has_tag_filter
        or query.tags
        or query.class_names
        or query.folder is not None
        or query.batch_id is not None
        or query.annotation_job_id is not None
        or query.split is not None
    ):
        return
    raise InvalidInputError(
        "give at least one search criterion: a query image, an image id, a prompt, objects / "
        "scenes / "
        "attributes, or a filter (tag, class name, folder, batch id, annotation job id, split)"
    )


def _similarity(
    conn: Conn, query: SearchQuery, filters: search_sql.Filters, scope: SearchScope,
    settings: Settings,
) -> SearchPage:
    datasets = [filters.dataset_id] if filters.dataset_id is not None else list(
        filters.dataset_ids)
    target = query_vector(conn, query, datasets, query.dataset, settings, known=scope.model)
    if target.vector is None:  # a prompt nothing can match: say so rather than rank noise
        return SearchPage(
            total=0, offset=query.offset, results=[], exact=True, warnings=target.warnings
        )
    model, dim, metric, vector = target.model, target.dim, target.metric, target.vector
    window = query.offset + query.limit
    cap = settings.exact_search_max_rows
    # One statement: the path (and its planner settings, kept by this transaction); the
    # first one planned it already where ``_plan_request`` allowed and the model ranked
    # is the one asked for (an offline prompt ranks by the class vector).
    plan = scope.plan if scope.plan is not None and scope.model is not None and (
        scope.model.name == model) else dataset_indexes.search_plan(
        conn, filters, model, cap, ef_search=settings.hnsw_ef_search
    )
    # Without a count the dataset's own index answers alone: an unfiltered HNSW search.
    matching = plan.matching
    exact = matching is not None and matching <= cap

    def candidates(exact_scan: bool, configured: bool = False) -> search_sql.VectorPage:
        return search_sql.vector_page(
            conn, model=model, dim=dim, query=vector, filters=filters, k=window,
            exact=exact_scan, ef_search=settings.hnsw_ef_search, metric=metric,
            configured=configured, page=(query.offset, query.limit),
        )

    found = candidates(exact, configured=True)
    known = plan.own_rows if matching is None else matching
    if not exact and len(found.ranked) < min(window, known or 0):
        # The index scan hit hnsw.max_scan_tuples before finding enough filtered rows.
        exact = True
        found = candidates(True)
    ranked = found.ranked
    fit = _calibration(query, target, settings)
    max_distance = _max_distance(query, target, fit)
    if max_distance is not None:
        ranked = [(i, d) for i, d in ranked if d <= max_distance + 1e-6]
    page = [(i, target.score(d)) for i, d in ranked[query.offset : window]]
    warnings = [*target.warnings, *_weak_prompt_warning(query, target.metric, page)]
    total = _total(conn, filters, target, plan, exact=exact, ranked=len(ranked),
                   window=window, max_distance=max_distance)
    return SearchPage(
        total=total, offset=query.offset, results=_hits(found.rows, page, fit), exact=exact,
        warnings=warnings,
    )


def _total(
    conn: Conn, filters: search_sql.Filters, target: QueryVector,
    plan: dataset_indexes.SearchPlan, *, exact: bool, ranked: int, window: int,
    max_distance: float | None,
) -> int:
    """How many rows the search matches: exact where that is cheap, else an estimate."""
    if exact:
        if max_distance is None:
            return search_counts.count_matching(conn, filters) if plan.matching is None \
                else plan.matching
        assert target.vector is not None
        return search_counts.count_within(
            conn, model=target.model, dim=target.dim, query=target.vector, filters=filters,
            max_distance=max_distance + 1e-6, metric=target.metric,
        )
    if max_distance is not None:
        # Fewer rows than asked: the threshold cut the ordered stream and we saw its end.
        return ranked if ranked < window else window
    if plan.matching is None:  # the dataset's own index, no other filter: its row count
        return max(plan.own_rows or 0, ranked)
    # Counting a large filtered set exactly would cost more than the search itself.
    return max(search_counts.estimate_matching(conn, filters), plan.matching)


def _weak_prompt_warning(
    query: SearchQuery, metric: str, page: list[tuple[UUID, float]]
) -> list[str]:
    """Say so when an offline prompt's best image barely shows what it names ("people"
    ranks by a 0.025 probability of a uniform or a scuba diver: noise, not people)."""
    if metric != "ip" or query.prompt is None or query.offset > 0 or not page:
        return []
    best = page[0][1]
    if best >= WEAK_PROMPT_SCORE:
        return []
    return [
        f"the best match for {query.prompt!r} scores {best:.3f} (below "
        f"{WEAK_PROMPT_SCORE}): the model recognises nothing the prompt names in these "
        "images, so this ranking is noise; its 1000 ImageNet classes know objects and "
        "animals, few people or places: use a vision-language model (model=...) for those"
    ]


def _calibration(
    query: SearchQuery, target: QueryVector, settings: Settings
) -> Calibration | None:
    """The model's similarity calibration, for cosine searches (see app.calibration)."""
    if target.metric != "cosine":
        if query.min_similarity is not None:
            raise ModelCapabilityError(
                "min_similarity applies to image and vision-language searches (cosine "
                "scores); an offline prompt scores by class probability: use threshold",
                field="min_similarity",
            )
        return None
    return calibration_for(target.model, settings, required=query.min_similarity is not None)


def _max_distance(
    query: SearchQuery, target: QueryVector, fit: Calibration | None
) -> float | None:
    """The tighter of the raw ``threshold`` and the calibrated ``min_similarity``."""
    limits = []
    if query.threshold is not None:
        limits.append(target.max_distance(query.threshold))
    if query.min_similarity is not None and fit is not None:
        limits.append(target.max_distance(fit.cosine(query.min_similarity)))
    return min(limits) if limits else None


def _hits(
    rows: dict[UUID, dict[str, Any]], ranked: list[tuple[UUID, float]],
    fit: Calibration | None = None,
) -> list[SearchHit]:
    """``ranked``'s page as hits, from their ``search_sql.HIT_COLUMNS`` rows."""
    hits: list[SearchHit] = []
    for image_id, score in ranked:
        row = rows.get(image_id)
        if row is None:  # deleted between ranking and fetching
            continue
        hits.append(
            SearchHit(
                id=image_id,
                name=str(row["name"]),
                folder=str(row["folder"]),
                score=round(score, 6),
                similarity=None if fit is None else round(fit.similarity(score), 6),
                width=row["width"],
                height=row["height"],
                storage_key=None if row["storage_key"] is None else str(row["storage_key"]),
                user_tags=list(row["user_tags"]),
                auto_tags=AutoTags.model_validate(row["auto_tags"]),
            )
        )
    return hits
