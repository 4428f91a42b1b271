"""The EfficientNet-Lite0 graph's interface: what the runtime needs to name its inputs and
outputs and to find its cached file, without the graph builder (and so without onnx,
whose import alone costs over a second on every command that only runs the cached graph).
"""

from __future__ import annotations

__all__ = [
    "BUILDER_VERSION", "HEAD_CHANNELS", "INPUT_NAME", "INPUT_SIZE", "OUTPUT_EMBEDDING",
    "OUTPUT_PROBS",
]

BUILDER_VERSION = 1  # part of the cached file's name: a new builder means a new file
INPUT_NAME = "pixels"
OUTPUT_EMBEDDING = "embedding"
OUTPUT_PROBS = "probs"
INPUT_SIZE = 224
HEAD_CHANNELS = 1280
