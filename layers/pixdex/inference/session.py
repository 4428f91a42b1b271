"""Thin onnxruntime wrapper: provider choice, session options, typed ``run``.

Provider policy (``Settings.providers``):

* ``"auto"``: CUDA when this onnxruntime build offers it, always with CPU as fallback;
* ``"cpu"``: CPU only (reproducible numbers, no GPU memory);
* ``"cuda"``: CUDA is required; if the build lacks it, or the CUDA provider fails to
  initialise (onnxruntime would otherwise silently fall back to CPU), a
  :class:`ProviderUnavailableError` says so instead of quietly running 10-50x slower.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from pixdex.errors import PixdexError

__all__ = ["OnnxSession", "ProviderUnavailableError", "resolve_providers"]

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ProviderSetting = Literal["auto", "cpu", "cuda"]


class ProviderUnavailableError(PixdexError):
    """The configured execution provider cannot be used on this machine."""

    code = "provider_unavailable"
    http_status = 503


def resolve_providers(setting: ProviderSetting) -> list[str]:
    """Ordered onnxruntime providers for ``setting``; raises if ``"cuda"`` is impossible."""
    available = ort.get_available_providers()
    if setting == "cpu":
        return [CPU]
    if setting == "cuda":
        if CUDA not in available:
            raise ProviderUnavailableError(
                "PIXDEX_PROVIDERS=cuda but this onnxruntime build has no CUDAExecutionProvider "
                f"(available: {', '.join(available)}). Install onnxruntime-gpu with a matching "
                "CUDA/cuDNN, or set PIXDEX_PROVIDERS=auto or cpu.",
                field="providers",
            )
        return [CUDA, CPU]
    return [CUDA, CPU] if CUDA in available else [CPU]


def _cpu_threads() -> int:
    # sched_getaffinity honours container CPU sets; cpu_count() reports the whole host.
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    # Beyond ~8 threads a small CNN stops scaling and just contends with decode workers.
    return max(1, min(cpus, 8))


class OnnxSession:
    """An ``onnxruntime.InferenceSession`` built with pixdex's provider policy."""

    def __init__(self, model: Path | bytes, setting: ProviderSetting = "auto") -> None:
        requested = resolve_providers(setting)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = _cpu_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        source: str | bytes = str(model) if isinstance(model, Path) else model
        self._session = ort.InferenceSession(source, sess_options=options, providers=requested)
        self.providers: list[str] = list(self._session.get_providers())
        if setting == "cuda" and CUDA not in self.providers:
            raise ProviderUnavailableError(
                "PIXDEX_PROVIDERS=cuda but the CUDA execution provider failed to initialise "
                "(check the NVIDIA driver, CUDA and cuDNN versions onnxruntime-gpu expects).",
                field="providers",
            )
        self.input_names: list[str] = [i.name for i in self._session.get_inputs()]
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]

    def run(
        self, feeds: Mapping[str, NDArray[Any]], outputs: Sequence[str] | None = None
    ) -> dict[str, NDArray[np.float32]]:
        names = list(outputs) if outputs is not None else self.output_names
        values = self._session.run(names, dict(feeds))
        return {
            name: np.asarray(value, dtype=np.float32)
            for name, value in zip(names, values, strict=True)
        }
