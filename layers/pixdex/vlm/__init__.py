"""Vision-language models (SigLIP / SigLIP2 / CLIP): export to ONNX, serve with onnxruntime.

Serving needs only onnxruntime, ``tokenizers``, numpy and Pillow; exporting
(:mod:`.export`) also needs torch and transformers and is imported lazily. The tiny random
checkpoints the tests build are `tests/tiny_vlm.py`, outside the shipped package.
"""

from .manifest import ImageConfig, ModelArtifactError, TextConfig, VlmManifest, read_manifest
from .preprocess import preprocess_for_vlm
from .runtime import VisionLanguageModel, l2_normalise
from .store import installed_models, load_vlm, vlm_dir, vlm_root
from .tokenize import PromptTokenizer

__all__ = [
    "ImageConfig",
    "ModelArtifactError",
    "PromptTokenizer",
    "TextConfig",
    "VisionLanguageModel",
    "VlmManifest",
    "installed_models",
    "l2_normalise",
    "load_vlm",
    "preprocess_for_vlm",
    "read_manifest",
    "vlm_dir",
    "vlm_root",
]
