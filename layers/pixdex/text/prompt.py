"""Text prompts for the offline model: a prompt becomes weights over the 1000 ImageNet classes.

The offline model (EfficientNet-Lite0) has no text encoder, but it gives every image a
probability for each ImageNet class. A prompt is mapped onto those classes, and an
image's score is the inner product of the prompt's class weights with the image's class
probabilities:

    score = confidence * P(image shows one of the named things) - P(one of the excluded)

* Matching (per clause, greedy, longest phrase first): a class name or synonym, or a
  curated group ("dog" -> all 118 breeds) gives weight 1; the head noun of multi-word
  names ("terrier") 1; a rare word of the GPT class descriptions 0.3 (a hint, not a name).
* ``confidence`` is the share of the prompt's content words that were understood, so a
  prompt only half about ImageNet things scores at most about half, and one outside the
  vocabulary ("quantum entanglement") matches nothing: ``no_match`` is true and every
  image scores 0, instead of confidently ranking nonsense.
* Negatives: a clause after "not", "no", "without", "except" (up to the next comma,
  semicolon or "but") or a word written as ``-word`` gets weight -1, so "cat, not
  drawings" ranks cats and pushes down what matched "drawings".
* Colour and size words before another word are modifiers ("orange cat" is a cat, not
  the fruit); they count half in the confidence since the classes cannot check them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from pixdex.errors import InvalidInputError
from pixdex.inference.imagenet import NUM_CLASSES
from pixdex.models import MAX_PROMPT_CHARS

from .lemma import NEGATION_CUES, STOPWORDS, lemma, tokens
from .lexicon import MAX_PHRASE_WORDS, lexicon

__all__ = [
    "DESCRIPTION_WEIGHT",
    "MAX_PROMPT_CHARS",
    "MatchedTerm",
    "PromptMatch",
    "prompt_to_class_weights",
    "score_class_probs",
]

DESCRIPTION_WEIGHT = 0.3
_MODIFIER_WEIGHT = 0.5
_SINGLE_HEAD_WEIGHT = 0.5
MatchKind = Literal["name", "group", "head", "description"]

_MODIFIER_TEXT = """
    red orange yellow green blue purple pink brown black white gray silver golden gold
    dark light bright colorful small big large tiny huge little young old new cute pretty
    beautiful ugly happy sad fluffy furry wet dry hot cold
"""
_MODIFIERS = frozenset(_MODIFIER_TEXT.split())
_CLAUSE_SPLIT = re.compile(r"[,;.!?]|\bbut\b", re.IGNORECASE)
_DASH_NEGATION = re.compile(r"(?:^|\s)-(\w[\w-]*)")


@dataclass(frozen=True)
class MatchedTerm:
    """A run of prompt words recognised as ImageNet classes."""

    text: str
    kind: MatchKind
    classes: tuple[int, ...]
    weight: float  # per class; negative for excluded terms
    negative: bool


@dataclass(frozen=True)
class PromptMatch:
    """A prompt mapped onto the ImageNet classes (see the module docstring)."""

    prompt: str
    weights: NDArray[np.float32]  # (1000,), already scaled by ``confidence``
    terms: tuple[MatchedTerm, ...]
    unmatched: tuple[str, ...]
    confidence: float

    @property
    def no_match(self) -> bool:
        """True when nothing positive was recognised: every image scores <= 0."""
        return not any(not t.negative for t in self.terms)

    @property
    def matched_classes(self) -> list[str]:
        """Readable names of the positively weighted classes, heaviest first."""
        names = lexicon().names
        order = np.argsort(-self.weights, kind="stable")
        return [names[int(i)] for i in order if self.weights[i] > 0]

    def vector(self) -> list[float]:
        """The query vector for an inner-product search over stored class probabilities."""
        return [float(w) for w in self.weights]


def _validate(prompt: object) -> str:
    if not isinstance(prompt, str):
        raise InvalidInputError("prompt must be a string", field="prompt")
    text = prompt.strip()
    if not text:
        raise InvalidInputError(
            "prompt is empty: describe what to find, e.g. 'a cat on a sofa'", field="prompt"
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidInputError(
            f"prompt is {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed",
            field="prompt",
        )
    return text


def _clauses(text: str) -> list[tuple[list[str], bool]]:
    """Split into (words, negative) spans; a negation cue turns the rest of its clause."""
    text = _DASH_NEGATION.sub(lambda m: f", not {m.group(1)},", text)
    spans: list[tuple[list[str], bool]] = []
    for clause in _CLAUSE_SPLIT.split(text):
        words: list[str] = []
        negative = False
        for word in tokens(clause):
            if word in NEGATION_CUES or word in ("don't", "isn't", "aren't"):
                if words:
                    spans.append((words, negative))
                words, negative = [], True
                continue
            words.append(word)
        if words:
            spans.append((words, negative))
    return spans


def _match_span(words: list[str], negative: bool) -> tuple[list[MatchedTerm], float, float]:
    """Greedy longest-phrase matching; returns terms, understood weight, total weight."""
    lex = lexicon()
    content = [(w, lemma(w)) for w in words if lemma(w) not in STOPWORDS]
    terms: list[MatchedTerm] = []
    understood = total = 0.0
    sign = -1.0 if negative else 1.0
    i = 0
    while i < len(content):
        found = False
        for n in range(min(MAX_PHRASE_WORDS, len(content) - i), 0, -1):
            key = tuple(lem for _, lem in content[i : i + n])
            classes = lex.phrases.get(key)
            if classes is None:
                continue
            is_modifier = n == 1 and key[0] in _MODIFIERS and i + 1 < len(content)
            if is_modifier:
                break
            kind: MatchKind = "group" if key in lex.groups else "name"
            text = " ".join(w for w, _ in content[i : i + n])
            terms.append(MatchedTerm(text, kind, tuple(sorted(classes)), sign, negative))
            understood += n
            total += n
            i += n
            found = True
            break
        if found:
            continue
        word, lem = content[i]
        i += 1
        if lem in _MODIFIERS:
            total += _MODIFIER_WEIGHT
            continue
        total += 1.0
        if lem in lex.heads:
            # One class sharing a head noun ("pad" -> knee pad) is a compound, not a kind.
            quality = 1.0 if len(lex.heads[lem]) > 1 else _SINGLE_HEAD_WEIGHT
            classes_h = tuple(sorted(lex.heads[lem]))
            terms.append(MatchedTerm(word, "head", classes_h, sign * quality, negative))
            understood += quality
        elif lem in lex.descriptions:
            weight = sign * DESCRIPTION_WEIGHT
            classes_d = tuple(sorted(lex.descriptions[lem]))
            terms.append(MatchedTerm(word, "description", classes_d, weight, negative))
            understood += DESCRIPTION_WEIGHT
    return terms, understood, total


def prompt_to_class_weights(prompt: str) -> PromptMatch:
    """Map a free-text prompt onto weights over the 1000 ImageNet classes.

    Raises :class:`~pixdex.errors.InvalidInputError` for an empty or over-long prompt,
    or one that only says what to exclude.
    """
    text = _validate(prompt)
    terms: list[MatchedTerm] = []
    unmatched: list[str] = []
    understood = total = 0.0
    has_positive_words = False
    for words, negative in _clauses(text):
        span_terms, got, of = _match_span(words, negative)
        terms.extend(span_terms)
        if not negative:
            has_positive_words = has_positive_words or of > 0
            understood += got
            total += of
        covered = {lemma(w) for t in span_terms for w in t.text.split()}
        unmatched.extend(w for w in words if lemma(w) not in STOPWORDS and lemma(w) not in covered)
    if not has_positive_words:
        raise InvalidInputError(
            f"prompt {text!r} only says what to exclude; say what to find as well, "
            "e.g. 'cat, not drawings'",
            field="prompt",
        )
    confidence = understood / total if total else 0.0
    weights = np.zeros(NUM_CLASSES, dtype=np.float64)
    for term in terms:
        if term.negative:
            continue
        idx = np.asarray(term.classes, dtype=np.intp)
        weights[idx] = np.maximum(weights[idx], term.weight * confidence)
    # Exclusions win over inclusions ("dog, not poodles" keeps the other breeds).
    for term in terms:
        if term.negative:
            idx = np.asarray(term.classes, dtype=np.intp)
            weights[idx] = np.minimum(np.minimum(weights[idx], 0.0), term.weight)
    return PromptMatch(
        prompt=text,
        weights=weights.astype(np.float32),
        terms=tuple(terms),
        unmatched=tuple(dict.fromkeys(unmatched)),
        confidence=round(confidence, 4),
    )


def score_class_probs(match: PromptMatch, class_probs: NDArray[np.float32]) -> NDArray[np.float32]:
    """Scores of images given their (n, 1000) class probabilities (what SQL's ``<#>`` does)."""
    probs = np.asarray(class_probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != NUM_CLASSES:
        raise InvalidInputError(
            f"class probabilities must have shape (n, {NUM_CLASSES}), got {probs.shape}",
            field="class_scores",
        )
    out: NDArray[np.float32] = probs @ match.weights
    return out


def describe(match: PromptMatch, limit: int = 8) -> Sequence[str]:
    """Short human-readable lines explaining a match (for the CLI's ``--explain``)."""
    lines = [f"confidence {match.confidence:.2f}"]
    for term in match.terms:
        sign = "-" if term.negative else "+"
        lines.append(f"{sign} {term.text!r} ({term.kind}, {len(term.classes)} classes)")
    if match.unmatched:
        lines.append("not understood: " + ", ".join(match.unmatched))
    lines.extend(f"  {name}" for name in match.matched_classes[:limit])
    return lines
