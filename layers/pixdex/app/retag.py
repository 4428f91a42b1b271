"""Re-tagging a dataset's images with its workspace's current taxonomy.

Re-tagging reads each image's stored embedding (no image decoding, no image model run:
zero-shot tags are a function of the embedding), recomputes the zero-shot tags with the
workspace's current taxonomy and writes them back page by page, one transaction per page,
so a long re-tag never holds locks on the whole dataset and can be re-run after a crash.
Attributes computed from pixels at ingest (blurry, dark, ...) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import numpy as np

from pixdex.config import Settings
from pixdex.storage.catalog import get_dataset
from pixdex.storage.connection import connect
from pixdex.storage.taxonomy import embeddings_page, list_extensions, save_auto_tags
from pixdex.taxonomy import Taxonomy, ZeroShotModel, base_taxonomy, get_tagger, merge
from pixdex.taxonomy import merge_auto_tags as merge_auto_tags

__all__ = ["RetagReport", "retag_dataset", "workspace_taxonomy"]


@dataclass(frozen=True)
class RetagReport:
    dataset: str
    model: str
    taxonomy_version: str
    images: int


def workspace_taxonomy(settings: Settings, workspace: str) -> Taxonomy:
    """The base taxonomy with ``workspace``'s extensions applied."""
    with connect(settings) as conn:
        return merge(base_taxonomy(), list_extensions(conn, workspace))


def retag_dataset(
    dataset: str,
    model: ZeroShotModel,
    settings: Settings,
    *,
    workspace: str | None = None,
    page_size: int = 1000,
) -> RetagReport:
    """Recompute the zero-shot tags of every indexed image of ``dataset`` for ``model``."""
    workspace = workspace or settings.workspace
    tagger = get_tagger(model, settings, workspace_taxonomy(settings, workspace))
    done = 0
    after: UUID | None = None
    with connect(settings) as conn:
        dataset_id = get_dataset(conn, workspace, dataset).id
    while True:
        with connect(settings) as conn, conn.transaction():
            page = embeddings_page(conn, dataset_id, model.spec.name, after, page_size)
            if not page:
                break
            tags = tagger.tag(np.stack([vector for _, vector, _ in page]))
            save_auto_tags(
                conn,
                [(image_id, merge_auto_tags(old, new))
                 for (image_id, _, old), new in zip(page, tags, strict=True)],
            )  # fmt: skip
        done += len(page)
        after = page[-1][0]
    return RetagReport(dataset, model.spec.name, tagger.taxonomy.version, done)
