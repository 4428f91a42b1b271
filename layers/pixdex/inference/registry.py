"""Process-wide model registry: one lazily created instance per model name and settings.

Models are expensive (an ONNX session, hundreds of MB for larger models), so callers get
a shared instance. Creation is guarded by a lock so concurrent first requests in a
threaded server do not build two sessions. The cache key includes the settings object
because a model's cache directory and providers come from it (tests use a temporary home).

When ``settings.embedder`` is not ``"local"`` the shared instance is a
:class:`pixdex.embedder.client.RemoteEmbedder`: the same protocol, served by the inference
server or a SageMaker endpoint, so callers (search, ingest) never branch on the mode.

Local models come from :mod:`pixdex.inference.local`, loaded by name the first time a
local model is asked for. Only that module imports the model runtime, and no module
imports it statically, so the Lambda functions (remote embedder, no onnxruntime in their
layers) can never reach it by accident: the import contract in ``.importlinter`` fails the
test run if one does.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

from pixdex.config import Settings, get_settings
from pixdex.errors import ModelCapabilityError

from .base import EmbeddingModel, ModelSpec
from .specs import EFFICIENTNET_LITE0_SPEC

__all__ = ["LOCAL_RUNTIME", "available_models", "get_model"]

LOCAL_RUNTIME = "pixdex.inference.local"

_instances: dict[tuple[str, Settings], EmbeddingModel] = {}
_lock = threading.Lock()


def available_models() -> list[ModelSpec]:
    """The built-in models (vision-language models are listed by ``pixdex models list``)."""
    return [EFFICIENTNET_LITE0_SPEC]


def _local_runtime() -> ModuleType:
    try:
        return importlib.import_module(LOCAL_RUNTIME)
    except ModuleNotFoundError as exc:
        raise ModelCapabilityError(
            f"PIXDEX_EMBEDDER=local runs the model in this process, but {exc.name} is not "
            "installed here; install pixdex with its model runtime, or point "
            "PIXDEX_EMBEDDER at an inference server (http, with PIXDEX_EMBEDDER_URL) or a "
            "SageMaker endpoint (sagemaker, with PIXDEX_SAGEMAKER_ENDPOINT)",
            field="embedder",
        ) from exc


def get_model(name: str | None = None, settings: Settings | None = None) -> EmbeddingModel:
    """The shared model ``name`` (default: ``settings.model``)."""
    settings = settings or get_settings()
    name = name or settings.model
    if settings.embedder != "local":
        return _remote(name, settings)
    key = (name, settings)
    with _lock:
        model = _instances.get(key)
        if model is None:
            created: EmbeddingModel = _local_runtime().create_model(name, settings)
            model = _instances[key] = created
        return model


def _remote(name: str, settings: Settings) -> EmbeddingModel:
    # Deferred: the embedder package imports this module (known specs).
    from pixdex.embedder.client import RemoteEmbedder

    key = (name, settings)
    with _lock:
        model = _instances.get(key)
        if model is None:
            model = _instances[key] = RemoteEmbedder(settings, name)
        return model
