"""``/v1/datasets/{id}/duplicates | leakage | outliers | label-doubts``, the dataset's
duplicate gate and a full recompute: dataset curation (:mod:`pixdex.app.curation`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler.openapi.params import Query

from pixdex.api.deps import Caller, settings
from pixdex.api.openapi import new_router, responses
from pixdex.app import curation, duplicate_gate, label_doubts
from pixdex.app.curation_schemas import (
    LEVELS,
    DuplicateGate,
    Duplicates,
    LabelDoubts,
    Leakage,
    Outliers,
    Recomputed,
)

router = new_router()
TAGS = ["curation"]
LEVEL = Query(description=f"granularity {LEVELS}; outside it: 422")


@router.get(
    "/v1/datasets/<dataset_id>/duplicates", tags=TAGS,
    summary="Near-duplicate clusters of the whole dataset, largest first, with a keeper",
    responses=responses("One page of clusters", 404),
)
def duplicates(
    dataset_id: UUID, caller: Caller, level: Annotated[int, LEVEL] = 1,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=250)] = 50,
) -> Duplicates:
    return curation.duplicates(dataset_id, level=level, offset=offset, limit=limit,
                               workspace=caller.workspace, settings=settings())


@router.get(
    "/v1/datasets/<dataset_id>/leakage", tags=TAGS,
    summary="Near-duplicate pairs whose images sit in different splits, counted per pair",
    responses=responses("Leaking pairs (none, with a note, when the dataset has no splits)",
                        404),
)
def leakage(dataset_id: UUID, caller: Caller, level: Annotated[int, LEVEL] = 1) -> Leakage:
    return curation.leakage(dataset_id, level=level, workspace=caller.workspace,
                            settings=settings())


@router.get(
    "/v1/datasets/<dataset_id>/outliers", tags=TAGS,
    summary="Images unlike the rest: mean cosine distance to their nearest neighbours",
    responses=responses("One page, farthest first", 404),
)
def outliers(
    dataset_id: UUID, caller: Caller,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=250)] = 50,
) -> Outliers:
    return curation.outliers(dataset_id, offset=offset, limit=limit,
                             workspace=caller.workspace, settings=settings())


@router.get(
    "/v1/datasets/<dataset_id>/label-doubts", tags=TAGS,
    summary="Annotations their neighbours vote against, and ones their auto-tags contradict",
    responses=responses("The strongest doubts of each kind", 404),
)
def doubts(
    dataset_id: UUID, caller: Caller, limit: Annotated[int, Query(ge=1, le=250)] = 50,
) -> LabelDoubts:
    return label_doubts.label_doubts(dataset_id, limit=limit, workspace=caller.workspace,
                                     settings=settings())


@router.get(
    "/v1/datasets/<dataset_id>/duplicate-gate", tags=TAGS,
    summary="The dataset's duplicate gate at ingest (allow | skip | link, with a level)",
    responses=responses("The gate", 404),
)
def get_gate(dataset_id: UUID, caller: Caller) -> DuplicateGate:
    return duplicate_gate.get_dataset_gate(dataset_id, workspace=caller.workspace,
                                           settings=settings())


@router.put(
    "/v1/datasets/<dataset_id>/duplicate-gate", tags=TAGS,
    summary="Set the dataset's duplicate gate: what ingest does with near-duplicates",
    responses=responses("The gate as it is now", 403, 404),
)
def put_gate(dataset_id: UUID, body: DuplicateGate, caller: Caller) -> DuplicateGate:
    return duplicate_gate.set_dataset_gate(dataset_id, body, workspace=caller.workspace,
                                           settings=settings())


@router.post(
    "/v1/datasets/<dataset_id>/curation/recompute", tags=TAGS,
    summary="Rebuild the dataset's neighbour graph (after a model change)",
    responses=responses("What was recomputed", 403, 404),
)
def recompute(dataset_id: UUID, caller: Caller) -> Recomputed:
    return curation.recompute(dataset_id, workspace=caller.workspace, settings=settings())
