"""Two workspaces: every route of the API, tried with workspace B's key on workspace A's
ids, answers 404 and reveals nothing; A's data is untouched afterwards."""

from __future__ import annotations

import re
import uuid

from tests.test_server_support import Api, Keys, add, b64, new_dataset

pytest_plugins = ["tests.test_server_support"]


def test_workspaces_never_see_each_other(
    api: Api, api_b: Api, api_keys: Keys, image_files: dict[str, bytes]
) -> None:
    from pixdex.client.transport import multipart

    name = f"private-{uuid.uuid4().hex[:8]}"
    dataset = new_dataset(api, name)
    image = add(api, dataset, [{"base64": b64(image_files["chelsea.jpg"]), "name": "a.jpg",
                                "tags": ["secret"]}])[0]["id"]
    anchor = api.ok("POST", "/v1/anchors", {"image": b64(image_files["coffee.jpg"])})["anchor_id"]
    form, kind = multipart({}, [("file", "x.jpg", image_files["rocket.jpg"])])
    upload = {"raw": form, "headers": {"Content-Type": kind}}
    one = {"images": [{"base64": b64(image_files["rocket.jpg"])}]}

    tried = [
        ("GET", "/v1/datasets/{dataset_id}", f"/v1/datasets/{dataset}", None, {}),
        ("DELETE", "/v1/datasets/{dataset_id}", f"/v1/datasets/{dataset}", None, {}),
        ("POST", "/v1/datasets/{dataset_id}/images", f"/v1/datasets/{dataset}/images", one, {}),
        ("GET", "/v1/datasets/{dataset_id}/images", f"/v1/datasets/{dataset}/images", None, {}),
        ("POST", "/v1/datasets/{dataset_id}/images/upload",
         f"/v1/datasets/{dataset}/images/upload", None, upload),
        ("POST", "/v1/datasets/{dataset_id}/uploads", f"/v1/datasets/{dataset}/uploads",
         {"files": [{"name": "a.jpg", "size": 3}]}, {}),
        ("POST", "/v1/datasets/{dataset_id}/vectors", f"/v1/datasets/{dataset}/vectors",
         {"model": "byo-isolation", "vectors": [{"name": "a.jpg", "embedding": [1.0]}]}, {}),
        ("GET", "/v1/images/{image_id}", f"/v1/images/{image}", None, {}),
        ("PATCH", "/v1/images/{image_id}", f"/v1/images/{image}", {"tags": ["mine"]}, {}),
        ("DELETE", "/v1/images/{image_id}", f"/v1/images/{image}", None, {}),
        ("GET", "/v1/images/{image_id}/file", f"/v1/images/{image}/file", None, {}),
        ("GET", "/v1/images/{image_id}/thumbnail", f"/v1/images/{image}/thumbnail", None, {}),
        ("GET", "/v1/anchors/{anchor_id}", f"/v1/anchors/{anchor}", None, {}),
        ("DELETE", "/v1/anchors/{anchor_id}", f"/v1/anchors/{anchor}", None, {}),
        ("POST", "/v1/search", "/v1/search", {"in_dataset": dataset}, {}),
        ("POST", "/v1/search", "/v1/search", {"in_dataset": name}, {}),
        ("POST", "/v1/search", "/v1/search", {"like_image": image}, {}),
        ("POST", "/v1/search", "/v1/search", {"anchor_id": anchor}, {}),
        ("POST", "/v1/search", "/v1/search", {"image": anchor}, {}),
        # Curation (pixdex.api.routes_curation).
        *[("GET", f"/v1/datasets/{{dataset_id}}/{route}", f"/v1/datasets/{dataset}/{route}",
           None, {}) for route in ("duplicates", "leakage", "outliers", "label-doubts",
                                   "duplicate-gate")],
        ("PUT", "/v1/datasets/{dataset_id}/duplicate-gate",
         f"/v1/datasets/{dataset}/duplicate-gate", {"on_duplicate": "allow"}, {}),
        ("POST", "/v1/datasets/{dataset_id}/curation/recompute",
         f"/v1/datasets/{dataset}/curation/recompute", None, {}),
        # The vendor dialects (pixdex.api.dialects).
        ("POST", "/{workspace}/{project}/search", f"/{api_keys.workspace_a}/{name}/search",
         {}, {}),
        ("POST", "/{workspace}/{project}/search", f"/{api_keys.workspace_b}/{name}/search",
         {"in_dataset": True}, {}),
        ("POST", "/v2/users/{user_id}/apps/{app_id}/searches",
         f"/v2/users/me/apps/{name}/searches", {"query": {"ands": [{}]}}, {}),
        ("POST", "/v2/searches", "/v2/searches", {"query": {"ands": [
            {"output": {"input": {"id": image}}}]}}, {}),
        ("POST", "/api/v1/dataset/{dataset_id}/search-image-similarity",
         f"/api/v1/dataset/{dataset}/search-image-similarity?entity_type=IMAGES", None, upload),
        ("GET", "/api/v1/explore/{dataset_id}", f"/api/v1/explore/{dataset}?entity_type=IMAGES"
         f"&anchor_type=UPLOAD&anchor_media_id={anchor}", None, {}),
    ]
    api_b.ok("POST", "/v2/inputs", one_input(image_files))  # B's default app, searched above
    for method, _, path, body, extra in tried:
        reply = api_b.call(method, path, body, **extra)
        assert reply.status == 404, (method, path, body, reply.body)
        assert "secret" not in reply.body.decode() and "a.jpg" not in reply.body.decode()

    # Routes without an id answer with B's own data only.
    assert name not in {d["name"] for d in api_b.ok("GET", "/v1/datasets")["datasets"]}
    assert api_b.ok("POST", "/v1/search", {"tag": "secret"})["results"] == []
    assert image not in {r["id"] for r in api_b.ok("POST", "/v1/search", {"limit": 250})[
        "results"]}
    same_name = api_b.call("POST", "/v1/datasets", {"name": name})
    assert same_name.status == 201  # names are per workspace
    # Clarifai's add-inputs creates the app in the caller's own workspace: B's, not A's.
    added = api_b.ok("POST", f"/v2/users/me/apps/{name}/inputs", one_input(image_files))
    assert api_b.ok("GET", f"/v1/images/{added['inputs'][0]['id']}")["dataset_id"] == (
        same_name.json["id"])
    b_anchor = api_b.ok("POST", "/v1/anchors", {"image": b64(image_files["camera.jpg"])})
    assert api.call("GET", f"/v1/anchors/{b_anchor['anchor_id']}").status == 404

    # Every route of the OpenAPI document that takes an id was tried across workspaces.
    spec = api.ok("GET", "/openapi.json")
    with_ids = {
        (method.upper(), path) for path, ops in spec["paths"].items() for method in ops
        if re.search(r"\{\w+\}", path)
    }
    created_in_own = {("POST", "/v2/users/{user_id}/apps/{app_id}/inputs")}  # tried above
    assert with_ids <= {(m, template) for m, template, *_ in tried} | created_in_own

    # A's data is intact after all of B's attempts.
    assert api.ok("GET", f"/v1/images/{image}")["tags"] == ["secret"]
    assert api.ok("GET", f"/v1/datasets/{dataset}")["images"]["indexed"] == 1
    assert api.ok("GET", f"/v1/anchors/{anchor}")["anchor_id"] == anchor
    found = api.ok("POST", "/v1/search", {"in_dataset": name, "tag": "secret"})
    assert [r["id"] for r in found["results"]] == [image]


def one_input(image_files: dict[str, bytes]) -> dict[str, object]:
    return {"inputs": [{"data": {"image": {"base64": b64(image_files["rocket.jpg"])}}}]}
