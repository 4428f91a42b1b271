"""The model directory contract between ``pixdex models export`` and the serving runtime.

A vision-language model directory holds::

    manifest.json      this model (validated by :class:`VlmManifest`)
    image.onnx         pixel_values (n, 3, S, S) float32 -> image_embeds (n, dim)
    text.onnx          input_ids (n, L) int64 [+ attention_mask] -> text_embeds (n, dim)
    tokenizer.json     a ``tokenizers`` tokenizer (the checkpoint's own, special tokens included)

Embeddings leave the ONNX graphs un-normalised, exactly as transformers'
``get_*_features`` return them; the runtime L2-normalises. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pixdex.errors import PixdexError

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "ImageConfig",
    "ModelArtifactError",
    "TextConfig",
    "VlmManifest",
    "read_manifest",
    "write_manifest",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
Family = Literal["siglip", "clip"]


class ModelArtifactError(PixdexError):
    """A model directory is missing files or its manifest is invalid (a deployment fault)."""

    code = "model_artifact_invalid"
    http_status = 500


class ImageConfig(BaseModel):
    """How pixels are prepared, copied from the checkpoint's image processor config.

    ``resize``: ``"squash"`` resizes straight to ``size`` x ``size`` (SigLIP);
    ``"shortest_edge"`` scales the shorter side to ``size`` then centre-crops
    ``crop_size`` (CLIP).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    resize: Literal["squash", "shortest_edge"]
    size: int = Field(ge=8, le=4096)
    crop_size: int = Field(ge=8, le=4096)
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"]
    rescale: float = Field(gt=0)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @model_validator(mode="after")
    def _crop_fits(self) -> ImageConfig:
        if self.resize == "squash" and self.crop_size != self.size:
            raise ValueError("squash resizing has no crop: crop_size must equal size")
        if self.crop_size > self.size:
            raise ValueError("crop_size must not exceed size (the crop would need padding)")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        return self


class TextConfig(BaseModel):
    """How prompts become token ids.

    SigLIP pads every prompt to ``max_length`` and its text tower takes no attention mask
    (it pools the last position, as it was trained); CLIP pads to the longest prompt and
    takes a mask (it pools the end-of-text token, so padding after it is inert anyway).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_length: int = Field(ge=4, le=1024)
    pad_to_max_length: bool
    pad_id: int = Field(ge=0)
    attention_mask: bool
    lowercase: bool


class VlmManifest(BaseModel):
    """``manifest.json``: everything the runtime needs besides the files themselves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    family: Family
    source: str = Field(description="Checkpoint it was exported from (hub id or path).")
    dim: int = Field(ge=1, le=16384)
    logit_scale: float = Field(gt=0, description="exp(logit_scale): multiplies cosine.")
    logit_bias: float = Field(description="Added after scaling (SigLIP); 0 for CLIP.")
    image: ImageConfig
    text: TextConfig
    image_file: str = "image.onnx"
    text_file: str = "text.onnx"
    tokenizer_file: str = "tokenizer.json"

    @model_validator(mode="after")
    def _finite(self) -> VlmManifest:
        if not (math.isfinite(self.logit_scale) and math.isfinite(self.logit_bias)):
            raise ValueError("logit_scale and logit_bias must be finite")
        return self


def read_manifest(model_dir: Path) -> VlmManifest:
    """Read and validate ``model_dir/manifest.json`` and check the files it names exist."""
    path = model_dir / MANIFEST_FILE
    if not path.is_file():
        raise ModelArtifactError(
            f"{model_dir} is not a pixdex model directory: {MANIFEST_FILE} is missing "
            "(create one with `pixdex models export CHECKPOINT`)",
            field="model",
        )
    try:
        manifest = VlmManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise ModelArtifactError(f"{path} is invalid: {exc}", field="model") from exc
    for name in (manifest.image_file, manifest.text_file, manifest.tokenizer_file):
        if "/" in name or "\\" in name or name.startswith("."):
            raise ModelArtifactError(f"{path}: file name {name!r} must be a plain file name")
        if not (model_dir / name).is_file():
            raise ModelArtifactError(f"{model_dir} lacks {name}, named by its manifest")
    return manifest


def write_manifest(model_dir: Path, manifest: VlmManifest) -> Path:
    path = model_dir / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path
