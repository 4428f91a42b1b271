"""Image embedding and tagging models served through onnxruntime (no torch at run time)."""

from .base import EmbeddingModel, ImageBatchOutput, ModelSpec
from .efficientnet import EFFICIENTNET_LITE0_SPEC, EfficientNetLite0, default_weights_path
from .efficientnet_graph import build_efficientnet_lite0
from .imagenet import imagenet_class_names, object_tags
from .preprocess import preprocess_images
from .registry import available_models, get_model
from .session import OnnxSession, ProviderUnavailableError, resolve_providers
from .torch_legacy import TorchLegacyFormatError, load_legacy_state_dict

__all__ = [
    "EFFICIENTNET_LITE0_SPEC",
    "EfficientNetLite0",
    "EmbeddingModel",
    "ImageBatchOutput",
    "ModelSpec",
    "OnnxSession",
    "ProviderUnavailableError",
    "TorchLegacyFormatError",
    "available_models",
    "build_efficientnet_lite0",
    "default_weights_path",
    "get_model",
    "imagenet_class_names",
    "load_legacy_state_dict",
    "object_tags",
    "preprocess_images",
    "resolve_providers",
]
