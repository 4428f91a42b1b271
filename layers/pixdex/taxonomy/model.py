"""The zero-shot tag taxonomy: versioned base data plus per-workspace extensions.

The base taxonomy ships as ``data/taxonomy-VERSION.json`` (objects, scenes, attributes;
each entry a name and optionally its own prompts, otherwise the kind's templates with the
name filled in). A workspace may add entries or disable base ones (stored in the
``taxonomy_entries`` table, see :mod:`pixdex.storage.taxonomy`); :func:`merge` builds the
effective taxonomy, whose ``version`` changes whenever its content does, so cached text
embeddings are never reused for a different taxonomy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pixdex.models import TAG_KINDS, TagKind

__all__ = [
    "BASE_TAXONOMY_FILE",
    "Taxonomy",
    "TaxonomyEntry",
    "TaxonomyExtension",
    "base_taxonomy",
    "merge",
]

BASE_TAXONOMY_FILE = "taxonomy-2025.1.json"
MAX_PROMPTS = 16


def _clean_name(value: str) -> str:
    name = " ".join(value.split()).lower()
    if not name or len(name) > 80:
        raise ValueError("tag names must be 1-80 characters")
    if ":" in name or "," in name:
        raise ValueError("tag names cannot contain ':' or ',' (they are used in tag filters)")
    return name


class TaxonomyEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    prompts: tuple[str, ...] = Field(default=(), max_length=MAX_PROMPTS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _clean_name(value)

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(" ".join(v.split()) for v in values)
        if any(not v or len(v) > 300 for v in cleaned):
            raise ValueError("prompts must be 1-300 characters")
        return cleaned


class Taxonomy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1, max_length=120)
    description: str = ""
    templates: dict[TagKind, tuple[str, ...]]
    objects: tuple[TaxonomyEntry, ...]
    scenes: tuple[TaxonomyEntry, ...]
    attributes: tuple[TaxonomyEntry, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Taxonomy:
        for kind in TAG_KINDS:
            templates = self.templates.get(kind, ())
            if not templates or any(t.count("{}") != 1 for t in templates):
                raise ValueError(f"{kind}: give templates with exactly one '{{}}' each")
            names = [e.name for e in self.entries(kind)]
            if len(set(names)) != len(names):
                raise ValueError(f"{kind}: duplicate entry names")
        return self

    def entries(self, kind: TagKind) -> tuple[TaxonomyEntry, ...]:
        entries: tuple[TaxonomyEntry, ...] = getattr(self, kind)
        return entries

    def prompts(self, kind: TagKind, entry: TaxonomyEntry) -> tuple[str, ...]:
        """The entry's own prompts, or the kind's templates filled with its name."""
        return entry.prompts or tuple(t.format(entry.name) for t in self.templates[kind])

    def digest(self) -> str:
        """Short content hash: what the text-embedding cache is keyed by."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]


class TaxonomyExtension(BaseModel):
    """One workspace-level change: add (or re-prompt) an entry, or disable a base one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: TagKind
    name: str
    prompts: tuple[str, ...] = Field(default=(), max_length=MAX_PROMPTS)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _clean_name(value)


@lru_cache(maxsize=1)
def base_taxonomy() -> Taxonomy:
    """The taxonomy shipped with pixdex (validated on first use)."""
    text = (resources.files("pixdex.taxonomy") / "data" / BASE_TAXONOMY_FILE).read_text("utf-8")
    return Taxonomy.model_validate(json.loads(text))


def merge(base: Taxonomy, extensions: Iterable[TaxonomyExtension]) -> Taxonomy:
    """``base`` with the extensions applied; the version records that it was extended."""
    changes = list(extensions)
    if not changes:
        return base
    kinds: dict[TagKind, dict[str, TaxonomyEntry]] = {
        kind: {e.name: e for e in base.entries(kind)} for kind in TAG_KINDS
    }
    for change in changes:
        if change.enabled:
            kinds[change.kind][change.name] = TaxonomyEntry(
                name=change.name, prompts=change.prompts
            )
        else:
            kinds[change.kind].pop(change.name, None)
    ext = hashlib.sha256(
        json.dumps([c.model_dump(mode="json") for c in changes], sort_keys=True).encode()
    ).hexdigest()[:12]
    return Taxonomy(
        version=f"{base.version}+ws.{ext}",
        description=base.description,
        templates=base.templates,
        objects=tuple(kinds["objects"].values()),
        scenes=tuple(kinds["scenes"].values()),
        attributes=tuple(kinds["attributes"].values()),
    )
