"""Real-model tests for pixdex.inference (EfficientNet-Lite0 via onnxruntime, no mocks)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import skimage.data
from PIL import Image

from pixdex.config import Settings
from pixdex.engines import available_models, get_model
from pixdex.errors import InvalidInputError, ModelCapabilityError
from pixdex.inference import (
    EfficientNetLite0,
    EmbeddingModel,
    ImageBatchOutput,
    ProviderUnavailableError,
    object_tags,
    preprocess_images,
)

CAT_CLASSES = {"tabby cat", "tiger cat", "Egyptian Mau", "Persian cat", "Siamese cat"}
COFFEE_CLASSES = {"espresso", "tea cup", "coffee mug", "cup"}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("pixdex-home"))


@pytest.fixture(scope="module")
def model(settings: Settings) -> EmbeddingModel:
    return get_model("efficientnet-lite0", settings)


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return Image.fromarray(skimage.data.chelsea())


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return Image.fromarray(skimage.data.coffee())


def _top(model: EmbeddingModel, scores: np.ndarray, k: int) -> list[str]:
    assert model.class_names is not None
    return [model.class_names[i] for i in np.argsort(-scores)[:k]]


def _augment(image: Image.Image) -> Image.Image:
    width, height = image.size
    flipped = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    cropped = flipped.crop((int(width * 0.05), int(height * 0.04), width, height))
    buffer = io.BytesIO()
    cropped.save(buffer, format="JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_spec_and_registry(model: EmbeddingModel, settings: Settings) -> None:
    assert isinstance(model, EmbeddingModel)
    assert model.spec.name == "efficientnet-lite0"
    assert (model.spec.dim, model.spec.input_size) == (1280, 224)
    assert model.spec.tags and not model.spec.encodes_text
    assert get_model(None, settings) is model
    assert [spec.name for spec in available_models()] == ["efficientnet-lite0"]
    assert model.class_names is not None and len(model.class_names) == 1000


def test_unknown_model_name_lists_known_models(settings: Settings) -> None:
    with pytest.raises(InvalidInputError, match="efficientnet-lite0") as info:
        get_model("clip-vit-b32", settings)
    assert "clip-vit-b32" in info.value.message
    assert info.value.field == "model"


def test_chelsea_is_a_cat(model: EmbeddingModel, chelsea: Image.Image) -> None:
    out = model.embed_images([chelsea])
    assert out.class_scores is not None
    top1 = _top(model, out.class_scores[0], 1)[0]
    assert top1 in CAT_CLASSES
    cat_mass = sum(
        float(p)
        for name, p in zip(model.class_names or [], out.class_scores[0], strict=True)
        if name in CAT_CLASSES
    )
    assert cat_mass > 0.8


def test_coffee_is_espresso(model: EmbeddingModel, coffee: Image.Image) -> None:
    out = model.embed_images([coffee])
    assert out.class_scores is not None
    top3 = _top(model, out.class_scores[0], 3)
    assert top3[0] == "espresso"
    assert set(top3) <= COFFEE_CLASSES | {"consomme"}
    assert float(out.class_scores[0].max()) > 0.9


def test_embeddings_shape_norm_and_probs(
    model: EmbeddingModel, chelsea: Image.Image, coffee: Image.Image
) -> None:
    out = model.embed_images([chelsea, coffee, chelsea.convert("L")])
    assert out.embeddings.shape == (3, 1280)
    assert out.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, atol=1e-3)
    assert out.class_scores is not None
    assert out.class_scores.shape == (3, 1000)
    np.testing.assert_allclose(out.class_scores.sum(axis=1), 1.0, atol=1e-4)


def test_batch_equals_single(settings: Settings, chelsea: Image.Image, coffee: Image.Image) -> None:
    rocket = Image.fromarray(skimage.data.rocket())
    images = [chelsea, coffee, rocket, chelsea, coffee, rocket, coffee]
    chunked = EfficientNetLite0(settings, batch_size=3)
    batched = chunked.embed_images(images)
    singles = [chunked.embed_images([image]) for image in images]
    np.testing.assert_allclose(
        batched.embeddings, np.concatenate([s.embeddings for s in singles]), atol=1e-4
    )
    assert batched.class_scores is not None
    np.testing.assert_allclose(
        batched.class_scores,
        np.concatenate([s.class_scores for s in singles if s.class_scores is not None]),
        atol=1e-4,
    )


def test_augmented_copy_is_near_duplicate(
    model: EmbeddingModel, chelsea: Image.Image, coffee: Image.Image
) -> None:
    out = model.embed_images([chelsea, _augment(chelsea), coffee])
    emb = out.embeddings
    same = float(emb[0] @ emb[1])
    other = float(emb[0] @ emb[2])
    assert same > 0.85
    assert same - other > 0.4


def test_empty_batch(model: EmbeddingModel) -> None:
    out = model.embed_images([])
    assert isinstance(out, ImageBatchOutput)
    assert out.embeddings.shape == (0, 1280)


def test_transparent_and_palette_images(model: EmbeddingModel) -> None:
    logo = Image.fromarray(skimage.data.logo())
    assert logo.mode == "RGBA"
    out = model.embed_images([logo, logo.convert("P"), Image.new("RGB", (1, 500), "red")])
    assert np.isfinite(out.embeddings).all()
    pixels = preprocess_images([Image.new("RGBA", (10, 10), (0, 0, 0, 0))])
    # Fully transparent pixels are composited onto white, not exposed as black.
    np.testing.assert_allclose(pixels, (255 - 127) / 128, atol=1e-6)


def test_preprocess_layout_and_normalisation() -> None:
    image = Image.new("RGB", (300, 200), (127, 255, 0))
    pixels = preprocess_images([image, image])
    assert pixels.shape == (2, 3, 224, 224)
    assert pixels.dtype == np.float32 and pixels.flags.c_contiguous
    np.testing.assert_allclose(pixels[:, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(pixels[:, 1], 128 / 128, atol=1e-6)
    np.testing.assert_allclose(pixels[:, 2], -127 / 128, atol=1e-6)


def test_embed_texts_raises_capability_error(model: EmbeddingModel) -> None:
    with pytest.raises(ModelCapabilityError, match="efficientnet-lite0 has no text encoder"):
        model.embed_texts(["a cat"])


def test_cuda_provider_is_used_or_clearly_refused(tmp_path: Path, chelsea: Image.Image) -> None:
    settings = Settings(home=tmp_path, providers="cuda")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        model = EfficientNetLite0(settings)
        model.embed_images([chelsea])
        assert model.providers[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(ProviderUnavailableError, match="CUDAExecutionProvider") as info:
            get_model("efficientnet-lite0", settings)
        assert "PIXDEX_PROVIDERS" in info.value.message
        assert info.value.field == "providers"


def test_cpu_provider(tmp_path: Path, chelsea: Image.Image) -> None:
    model = EfficientNetLite0(Settings(home=tmp_path, providers="cpu"))
    model.embed_images([chelsea])
    assert model.providers == ["CPUExecutionProvider"]


def test_onnx_cache_is_reused(settings: Settings, model: EmbeddingModel) -> None:
    assert isinstance(model, EfficientNetLite0)
    path = model.ensure_onnx()
    assert path.parent == settings.models_dir
    assert path.name.startswith("efficientnet-lite0-") and path.suffix == ".onnx"
    before = path.stat().st_mtime_ns
    EfficientNetLite0(settings).embed_images([Image.new("RGB", (64, 64))])
    assert path.stat().st_mtime_ns == before


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_cached_onnx_is_rebuilt(
    tmp_path: Path, chelsea: Image.Image, coffee: Image.Image, damage: str
) -> None:
    settings = Settings(home=tmp_path)
    reference = EfficientNetLite0(settings)
    path = reference.ensure_onnx()
    good = path.read_bytes()
    expected = reference.embed_images([coffee]).embeddings
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    else:
        path.write_bytes(b"not an onnx model" * 100)
    fresh = EfficientNetLite0(settings)
    np.testing.assert_allclose(fresh.embed_images([coffee]).embeddings, expected, atol=1e-5)
    assert path.read_bytes() == good


def test_concurrent_builds_produce_one_complete_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    models = [EfficientNetLite0(settings) for _ in range(3)]
    paths: list[Path] = []
    errors: list[BaseException] = []

    def build(m: EfficientNetLite0) -> None:
        try:
            paths.append(m.ensure_onnx())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(m,)) for m in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(paths)) == 1
    assert [p.name for p in settings.models_dir.iterdir()] == [paths[0].name]
    assert (paths[0].stat().st_mode & 0o777) == 0o644


def test_object_tags_on_chelsea(model: EmbeddingModel, chelsea: Image.Image) -> None:
    out = model.embed_images([chelsea])
    assert out.class_scores is not None and model.class_names is not None
    tags = object_tags(out.class_scores[0], model.class_names, 0.10, 5)
    assert tags and set(tags) <= CAT_CLASSES
    scores = list(tags.values())
    assert scores == sorted(scores, reverse=True)
    assert all(s >= 0.10 and round(s, 4) == s for s in scores)
