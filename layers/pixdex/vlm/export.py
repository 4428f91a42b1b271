"""``pixdex models export``: a SigLIP / SigLIP2 / CLIP checkpoint -> a pixdex model directory.

Export-time only: needs the ``export`` extra (torch, transformers) and, for a hub id,
internet access; it never runs at serve time. A local checkpoint directory (anything
``save_pretrained`` wrote) works offline, which is how the parity tests use this very code.

SigLIP2's fixed-resolution checkpoints (e.g. ``google/siglip2-so400m-patch16-384``) are
SigLIP models with a Gemma tokenizer, so ``model_type == "siglip"`` covers both; the
variable-resolution "naflex" SigLIP2 variants are refused (their towers take patch
sequences, not a fixed pixel grid).

After writing the ONNX towers the export checks them against transformers on a random
image batch and real prompts (max |delta| <= ``VERIFY_TOLERANCE``) before writing the
manifest, so a directory with a manifest is a verified one.
"""

from __future__ import annotations

import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from pixdex.config import Settings
from pixdex.errors import InvalidInputError, PixdexError

from .manifest import (
    ImageConfig,
    ModelArtifactError,
    TextConfig,
    VlmManifest,
    read_manifest,
    write_manifest,
)
from .runtime import (
    IMAGE_INPUT,
    IMAGE_OUTPUT,
    TEXT_INPUT_IDS,
    TEXT_MASK,
    TEXT_OUTPUT,
    VisionLanguageModel,
)

__all__ = [
    "VERIFY_TOLERANCE",
    "ExportDependencyError",
    "default_name",
    "export_checkpoint",
    "pack_model_dir",
]

VERIFY_TOLERANCE = 1e-3
OPSET = 17
_RESAMPLE_NAMES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}
_VERIFY_PROMPTS = ("a photo of a cat", "two dogs playing in the snow", "espresso")


class ExportDependencyError(PixdexError):
    code = "export_dependency_missing"
    http_status = 500


def _deps() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ExportDependencyError(
            f"exporting a model needs torch and transformers ({exc.name} is missing): "
            "pip install 'pixdex[export]'"
        ) from exc
    return torch, transformers


def default_name(checkpoint: str) -> str:
    base = checkpoint.rstrip("/").split("/")[-1].lower()
    return re.sub(r"[^a-z0-9._-]+", "-", base).strip("-._")[:63] or "vlm"


def _pooled(out: Any) -> Any:
    # transformers >= 5 returns a model output; 4.x returned the tensor itself.
    return out if hasattr(out, "shape") else out.pooler_output


def _image_config(processor: Any) -> ImageConfig:
    size = dict(processor.size)
    mean = tuple(float(v) for v in processor.image_mean)
    std = tuple(float(v) for v in processor.image_std)
    resample = _RESAMPLE_NAMES.get(int(processor.resample), "bicubic")
    if size.get("shortest_edge"):
        crop = dict(processor.crop_size) if getattr(processor, "do_center_crop", False) else {}
        edge = int(size["shortest_edge"])
        return ImageConfig(
            resize="shortest_edge", size=edge, crop_size=int(crop.get("height", edge)),
            resample=resample, rescale=float(processor.rescale_factor), mean=mean, std=std,
        )  # fmt: skip
    if size.get("height") != size.get("width"):
        raise InvalidInputError(f"non-square image size {size} is not supported")
    return ImageConfig(
        resize="squash", size=int(size["height"]), crop_size=int(size["height"]),
        resample=resample, rescale=float(processor.rescale_factor), mean=mean, std=std,
    )  # fmt: skip


def _save_tokenizer(tokenizer: Any, path: Path) -> None:
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(
        tokenizer, "_tokenizer", None
    )
    if backend is None:
        raise InvalidInputError(
            "the checkpoint has no fast (tokenizers) tokenizer; pixdex serves only "
            "tokenizer.json tokenizers",
            field="checkpoint",
        )
    backend.save(str(path))


def _export_towers(torch: Any, model: Any, family: str, out: Path, seq: int, size: int) -> None:
    class ImageTower(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: Any) -> Any:
            return _pooled(self.model.get_image_features(pixel_values=pixel_values))

    class TextTower(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any = None) -> Any:
            feats = self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return _pooled(feats)

    pixels = torch.zeros(2, 3, size, size)
    ids = torch.ones(2, seq, dtype=torch.long)
    common = {"opset_version": OPSET, "dynamo": False, "do_constant_folding": True}
    with torch.no_grad():
        torch.onnx.export(
            ImageTower().eval(), (pixels,), str(out / "image.onnx"),
            input_names=[IMAGE_INPUT], output_names=[IMAGE_OUTPUT],
            dynamic_axes={IMAGE_INPUT: {0: "batch"}, IMAGE_OUTPUT: {0: "batch"}}, **common,
        )  # fmt: skip
        if family == "siglip":
            # SigLIP pools the last position of a fixed-length sequence: length stays fixed.
            torch.onnx.export(
                TextTower().eval(), (ids,), str(out / "text.onnx"),
                input_names=[TEXT_INPUT_IDS], output_names=[TEXT_OUTPUT],
                dynamic_axes={TEXT_INPUT_IDS: {0: "batch"}, TEXT_OUTPUT: {0: "batch"}}, **common,
            )  # fmt: skip
        else:
            mask = torch.ones(2, seq, dtype=torch.long)
            axes = {0: "batch", 1: "sequence"}
            torch.onnx.export(
                TextTower().eval(), (ids, mask), str(out / "text.onnx"),
                input_names=[TEXT_INPUT_IDS, TEXT_MASK], output_names=[TEXT_OUTPUT],
                dynamic_axes={TEXT_INPUT_IDS: axes, TEXT_MASK: axes, TEXT_OUTPUT: {0: "batch"}},
                **common,
            )  # fmt: skip


def _output_dim(torch: Any, model: Any, size: int) -> int:
    with torch.no_grad():
        return int(
            _pooled(model.get_image_features(pixel_values=torch.zeros(1, 3, size, size))).shape[-1]
        )


def _verify(torch: Any, model: Any, tokenizer: Any, vlm: VisionLanguageModel) -> float:
    """Max |delta| between our runtime and transformers on random pixels and real prompts."""
    m = vlm.manifest
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((2, 3, m.image.crop_size, m.image.crop_size)).astype(np.float32)
    ours_img = vlm.embed_pixels(pixels).embeddings
    texts = [t.lower() if m.text.lowercase else t for t in _VERIFY_PROMPTS]
    padding = "max_length" if m.text.pad_to_max_length else True
    enc = tokenizer(texts, padding=padding, max_length=m.text.max_length, truncation=True,
                    return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        ref_img = _pooled(model.get_image_features(pixel_values=torch.from_numpy(pixels)))
        mask = enc["attention_mask"] if m.text.attention_mask else None
        ref_txt = _pooled(model.get_text_features(input_ids=enc["input_ids"], attention_mask=mask))
    ref_img = torch.nn.functional.normalize(ref_img, dim=-1).numpy()
    ref_txt = torch.nn.functional.normalize(ref_txt, dim=-1).numpy()
    ours_txt = vlm.embed_texts(list(_VERIFY_PROMPTS))
    return float(max(np.abs(ours_img - ref_img).max(), np.abs(ours_txt - ref_txt).max()))


def export_checkpoint(
    checkpoint: str,
    out_dir: Path,
    *,
    name: str | None = None,
    lowercase: bool | None = None,
    overwrite: bool = False,
    settings: Settings | None = None,
) -> VlmManifest:
    """Export ``checkpoint`` (hub id or local directory) to ``out_dir``; returns its manifest."""
    torch, transformers = _deps()
    name = name or default_name(checkpoint)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise InvalidInputError(f"{out_dir} is not empty; pass --overwrite to replace it")
        shutil.rmtree(out_dir)
    try:
        config = transformers.AutoConfig.from_pretrained(checkpoint)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot load checkpoint {checkpoint!r}: {exc}. Give a local checkpoint directory "
            "or a hub id (hub ids need internet access)",
            field="checkpoint",
        ) from exc
    kind = config.model_type
    if kind not in ("siglip", "clip"):
        raise InvalidInputError(
            f"{checkpoint} is a {kind!r} model; pixdex exports SigLIP / fixed-resolution "
            "SigLIP2 ('siglip') and CLIP ('clip') checkpoints",
            field="checkpoint",
        )
    cls = transformers.SiglipModel if kind == "siglip" else transformers.CLIPModel
    model = cls.from_pretrained(checkpoint, attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    processor = transformers.AutoImageProcessor.from_pretrained(checkpoint)
    image_cfg = _image_config(processor)
    positions = int(config.text_config.max_position_embeddings)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id
    text_cfg = TextConfig(
        max_length=positions, pad_to_max_length=kind == "siglip", pad_id=int(pad_id),
        attention_mask=kind == "clip", lowercase=(kind == "siglip") if lowercase is None
        else lowercase,
    )  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    _export_towers(torch, model, kind, out_dir, positions, image_cfg.crop_size)
    _save_tokenizer(tokenizer, out_dir / "tokenizer.json")
    bias = getattr(model, "logit_bias", None)
    manifest = VlmManifest(
        name=name, family=kind, source=checkpoint,
        dim=_output_dim(torch, model, image_cfg.crop_size),
        logit_scale=float(model.logit_scale.exp().item()),
        logit_bias=float(bias.item()) if bias is not None else 0.0,
        image=image_cfg, text=text_cfg,
    )  # fmt: skip
    write_manifest(out_dir, manifest)
    vlm = VisionLanguageModel(out_dir, settings, batch_size=8)
    error = _verify(torch, model, tokenizer, vlm)
    if error > VERIFY_TOLERANCE:
        (out_dir / "manifest.json").unlink()
        raise ModelArtifactError(
            f"exported towers differ from transformers by {error:.2e} (> {VERIFY_TOLERANCE}); "
            "the model directory was left without a manifest"
        )
    return manifest


def pack_model_dir(model_dir: Path, archive: Path) -> Path:
    """``model.tar.gz`` with the directory's files at its root (a SageMaker model artifact)."""
    read_manifest(model_dir)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            if path.is_file():
                tar.add(path, arcname=path.name)
    return archive
