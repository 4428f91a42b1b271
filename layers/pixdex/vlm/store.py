"""Where exported vision-language models live: ``$PIXDEX_HOME/models/vlm/NAME/``.

On AWS the same directory is the SageMaker model artifact, unpacked by SageMaker into
``/opt/ml/model``; :func:`load_vlm` accepts any directory, :func:`installed_models` lists
the ones under the settings' model folder.
"""

from __future__ import annotations

from pathlib import Path

from pixdex.config import Settings
from pixdex.errors import NotFoundError

from .manifest import MANIFEST_FILE, ModelArtifactError, VlmManifest, read_manifest
from .runtime import VisionLanguageModel

__all__ = ["installed_models", "load_vlm", "vlm_dir", "vlm_root"]


def vlm_root(settings: Settings) -> Path:
    return settings.models_dir / "vlm"


def vlm_dir(name: str, settings: Settings) -> Path:
    """The directory of installed model ``name``; NotFoundError when it is not installed."""
    path = vlm_root(settings) / name
    if "/" in name or name.startswith(".") or not (path / MANIFEST_FILE).is_file():
        known = ", ".join(m.name for m in installed_models(settings)) or "none"
        raise NotFoundError(
            f"vision-language model {name!r} is not installed in {vlm_root(settings)} "
            f"(installed: {known}); export it with `pixdex models export CHECKPOINT`",
            field="model",
        )
    return path


def installed_models(settings: Settings) -> list[VlmManifest]:
    """Valid model directories under :func:`vlm_root`, by name; broken ones are skipped."""
    root = vlm_root(settings)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if (path / MANIFEST_FILE).is_file():
            try:
                found.append(read_manifest(path))
            except ModelArtifactError:
                continue
    return found


def load_vlm(name_or_dir: str | Path, settings: Settings) -> VisionLanguageModel:
    """A model by installed name, or straight from a model directory."""
    path = Path(name_or_dir)
    if isinstance(name_or_dir, str) and not path.is_absolute():
        path = vlm_dir(name_or_dir, settings)
    return VisionLanguageModel(path, settings)
