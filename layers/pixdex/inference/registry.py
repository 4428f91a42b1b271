"""Process-wide model registry: one lazily created instance per model name and settings.

Models are expensive (an ONNX session, hundreds of MB for larger models), so callers get
a shared instance. Creation is guarded by a lock so concurrent first requests in a
threaded server do not build two sessions. The cache key includes the settings object
because a model's cache directory and providers come from it (tests use a temporary home).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pixdex.config import Settings, get_settings
from pixdex.errors import InvalidInputError

from .base import EmbeddingModel, ModelSpec
from .efficientnet import EFFICIENTNET_LITE0_SPEC, EfficientNetLite0

__all__ = ["available_models", "get_model"]

_FACTORIES: dict[str, tuple[ModelSpec, Callable[[Settings], EmbeddingModel]]] = {
    EFFICIENTNET_LITE0_SPEC.name: (EFFICIENTNET_LITE0_SPEC, EfficientNetLite0),
}
_instances: dict[tuple[str, Settings], EmbeddingModel] = {}
_lock = threading.Lock()


def available_models() -> list[ModelSpec]:
    return [spec for spec, _ in _FACTORIES.values()]


def get_model(name: str | None = None, settings: Settings | None = None) -> EmbeddingModel:
    """The shared model ``name`` (default: ``settings.model``)."""
    settings = settings or get_settings()
    name = name or settings.model
    entry = _FACTORIES.get(name)
    if entry is None:
        known = ", ".join(sorted(_FACTORIES))
        raise InvalidInputError(f"unknown model {name!r}; known models: {known}", field="model")
    key = (name, settings)
    with _lock:
        model = _instances.get(key)
        if model is None:
            model = _instances[key] = entry[1](settings)
        return model
