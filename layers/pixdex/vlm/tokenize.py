"""Prompt tokenisation with the checkpoint's own ``tokenizer.json`` (``tokenizers``, no torch).

The file is the fast tokenizer transformers itself uses, post-processor included, so the
special tokens (CLIP's start/end of text, Gemma's end of sequence for SigLIP2) come out as
in transformers. Truncation keeps room for them. Padding follows :class:`TextConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from pixdex.errors import InvalidInputError
from pixdex.models import MAX_PROMPT_CHARS

from .manifest import TextConfig

__all__ = ["MAX_TEXT_CHARS", "PromptTokenizer"]

# A text to embed is a prompt: the same limit as everywhere else.
MAX_TEXT_CHARS = MAX_PROMPT_CHARS


class PromptTokenizer:
    def __init__(self, path: Path, cfg: TextConfig) -> None:
        self.cfg = cfg
        self._tok = Tokenizer.from_file(str(path))
        self._tok.enable_truncation(max_length=cfg.max_length)
        if cfg.pad_to_max_length:
            self._tok.enable_padding(pad_id=cfg.pad_id, length=cfg.max_length)
        else:
            self._tok.enable_padding(pad_id=cfg.pad_id)

    def encode(self, texts: Sequence[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(input_ids, attention_mask), both int64 of shape (len(texts), length)."""
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise InvalidInputError(f"text {i} is empty: give a prompt", field="prompt")
            if len(text) > MAX_TEXT_CHARS:
                raise InvalidInputError(
                    f"text {i} has {len(text)} characters; at most {MAX_TEXT_CHARS}",
                    field="prompt",
                )
        prepared = [t.lower() if self.cfg.lowercase else t for t in texts]
        encodings = self._tok.encode_batch(prepared)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask
