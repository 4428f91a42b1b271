"""Parity of our hand-built ONNX graph with the reference PyTorch EfficientNet-Lite0.

torch and efficientnet-lite-pytorch are dev dependencies used only here: they prove that
the numpy weight reader, BatchNorm folding and asymmetric "same" padding reproduce the
reference implementation on real photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from pixdex.config import Settings
from pixdex.inference import (
    EfficientNetLite0,
    default_weights_path,
    load_legacy_state_dict,
    preprocess_images,
)


def _photos() -> list[Image.Image]:
    motorcycle = skimage.data.stereo_motorcycle()[0]
    arrays = [
        skimage.data.chelsea(),
        skimage.data.coffee(),
        skimage.data.astronaut(),
        skimage.data.rocket(),
        motorcycle,
        skimage.data.camera(),
        skimage.data.immunohistochemistry(),
    ]
    return [Image.fromarray(a) for a in arrays]


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    torch.manual_seed(0)
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(default_weights_path())
    )
    net.eval()
    # Lite models must run ReLU6; set_swish() would silently replace it with swish.
    assert isinstance(net._swish, torch.nn.ReLU6)
    return net


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> EfficientNetLite0:
    home: Path = tmp_path_factory.mktemp("pixdex-parity")
    return EfficientNetLite0(Settings(home=home, providers="cpu"))


def test_legacy_reader_matches_torch_load() -> None:
    expected = torch.load(str(default_weights_path()), map_location="cpu", weights_only=True)
    ours = load_legacy_state_dict(default_weights_path())
    floating = {k: v for k, v in expected.items() if v.is_floating_point()}
    assert set(ours) == set(floating)
    for key, tensor in floating.items():
        np.testing.assert_array_equal(ours[key], tensor.numpy(), err_msg=key)


def test_onnx_matches_pytorch_reference(
    reference: torch.nn.Module, ours: EfficientNetLite0
) -> None:
    pixels = preprocess_images(_photos())
    with torch.no_grad():
        batch = torch.from_numpy(pixels)
        features = reference.extract_features(batch)
        pooled = reference._avg_pooling(features).flatten(1).numpy()
        logits = reference(batch)
        probs = torch.softmax(logits, dim=1).numpy()

    out = ours.embed_pixels(pixels)
    assert out.class_scores is not None
    assert np.abs(out.class_scores - probs).max() < 1e-4
    assert (out.class_scores.argmax(1) == probs.argmax(1)).all()

    ref_unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    cosine = np.sum(ref_unit * out.embeddings, axis=1)
    assert cosine.min() > 0.9999
    np.testing.assert_allclose(out.embeddings, ref_unit, atol=1e-4)


def test_end_to_end_images_match_reference(
    reference: torch.nn.Module, ours: EfficientNetLite0
) -> None:
    photos = _photos()
    out = ours.embed_images(photos)
    with torch.no_grad():
        probs = torch.softmax(reference(torch.from_numpy(preprocess_images(photos))), 1).numpy()
    assert out.class_scores is not None
    assert np.abs(out.class_scores - probs).max() < 1e-4
