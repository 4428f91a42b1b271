"""Where exported vision-language models live: ``$PIXDEX_HOME/models/vlm/NAME/``.

On AWS the same directory is the SageMaker model artifact, unpacked by SageMaker into
``/opt/ml/model`` and named by ``PIXDEX_MODEL_ARTIFACT_DIR``: that directory counts as
installed too. :func:`load_vlm` accepts any directory.
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


def _artifact(settings: Settings) -> VlmManifest | None:
    folder = settings.model_artifact_dir
    if folder is None or not (folder / MANIFEST_FILE).is_file():
        return None
    return read_manifest(folder)


def vlm_dir(name: str, settings: Settings) -> Path:
    """The directory of installed model ``name``; NotFoundError when it is not installed."""
    artifact = _artifact(settings)
    if artifact is not None and artifact.name == name:
        assert settings.model_artifact_dir is not None
        return settings.model_artifact_dir
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
    """The model artifact (if any) and valid model directories under :func:`vlm_root`.

    Broken directories under the root are skipped; a broken artifact raises, since the
    deployment named it explicitly.
    """
    artifact = _artifact(settings)
    found = [artifact] if artifact is not None else []
    root = vlm_root(settings)
    if not root.is_dir():
        return found
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
