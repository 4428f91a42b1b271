"""Parity, offline: our ONNX towers + preprocessing + tokenisation == transformers.

Tiny randomly initialised SigLIP and CLIP models are built from transformers configs (no
download), saved as ordinary checkpoints and exported by the production export code. Our
runtime (onnxruntime, ``tokenizers``, PIL, numpy; no torch) must then reproduce
transformers' own ``get_image_features`` / ``get_text_features`` on real photos and
prompts, each run through transformers' own image processor and tokenizer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from pixdex.config import Settings
from pixdex.vlm import VisionLanguageModel, read_manifest
from pixdex.vlm.export import export_checkpoint
from tests.tiny_vlm import build_tiny_checkpoint

PROMPTS = [
    "a photo of a cat",
    "A Cup of COFFEE on a wooden table",
    "a rocket on the launch pad at night, not a drawing",
    "zebra",  # not in the tiny tokenizer's training text: byte-level pieces
    "an extremely long prompt " * 12,  # longer than the context: truncated
]


class Exported:
    def __init__(self, family: str, root: Path, settings: Settings) -> None:
        self.family = family
        self.checkpoint = build_tiny_checkpoint(family, root / "checkpoint")  # type: ignore[arg-type]
        self.manifest = export_checkpoint(
            str(self.checkpoint), root / "model", name=f"tiny-{family}", settings=settings
        )
        self.model = VisionLanguageModel(root / "model", settings, batch_size=4)
        cls = transformers.SiglipModel if family == "siglip" else transformers.CLIPModel
        self.ref: Any = cls.from_pretrained(self.checkpoint, attn_implementation="eager").eval()
        self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(self.checkpoint)
        self.processor: Any = transformers.AutoImageProcessor.from_pretrained(self.checkpoint)


@pytest.fixture(scope="module", params=["siglip", "clip"])
def exported(request: pytest.FixtureRequest, pixdex_home: Path) -> Iterator[Exported]:
    settings = Settings(home=pixdex_home, providers="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        yield Exported(request.param, Path(tmp), settings)


def pooled(out: Any) -> Any:
    return out if hasattr(out, "shape") else out.pooler_output


def normalised(t: Any) -> np.ndarray:
    return torch.nn.functional.normalize(t, dim=-1).numpy()


def assert_parity(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    cosine = np.sum(ours * ref, axis=1)
    assert cosine.min() > 0.9999, cosine
    assert np.abs(ours - ref).max() < 1e-4


def test_preprocessing_matches_the_image_processor(
    exported: Exported, photos: dict[str, Image.Image]
) -> None:
    images = list(photos.values())
    ref = exported.processor(images=images, return_tensors="np")["pixel_values"]
    ours = exported.model.preprocess(images)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-5


def test_image_embeddings_match_transformers(
    exported: Exported, photos: dict[str, Image.Image]
) -> None:
    images = list(photos.values())
    pixels = exported.processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref = normalised(pooled(exported.ref.get_image_features(pixel_values=pixels)))
    ours = exported.model.embed_images(images).embeddings
    assert_parity(ours, ref)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_tokenisation_matches_transformers(exported: Exported) -> None:
    m = exported.manifest
    texts = [p.lower() for p in PROMPTS] if m.text.lowercase else PROMPTS
    padding = "max_length" if m.text.pad_to_max_length else "longest"
    ref = exported.tokenizer(texts, padding=padding, max_length=m.text.max_length, truncation=True)
    ids, mask = exported.model._text_parts()[1].encode(PROMPTS)
    assert ids.tolist() == ref["input_ids"]
    assert mask.tolist() == ref["attention_mask"]
    eos = exported.tokenizer.eos_token_id
    assert all(eos in row for row in ids.tolist())  # truncation keeps the end token


def test_text_embeddings_match_transformers(exported: Exported) -> None:
    m = exported.manifest
    texts = [p.lower() for p in PROMPTS] if m.text.lowercase else PROMPTS
    padding = "max_length" if m.text.pad_to_max_length else "longest"
    enc = exported.tokenizer(
        texts, padding=padding, max_length=m.text.max_length, truncation=True, return_tensors="pt"
    )
    mask = enc["attention_mask"] if m.text.attention_mask else None
    with torch.no_grad():
        feats = exported.ref.get_text_features(input_ids=enc["input_ids"], attention_mask=mask)
    assert_parity(exported.model.embed_texts(PROMPTS), normalised(pooled(feats)))


def test_a_prompt_embeds_the_same_alone_or_in_a_batch(exported: Exported) -> None:
    batch = exported.model.embed_texts(PROMPTS)
    for i in (0, 3):
        alone = exported.model.embed_texts([PROMPTS[i]])[0]
        np.testing.assert_allclose(alone, batch[i], atol=1e-5)


def test_manifest_carries_the_family_conventions(exported: Exported) -> None:
    m = read_manifest(exported.model.model_dir)
    assert m == exported.manifest
    assert m.logit_scale == pytest.approx(float(exported.ref.logit_scale.detach().exp()), rel=1e-6)
    assert m.dim == exported.model.embed_texts(["cat"]).shape[1]
    if exported.family == "siglip":
        assert m.logit_bias == pytest.approx(float(exported.ref.logit_bias.detach()), abs=1e-6)
        assert m.text.pad_to_max_length and not m.text.attention_mask and m.text.lowercase
        assert m.image.resize == "squash" and m.image.mean == (0.5, 0.5, 0.5)
    else:
        assert m.logit_bias == 0.0
        assert not m.text.pad_to_max_length and m.text.attention_mask
        assert m.image.resize == "shortest_edge"
    assert exported.model.spec.encodes_text and exported.model.spec.dim == m.dim


def test_logits_follow_the_model(exported: Exported, photos: dict[str, Image.Image]) -> None:
    images = [photos["chelsea"], photos["coffee"]]
    pixels = exported.processor(images=images, return_tensors="pt")["pixel_values"]
    m = exported.manifest
    texts = [p.lower() for p in PROMPTS[:2]] if m.text.lowercase else PROMPTS[:2]
    padding = "max_length" if m.text.pad_to_max_length else "longest"
    enc = exported.tokenizer(texts, padding=padding, max_length=m.text.max_length,
                             truncation=True, return_tensors="pt")  # fmt: skip
    kwargs = {} if exported.family == "siglip" else {"attention_mask": enc["attention_mask"]}
    with torch.no_grad():
        ref = exported.ref(input_ids=enc["input_ids"], pixel_values=pixels, **kwargs)
    cos = exported.model.embed_images(images).embeddings @ exported.model.embed_texts(PROMPTS[:2]).T
    np.testing.assert_allclose(exported.model.logits(cos), ref.logits_per_image.numpy(), atol=1e-3)
