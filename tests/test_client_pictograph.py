"""Pictograph's search page (seeds/004) through ``pixdex.client.pictograph`` against the
real server: its calls copied with only the import, host, ids and key changed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pixdex.client.pictograph import (
    Client,
    NotFoundError,
    SimilarImage,
    TaggedImage,
    ValidationError,
)
from pixdex.server import RunningServer
from tests.test_server_support import Api, Keys, add, b64, new_dataset

pytest_plugins = ["tests.test_server_support"]


@pytest.fixture(scope="module")
def library(api: Api, image_files: dict[str, bytes]) -> dict[str, Any]:
    name = f"my-dataset-{uuid.uuid4().hex[:8]}"
    dataset_id = new_dataset(api, name)
    added = add(api, dataset_id, [
        {"base64": b64(image_files["chelsea.jpg"]), "name": "chelsea.jpg", "folder": "/pets"},
        {"base64": b64(image_files["chelsea_flip.jpg"]), "name": "chelsea_flip.jpg",
         "folder": "/pets"},
        {"base64": b64(image_files["coffee.jpg"]), "name": "coffee.jpg", "folder": "/food"},
        {"base64": b64(image_files["rocket.jpg"]), "name": "rocket.jpg", "folder": "/pets"},
    ])
    assert all(a["status"] == "indexed" for a in added)
    return {"name": name, "ids": {a["name"]: a["id"] for a in added}}


@pytest.fixture(scope="module")
def client(api_server: RunningServer, api_keys: Keys) -> Client:
    return Client(api_server.url, api_key=api_keys.a)


def test_by_similarity(client: Client, library: dict[str, Any]) -> None:
    ids = library["ids"]
    results = client.search.by_similarity(
        image_id=ids["chelsea.jpg"],
        threshold=0.6,                   # cosine similarity floor (0-1)
        limit=50,
        folder_path=None,                # None = inherit; "/" = whole dataset
    )
    assert all(isinstance(r, SimilarImage) for r in results)
    # Its folder (/pets), without itself, above the floor: the mirrored copy only.
    assert [(r.image_id, r.filename) for r in results] == [(ids["chelsea_flip.jpg"],
                                                            "chelsea_flip.jpg")]
    assert results[0].similarity > 0.9
    everywhere = client.search.by_similarity(ids["chelsea.jpg"], threshold=0.0, folder_path="/")
    assert {r.filename for r in everywhere} == {"chelsea_flip.jpg", "coffee.jpg", "rocket.jpg"}
    assert [r.similarity for r in everywhere] == sorted(
        (r.similarity for r in everywhere), reverse=True)
    with pytest.raises(NotFoundError) as missing:
        client.search.by_similarity(str(uuid.uuid4()))
    assert missing.value.http_status == 404
    with pytest.raises(ValidationError):
        client.search.by_similarity(ids["chelsea.jpg"], limit=501)  # backend cap: 500


def test_by_tag(client: Client, library: dict[str, Any], api: Api) -> None:
    objects = api.ok("GET", f"/v1/images/{library['ids']['coffee.jpg']}")["auto_tags"]["objects"]
    top = max(objects, key=objects.get)
    results = client.search.by_tag(
        objects=[top, "truck"],              # match ANY object tag
        dataset_name=library["name"],        # restrict scope; None = whole org
        limit=100,
    )
    assert all(isinstance(r, TaggedImage) for r in results)
    assert [r.image_id for r in results] == [library["ids"]["coffee.jpg"]]
    assert top in results[0].tags["objects"] and set(results[0].tags) == {
        "objects", "scenes", "attributes"}
    # Across kinds the filters are AND'd: no image is both the top object and blurry.
    assert client.search.by_tag(objects=[top], attributes=["blurry"],
                                dataset_name=library["name"]) == []
    with pytest.raises(ValidationError) as empty:
        client.search.by_tag()
    assert empty.value.http_status == 422
    with pytest.raises(NotFoundError):
        client.search.by_tag(objects=[top], dataset_name="no-such-dataset")


def test_empty_tag_filter_returns_nothing_over_http(api: Api, library: dict[str, Any]) -> None:
    scoped = {"attributes": [], "in_dataset": library["name"]}
    for body in ({"objects": []}, {"scenes": ""}, scoped):
        page = api.ok("POST", "/v1/search", body)
        assert page["total"] == 0 and page["results"] == [], body
        assert "empty" in page["warnings"][0]
    assert api.ok("POST", "/v1/search", {"in_dataset": library["name"]})["total"] == 4


def test_client_from_environment(api_server: RunningServer, api_keys: Keys,
                                 library: dict[str, Any],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXDEX_URL", api_server.url)
    monkeypatch.setenv("PIXDEX_API_KEY", api_keys.a)
    results = Client().search.by_similarity(library["ids"]["chelsea.jpg"])
    assert [r.filename for r in results] == ["chelsea_flip.jpg"]
