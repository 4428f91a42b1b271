"""Bring your own vectors over real HTTP and through ``pixdex.Client``: importing small
batches (``POST /v1/datasets/{id}/vectors``), searching them by a raw vector
(``POST /v1/search`` with ``vector`` + ``model``) with every filter and pages, images that
have no file, and bad input at every entry point."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pixdex
from pixdex.client import ApiError, Client
from pixdex.models import MAX_VECTORS_PER_REQUEST
from pixdex.server import RunningServer
from tests.test_server_support import Api, Keys, new_dataset
from tests.vectors_support import clustered, model_name, write_vectors

pytest_plugins = ["tests.test_server_support"]

DIM = 16


def _rows(vectors: np.ndarray[Any, Any], start: int = 0) -> list[dict[str, Any]]:
    return [
        {"name": f"v{start + n:03d}", "embedding": [float(x) for x in vector],
         "folder": "/even" if (start + n) % 2 == 0 else "/odd/deeper",
         "split": "train" if start + n < 30 else "valid",
         "tags": ["all", "even" if (start + n) % 2 == 0 else "odd"],
         "batch_id": "b1" if start + n < 10 else None,
         "annotation_job_id": "job-1" if start + n == 5 else None,
         "metadata": {"n": start + n}}
        for n, vector in enumerate(vectors)
    ]


@pytest.fixture(scope="module")
def imported(api: Api) -> dict[str, Any]:
    """40 vectors imported in one call, with three bad rows."""
    vectors = clustered(40, DIM, seed=2)
    rows = _rows(vectors)
    rows.append({"name": "nan", "embedding": [math.nan] * DIM})
    rows.append({"name": "short", "embedding": [1.0] * (DIM - 2)})
    rows.append({"name": "v001", "embedding": [1.0] * DIM})  # a name the call repeats
    model = model_name("api")
    dataset = f"vectors-{model}"
    dataset_id = new_dataset(api, dataset)
    reply = api.call("POST", f"/v1/datasets/{dataset_id}/vectors",
                     {"model": model, "vectors": rows})
    assert reply.status == 200, reply.body[:500]
    return {"model": model, "dataset": dataset, "id": dataset_id, "vectors": vectors,
            "report": reply.json}


def _search(api: Api, imported: dict[str, Any], **body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = api.ok("POST", "/v1/search", {
        "in_dataset": imported["dataset"], "model": imported["model"], **body})
    return answer


def _names(answer: dict[str, Any]) -> list[str]:
    return [r["name"] for r in answer["results"]]


def test_import_through_the_api_reports_bad_rows(imported: dict[str, Any]) -> None:
    report = imported["report"]
    assert (report["rows"], report["imported"], report["rejected"]) == (43, 40, 3)
    assert report["dim"] == DIM and report["model_created"] and report["index"] == "built"
    assert report["reasons"] == {"duplicate_name": 1, "not_finite": 1, "wrong_dimension": 1}
    assert [(e["row"], e["reason"]) for e in report["examples"]] == [
        (40, "not_finite"), (41, "wrong_dimension"), (42, "duplicate_name")]
    assert report["dataset_id"] == imported["id"]


def test_imported_images_have_no_file(api: Api, imported: dict[str, Any]) -> None:
    listing = api.ok("GET", f"/v1/datasets/{imported['id']}/images?split=valid&limit=5")
    assert listing["total"] == 10 and len(listing["images"]) == 5
    image = listing["images"][0]
    assert image["status"] == "indexed" and image["has_file"] is False
    assert image["format"] is None and image["width"] is None
    for path in (image["file_url"], image["thumbnail_url"], image["thumbnail_url"] + "?size=64"):
        reply = api.call("GET", path)
        assert reply.status == 409, (path, reply.body)
        assert reply.error["code"] == "no_file"
        assert "imported as a vector, without a file" in reply.error["message"]
    dataset = api.ok("GET", f"/v1/datasets/{imported['id']}")
    assert dataset["status"] == "READY" and dataset["images"]["indexed"] == 40


def test_listing_imported_images_pages_and_filters(api: Api, imported: dict[str, Any]) -> None:
    base = f"/v1/datasets/{imported['id']}/images"
    seen: list[str] = []
    for offset in range(0, 40, 15):
        seen += [i["name"] for i in api.ok("GET", f"{base}?limit=15&offset={offset}")["images"]]
    assert len(seen) == len(set(seen)) == 40
    odd = api.ok("GET", f"{base}?folder=/odd&tag=odd&limit=50")
    assert odd["total"] == 20 and all(int(i["name"][1:]) % 2 for i in odd["images"])
    assert api.ok("GET", f"{base}?batch_id=b1")["total"] == 10
    assert api.ok("GET", f"{base}?annotation_job_id=job-1")["images"][0]["name"] == "v005"


def test_search_by_a_raw_vector(api: Api, imported: dict[str, Any]) -> None:
    vectors = imported["vectors"]
    top = _search(api, imported, vector=vectors[7].tolist(), limit=5,
                  fields=["name", "metadata", "embedding", "file_url"])
    assert _names(top)[0] == "v007" and top["total"] == 40 and top["exact"] is True
    first = top["results"][0]
    assert math.isclose(first["score"], 1.0, abs_tol=1e-2) and first["metadata"] == {"n": 7}
    assert len(first["embedding"]) == DIM
    # Same neighbours as exact cosine over what was sent.
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = [f"v{n:03d}" for n in np.argsort(-(unit @ unit[7]))[:5]]
    assert _names(top) == expected
    like = _search(api, imported, like_image=first["id"], limit=4)
    assert _names(like) == expected[1:5]  # the image itself is left out


def test_raw_vector_search_combines_with_every_filter(
    api: Api, imported: dict[str, Any]
) -> None:
    query = imported["vectors"][7].tolist()

    def numbers(**body: Any) -> set[int]:
        return {int(n[1:]) for n in _names(_search(api, imported, vector=query, limit=50,
                                                   **body))}

    assert numbers(tag="odd") == {n for n in range(40) if n % 2}
    assert numbers(tag=["all", "even"]) == {n for n in range(40) if n % 2 == 0}
    assert numbers(folder_path="/odd") == numbers(folder_path="odd/deeper/") == numbers(tag="odd")
    assert numbers(split="valid") == set(range(30, 40))
    assert numbers(batch_id="b1") == numbers(batch=True) == set(range(10))
    assert numbers(batch=False) == set(range(10, 40))
    assert numbers(annotation_job_id="job-1") == numbers(annotation_job=True) == {5}
    assert numbers(split="train", tag="even", folder_path="/even") == {
        n for n in range(30) if n % 2 == 0}
    floor = _search(api, imported, vector=query, threshold=0.8, limit=50)
    assert floor["results"] and all(r["score"] >= 0.8 for r in floor["results"])
    assert floor["total"] == len(floor["results"])
    faceted = _search(api, imported, vector=query, facets=True, split="valid")
    assert {f["value"]: f["count"] for f in faceted["facets"]["split"]} == {"valid": 10}
    grouped = _search(api, imported, vector=query, group=4, limit=10)
    assert grouped["clusters"] and sum(c["size"] for c in grouped["clusters"]) == 10
    # Without in_dataset: every dataset of the workspace (only this one has the model).
    everywhere = api.ok("POST", "/v1/search", {"model": imported["model"], "vector": query,
                                               "limit": 1})
    assert _names(everywhere) == ["v007"]


def test_raw_vector_search_pages_are_consistent(api: Api, imported: dict[str, Any]) -> None:
    query = imported["vectors"][11].tolist()
    whole = _names(_search(api, imported, vector=query, limit=40))
    pages: list[str] = []
    for offset in range(0, 40, 9):
        pages += _names(_search(api, imported, vector=query, limit=9, offset=offset))
    assert pages == whole and len(set(pages)) == 40


def test_raw_vector_search_bad_input(api: Api, imported: dict[str, Any]) -> None:
    query = imported["vectors"][3].tolist()

    def refused(status: int, body: dict[str, Any], field: str | None = None) -> str:
        reply = api.call("POST", "/v1/search", {"in_dataset": imported["dataset"], **body})
        assert reply.status == status, (body.keys(), reply.status, reply.body)
        if field is not None:
            assert reply.error["field"] == field, reply.error
        message: str = reply.error["message"]
        return message

    model = imported["model"]
    assert "needs model" in refused(422, {"vector": query}, "model")
    assert f"vector has {DIM + 1} dimensions; model {model} expects {DIM}" in refused(
        422, {"vector": [*query, 1.0], "model": model}, "vector")
    assert "not all zeros" in refused(422, {"vector": [0.0] * DIM, "model": model})
    for other in ({"prompt": "a cat"}, {"like_image": str(uuid.uuid4())},
                  {"image": "aGVsbG8="}, {"anchor_id": str(uuid.uuid4())}):
        message = refused(422, {"vector": query, "model": model, **other}, "vector")
        assert f"not with {next(iter(other))}" in message
    assert "bounding_box applies to a query image" in refused(
        422, {"vector": query, "model": model,
              "bounding_box": {"x": 0, "y": 0, "width": 1, "height": 1}})
    refused(422, {"vector": [], "model": model}, "vector")
    refused(422, {"vector": ["a"] * DIM, "model": model})
    refused(422, {"vector": [1.0] * 4001, "model": model}, "vector")
    assert "no images were embedded with model" in refused(
        404, {"vector": query, "model": "no-such-model"})
    # An imported image searched like with another model: the answer names its model.
    other = model_name("api")
    elsewhere = new_dataset(api, f"other-{other}")
    api.ok("POST", f"/v1/datasets/{elsewhere}/vectors",
           {"model": other, "vectors": [{"name": "o", "embedding": [1.0, 2.0]}]})
    image = api.ok("GET", f"/v1/datasets/{imported['id']}/images?limit=1")["images"][0]
    message = refused(409, {"like_image": image["id"], "model": other}, "like_image_id")
    assert f"it has vectors of {model} (search with model=...)" in message


def test_import_bad_input(api: Api, api_b: Api, api_keys: Keys, imported: dict[str, Any]) -> None:
    path = f"/v1/datasets/{imported['id']}/vectors"
    row = {"name": "x", "embedding": [1.0] * DIM}

    def refused(status: int, body: Any, client: Api = api, where: str = path) -> dict[str, Any]:
        reply = client.call("POST", where, body)
        assert reply.status == status, (reply.status, reply.body[:300])
        return reply.error

    too_many = refused(413, {"model": imported["model"],
                             "vectors": [row] * (MAX_VECTORS_PER_REQUEST + 1)})
    assert f"at most {MAX_VECTORS_PER_REQUEST} vectors per call" in too_many["message"]
    assert too_many["field"] == "vectors"
    refused(422, {"model": imported["model"], "vectors": []})
    refused(422, {"model": imported["model"]})
    refused(422, {"vectors": [row]})
    refused(422, {"model": imported["model"], "vectors": [{**row, "embedding": "1,2"}]})
    refused(422, {"model": imported["model"], "vectors": [{**row, "colour": "red"}]})
    assert "invalid model name" in refused(422, {"model": "Bad Name", "vectors": [row]})[
        "message"]
    mismatch = refused(409, {"model": imported["model"],
                             "vectors": [{"name": "w", "embedding": [1.0] * (DIM * 2)}]})
    assert f"holds {DIM}-d vectors; these are {DIM * 2}-d" in mismatch["message"]
    assert "computed by pixdex" in refused(
        409, {"model": "efficientnet-lite0", "vectors": [row]})["message"]
    refused(404, {"model": imported["model"], "vectors": [row]},
            where=f"/v1/datasets/{uuid.uuid4()}/vectors")
    refused(404, {"model": imported["model"], "vectors": [row]}, client=api_b)  # other workspace
    refused(403, {"model": imported["model"], "vectors": [row]},
            client=api.as_key(api_keys.a_read))
    # Rows are checked one by one: a bad one never sinks the batch.
    report = api.ok("POST", path, {"model": imported["model"], "vectors": [
        {"name": None, "embedding": [1.0] * DIM},
        {"name": "v000", "embedding": [1.0] * DIM},
        {"name": "bad-tags", "embedding": [1.0] * DIM, "tags": ["x" * 201]},
        {"name": "bad-folder", "embedding": [1.0] * DIM, "folder": "/a/../b"},
        {"name": "bad-meta", "embedding": [1.0] * DIM, "metadata": "[1]"},
        {"name": "bad-split", "embedding": [1.0] * DIM, "split": "s" * 201},
        {"name": "n" * 256, "embedding": [1.0] * DIM},
        {"name": "meta-text", "embedding": [2.0] * DIM, "metadata": '{"ok": true}'},
    ]})
    assert report["imported"] == 1 and report["index"] == "updated"
    assert report["reasons"] == {"bad_folder": 1, "bad_metadata": 1, "bad_name": 1,
                                 "bad_tags": 1, "bad_text": 1, "name_in_dataset": 1,
                                 "no_name": 1}
    added = api.ok("POST", "/v1/search", {"in_dataset": imported["dataset"], "tag": [],
                                          "fields": ["name", "metadata"], "limit": 250})
    assert {"name": "meta-text"}.items() <= next(
        r for r in added["results"] if r["name"] == "meta-text").items()


def test_an_imported_image_can_be_edited_and_deleted(api: Api) -> None:
    model = model_name("api")
    dataset_id = new_dataset(api, f"edit-{model}")
    report = api.ok("POST", f"/v1/datasets/{dataset_id}/vectors", {
        "model": model, "vectors": _rows(clustered(3, 8))})
    assert report["imported"] == 3
    image = api.ok("GET", f"/v1/datasets/{dataset_id}/images")["images"][0]
    edited = api.ok("PATCH", f"/v1/images/{image['id']}", {"add_tags": ["checked"]})
    assert "checked" in edited["tags"] and edited["has_file"] is False
    assert api.ok("DELETE", f"/v1/images/{image['id']}")["deleted"] is True
    assert api.call("GET", f"/v1/images/{image['id']}").status == 404
    assert api.ok("DELETE", f"/v1/datasets/{dataset_id}")["images"] == 2


@pytest.fixture(scope="module")
def client(api_server: RunningServer, api_keys: Keys) -> Client:
    return pixdex.Client(api_server.url, api_keys.a)


def test_client_imports_rows_and_files_and_searches_by_vector(
    client: Client, tmp_path: Path
) -> None:
    model = model_name("client")
    dataset = client.create_dataset(f"client-{model}")
    vectors = clustered(30, DIM, seed=4)
    rows: list[dict[str, Any]] = [
        {"name": f"c{n:02d}", "embedding": vectors[n], "split": "a" if n < 20 else "b"}
        for n in range(20)
    ]
    rows[4]["embedding"] = np.zeros(DIM, np.float32)
    rows[15]["name"] = "c03"
    report = client.import_vectors(dataset.id, rows, model=model, batch_size=6,
                                   progress=False)
    assert (report.rows, report.imported, report.rejected) == (20, 18, 2)
    assert [(e.row, e.reason) for e in report.examples] == [
        (4, "zero_vector"), (15, "name_in_dataset")]  # another call: a name the dataset has
    assert report.index == "built" and report.model_created

    path = write_vectors(tmp_path / "rest.parquet", [f"c{n:02d}" for n in range(20, 30)],
                         vectors[20:], fixed=True, split=["b"] * 10,
                         metadata=[{"n": n} for n in range(20, 30)], tags=[["t", None]] * 10)
    from_file = client.import_parquet(dataset.id, path, model=model, batch_size=4,
                                      progress=False)
    assert (from_file.rows, from_file.imported, from_file.index) == (10, 10, "updated")

    hits = client.by_vector(vectors[22], model=model, in_dataset=dataset.name, limit=3)
    assert hits[0].name == "c22" and hits[0].score > 0.99
    only_b = client.by_vector(vectors[2], model=model, in_dataset=dataset.name, split="b",
                              limit=50)
    assert len(only_b) == 10 and all(int(h.name[1:]) >= 20 for h in only_b)
    page = client.search(vector=vectors[25], model=model, in_dataset=dataset.name,
                         fields=["name", "metadata", "tags"], limit=1)
    assert page.results[0].metadata == {"n": 25} and page.results[0].tags == ["t"]
    with pytest.raises(ApiError) as error:
        client.image_file(hits[0].id)
    assert error.value.http_status == 409 and error.value.code == "no_file"
    with pytest.raises(ApiError) as error:
        client.by_vector(vectors[0][:5], model=model, in_dataset=dataset.name)
    assert error.value.http_status == 422 and f"expects {DIM}" in str(error.value)


def test_the_openapi_document_describes_the_new_inputs(api: Api) -> None:
    document = json.loads(api.call("GET", "/openapi.json").body)
    assert "/v1/datasets/{dataset_id}/vectors" in document["paths"]
    search = document["components"]["schemas"]["SearchRequest"]["properties"]
    assert "vector" in search and "model" in search["vector"]["description"]
