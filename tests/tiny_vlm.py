"""Tiny, randomly initialised SigLIP / CLIP checkpoints built offline (dev and tests only).

No hub access: the model comes from a transformers config, the tokenizer is a small BPE
trained with ``tokenizers`` on a few sentences, and the image processor is transformers'
own class with a small size. ``save_pretrained`` writes them as a normal checkpoint
directory, which :func:`pixdex.vlm.export.export_checkpoint` then exports with exactly
the code used for real checkpoints. Needs torch and transformers (the ``export`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

__all__ = ["TINY_IMAGE_SIZE", "TINY_TEXT_LENGTH", "build_tiny_checkpoint"]

TINY_IMAGE_SIZE = 64
TINY_TEXT_LENGTH = 16
_SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]  # ids 0..3; eos != 2 on purpose (see CLIP)
_CORPUS = [
    "a photo of a cat", "a photo of a dog", "two dogs playing in the snow",
    "a cup of coffee on a wooden table", "a rocket on the launch pad at night",
    "a red motorcycle parked in a garage", "an astronaut in an orange suit",
    "a page of printed text", "the moon", "a clock on the wall", "espresso",
    "a man with a camera on a tripod", "coins", "gravel", "grass", "bricks",
]  # fmt: skip


def _tokenizer(family: str) -> Any:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=300,
        special_tokens=_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    bos, eos = tok.token_to_id("<bos>"), tok.token_to_id("<eos>")
    # CLIP: <bos> text <eos> (openai's <|startoftext|> ... <|endoftext|>); SigLIP2: text <eos>.
    single = "<bos> $A <eos>" if family == "clip" else "$A <eos>"
    tok.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<bos>", bos), ("<eos>", eos)]
    )
    specials = dict(
        zip(("pad_token", "unk_token", "bos_token", "eos_token"), _SPECIALS, strict=True)
    )
    fast: Any = PreTrainedTokenizerFast
    return fast(tokenizer_object=tok, model_max_length=TINY_TEXT_LENGTH, **specials)


def build_tiny_checkpoint(family: Literal["siglip", "clip"], out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random ``family`` checkpoint to ``out_dir`` and return it."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    tokenizer = _tokenizer(family)
    vocab = len(tokenizer)
    layers = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    vision = {**layers, "num_attention_heads": 4, "image_size": TINY_IMAGE_SIZE, "patch_size": 16}
    text = {**layers, "num_attention_heads": 4, "vocab_size": vocab,
            "max_position_embeddings": TINY_TEXT_LENGTH, "pad_token_id": 0,
            "bos_token_id": 2, "eos_token_id": 3}  # fmt: skip
    model: Any
    if family == "siglip":
        model = tf.SiglipModel(tf.SiglipConfig(text_config=text, vision_config=vision))
        processor: Any = tf.SiglipImageProcessor(
            size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
        )
    else:
        config = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)
        model = tf.CLIPModel(config)
        processor = tf.CLIPImageProcessor(
            size={"shortest_edge": TINY_IMAGE_SIZE},
            crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
