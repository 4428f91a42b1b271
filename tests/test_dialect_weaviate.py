"""Weaviate's image search page (seeds/003) against the real server: the GraphQL ``Get``
with ``nearImage`` (base64), ``nearVector``, named vectors, distance / certainty, limit,
offset, autocut, ``where`` and ``_additional``; a class is a dataset."""

# GraphQL is all braces: its queries are filled in with %-formatting, not f-strings.
# ruff: noqa: UP031

from __future__ import annotations

import uuid
from typing import Any

import pytest
from PIL import Image

from pixdex.api.dialects.weaviate import autocut
from tests.test_server_support import Api, add, b64, jpeg, new_dataset

pytest_plugins = ["tests.test_server_support"]


@pytest.fixture(scope="module")
def collection(api: Api, image_files: dict[str, bytes]) -> dict[str, Any]:
    name = f"photos{uuid.uuid4().hex[:8]}"
    dataset_id = new_dataset(api, name)
    added = add(api, dataset_id, [
        {"base64": b64(image_files["chelsea.jpg"]), "name": "chelsea.jpg", "split": "train",
         "tags": ["cat", "2024"], "folder": "/pets"},
        {"base64": b64(image_files["chelsea_flip.jpg"]), "name": "chelsea_flip.jpg",
         "tags": ["cat"], "folder": "/pets/edits"},
        {"base64": b64(image_files["coffee.jpg"]), "name": "coffee.jpg", "split": "train"},
        {"base64": b64(image_files["coffee_flip.jpg"]), "name": "coffee_flip.jpg"},
        {"base64": b64(image_files["rocket.jpg"]), "name": "rocket.jpg"},
        {"base64": b64(image_files["astronaut.jpg"]), "name": "astronaut.jpg"},
    ])
    assert all(a["status"] == "indexed" for a in added)
    # Weaviate capitalises class names: "Photos..." finds the dataset "photos...".
    return {"name": name, "cls": name.capitalize(), "ids": {a["name"]: a["id"] for a in added}}


def _get(api: Api, query: str, variables: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return api.call("POST", "/v1/graphql", body)


def _objects(api: Api, cls: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    reply = _get(api, query, variables)
    assert reply.status == 200, reply.body
    return reply.json["data"]["Get"][cls]


def test_near_image_base64(api: Api, collection: dict[str, Any],
                           photos: dict[str, Image.Image]) -> None:
    cls = collection["cls"]
    image = b64(jpeg(photos["chelsea"].rotate(2)))
    query = """
    {
      Get {
        %s(nearImage: {image: "%s"}, limit: 3) {
          name
          _additional { id distance certainty }
        }
      }
    }""" % (cls, image)
    found = _objects(api, cls, query)
    assert [o["name"] for o in found[:2]] == ["chelsea.jpg", "chelsea_flip.jpg"]
    assert len(found) == 3
    first = found[0]["_additional"]
    assert first["id"] == collection["ids"]["chelsea.jpg"]
    assert 0.0 <= first["distance"] < 0.05
    assert first["certainty"] == pytest.approx(1 - first["distance"] / 2, abs=1e-6)
    distances = [o["_additional"]["distance"] for o in found]
    assert distances == sorted(distances)

    near = _objects(api, cls, '{ Get { %s(nearImage: {image: "%s", distance: 0.1}) '
                    "{ name } } }" % (cls, image))
    assert {o["name"] for o in near} == {"chelsea.jpg", "chelsea_flip.jpg"}
    sure = _objects(api, cls, '{ Get { %s(nearImage: {image: "%s", certainty: 0.95}) '
                    "{ name } } }" % (cls, image))
    assert {o["name"] for o in sure} == {"chelsea.jpg", "chelsea_flip.jpg"}
    cut = _objects(api, cls, '{ Get { %s(nearImage: {image: "%s"}, autocut: 1) '
                   "{ name } } }" % (cls, image))
    assert {o["name"] for o in cut} == {"chelsea.jpg", "chelsea_flip.jpg"}
    page2 = _objects(api, cls, '{ Get { %s(nearImage: {image: "%s"}, limit: 2, offset: 2) '
                     "{ name } } }" % (cls, image))
    assert len(page2) == 2 and page2[0]["name"] == found[2]["name"]


def test_near_vector_named_vectors_where(api: Api, collection: dict[str, Any]) -> None:
    cls = collection["cls"]
    ids = collection["ids"]
    # coffee.jpg's own vector: the best match of its mirrored copy, with its embedding.
    embedding = api.ok("POST", "/v1/search", {"in_dataset": collection["name"], "limit": 1,
                                              "like_image": ids["coffee_flip.jpg"],
                                              "fields": ["embedding"]})
    assert embedding["results"][0]["id"] == ids["coffee.jpg"]
    query = """query Similar($vec: [Float]!) {
      Get { %s(nearVector: {vector: $vec, targetVectors: ["efficientnet-lite0"]}, limit: 2)
            { name split tags objects _additional { id distance vector } } }
    }""" % cls
    found = _objects(api, cls, query, {"vec": embedding["results"][0]["embedding"]})
    assert [o["name"] for o in found][:1] == ["coffee.jpg"]
    assert found[0]["_additional"]["distance"] < 0.05 and found[0]["split"] == "train"
    assert len(found[0]["_additional"]["vector"]) == 1280 and found[0]["objects"]

    where = """{ Get { %s(where: {operator: And, operands: [
        {path: ["split"], operator: Equal, valueText: "train"},
        {path: ["tags"], operator: ContainsAll, valueTextArray: ["cat", "2024"]}]})
        { name folder } } }""" % cls
    assert _objects(api, cls, where) == [{"name": "chelsea.jpg", "folder": "/pets"}]
    folder = """{ Get { %s(where: {path: ["folder"], operator: Like, valueText: "/pets*"})
        { name } } }""" % cls
    assert {o["name"] for o in _objects(api, cls, folder)} == {"chelsea.jpg", "chelsea_flip.jpg"}
    aliased = _objects(api, cls, "{ Get { %s(limit: 1) { file: name } } }" % cls)
    assert set(aliased[0]) == {"file"}


def test_unsupported_parts_are_named(api: Api, api_b: Api, collection: dict[str, Any]) -> None:
    cls = collection["cls"]
    # Another workspace's key finds no such class.
    assert _get(api_b, "{ Get { %s { name } } }" % cls).status == 404

    def error(query: str, status: int = 400) -> str:
        reply = _get(api, query)
        assert reply.status == status, (query, reply.body)
        return str(reply.error["message"])

    assert "'bm25'" in error('{ Get { %s(bm25: {query: "cat"}) { name } } }' % cls)
    assert "Aggregate" in error("{ Aggregate { %s { meta { count } } } }" % cls)
    assert "'colour'" in error("{ Get { %s { colour } } }" % cls)
    assert "{ score }" in error("{ Get { %s { _additional { score } } } }" % cls)
    assert "Or" in error('{ Get { %s(where: {operator: Or, operands: []}) { name } } }' % cls)
    assert "expected" in error("{ Get { %s(limit: ) { name } } }" % cls)
    assert "variable" in error("query Q($v: [Float]) { Get { %s(nearVector: {vector: $v}) "
                               "{ name } } }" % cls)
    assert "distance or certainty" in error(
        "{ Get { %s(nearVector: {vector: [1], distance: 0.1, certainty: 0.9}) { name } } }"
        % cls)
    assert "dimensions" in error("{ Get { %s(nearVector: {vector: [1, 2]}) { name } } }" % cls,
                                 422)
    assert "Nope" in error("{ Get { Nope { name } } }", 404)
    assert "mutation" in error("mutation { Get { x } }")
    assert "where must be" in error("{ Get { %s(where: 5) { name } } }" % cls)
    assert "list of numbers" in error('{ Get { %s(nearVector: {vector: ["a"]}) { name } } }' % cls)
    assert "autocut" in error('{ Get { %s(autocut: "x") { name } } }' % cls)
    assert "must be an object" in error('{ Get { %s(nearImage: "abc") { name } } }' % cls)
    assert _get(api, "{ Get { %s(limit: 500) { name } } }" % cls).status == 422


def test_autocut_follows_weaviate() -> None:
    # Two tight groups: one jump cuts after the first, two after the second.
    distances = [0.01, 0.02, 0.03, 0.40, 0.41, 0.42, 0.90, 0.91]
    assert autocut(distances, 1) == 3
    assert autocut(distances, 2) == 6
    assert autocut([0.1, 0.1, 0.1], 1) == 3 and autocut([0.3], 1) == 1
