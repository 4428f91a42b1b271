"""Roboflow's search page (seeds/000), run against the real server: its curl example and
its documented body verbatim, with only the host, ids and key changed."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.test_server_support import Api, Keys, add, b64, new_dataset

pytest_plugins = ["tests.test_server_support"]


@pytest.fixture(scope="module")
def project(api: Api, image_files: dict[str, bytes]) -> dict[str, Any]:
    name = f"my-project-{uuid.uuid4().hex[:8]}"
    dataset_id = new_dataset(api, name)
    added = add(api, dataset_id, [
        {"base64": b64(image_files["chelsea.jpg"]), "name": "chelsea.jpg", "tags": ["cam_x13"],
         "annotations": {"cat": 1, "sofa": 4}, "batch_id": "b1", "split": "train",
         "annotation_job_id": "job-1"},
        {"base64": b64(image_files["chelsea_flip.jpg"]), "name": "chelsea_flip.jpg",
         "batch_id": "b1"},
        {"base64": b64(image_files["coffee.jpg"]), "name": "coffee.jpg", "tags": ["cam_x13"]},
        {"base64": b64(image_files["coffee_flip.jpg"]), "name": "coffee_flip.jpg"},
        {"base64": b64(image_files["rocket.jpg"]), "name": "rocket.jpg"},
    ])
    assert all(a["status"] == "indexed" for a in added)
    return {"name": name, "id": dataset_id, "ids": {a["name"]: a["id"] for a in added}}


def _search(api: Api, keys: Keys, project: str, body: bytes, key: str | None = None) -> Any:
    path = f"/{keys.workspace_a}/{project}/search?api_key={key or keys.a}"
    return api.as_key(None).call("POST", path, raw=body,
                                 headers={"Content-Type": "application/json"})


def test_curl_example_verbatim(api: Api, api_keys: Keys, project: dict[str, Any]) -> None:
    # The page's body, trailing comma included; the key only in the query string.
    body = """{
    "like_image": "IMAGE_ID",
    "in_dataset": true,
    "limit": 125,
}""".replace("IMAGE_ID", project["ids"]["chelsea.jpg"]).encode()
    reply = _search(api, api_keys, project["name"], body)
    assert reply.status == 200, reply.body
    page = reply.json
    assert set(page) == {"offset", "total", "results"}
    assert page["offset"] == 0 and page["total"] == 4  # the query image is left out
    assert all(set(r) == {"id", "created"} for r in page["results"])  # the default fields
    assert page["results"][0]["id"] == project["ids"]["chelsea_flip.jpg"]
    # A read-only key may search too.
    assert _search(api, api_keys, project["name"], body, api_keys.a_read).status == 200


def test_documented_body_and_answer_shape(api: Api, api_keys: Keys,
                                          project: dict[str, Any]) -> None:
    ids = project["ids"]
    every = ["id", "name", "annotations", "labels", "split", "tags", "owner", "embedding",
             "created"]
    body = {"like_image": ids["coffee.jpg"], "prompt": "a cat", "offset": 0, "limit": 100,
            "in_dataset": project["name"], "fields": every}
    page = _search(api, api_keys, project["name"], _json(body)).json
    cat = next(r for r in page["results"] if r["name"] == "chelsea.jpg")
    assert set(cat) == set(every)
    assert cat["annotations"] == {"count": 5, "classes": {"cat": 1, "sofa": 4}}
    assert cat["tags"] == ["cam_x13"] and cat["split"] == "train"
    assert cat["owner"] == api_keys.workspace_a and len(cat["embedding"]) == 1280
    assert any("cat" in label for label in cat["labels"])
    # Prompt and like_image together: the cat photos lead for "a cat" from the coffee.
    assert page["results"][0]["name"] in ("chelsea.jpg", "chelsea_flip.jpg")

    def names(**fields: Any) -> set[str]:
        reply = _search(api, api_keys, project["name"], _json(
            {"in_dataset": True, "fields": ["name"], **fields}))
        assert reply.status == 200, reply.body
        return {r["name"] for r in reply.json["results"]}

    assert names(tag="cam_x13") == {"chelsea.jpg", "coffee.jpg"}
    assert names(class_name="sofa") == {"chelsea.jpg"}
    assert names(batch=True) == {"chelsea.jpg", "chelsea_flip.jpg"}
    assert names(batch_id="b1", annotation_job=True) == {"chelsea.jpg"}
    assert names(annotation_job_id="job-1") == {"chelsea.jpg"}
    assert len(names(batch=False)) == 3
    assert names(prompt="a cup of espresso", limit=2) == {"coffee.jpg", "coffee_flip.jpg"}
    paged = _search(api, api_keys, project["name"], _json(
        {"in_dataset": True, "offset": 4, "limit": 250})).json
    assert paged["offset"] == 4 and paged["total"] == 5 and len(paged["results"]) == 1


def test_bad_requests_say_what_to_fix(api: Api, api_keys: Keys,
                                      project: dict[str, Any]) -> None:
    def error(body: Any, status: int, workspace: str | None = None) -> dict[str, Any]:
        path = f"/{workspace or api_keys.workspace_a}/{project['name']}/search"
        reply = api.call("POST", path, raw=_json(body) if not isinstance(body, bytes) else body,
                         headers={"Content-Type": "application/json"})
        assert reply.status == status, (body, reply.body)
        return reply.error

    assert error({"limit": 251}, 422)["field"] == "limit"
    assert error({"fields": ["id", "colour"]}, 422)["field"] == "fields.1"
    assert error({"like_image": "image_id"}, 422)["field"] == "like_image"
    assert error({"colour": "red"}, 422)["field"] == "colour"
    assert error({"in_dataset": "no-such-project"}, 404)["field"] == "in_dataset"
    assert error(b'{"limit": 5,,}', 400)["field"] == "body"
    assert error({}, 404, workspace=api_keys.workspace_b)["field"] == "workspace"
    anonymous = api.as_key(None).call(
        "POST", f"/{api_keys.workspace_a}/{project['name']}/search", raw=b"{}",
        headers={"Content-Type": "application/json"})
    assert anonymous.status == 401


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()
