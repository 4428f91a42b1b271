"""Attribute auto-tags on generated images and scikit-image sample photos."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageFilter

from pixdex.imaging import compute_attributes
from pixdex.imaging.attributes import (
    BLUR_LAPLACIAN_VAR,
    DARK_MEAN,
    HIGH_CONTRAST_STD,
    SMALL_MIN_SIDE,
)

PHOTOS = ("astronaut", "chelsea", "coffee")


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def assert_scores_valid(attributes: dict[str, float]) -> None:
    for name, score in attributes.items():
        assert 0.0 < score <= 1.0, (name, score)


def test_solid_black() -> None:
    attributes = compute_attributes(Image.new("RGB", (400, 300), (0, 0, 0)))
    assert set(attributes) == {"dark", "low-contrast", "grayscale"}
    assert attributes["dark"] == 1.0
    assert_scores_valid(attributes)


def test_solid_white() -> None:
    attributes = compute_attributes(Image.new("RGB", (400, 300), (255, 255, 255)))
    assert set(attributes) == {"bright", "low-contrast", "grayscale"}
    # Too flat to judge sharpness: not called blurry.
    assert "blurry" not in attributes


def test_gray_noise_is_grayscale_not_dark() -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(60, 200, size=(300, 400), dtype=np.uint8)
    attributes = compute_attributes(Image.fromarray(grey).convert("RGB"))
    assert "grayscale" in attributes
    assert not {"dark", "bright", "blurry", "small"} & set(attributes)


def test_checkerboard_is_high_contrast() -> None:
    tiles = (np.indices((300, 400)) // 10).sum(axis=0) % 2
    image = Image.fromarray((tiles * 255).astype(np.uint8)).convert("RGB")
    attributes = compute_attributes(image)
    assert attributes["high-contrast"] == 1.0
    assert "low-contrast" not in attributes and "blurry" not in attributes


@pytest.mark.parametrize("name", PHOTOS)
def test_blurred_photo_is_blurry_sharp_is_not(name: str) -> None:
    sharp = photo(name)
    assert "blurry" not in compute_attributes(sharp)
    blurred = compute_attributes(sharp.filter(ImageFilter.GaussianBlur(4)))
    assert "blurry" in blurred
    assert blurred["blurry"] > 0.5


def test_blur_rule_does_not_depend_on_resolution() -> None:
    # An upscaled sharp photo is measured at the working size, so it stays sharp.
    big = photo("astronaut").resize((2048, 2048), Image.Resampling.BICUBIC)
    assert "blurry" not in compute_attributes(big)
    assert "blurry" in compute_attributes(big.filter(ImageFilter.GaussianBlur(16)))


def test_small_uses_original_size() -> None:
    image = photo("coffee").resize((100, 80))
    assert "small" in compute_attributes(image)
    assert "small" not in compute_attributes(photo("coffee"))  # 600x400
    side = SMALL_MIN_SIDE
    assert "small" not in compute_attributes(Image.new("RGB", (side, side), (90, 90, 90)))
    assert "small" in compute_attributes(Image.new("RGB", (side, side - 1), (90, 90, 90)))


@pytest.mark.parametrize("name", PHOTOS)
def test_real_photos_have_no_spurious_tags(name: str) -> None:
    attributes = compute_attributes(photo(name))
    assert attributes == {}, attributes  # not grayscale, dark, bright, contrasty, blurry


def test_scores_grow_past_threshold() -> None:
    slightly = compute_attributes(Image.new("RGB", (300, 300), (50, 50, 50)))["dark"]
    very = compute_attributes(Image.new("RGB", (300, 300), (10, 10, 10)))["dark"]
    assert 0.0 < slightly < very == 1.0
    assert DARK_MEAN > 50
    assert HIGH_CONTRAST_STD > 80 and BLUR_LAPLACIAN_VAR > 0


def test_tiny_and_non_rgb_inputs() -> None:
    assert "small" in compute_attributes(Image.new("RGB", (1, 1), (255, 0, 0)))
    grey = compute_attributes(Image.new("L", (300, 300), 128))
    assert "grayscale" in grey and "low-contrast" in grey
