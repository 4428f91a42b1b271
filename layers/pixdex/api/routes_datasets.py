"""``/v1/datasets``: create, list, get, delete."""

from __future__ import annotations

from uuid import UUID

from pixdex.api.deps import Caller, settings
from pixdex.api.openapi import new_router, responses
from pixdex.app.service import datasets
from pixdex.app.service.schemas import CreateDataset, Dataset, DatasetList, Deleted

router = new_router()
TAGS = ["datasets"]


@router.post(
    "/v1/datasets", status_code=201, tags=TAGS, summary="Create a dataset",
    responses=responses("The new dataset", 403, 409, status=201),
)
def create_dataset(body: CreateDataset, caller: Caller) -> Dataset:
    return datasets.create_dataset(settings(), caller.workspace, body.name)


@router.get("/v1/datasets", tags=TAGS, summary="List datasets with image counts",
            responses=responses("The workspace's datasets"))
def list_datasets(caller: Caller) -> DatasetList:
    return datasets.list_datasets(settings(), caller.workspace)


@router.get("/v1/datasets/<dataset_id>", tags=TAGS, summary="A dataset: status and counts",
            responses=responses("The dataset", 404))
def get_dataset(dataset_id: UUID, caller: Caller) -> Dataset:
    return datasets.get_dataset(settings(), caller.workspace, dataset_id)


@router.delete(
    "/v1/datasets/<dataset_id>", tags=TAGS,
    summary="Delete a dataset with its images, embeddings and uploaded files",
    responses=responses("Deleted", 403, 404),
)
def delete_dataset(dataset_id: UUID, caller: Caller) -> Deleted:
    return datasets.delete_dataset(settings(), caller.workspace, dataset_id)
