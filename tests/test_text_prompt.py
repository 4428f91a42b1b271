"""Prompt -> ImageNet-class mapping (offline text prompts): parsing, matching, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from pixdex.errors import InvalidInputError, PixdexError
from pixdex.inference.imagenet import NUM_CLASSES, imagenet_class_names
from pixdex.text import MAX_PROMPT_CHARS, describe, prompt_to_class_weights, score_class_probs
from pixdex.text.lemma import lemma

NAMES = imagenet_class_names()


def idx(name: str) -> int:
    return NAMES.index(name)


def positive(prompt: str) -> set[str]:
    m = prompt_to_class_weights(prompt)
    return {NAMES[i] for i in np.flatnonzero(m.weights > 0)}


@pytest.mark.parametrize(
    ("word", "expected"),
    [("wolves", "wolf"), ("puppies", "puppy"), ("boxes", "box"), ("glasses", "glasses"),
     ("buses", "bus"), ("cats", "cat"), ("people", "person"), ("tomatoes", "tomato"),
     ("bus", "bus"), ("cat's", "cat")],
)  # fmt: skip
def test_lemma_rules(word: str, expected: str) -> None:
    assert lemma(word) == expected


def test_group_words_cover_every_member() -> None:
    dogs = positive("a dog")
    assert {"Beagle", "pug", "Golden Retriever", "Chihuahua"} <= dogs
    assert len(dogs) == 118
    assert positive("cats") == {"tabby cat", "tiger cat", "Persian cat", "Siamese cat",
                                "Egyptian Mau"}  # fmt: skip
    assert {"moped", "motor scooter"} <= positive("motorcycles")


def test_synonyms_and_multiword_names() -> None:
    m = prompt_to_class_weights("a bird of prey")
    assert [(t.text, t.kind) for t in m.terms] == [("bird prey", "name")]
    assert "kite (bird of prey)" in positive("a bird of prey")
    # A WordNet synonym that is not the clean name.
    assert positive("a killer whale") >= {"killer whale"}
    assert positive("orca") >= {"killer whale"}


def test_head_noun_matches_all_kinds() -> None:
    terriers = positive("terriers")
    assert "Yorkshire Terrier" in terriers and "Border Terrier" in terriers
    assert "Beagle" not in terriers


def test_colour_before_a_noun_is_a_modifier_not_the_fruit() -> None:
    assert "orange" not in positive("an orange cat")
    assert "orange" in positive("an orange")
    m = prompt_to_class_weights("an orange cat")
    assert 0 < m.confidence < 1  # the colour cannot be checked by the classes


def test_negative_terms_get_negative_weights() -> None:
    m = prompt_to_class_weights("a dog, not a poodle")
    assert m.weights[idx("Standard Poodle")] < 0
    assert m.weights[idx("Beagle")] > 0
    for variant in ("dogs without poodles", "dog -poodle", "dogs but no poodles"):
        w = prompt_to_class_weights(variant).weights
        assert w[idx("Toy Poodle")] < 0 and w[idx("Beagle")] > 0, variant


def test_negation_lowers_the_score_of_excluded_images() -> None:
    probs = np.zeros((2, NUM_CLASSES), dtype=np.float32)
    probs[0, idx("tabby cat")] = 0.9  # a cat
    probs[1, idx("tabby cat")] = 0.5  # a cat next to a dog
    probs[1, idx("Beagle")] = 0.4
    plain = score_class_probs(prompt_to_class_weights("cat"), probs)
    without = score_class_probs(prompt_to_class_weights("cat, not dogs"), probs)
    assert plain[0] > plain[1] > 0
    assert without[1] < 0.2 < without[0]


def test_out_of_vocabulary_prompts_match_nothing() -> None:
    for prompt in ("quantum entanglement", "a feeling of nostalgia", "democracy"):
        m = prompt_to_class_weights(prompt)
        assert m.no_match, prompt
        assert m.confidence == 0.0
        assert not np.any(m.weights), prompt
        assert m.unmatched


def test_partially_understood_prompt_is_scaled_by_confidence() -> None:
    full = prompt_to_class_weights("a cat")
    half = prompt_to_class_weights("a cat doing quantum physics")
    assert full.confidence == 1.0
    assert 0 < half.confidence < 0.6
    i = idx("tabby cat")
    assert half.weights[i] == pytest.approx(full.weights[i] * half.confidence, rel=1e-3)
    assert "quantum" in half.unmatched


def test_scores_are_inner_products_in_range() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=5).astype(np.float32)
    m = prompt_to_class_weights("a dog or a cat, not a car")
    scores = score_class_probs(m, probs)
    np.testing.assert_allclose(scores, probs @ np.asarray(m.vector(), np.float32), rtol=1e-5)
    assert np.all(scores <= 1.0) and np.all(scores >= -1.0)
    assert len(m.vector()) == NUM_CLASSES


def test_describe_explains_the_match() -> None:
    lines = describe(prompt_to_class_weights("a beagle, not a cat"))
    assert lines[0].startswith("confidence")
    assert any(line.startswith("+ 'beagle'") for line in lines)
    assert any(line.startswith("- 'cat'") for line in lines)


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [("", "empty"), ("   ", "empty"), ("x" * (MAX_PROMPT_CHARS + 1), "at most"),
     ("not cats", "only says what to exclude"), ("-dogs", "only says what to exclude")],
)  # fmt: skip
def test_bad_prompts_get_a_typed_error(prompt: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        prompt_to_class_weights(prompt)
    assert fragment in info.value.message
    assert info.value.field == "prompt"
    assert info.value.http_status == 422


def test_non_string_prompt_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        prompt_to_class_weights(42)  # type: ignore[arg-type]


def test_scores_need_the_class_dimension() -> None:
    m = prompt_to_class_weights("cat")
    with pytest.raises(PixdexError, match="shape"):
        score_class_probs(m, np.zeros((2, 10), dtype=np.float32))
