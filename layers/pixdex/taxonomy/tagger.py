"""Zero-shot auto-tags from a vision-language model and the taxonomy.

Each taxonomy entry's text embedding is the mean of its prompts' embeddings, normalised
(prompt ensembling, as in CLIP's zero-shot recipe). They are computed once per (model,
taxonomy) and cached under ``$PIXDEX_HOME/models/taxonomy/`` keyed by the model's name and
manifest digest and the taxonomy's version and content digest, so a new model or an
extended taxonomy gets fresh embeddings and nothing else recomputes. Tagging an image is
then one matrix product of its stored embedding with those text embeddings, which is why
re-tagging a dataset needs no image decoding at all.

Scores per kind (each in [0, 1]):

* SigLIP: ``sigmoid(exp(t) * cos + b)`` with the model's own scale and bias: an
  independent probability per tag, which is what SigLIP was trained to output;
* CLIP: a softmax over the kind's entries of ``exp(t) * cos``: CLIP's scores only mean
  something relative to the alternatives.

Default rules (threshold, top-k) per kind: SigLIP 0.10 / 5 objects, 0.10 / 3 scenes,
0.10 / 5 attributes; CLIP 0.15 / 5, 0.20 / 3, 0.15 / 5. Why: in transformers' published
zero-shot examples a correct SigLIP label typically scores 0.1-0.9 while wrong ones stay
below 0.01, so 0.10 keeps the right labels with margin; CLIP's softmax spreads over
~300 objects or ~70 scenes, where 0.15-0.20 means clearly ahead of the rest. These were
NOT calibrated on the real checkpoints here (no hub access); calibrate them per model on
a labeled sample before relying on them, and pass your own :class:`KindRule` values.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pixdex.config import Settings
from pixdex.errors import InvalidInputError
from pixdex.inference.model_cache import write_atomic
from pixdex.inference.vectors import l2_normalise
from pixdex.models import TAG_KINDS, AutoTags, TagKind

from .model import Taxonomy, base_taxonomy
from .protocol import ZeroShotModel

__all__ = ["CLIP_RULES", "SIGLIP_RULES", "KindRule", "ZeroShotTagger"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KindRule:
    threshold: float
    top_k: int


SIGLIP_RULES: dict[TagKind, KindRule] = {
    "objects": KindRule(0.10, 5), "scenes": KindRule(0.10, 3), "attributes": KindRule(0.10, 5),
}  # fmt: skip
CLIP_RULES: dict[TagKind, KindRule] = {
    "objects": KindRule(0.15, 5), "scenes": KindRule(0.20, 3), "attributes": KindRule(0.15, 5),
}  # fmt: skip


class ZeroShotTagger:
    """Tags image embeddings of ``model`` with ``taxonomy`` (default: the base taxonomy)."""

    def __init__(
        self,
        model: ZeroShotModel,
        settings: Settings,
        taxonomy: Taxonomy | None = None,
        rules: dict[TagKind, KindRule] | None = None,
    ) -> None:
        self.model = model
        self.taxonomy = taxonomy or base_taxonomy()
        family = model.manifest.family
        self.rules = rules or (SIGLIP_RULES if family == "siglip" else CLIP_RULES)
        self._settings = settings
        self._lock = threading.Lock()
        self._text: dict[TagKind, NDArray[np.float32]] | None = None
        self.names: dict[TagKind, tuple[str, ...]] = {
            kind: tuple(e.name for e in self.taxonomy.entries(kind)) for kind in TAG_KINDS
        }

    @property
    def cache_path(self) -> Path:
        manifest = self.model.manifest.model_dump_json().encode()
        model_digest = hashlib.sha256(manifest).hexdigest()[:12]
        version = re.sub(r"[^A-Za-z0-9.+_-]", "_", self.taxonomy.version)
        name = f"{self.model.spec.name}-{model_digest}-{version}-{self.taxonomy.digest()}.npz"
        return self._settings.models_dir / "taxonomy" / name

    def _compute(self) -> dict[TagKind, NDArray[np.float32]]:
        out: dict[TagKind, NDArray[np.float32]] = {}
        for kind in TAG_KINDS:
            entries = self.taxonomy.entries(kind)
            prompts = [self.taxonomy.prompts(kind, e) for e in entries]
            flat = [p for group in prompts for p in group]
            vectors = self.model.embed_texts(flat) if flat else np.zeros((0, self.model.spec.dim))
            rows, start = [], 0
            for group in prompts:
                rows.append(vectors[start : start + len(group)].mean(axis=0))
                start += len(group)
            dim = self.model.spec.dim
            stacked = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
            out[kind] = l2_normalise(stacked.astype(np.float32))
        return out

    def _load_cached(self, path: Path) -> dict[TagKind, NDArray[np.float32]] | None:
        try:
            with np.load(path) as data:
                found = {
                    kind: np.asarray(data[f"arr_{i}"], dtype=np.float32)
                    for i, kind in enumerate(TAG_KINDS)
                }
        except (OSError, KeyError, ValueError) as exc:
            log.warning("taxonomy cache %s unreadable (%s); recomputing", path, exc)
            return None
        dim = self.model.spec.dim
        for kind in TAG_KINDS:
            if found[kind].shape != (len(self.names[kind]), dim):
                log.warning("taxonomy cache %s has the wrong shape; recomputing", path)
                return None
        return found

    def text_embeddings(self) -> dict[TagKind, NDArray[np.float32]]:
        """(entries, dim) per kind: computed once, then read from the cache file."""
        with self._lock:
            if self._text is None:
                path = self.cache_path
                cached = self._load_cached(path) if path.is_file() else None
                if cached is None:
                    cached = self._compute()
                    buffer = io.BytesIO()
                    # Positional arrays (arr_0..) in TAG_KINDS order: no names to mistype.
                    np.savez(buffer, *(cached[kind] for kind in TAG_KINDS))
                    write_atomic(path, buffer.getvalue())
                self._text = cached
            return self._text

    def scores(self, image_embeddings: NDArray[np.float32]) -> dict[TagKind, NDArray[np.float32]]:
        """Per kind, (n, entries) scores in [0, 1] (see the module docstring)."""
        emb = np.asarray(image_embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.model.spec.dim:
            raise InvalidInputError(
                f"image embeddings must have shape (n, {self.model.spec.dim}) for model "
                f"{self.model.spec.name}, got {emb.shape}",
                field="embeddings",
            )
        emb = l2_normalise(emb)
        out: dict[TagKind, NDArray[np.float32]] = {}
        for kind, text in self.text_embeddings().items():
            logits = self.model.logits(emb @ text.T).astype(np.float64)
            if self.model.manifest.family == "siglip":
                probs = 1.0 / (1.0 + np.exp(-logits))
            else:
                shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
                probs = shifted / shifted.sum(axis=1, keepdims=True)
            out[kind] = probs.astype(np.float32)
        return out

    def tag(self, image_embeddings: NDArray[np.float32]) -> list[AutoTags]:
        """AutoTags per image: entries at or above their kind's threshold, best top-k."""
        scores = self.scores(image_embeddings)
        tags: list[AutoTags] = []
        for i in range(len(image_embeddings)):
            per_kind: dict[str, dict[str, float]] = {}
            for kind in TAG_KINDS:
                rule = self.rules[kind]
                row = scores[kind][i]
                order = np.argsort(-row, kind="stable")[: rule.top_k]
                per_kind[kind] = {
                    self.names[kind][j]: round(float(row[j]), 4)
                    for j in order
                    if row[j] >= rule.threshold
                }
            tags.append(AutoTags(**per_kind))
        return tags
