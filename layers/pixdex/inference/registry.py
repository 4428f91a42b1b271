"""Process-wide model registry: one lazily created instance per model name and settings.

Models are expensive (an ONNX session, hundreds of MB for larger models), so callers get
a shared instance. Creation is guarded by a lock so concurrent first requests in a
threaded server do not build two sessions. The cache key includes the settings object
because a model's cache directory and providers come from it (tests use a temporary home).

When ``settings.embedder`` is not ``"local"`` the shared instance is a
:class:`pixdex.embedder.client.RemoteEmbedder`: the same protocol, served by the inference
server or a SageMaker endpoint, so callers (search, ingest) never branch on the mode.

Model classes are imported only when a local instance is created: a process that uses a
remote embedder (the Lambda functions) never imports onnxruntime, so their layers do not
ship it. The specs therefore live in :mod:`.specs`, which imports nothing heavy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from pixdex.config import Settings, get_settings
from pixdex.errors import InvalidInputError

from .base import EmbeddingModel, ModelSpec
from .specs import EFFICIENTNET_LITE0_SPEC

__all__ = ["available_models", "get_model"]


def _efficientnet_lite0(settings: Settings) -> EmbeddingModel:
    from .efficientnet import EfficientNetLite0

    return EfficientNetLite0(settings)


_FACTORIES: dict[str, tuple[ModelSpec, Callable[[Settings], EmbeddingModel]]] = {
    EFFICIENTNET_LITE0_SPEC.name: (EFFICIENTNET_LITE0_SPEC, _efficientnet_lite0),
}
_instances: dict[tuple[str, Settings], EmbeddingModel] = {}
_lock = threading.Lock()


def available_models() -> list[ModelSpec]:
    return [spec for spec, _ in _FACTORIES.values()]


def get_model(name: str | None = None, settings: Settings | None = None) -> EmbeddingModel:
    """The shared model ``name`` (default: ``settings.model``)."""
    settings = settings or get_settings()
    name = name or settings.model
    if settings.embedder != "local":
        return _remote(name, settings)
    entry = _FACTORIES.get(name)
    factory = entry[1] if entry is not None else _installed_vlm(name, settings)
    key = (name, settings)
    with _lock:
        model = _instances.get(key)
        if model is None:
            model = _instances[key] = factory(settings)
        return model


def _installed_vlm(name: str, settings: Settings) -> Callable[[Settings], EmbeddingModel]:
    """A vision-language model exported into the settings' model folder, by name."""
    # Deferred: the vlm package imports onnxruntime-backed sessions.
    from pixdex.vlm.store import installed_models, load_vlm

    installed = [m.name for m in installed_models(settings)]
    if name not in installed:
        known = ", ".join(sorted([*_FACTORIES, *installed]))
        raise InvalidInputError(
            f"unknown model {name!r}; known models: {known} (export a vision-language model "
            "with `pixdex models export CHECKPOINT`)",
            field="model",
        )
    return lambda s: load_vlm(name, s)


def _remote(name: str, settings: Settings) -> EmbeddingModel:
    # Deferred: the embedder package imports this module (known specs).
    from pixdex.embedder.client import RemoteEmbedder

    key = (name, settings)
    with _lock:
        model = _instances.get(key)
        if model is None:
            model = _instances[key] = RemoteEmbedder(settings, name)
        return model
