"""Zero-shot auto-tags: a versioned taxonomy, per-workspace extensions, tagger, re-tagging."""

from .model import Taxonomy, TaxonomyEntry, TaxonomyExtension, base_taxonomy, merge
from .protocol import ZeroShotModel
from .retag import RetagReport, get_tagger, merge_auto_tags, retag_dataset, workspace_taxonomy
from .tagger import CLIP_RULES, SIGLIP_RULES, KindRule, ZeroShotTagger

__all__ = [
    "CLIP_RULES",
    "SIGLIP_RULES",
    "KindRule",
    "RetagReport",
    "Taxonomy",
    "TaxonomyEntry",
    "TaxonomyExtension",
    "ZeroShotModel",
    "ZeroShotTagger",
    "base_taxonomy",
    "get_tagger",
    "merge",
    "merge_auto_tags",
    "retag_dataset",
    "workspace_taxonomy",
]
