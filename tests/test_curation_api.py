"""Curation over real HTTP (``/v1/datasets/{id}/duplicates | leakage | outliers |
label-doubts | duplicate-gate | curation/recompute``) and through ``pixdex.Client``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from PIL import Image

import pixdex
from pixdex.client import ApiError, Client
from pixdex.server import RunningServer
from tests.curation_photos import AUGMENTATIONS
from tests.test_server_support import Api, Keys, add, b64, jpeg, new_dataset, wait_indexed

pytest_plugins = ["tests.test_server_support"]
LIGHT = AUGMENTATIONS["light"]


def _image(picture: Image.Image, name: str, split: str | None = None,
           classes: dict[str, int] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"base64": b64(jpeg(picture, 95)), "name": name}
    if split is not None:
        entry["split"] = split
    if classes:
        entry["annotations"] = classes
    return entry


@pytest.fixture(scope="module")
def dataset(api: Api, photos: dict[str, Image.Image]) -> dict[str, str]:
    """chelsea (train) with a smaller copy in test; coffee and rocket alone."""
    dataset_id = new_dataset(api, f"curation-{uuid.uuid4().hex[:8]}")
    added = add(api, dataset_id, [
        _image(photos["chelsea"], "chelsea.jpg", "train", {"cat": 1}),
        _image(LIGHT["resize"](photos["chelsea"]), "chelsea_small.jpg", "test", {"cat": 1}),
        _image(photos["coffee"], "coffee.jpg", "train", {"rocket": 1}),
        _image(photos["rocket"], "rocket.jpg", "valid"),
    ])
    assert all(a["status"] == "indexed" for a in added), added
    return {"id": dataset_id, **{a["name"]: a["id"] for a in added}}


def test_duplicates_and_leakage(api: Api, dataset: dict[str, str]) -> None:
    page = api.ok("GET", f"/v1/datasets/{dataset['id']}/duplicates?level=1")
    assert (page["level"], page["total_clusters"]) == (1, 1)
    cluster = page["clusters"][0]
    assert {m["name"] for m in cluster["members"]} == {"chelsea.jpg", "chelsea_small.jpg"}
    assert cluster["keep"] == dataset["chelsea.jpg"] and cluster["size"] == 2
    leaks = api.ok("GET", f"/v1/datasets/{dataset['id']}/leakage")
    assert leaks["counts"] == {"train/test": 1} and len(leaks["pairs"]) == 1
    assert {leaks["pairs"][0]["a"]["name"], leaks["pairs"][0]["b"]["name"]} == {
        "chelsea.jpg", "chelsea_small.jpg"}
    ranked = api.ok("GET", f"/v1/datasets/{dataset['id']}/outliers?limit=2")
    assert ranked["total"] == 4 and len(ranked["outliers"]) == 2
    doubts = api.ok("GET", f"/v1/datasets/{dataset['id']}/label-doubts")
    assert [c["name"] for c in doubts["tag_contradictions"]] == ["coffee.jpg"]


def test_bad_input(api: Api, api_b: Api, dataset: dict[str, str]) -> None:
    base = f"/v1/datasets/{dataset['id']}"
    for path in ("duplicates?level=5", "leakage?level=-1"):
        reply = api.call("GET", f"{base}/{path}")
        assert reply.status == 422 and reply.error["field"] == "level"
        assert "0-4" in reply.error["message"]
    reply = api.call("GET", f"{base}/duplicates?levle=2")
    assert reply.status == 422 and reply.error["field"] == "levle"
    assert "level" in reply.error["message"]
    for path in ("duplicates", "leakage", "outliers", "label-doubts", "duplicate-gate"):
        missing = api.call("GET", f"/v1/datasets/{uuid.uuid4()}/{path}")
        assert missing.status == 404, path
        assert api_b.call("GET", f"{base}/{path}").status == 404  # another workspace's
    assert api.call("GET", "/v1/datasets/not-a-uuid/duplicates").status == 422
    bad_gate = api.call("PUT", f"{base}/duplicate-gate", {"on_duplicate": "drop"})
    assert bad_gate.status == 422 and bad_gate.error["field"] == "on_duplicate"
    bad_gate = api.call("PUT", f"{base}/duplicate-gate", {"on_duplicate": "skip", "level": 7})
    assert bad_gate.status == 422 and "0-4" in bad_gate.error["message"]
    extra = api.call("PUT", f"{base}/duplicate-gate", {"on_duplicate": "skip", "colour": 1})
    assert extra.status == 422 and extra.error["field"] == "colour"


def test_read_key_reads_but_cannot_change(api: Api, api_keys: Keys,
                                         dataset: dict[str, str]) -> None:
    reader = api.as_key(api_keys.a_read)
    base = f"/v1/datasets/{dataset['id']}"
    assert reader.call("GET", f"{base}/duplicates").status == 200
    assert reader.call("PUT", f"{base}/duplicate-gate", {"on_duplicate": "skip"}).status == 403
    assert reader.call("POST", f"{base}/curation/recompute").status == 403


def test_leakage_without_splits(api: Api, photos: dict[str, Image.Image]) -> None:
    dataset_id = new_dataset(api, f"curation-nosplit-{uuid.uuid4().hex[:8]}")
    add(api, dataset_id, [_image(photos["coins"], "coins.jpg"),
                          _image(LIGHT["flip"](photos["coins"]), "coins_flip.jpg")])
    leaks = api.ok("GET", f"/v1/datasets/{dataset_id}/leakage")
    assert leaks["pairs"] == [] and leaks["counts"] == {} and "no splits" in leaks["note"]


def test_gate_on_upload(api: Api, photos: dict[str, Image.Image]) -> None:
    dataset_id = new_dataset(api, f"curation-gate-{uuid.uuid4().hex[:8]}")
    [original] = add(api, dataset_id, [_image(photos["astronaut"], "astronaut.jpg")])
    gate = api.ok("PUT", f"/v1/datasets/{dataset_id}/duplicate-gate",
                  {"on_duplicate": "skip", "level": 1})
    assert gate == {"on_duplicate": "skip", "level": 1}
    [skipped] = add(api, dataset_id, [_image(LIGHT["flip"](photos["astronaut"]), "flip.jpg")])
    assert skipped["status"] == "failed" and original["id"] in skipped["error"]
    # The request's gate wins over the dataset's.
    reply = api.call("POST", f"/v1/datasets/{dataset_id}/images", {
        "images": [_image(LIGHT["crop"](photos["astronaut"]), "crop.jpg")],
        "on_duplicate": "allow"})
    assert reply.status == 202
    [allowed] = wait_indexed(api, reply.json["images"])
    assert allowed["status"] == "indexed"
    page = api.ok("GET", f"/v1/datasets/{dataset_id}/duplicates")
    assert page["total_clusters"] == 1
    assert {m["name"] for m in page["clusters"][0]["members"]} == {"astronaut.jpg", "crop.jpg"}
    bad = api.call("POST", f"/v1/datasets/{dataset_id}/images", {
        "images": [_image(photos["rocket"], "r.jpg")], "on_duplicate": "skip",
        "duplicate_level": 8})
    assert bad.status == 422 and "0-4" in bad.error["message"]


@pytest.fixture(scope="module")
def client(api_server: RunningServer, api_keys: Keys) -> Client:
    return pixdex.Client(api_server.url, api_keys.a)


def test_client(client: Client, dataset: dict[str, str]) -> None:
    page = client.duplicates(dataset["id"], level=1)
    assert page.total_clusters == 1 and str(page.clusters[0].keep) == dataset["chelsea.jpg"]
    assert client.leakage(dataset["id"]).counts == {"train/test": 1}
    assert client.outliers(dataset["id"]).total == 4
    assert client.label_doubts(dataset["id"]).tag_contradictions[0].name == "coffee.jpg"
    assert client.set_duplicate_gate(dataset["id"], "link", 2).level == 2
    assert client.duplicate_gate(dataset["id"]).on_duplicate == "link"
    assert client.recompute_curation(dataset["id"]).images == 4
    with pytest.raises(ApiError) as caught:
        client.duplicates(dataset["id"], level=9)
    assert caught.value.http_status == 422 and caught.value.field == "level"
    with pytest.raises(ApiError) as caught:
        client.leakage(str(uuid.uuid4()))
    assert caught.value.http_status == 404
