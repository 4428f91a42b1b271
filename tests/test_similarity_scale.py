"""One similarity scale on every model (app.calibration): the mapping, the shipped fit,
and ``min_similarity`` / ``similarity`` over real HTTP with the real model."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from pixdex.app.calibration import CALIBRATION_FILE, Calibration, load_calibrations
from pixdex.config import Settings
from pixdex.engines import get_model
from tests.test_server_support import Api, add, b64, jpeg, new_dataset

pytest_plugins = ["tests.test_server_support"]

FIT = Calibration("m", unrelated_median=0.2, unrelated_p99=0.4, copy_median=0.9)


def test_anchors_map_to_their_points_and_the_inverse_round_trips() -> None:
    assert FIT.similarity(0.2) == 0.0 and FIT.similarity(-0.5) == 0.0
    assert FIT.similarity(0.4) == pytest.approx(0.5)
    assert FIT.similarity(0.9) == 1.0 and FIT.similarity(0.99) == 1.0
    grid = np.linspace(-1, 1, 201)
    values = [FIT.similarity(float(c)) for c in grid]
    assert values == sorted(values)
    for s in (0.1, 0.5, 0.6, 0.95):
        assert FIT.similarity(FIT.cosine(s)) == pytest.approx(s)
    assert FIT.cosine(0.0) == -1.0  # min_similarity 0 cuts nothing
    with pytest.raises(ValueError, match="must increase"):
        Calibration("bad", unrelated_median=0.5, unrelated_p99=0.4, copy_median=0.9)


def test_the_offline_model_ships_a_fit_and_a_local_file_overrides_it(settings: Settings,
                                                                    tmp_path: Any) -> None:
    shipped = load_calibrations(settings)[settings.model]
    # EfficientNet-Lite0 (bench/results/calibration.json): unrelated ~0.16, copies ~0.97.
    assert 0.05 < shipped.unrelated_median < shipped.unrelated_p99 < 0.6 < shipped.copy_median
    local = Settings(home=tmp_path, providers="cpu")
    (tmp_path / CALIBRATION_FILE).write_text(json.dumps({"models": {"other-model": {
        "unrelated_median": 0.3, "unrelated_p99": 0.5, "copy_median": 0.8}}}))
    fits = load_calibrations(local)
    assert fits["other-model"].unrelated_p99 == 0.5 and settings.model in fits
    (tmp_path / CALIBRATION_FILE).write_text('{"models": {"x": {"copy_median": 1}}}')
    with pytest.raises(ValueError, match="not a similarity calibration"):
        load_calibrations(local)


def test_copies_clear_related_threshold_and_unrelated_photos_do_not(
    settings: Settings, photos: dict[str, Image.Image]
) -> None:
    fit = load_calibrations(settings)[settings.model]
    model = get_model(settings=settings)
    names = ("chelsea", "coffee", "rocket", "camera")
    originals = model.embed_images([photos[n] for n in names]).embeddings
    copies = model.embed_images([ImageOps.mirror(photos[n]) for n in names]).embeddings
    for i in range(len(names)):
        assert fit.similarity(float(originals[i] @ copies[i])) >= 0.6
        for j in range(len(names)):
            if i != j:
                assert fit.similarity(float(originals[i] @ originals[j])) < 0.6


@pytest.fixture(scope="module")
def small_gallery(api: Api, image_files: dict[str, bytes]) -> dict[str, Any]:
    dataset = f"scale-{uuid.uuid4().hex[:8]}"
    dataset_id = new_dataset(api, dataset)
    added = add(api, dataset_id, [
        {"base64": b64(image_files[name]), "name": name}
        for name in ("chelsea.jpg", "chelsea_flip.jpg", "coffee.jpg", "rocket.jpg")
    ])  # fmt: skip
    assert all(a["status"] == "indexed" for a in added)
    return {"name": dataset, "ids": {a["name"]: a["id"] for a in added}}


def test_min_similarity_and_the_similarity_field_over_http(
    api: Api, small_gallery: dict[str, Any], photos: dict[str, Image.Image]
) -> None:
    body = {"in_dataset": small_gallery["name"], "image": b64(jpeg(photos["chelsea"])),
            "fields": ["similarity"]}  # fmt: skip
    everything = api.ok("POST", "/v1/search", body)
    assert len(everything["results"]) == 4
    for hit in everything["results"]:
        assert 0.0 <= hit["similarity"] <= 1.0 and -1.0 <= hit["score"] <= 1.0
    related = api.ok("POST", "/v1/search", {
        **body, "min_similarity": 0.6, "fields": ["name", "similarity"]})["results"]
    assert {r["name"] for r in related} == {"chelsea.jpg", "chelsea_flip.jpg"}
    assert all(r["similarity"] >= 0.6 for r in related)
    assert min(r["similarity"] for r in everything["results"]) < 0.6


def test_bad_min_similarity_is_refused_with_what_to_fix(
    api: Api, small_gallery: dict[str, Any]
) -> None:
    base = {"in_dataset": small_gallery["name"], "like_image": small_gallery["ids"]["coffee.jpg"]}
    for bad in (1.5, -0.1, "high"):
        reply = api.call("POST", "/v1/search", {**base, "min_similarity": bad})
        assert reply.status == 422, reply.body
    prompt = api.call("POST", "/v1/search", {"in_dataset": small_gallery["name"],
                                             "prompt": "a cat", "min_similarity": 0.5})
    assert prompt.status == 400 and prompt.error["field"] == "min_similarity"
    assert "threshold" in prompt.error["message"]


def test_a_model_without_a_fit_has_no_similarity_and_refuses_min_similarity(
    settings: Settings,
) -> None:
    from pixdex.app.calibration import calibration_for
    from pixdex.errors import ModelCapabilityError

    assert calibration_for("siglip2-uncalibrated", settings, required=False) is None
    with pytest.raises(ModelCapabilityError, match=r"bench_calibration\.py --model siglip2"):
        calibration_for("siglip2-uncalibrated", settings, required=True)
