"""What the command line asks of the catalog beyond indexing and searching: an image's
record, the datasets with their counts, the embedded database, the workspace's taxonomy
changes, and warming a server up. The HTTP API's counterparts are in :mod:`pixdex.app.service`.

Interfaces never reach the storage package themselves (an import contract checks it):
these functions are their way in.
"""

from __future__ import annotations

from uuid import UUID

from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.errors import ModelCapabilityError, NotFoundError
from pixdex.models import ImageRecord, TagKind
from pixdex.storage import catalog, images
from pixdex.storage import taxonomy as taxonomy_rows
from pixdex.storage.connection import connect
from pixdex.taxonomy import Taxonomy, TaxonomyExtension, base_taxonomy, merge

__all__ = [
    "change_taxonomy", "dataset_summaries", "image_record", "reset_taxonomy",
    "tagging_model", "taxonomy_changes", "warm_up",
]


def image_record(settings: Settings, image_id: UUID) -> ImageRecord:
    with connect(settings) as conn:
        return images.get_image(conn, settings.workspace, image_id)


def dataset_summaries(settings: Settings) -> list[dict[str, object]]:
    """Each dataset of the workspace: id, name, created_at and its image counts."""
    with connect(settings) as conn:
        return catalog.list_datasets(conn, settings.workspace)


def tagging_model(settings: Settings, dataset: str) -> str:
    """The dataset's first vision-language model: the one its zero-shot tags come from."""
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, settings.workspace, dataset).id
        taggers = [
            m for m in catalog.dataset_models(conn, dataset_id)
            if catalog.model_info(conn, m).encodes_text
        ]
    if not taggers:
        raise ModelCapabilityError(
            f"dataset {dataset!r} has no vision-language model to tag with; add one "
            "with `pixdex reembed --dataset NAME --model MODEL`",
            field="model",
        )
    return taggers[0]


def taxonomy_changes(
    settings: Settings, workspace: str
) -> tuple[Taxonomy, list[TaxonomyExtension]]:
    """The workspace's taxonomy (base + changes) and its changes."""
    with connect(settings) as conn:
        changes = taxonomy_rows.list_extensions(conn, workspace)
    return merge(base_taxonomy(), changes), changes


def change_taxonomy(settings: Settings, workspace: str, change: TaxonomyExtension) -> None:
    with connect(settings) as conn:
        taxonomy_rows.upsert_extension(conn, workspace, change)


def reset_taxonomy(settings: Settings, workspace: str, kind: TagKind, name: str) -> None:
    with connect(settings) as conn:
        if not taxonomy_rows.delete_extension(conn, workspace, kind, name):
            raise NotFoundError(
                f"workspace {workspace!r} has no change to {kind} {name!r}", field="name"
            )


def warm_up(settings: Settings) -> None:
    """Load the model and open the pool now, so a server's first request is not slow."""
    get_model(settings.model, settings)
    with connect(settings) as conn:
        conn.execute("SELECT 1")
