"""Tokenisation and rule-based lemmatisation for prompts and class names.

No NLP library: the same small rules are applied to the class vocabulary and to prompts,
so what matters is that both sides normalise alike ("wolves" and "wolf" meet), not that
every English word gets its dictionary lemma. Irregular plurals common in image prompts
are listed explicitly; the suffix rules cover regular English plurals.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["NEGATION_CUES", "STOPWORDS", "lemma", "lemmas", "tokens"]

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")

_IRREGULAR = {
    "children": "child",
    "people": "person",
    "persons": "person",
    "men": "man",
    "women": "woman",
    "mice": "mouse",
    "geese": "goose",
    "teeth": "tooth",
    "feet": "foot",
    "oxen": "ox",
    "knives": "knife",
    "wives": "wife",
    "lives": "life",
    "leaves": "leaf",
    "wolves": "wolf",
    "shelves": "shelf",
    "calves": "calf",
    "halves": "half",
    "loaves": "loaf",
    "scarves": "scarf",
    "thieves": "thief",
    "shoes": "shoe",
    "canoes": "canoe",
    "toes": "toe",
    "dice": "die",
    "cacti": "cactus",
    "fungi": "fungus",
    "octopi": "octopus",
    "sheep": "sheep",
    "fish": "fish",
    "deer": "deer",
    "series": "series",
    "species": "species",
    "glasses": "glasses",
    "sunglasses": "sunglasses",
    "binoculars": "binoculars",
    "jeans": "jeans",
    "pajamas": "pajamas",
    "trunks": "trunks",
    "shorts": "shorts",
    "scissors": "scissors",
    "pants": "pants",
    "trousers": "trousers",
    "clothes": "clothes",
    "news": "news",
    "bus": "bus",
    "buses": "bus",
    "gas": "gas",
    "lens": "lens",
    "lenses": "lens",
    "cactus": "cactus",
    "octopus": "octopus",
    "platypus": "platypus",
    "hippopotamus": "hippopotamus",
    "asparagus": "asparagus",
    "iris": "iris",
    "chassis": "chassis",
    "grey": "gray",
    "colour": "color",
    "colours": "color",
}

# Words that carry no visual content in a search prompt.
_STOPWORD_TEXT = """
    a an the of in on at to for from by with into onto over under near next beside behind
    and or is are was were be being been it its this that these those there here some any
    his her their our my your its i we you he she they them me us
    photo photos photograph picture pictures image images pic pics shot snapshot view
    closeup close up shows showing show depicting containing contains featuring kind sort
    one two three four five several many few lot lots very really just also who which
    what where when how looking like
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

# Words that turn the following clause into things to exclude.
NEGATION_CUES = frozenset({"not", "no", "without", "except", "excluding", "minus", "never"})


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """A crude but deterministic lemma: lower case, irregular plurals, suffix rules."""
    word = word.lower()
    if word.endswith("'s"):
        word = word[:-2]
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]
    if word.endswith("oes") and len(word) > 4:
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; hyphens, slashes and punctuation separate words."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def lemmas(text: str) -> tuple[str, ...]:
    """Lemmas of every token of ``text``, stopwords kept (phrases need them)."""
    return tuple(lemma(tok) for tok in tokens(text))
