"""Model specs that callers need without loading a model (and without onnx/onnxruntime)."""

from __future__ import annotations

from .base import ModelSpec
from .imagenet import NUM_CLASSES

EFFICIENTNET_LITE0_SPEC = ModelSpec(
    name="efficientnet-lite0", dim=1280, encodes_text=False, tags=True, input_size=224
)

CLASS_VECTOR_SUFFIX = "-classes"


def builtin_specs() -> list[ModelSpec]:
    """The built-in models (vision-language models are listed by ``pixdex models list``)."""
    return [EFFICIENTNET_LITE0_SPEC]


def class_vector_spec(model: ModelSpec) -> ModelSpec | None:
    """The named vector holding a classifier's ImageNet class probabilities, if it has one.

    A tagging model without a text encoder (the offline EfficientNet-Lite0) tags from its
    1000 ImageNet classes; storing those probabilities per image lets a prompt, mapped
    onto class weights, rank images by inner product. Vision-language models tag
    zero-shot and answer prompts with their text encoder instead: no class vector.
    """
    if not model.tags or model.encodes_text:
        return None
    return ModelSpec(
        name=class_vector_name(model.name), dim=NUM_CLASSES, encodes_text=False,
        tags=False, input_size=model.input_size,
    )


def class_vector_name(model: str) -> str:
    return model + CLASS_VECTOR_SUFFIX
