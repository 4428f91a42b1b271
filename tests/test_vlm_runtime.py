"""The vision-language runtime around the parity core: bad input, model store, CLI, packing."""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError
from pixdex.vlm import ModelArtifactError, VisionLanguageModel, installed_models, load_vlm
from pixdex.vlm.export import export_checkpoint, pack_model_dir
from tests.tiny_vlm import TINY_IMAGE_SIZE, build_tiny_checkpoint

PIXDEX = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "pixdex")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def checkpoint(workdir: Path) -> Path:
    return build_tiny_checkpoint("siglip", workdir / "ckpt")


@pytest.fixture(scope="module")
def model(checkpoint: Path, workdir: Path, settings: Settings) -> VisionLanguageModel:
    export_checkpoint(str(checkpoint), workdir / "model", name="tiny", settings=settings)
    return VisionLanguageModel(workdir / "model", settings, batch_size=2)


def test_batches_and_odd_images(model: VisionLanguageModel, photos: dict[str, Image.Image]) -> None:
    rgba = Image.new("RGBA", (40, 90), (255, 0, 0, 0))
    gray = photos["camera"].convert("L")
    out = model.embed_images([photos["chelsea"], rgba, gray, photos["coins"], gray])
    assert out.embeddings.shape == (5, model.spec.dim) and out.class_scores is None
    np.testing.assert_allclose(out.embeddings[2], out.embeddings[4], atol=1e-6)
    white = model.embed_images([Image.new("RGB", (40, 90), "white")]).embeddings[0]
    np.testing.assert_allclose(out.embeddings[1], white, atol=1e-5)  # alpha 0 -> white
    assert model.embed_images([]).embeddings.shape == (0, model.spec.dim)
    assert model.embed_texts([]).shape == (0, model.spec.dim)


@pytest.mark.parametrize("texts", [[""], ["   "], ["x" * 2001], ["ok", ""]])
def test_bad_prompts_are_rejected(model: VisionLanguageModel, texts: list[str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        model.embed_texts(texts)
    assert info.value.field == "prompt"


def test_a_bare_string_is_not_a_list_of_prompts(model: VisionLanguageModel) -> None:
    with pytest.raises(InvalidInputError, match="list"):
        model.embed_texts("a cat")  # type: ignore[arg-type]


def test_pixels_of_the_wrong_shape_are_rejected(model: VisionLanguageModel) -> None:
    with pytest.raises(InvalidInputError, match="shape"):
        model.embed_pixels(np.zeros((1, 3, TINY_IMAGE_SIZE + 1, TINY_IMAGE_SIZE), np.float32))


def test_broken_model_directories_say_what_is_wrong(model: VisionLanguageModel, tmp_path: Path,
                                                    settings: Settings) -> None:  # fmt: skip
    with pytest.raises(ModelArtifactError, match=r"manifest\.json is missing"):
        VisionLanguageModel(tmp_path, settings)
    for name in ("manifest.json", "image.onnx", "text.onnx", "tokenizer.json"):
        (tmp_path / name).write_bytes((model.model_dir / name).read_bytes())
    (tmp_path / "text.onnx").unlink()
    with pytest.raises(ModelArtifactError, match=r"lacks text\.onnx"):
        VisionLanguageModel(tmp_path, settings)
    manifest = json.loads((model.model_dir / "manifest.json").read_text())
    manifest["logit_scale"] = -1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="invalid"):
        VisionLanguageModel(tmp_path, settings)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelArtifactError, match="invalid"):
        VisionLanguageModel(tmp_path, settings)


def test_export_refuses_unsupported_or_occupied_targets(
    checkpoint: Path, workdir: Path, tmp_path: Path
) -> None:
    import transformers

    bert = tmp_path / "bert"
    transformers.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=8).save_pretrained(bert)  # fmt: skip
    with pytest.raises(InvalidInputError, match="'bert' model"):
        export_checkpoint(str(bert), tmp_path / "out")
    with pytest.raises(InvalidInputError, match="not empty"):
        export_checkpoint(str(checkpoint), workdir / "model")


def test_store_lists_and_loads_installed_models(
    model: VisionLanguageModel, pixdex_home: Path
) -> None:
    settings = Settings(home=pixdex_home / "store-test", providers="cpu")
    assert installed_models(settings) == []
    with pytest.raises(NotFoundError, match="not installed"):
        load_vlm("tiny", settings)
    target = settings.models_dir / "vlm" / "tiny"
    target.mkdir(parents=True)
    for path in model.model_dir.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    assert [m.name for m in installed_models(settings)] == ["tiny"]
    loaded = load_vlm("tiny", settings)
    np.testing.assert_allclose(
        loaded.embed_texts(["a cat"]), model.embed_texts(["a cat"]), atol=1e-6
    )
    with pytest.raises(NotFoundError):
        load_vlm("../tiny", settings)


def test_pack_writes_a_sagemaker_model_archive(model: VisionLanguageModel, tmp_path: Path) -> None:
    archive = pack_model_dir(model.model_dir, tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == ["image.onnx", "manifest.json", "text.onnx", "tokenizer.json"]
    with pytest.raises(ModelArtifactError):
        pack_model_dir(tmp_path, tmp_path / "x.tar.gz")


def test_cli_exports_lists_and_rejects_bad_usage(checkpoint: Path, cli_env: dict[str, str],
                                                 tmp_path: Path) -> None:  # fmt: skip
    def pixdex(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PIXDEX, *args], env=cli_env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip

    archive = tmp_path / "model.tar.gz"
    done = pixdex("models", "export", str(checkpoint), "--name", "cli-tiny", "--pack",
                  str(archive), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["manifest"]["name"] == "cli-tiny" and Path(report["archive"]).is_file()
    listed = pixdex("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {row["name"]: row for row in json.loads(listed.stdout)}
    assert names["cli-tiny"]["text"] is True and names["efficientnet-lite0"]["text"] is False
    again = pixdex("models", "export", str(checkpoint), "--name", "cli-tiny")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    bad = pixdex("models", "export", str(checkpoint), "--name", "x", "--pack", "a.zip")
    assert bad.returncode == 2 and ".tar.gz" in bad.stderr
    missing = pixdex("models", "export", str(tmp_path / "nope"), "--name", "y")
    assert missing.returncode == 2 and "cannot load checkpoint" in missing.stderr
