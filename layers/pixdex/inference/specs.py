"""Model specs that callers need without loading a model (and without onnx/onnxruntime)."""

from __future__ import annotations

from .base import ModelSpec

EFFICIENTNET_LITE0_SPEC = ModelSpec(
    name="efficientnet-lite0", dim=1280, encodes_text=False, tags=True, input_size=224
)
