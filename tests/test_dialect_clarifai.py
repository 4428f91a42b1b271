"""Clarifai's search page (seeds/001) against the real server: add inputs by URL and
base64 (``Authorization: Key``), per-input statuses, search by concept and by image, with
the page's request bodies and only the host, ids and key changed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.test_server_support import Api, FileHost, Keys, b64, wait_indexed

pytest_plugins = ["tests.test_server_support"]



def _post(api: Api, key: str, path: str, body: Any) -> Any:
    return api.as_key(None).call("POST", path, body, headers={"Authorization": f"Key {key}"})


@pytest.fixture(scope="module")
def app(api: Api, api_keys: Keys, file_host: FileHost,
        image_files: dict[str, bytes]) -> dict[str, Any]:
    """An app (a dataset) filled through Clarifai's add-inputs call."""
    app_id = f"app-{uuid.uuid4().hex[:8]}"
    urls = [f"{file_host.url}/chelsea.jpg", f"{file_host.url}/coffee.jpg",
            f"{file_host.url}/missing.jpg"]
    body = {"inputs": [
        {"data": {"image": {"url": urls[0]}}},
        {"data": {"image": {"url": urls[1]}}},
        {"data": {"image": {"url": urls[2]}}},
        {"data": {"image": {"base64": b64(image_files["rocket.jpg"])},
                  "concepts": [{"name": "launch"}]}},
        {"data": {"image": {"base64": b64(image_files["chelsea_flip.jpg"])}}},
    ]}
    reply = _post(api, api_keys.a, f"/v2/users/me/apps/{app_id}/inputs", body)
    assert reply.status == 200, reply.body
    answer = reply.json
    # One bad URL fails that input only.
    assert answer["status"] == {"code": 10010, "description": "Mixed Success"}
    statuses = [i["status"]["code"] for i in answer["inputs"]]
    assert statuses == [30001, 30001, 30002, 30001, 30001]
    assert answer["inputs"][2]["id"] is None and answer["inputs"][2]["status"]["details"]
    assert [i["data"]["image"].get("url") for i in answer["inputs"][:3]] == urls
    good = [i for i in answer["inputs"] if i["id"]]
    wait_indexed(api, [{"id": i["id"], "status": "pending"} for i in good])
    ids = {name: good[n]["id"] for n, name in enumerate(("chelsea", "coffee", "rocket", "flip"))}
    return {"id": app_id, "urls": urls, "ids": ids}


def test_add_inputs_page_example(api: Api, api_keys: Keys, file_host: FileHost) -> None:
    # The page's curl body: two URL inputs, to the key's default app (/v2/inputs).
    body = {"inputs": [{"data": {"image": {"url": f"{file_host.url}/camera.jpg"}}},
                       {"data": {"image": {"url": f"{file_host.url}/coins.png"}}}]}
    reply = _post(api, api_keys.a, "/v2/inputs", body)
    assert reply.status == 200, reply.body
    assert reply.json["status"] == {"code": 10000, "description": "Ok"}
    inputs = reply.json["inputs"]
    assert [i["status"] for i in inputs] == [{"code": 30001, "description": "Download pending"}] * 2
    assert all(i["created_at"].endswith("Z") for i in inputs)
    stored = api.ok("GET", f"/v1/images/{inputs[0]['id']}")
    assert stored["metadata"] == {"source_url": f"{file_host.url}/camera.jpg"}
    assert stored["dataset"] == "clarifai"


def test_search_by_concept(api: Api, api_keys: Keys, app: dict[str, Any]) -> None:
    path = f"/v2/users/me/apps/{app['id']}/searches"
    # The page's body verbatim: "people" means the everyday label "person", which none of
    # these photos (a cat, a coffee cup, a rocket) carries offline.
    people = _post(api, api_keys.a, path, {"query": {"ands": [
        {"output": {"data": {"concepts": [{"name": "people"}]}}}]}})
    assert people.status == 200 and people.json["status"]["code"] == 10000
    assert people.json["hits"] == []
    cat = api.ok("GET", f"/v1/images/{app['ids']['chelsea']}")["auto_tags"]["objects"]
    concept = max(cat, key=cat.get)
    found = _post(api, api_keys.a, path, {"query": {"ands": [
        {"output": {"data": {"concepts": [{"name": concept}]}}}]}}).json
    assert {h["input"]["id"] for h in found["hits"]} == {app["ids"]["chelsea"], app["ids"]["flip"]}
    top = next(h for h in found["hits"] if h["input"]["id"] == app["ids"]["chelsea"])
    assert top["input"]["data"]["image"]["url"] == app["urls"][0]  # the source URL, echoed
    assert top["input"]["status"] == {"code": 30000, "description": "Download complete"}
    assert 0.0 < top["score"] <= 1.0
    # A user concept (given when adding) is a user tag.
    launch = _post(api, api_keys.a, path, {"query": {"ands": [
        {"input": {"data": {"concepts": [{"name": "launch"}]}}}]}}).json
    assert [h["input"]["id"] for h in launch["hits"]] == [app["ids"]["rocket"]]


def test_search_by_image(api: Api, api_keys: Keys, app: dict[str, Any],
                         image_files: dict[str, bytes]) -> None:
    path = f"/v2/users/me/apps/{app['id']}/searches"
    by_url = _post(api, api_keys.a, path, {"query": {"ands": [
        {"output": {"input": {"data": {"image": {"url": app["urls"][0]}}}}}]}}).json
    assert by_url["status"] == {"code": 10000, "description": "Ok"}
    hits = by_url["hits"]
    assert [h["input"]["id"] for h in hits[:2]] == [app["ids"]["chelsea"], app["ids"]["flip"]]
    assert hits[0]["score"] > 0.99 and hits[1]["score"] > 0.9 and hits[-1]["score"] < 0.5
    by_bytes = _post(api, api_keys.a, path, {"query": {"ands": [
        {"output": {"input": {"data": {"image": {"base64": b64(image_files["coffee.jpg"])}}}}}]},
        "pagination": {"page": 1, "per_page": 1}}).json
    assert [h["input"]["id"] for h in by_bytes["hits"]] == [app["ids"]["coffee"]]
    second = _post(api, api_keys.a, path, {"query": {"ands": [
        {"output": {"input": {"id": app["ids"]["chelsea"]}}}]},
        "pagination": {"page": 1, "per_page": 1}}).json
    assert [h["input"]["id"] for h in second["hits"]] == [app["ids"]["flip"]]


def test_clarifai_errors(api: Api, api_keys: Keys, app: dict[str, Any]) -> None:
    path = f"/v2/users/me/apps/{app['id']}/searches"

    def error(body: Any, status: int, where: str = path, key: str = api_keys.a) -> Any:
        reply = _post(api, key, where, body)
        assert reply.status == status, (body, reply.body)
        return reply.error

    two = {"query": {"ands": [{"output": {"data": {"concepts": [{"name": "a"}, {"name": "b"}]}}}]}}
    assert error(two, 422)["field"] == "query.ands"
    absent = {"query": {"ands": [{"output": {"data": {"concepts": [{"name": "a", "value": 0}]}}}]}}
    assert "value 0" in error(absent, 422)["message"]
    assert error({"query": {"ands": [{}], "ors": []}}, 422)["field"] == "query.ors"
    assert error({"query": {"ands": []}}, 422)["field"] == "query.ands"
    assert error({"query": {"ands": [{}]}, "pagination": {"per_page": 1000}}, 422)["field"] == (
        "pagination.per_page")
    assert error({"query": {"ands": [{}]}}, 404, "/v2/users/me/apps/nope/searches")["field"] == (
        "app_id")
    assert error({"inputs": []}, 422, "/v2/inputs")["field"] == "inputs"
    assert error({"inputs": [{"data": {"image": {"url": "x"}}}] * 129}, 413, "/v2/inputs")
    lost = _post(api, api_keys.a, "/v2/inputs", {"inputs": [{"data": {"image": {"url": "x"}}}]})
    assert lost.status == 200 and lost.json["status"]["code"] == 10020
    assert lost.json["inputs"][0]["status"]["code"] == 30002
    assert error({"query": {"ands": [{}]}}, 401, key="pdx_not_a_real_key_0000000000")
    assert error({"inputs": [{"data": {}}]}, 403, "/v2/inputs", key=api_keys.a_read)
    assert _post(api, api_keys.a_read, path, {"query": {"ands": [{}]}}).status == 200
