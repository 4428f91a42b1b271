"""Unit-level checks of pixdex.inference pieces that need no ONNX session (real files)."""

from __future__ import annotations

import pickle
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixdex.inference import (
    TorchLegacyFormatError,
    default_weights_path,
    imagenet_class_names,
    load_legacy_state_dict,
    object_tags,
)
from pixdex.inference.efficientnet_graph import same_pads


def test_object_tags_rules() -> None:
    names = imagenet_class_names()
    probs = np.zeros(1000, dtype=np.float32)
    missile = [i for i, n in enumerate(names) if n == "missile"]
    assert len(missile) == 2
    probs[missile] = [0.06, 0.07]  # each below threshold, together above it
    probs[names.index("espresso")] = 0.5
    probs[names.index("tabby cat")] = 0.123456
    probs[names.index("tea cup")] = 0.09
    tags = object_tags(probs, names, 0.10, 5)
    assert list(tags) == ["espresso", "missile", "tabby cat"]
    assert tags["missile"] == 0.13 and tags["tabby cat"] == 0.1235
    assert list(object_tags(probs, names, 0.10, 1)) == ["espresso"]
    assert object_tags(probs, names, 0.9, 5) == {}
    with pytest.raises(ValueError, match="class names"):
        object_tags(probs[:10], names, 0.1, 5)


def test_class_names_are_unique_except_known_pairs() -> None:
    names = imagenet_class_names()
    assert names[967] == "espresso" and names[281] == "tabby cat" and names[282] == "tiger cat"
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    # object_tags relies on shared names coming at most in pairs.
    assert max(counts.values()) == 2


def test_same_padding_matches_tensorflow() -> None:
    assert same_pads(224, 3, 2) == (0, 1)
    assert same_pads(112, 5, 2) == (1, 2)
    assert same_pads(56, 3, 1) == (1, 1)
    assert same_pads(14, 5, 1) == (2, 2)
    assert same_pads(7, 1, 1) == (0, 0)


def test_legacy_reader_loads_weights() -> None:
    weights = load_legacy_state_dict(default_weights_path())
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert all(w.dtype == np.float32 for w in weights.values())
    assert not any(k.endswith("num_batches_tracked") for k in weights)


@pytest.fixture
def bad_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    text = tmp_path / "notes.pth"
    text.write_text("hello, this is not a checkpoint\n")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    png = tmp_path / "image.pth"
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    zipped = tmp_path / "new_format.pth"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("archive/data.pkl", b"")
    hostile = tmp_path / "hostile.pth"
    with hostile.open("wb") as stream:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, stream, protocol=2)
        pickle.dump(threading.Thread, stream, protocol=2)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(default_weights_path().read_bytes()[:1_000_000])
    yield {
        "text": text,
        "empty": empty,
        "png": png,
        "zip": zipped,
        "hostile": hostile,
        "truncated": truncated,
    }


@pytest.mark.parametrize("kind", ["text", "empty", "png", "zip", "hostile", "truncated"])
def test_legacy_reader_rejects_non_pth(bad_files: dict[str, Path], kind: str) -> None:
    with pytest.raises(TorchLegacyFormatError) as info:
        load_legacy_state_dict(bad_files[kind])
    message = str(info.value)
    assert str(bad_files[kind]) in message
    if kind == "zip":
        assert "zip" in message
    if kind == "hostile":
        assert "refusing to unpickle threading.Thread" in message
