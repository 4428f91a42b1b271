"""What a tag filter's words match: case, plurals, synonyms and everyday words.

Auto-tags are stored under their own names ("objects:tabby cat", "objects:cat",
"scenes:outdoor"), so a filter word is first turned into every stored name it may mean:

* the same name in any case or number ("Dogs" -> "dog", "german shepherd dogs" ->
  "German Shepherd Dog"), against the names pixdex tags with (ImageNet classes, the
  generic labels, the scene and attribute names, the workspace's taxonomy);
* for objects, a generic label named by the word or one of its aliases ("puppy",
  "automobile", "people") -> the label and the ImageNet classes below it, so images
  tagged before generic labels existed (only "Beagle") are found too (``pixdex retag``
  gives them the labels themselves); a WordNet synonym of a class ("tabby") -> that class
  (a class's own name, "tabby cat", means only that class);
* for scenes, the everyday words of :data:`pixdex.taxonomy.scenes.SCENE_ALIASES`
  ("outdoors", "night", "seaside").

The word itself is always kept, so a name of the workspace's own taxonomy still matches
exactly. Ranking is unchanged: the best score among the names a word matched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

from pixdex.imaging.attributes import PIXEL_ATTRIBUTES
from pixdex.inference.imagenet import imagenet_class_names
from pixdex.models import TAG_KINDS, SearchQuery, TagKind
from pixdex.storage.connection import Conn
from pixdex.storage.taxonomy import list_extensions
from pixdex.taxonomy import base_taxonomy, merge
from pixdex.taxonomy.scenes import SCENE_ALIASES, scene_names
from pixdex.text.hierarchy import generic_labels, label_for, name_key
from pixdex.text.lexicon import content, lexicon

__all__ = ["expand_tag_filter", "query_tag_names"]

# A filter word may fan out to at most this many names (an "animal" is 398 classes).
MAX_NAMES_PER_WORD = 1000


def _index(names: Iterable[str]) -> dict[tuple[str, ...], set[str]]:
    out: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for name in names:
        out[name_key(name)].add(name)
    return out


@lru_cache(maxsize=1)
def _known() -> dict[TagKind, dict[tuple[str, ...], set[str]]]:
    objects = (*imagenet_class_names(), *(label.name for label in generic_labels()))
    return {
        "objects": _index(objects),
        "scenes": _index(scene_names()),
        "attributes": _index(PIXEL_ATTRIBUTES),
    }


def _object_names(word: str) -> set[str]:
    names = imagenet_class_names()
    found: set[str] = set()
    label = label_for(word)
    if label is not None:
        found.add(label.name)
        found.update(names[idx] for idx in label.classes)
    lex = lexicon()
    key = content(word)
    if name_key(word) in _known()["objects"]:
        return found  # a class's own name means that class, not its synonyms' classes
    if key and key not in lex.groups and key in lex.phrases:
        found.update(names[idx] for idx in lex.phrases[key])
    return found


def _word_names(kind: TagKind, word: str, extra: dict[tuple[str, ...], set[str]]) -> list[str]:
    key = name_key(word)
    found = {word, *_known()[kind].get(key, ()), *extra.get(key, ())}
    if kind == "objects":
        found |= _object_names(word)
    elif kind == "scenes":
        alias = SCENE_ALIASES.get(" ".join(key)) or SCENE_ALIASES.get(word.strip().lower())
        if alias is not None:
            found.add(alias)
    return sorted(found)[:MAX_NAMES_PER_WORD]


def expand_tag_filter(
    kind: TagKind, words: Sequence[str], workspace_names: Iterable[str] = ()
) -> list[str]:
    """Every stored tag name the filter ``words`` of ``kind`` match (see the docstring)."""
    if not words:
        return []
    extra = _index(workspace_names)
    out: dict[str, None] = {}
    for word in words:
        out.update(dict.fromkeys(_word_names(kind, word, extra)))
    return list(out)


def query_tag_names(conn: Conn, query: SearchQuery) -> dict[TagKind, list[str]]:
    """``query``'s objects / scenes / attributes filters expanded (empty kinds stay empty)."""
    if not query.has_tag_filter:
        return {kind: [] for kind in TAG_KINDS}
    taxonomy = merge(base_taxonomy(), list_extensions(conn, query.workspace))
    return {
        kind: expand_tag_filter(
            kind, getattr(query, kind), (e.name for e in taxonomy.entries(kind))
        )
        for kind in TAG_KINDS
    }
