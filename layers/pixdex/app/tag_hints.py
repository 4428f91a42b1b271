"""Tag names a tag filter may have meant, for a tag search that matched nothing (every
interface gets them: :func:`pixdex.app.search.search` adds them to the page's warnings).

Tag filters match whole names exactly ("objects:tabby cat"), so a search for "tabby"
finds nothing although the index is full of tabby cats. The known names are the ones
pixdex tags with: the offline model's ImageNet classes (objects), the workspace's
zero-shot taxonomy (objects, scenes, attributes) and the pixel-rule attributes.
"""

from __future__ import annotations

from collections.abc import Iterable

from pixdex.app.retag import workspace_taxonomy
from pixdex.config import Settings
from pixdex.imaging.attributes import PIXEL_ATTRIBUTES
from pixdex.inference.imagenet import imagenet_class_names
from pixdex.models import TAG_KINDS, SearchQuery, TagKind

# Enough to show the candidates for a common word ("dog" names over a hundred breeds)
# without burying the answer.
MAX_SUGGESTIONS = 8


def known_tag_names(settings: Settings, workspace: str) -> dict[TagKind, set[str]]:
    taxonomy = workspace_taxonomy(settings, workspace)
    known: dict[TagKind, set[str]] = {
        kind: {entry.name for entry in getattr(taxonomy, kind)} for kind in TAG_KINDS
    }
    known["objects"].update(imagenet_class_names())
    known["attributes"].update(PIXEL_ATTRIBUTES)
    return known


def similar_names(word: str, names: Iterable[str]) -> list[str]:
    """Names containing ``word`` (any case), shortest first: the closest reading first."""
    needle = " ".join(word.split()).lower()
    found = {name for name in names if needle in name.lower() and name != word}
    return sorted(found, key=lambda name: (len(name), name.lower()))[:MAX_SUGGESTIONS]


def tag_hints(query: SearchQuery, settings: Settings) -> list[str]:
    """One hint per queried tag name that is part of other known names.

    Also for a name that is known itself: which names a dataset carries depends on the
    model that tagged it (ImageNet classes offline, the taxonomy zero-shot), so "dog" may
    be a taxonomy name while the images say "Maltese dog".
    """
    wanted = {kind: list(getattr(query, kind)) for kind in TAG_KINDS if getattr(query, kind)}
    if not wanted:
        return []
    known = known_tag_names(settings, query.workspace)
    hints: list[str] = []
    for kind, words in wanted.items():
        for word in words:
            names = similar_names(word, known[kind])
            if names:
                listed = ", ".join(repr(name) for name in names)
                hints.append(
                    f"{kind} match whole tag names; known {kind} tags containing "
                    f"{word!r}: {listed}"
                )
    return hints
