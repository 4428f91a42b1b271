"""Per-workspace taxonomies, a shared tagger per (model, taxonomy), and re-tagging.

Re-tagging reads each image's stored embedding (no image decoding, no image model run:
zero-shot tags are a function of the embedding), recomputes the zero-shot tags with the
workspace's current taxonomy and writes them back page by page, one transaction per page,
so a long re-tag never holds locks on the whole dataset and can be re-run after a crash.
Attributes computed from pixels at ingest (blurry, dark, ...) are kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from uuid import UUID

import numpy as np

from pixdex.config import Settings
from pixdex.models import AutoTags

from .model import Taxonomy, base_taxonomy, merge
from .protocol import ZeroShotModel
from .tagger import ZeroShotTagger

__all__ = [
    "PIXEL_ATTRIBUTES",
    "RetagReport",
    "get_tagger",
    "merge_auto_tags",
    "retag_dataset",
    "workspace_taxonomy",
]

# Names produced by pixdex.imaging.attributes (pixel rules), kept across re-tagging.
PIXEL_ATTRIBUTES = frozenset(
    {"small", "dark", "bright", "low-contrast", "high-contrast", "grayscale", "blurry"}
)
_taggers: dict[tuple[str, str, str], ZeroShotTagger] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class RetagReport:
    dataset: str
    model: str
    taxonomy_version: str
    images: int


def workspace_taxonomy(settings: Settings, workspace: str) -> Taxonomy:
    """The base taxonomy with ``workspace``'s extensions applied."""
    from pixdex.storage.connection import connect
    from pixdex.storage.taxonomy import list_extensions

    with connect(settings) as conn:
        return merge(base_taxonomy(), list_extensions(conn, workspace))


def get_tagger(
    model: ZeroShotModel, settings: Settings, taxonomy: Taxonomy | None = None
) -> ZeroShotTagger:
    """One tagger (and one set of taxonomy text embeddings) per process and taxonomy."""
    taxonomy = taxonomy or base_taxonomy()
    key = (str(model.model_dir), str(settings.models_dir), taxonomy.digest())
    with _lock:
        tagger = _taggers.get(key)
        if tagger is None or tagger.model is not model:
            tagger = _taggers[key] = ZeroShotTagger(model, settings, taxonomy)
        return tagger


def merge_auto_tags(previous: AutoTags, zero_shot: AutoTags) -> AutoTags:
    """Zero-shot objects and scenes; pixel-rule attributes kept, zero-shot ones added."""
    attributes = {k: v for k, v in previous.attributes.items() if k in PIXEL_ATTRIBUTES}
    attributes.update(zero_shot.attributes)
    return AutoTags(objects=zero_shot.objects, scenes=zero_shot.scenes, attributes=attributes)


def retag_dataset(
    dataset: str,
    model: ZeroShotModel,
    settings: Settings,
    *,
    workspace: str | None = None,
    page_size: int = 1000,
) -> RetagReport:
    """Recompute the zero-shot tags of every indexed image of ``dataset`` for ``model``."""
    from pixdex.storage.catalog import get_dataset
    from pixdex.storage.connection import connect
    from pixdex.storage.taxonomy import embeddings_page, save_auto_tags

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
