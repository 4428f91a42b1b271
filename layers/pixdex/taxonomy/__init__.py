"""Zero-shot auto-tags: a versioned taxonomy, its extensions, the tagger (no storage:
re-tagging stored images is :mod:`pixdex.app.retag`)."""

from .model import Taxonomy, TaxonomyEntry, TaxonomyExtension, base_taxonomy, merge
from .protocol import ZeroShotModel
from .shared import PIXEL_ATTRIBUTES, get_tagger, merge_auto_tags
from .tagger import CLIP_RULES, SIGLIP_RULES, KindRule, ZeroShotTagger

__all__ = [
    "CLIP_RULES",
    "PIXEL_ATTRIBUTES",
    "SIGLIP_RULES",
    "KindRule",
    "Taxonomy",
    "TaxonomyEntry",
    "TaxonomyExtension",
    "ZeroShotModel",
    "ZeroShotTagger",
    "base_taxonomy",
    "get_tagger",
    "merge",
    "merge_auto_tags",
]
