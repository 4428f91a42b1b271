"""Text prompts without a text encoder: prompts mapped onto ImageNet classes (offline model)."""

from .lexicon import Lexicon, lexicon
from .prompt import (
    MAX_PROMPT_CHARS,
    MatchedTerm,
    PromptMatch,
    describe,
    prompt_to_class_weights,
    score_class_probs,
)

__all__ = [
    "MAX_PROMPT_CHARS",
    "Lexicon",
    "MatchedTerm",
    "PromptMatch",
    "describe",
    "lexicon",
    "prompt_to_class_weights",
    "score_class_probs",
]
