"""A shared tagger per (model, taxonomy), and how zero-shot tags join the pixel ones.

Storage-free: the workspace's taxonomy and re-tagging stored images are
:mod:`pixdex.app.retag`'s, above the storage package.
"""

from __future__ import annotations

import threading

from pixdex.config import Settings
from pixdex.imaging.attributes import PIXEL_ATTRIBUTES
from pixdex.models import AutoTags

from .model import Taxonomy, base_taxonomy
from .protocol import ZeroShotModel
from .tagger import ZeroShotTagger

__all__ = ["PIXEL_ATTRIBUTES", "get_tagger", "merge_auto_tags"]
_taggers: dict[tuple[str, str, str], ZeroShotTagger] = {}
_lock = threading.Lock()


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
