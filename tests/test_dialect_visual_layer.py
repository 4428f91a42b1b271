"""Visual Layer's visual search page (seeds/002) against the real server: upload a query
image, explore its clusters, search by region and by an existing media id, with the
page's requests and only the host, ids and token (our API key) changed."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from PIL import Image

from pixdex.client.transport import multipart
from tests.test_server_support import Api, add, b64, jpeg, new_dataset

pytest_plugins = ["tests.test_server_support"]
BOX = "%7B%22x%22%3A0.1%2C%22y%22%3A0.2%2C%22width%22%3A0.5%2C%22height%22%3A0.6%7D"


@pytest.fixture(scope="module")
def dataset(api: Api, image_files: dict[str, bytes]) -> dict[str, Any]:
    dataset_id = new_dataset(api, f"vl-{uuid.uuid4().hex[:8]}")
    names = ("chelsea.jpg", "chelsea_flip.jpg", "coffee.jpg", "coffee_flip.jpg", "rocket.jpg",
             "astronaut.jpg")
    added = add(api, dataset_id, [{"base64": b64(image_files[n]), "name": n} for n in names])
    assert all(a["status"] == "indexed" for a in added)
    return {"id": dataset_id, "ids": {a["name"]: a["id"] for a in added}}


def _upload(api: Api, dataset_id: str, data: bytes, query: str) -> Any:
    form, kind = multipart({}, [("file", "query_image.jpg", data)])
    return api.call("POST", f"/api/v1/dataset/{dataset_id}/search-image-similarity?{query}",
                    raw=form, headers={"Content-Type": kind})


def _explore(api: Api, dataset_id: str, **params: Any) -> Any:
    return api.call("GET", f"/api/v1/explore/{dataset_id}?{urlencode(params)}")


def test_upload_then_explore(api: Api, dataset: dict[str, Any],
                             photos: dict[str, Image.Image]) -> None:
    query = jpeg(photos["chelsea"].rotate(2))
    step1 = _upload(api, dataset["id"], query, "threshold=0&entity_type=IMAGES")
    assert step1.status == 200, step1.body
    anchor = step1.json
    assert set(anchor) == {"anchor_media_id", "anchor_type"} and anchor["anchor_type"] == "UPLOAD"

    step2 = _explore(api, dataset["id"], threshold=2, entity_type="IMAGES", page_number=0,
                     anchor_media_id=anchor["anchor_media_id"], anchor_type="UPLOAD")
    assert step2.status == 200, step2.body
    clusters = step2.json["clusters"]
    first = clusters[0]
    names = {p["file_name"] for p in first["previews"]}
    assert names == {"chelsea.jpg", "chelsea_flip.jpg"} and first["n_images"] == 2
    assert {p["file_name"] for c in clusters for p in c["previews"]} == set(dataset["ids"])
    assert first["type"] == "IMAGES" and first["similarity_threshold"] == "2"
    assert first["relevance_score_type"] == "cosine_distance"
    scores = [c["relevance_score"] for c in clusters]
    assert scores == sorted(scores) and 0.0 <= scores[0] < 0.1 < scores[-1]  # lower = closer
    preview = first["previews"][0]
    assert set(preview) >= {"type", "media_id", "media_uri", "media_thumb_uri", "file_name",
                            "relevance_score", "relevance_score_type", "width", "height"}
    assert (preview["width"], preview["height"]) == photos["chelsea"].size
    # relevance_score is the cosine distance of the same search on our own API.
    ours = api.ok("POST", "/v1/search", {"anchor_id": anchor["anchor_media_id"], "limit": 1,
                                         "in_dataset": dataset["id"]})
    assert preview["relevance_score"] == pytest.approx(1 - ours["results"][0]["score"], abs=1e-5)
    assert preview["media_uri"] == f"{api.url}/v1/images/{preview['media_id']}/file"
    thumb = api.call("GET", urlsplit(preview["media_thumb_uri"]).path)
    assert thumb.status == 200 and thumb.headers["content-type"] == "image/jpeg"

    # Threshold 0 (finest) keeps a mirrored copy apart, or not: never fewer clusters.
    finest = _explore(api, dataset["id"], threshold=0, entity_type="IMAGES", page_number=0,
                      anchor_media_id=anchor["anchor_media_id"], anchor_type="UPLOAD").json
    assert len(finest["clusters"]) >= len(clusters)
    later = _explore(api, dataset["id"], threshold=2, entity_type="IMAGES", page_number=1,
                     anchor_media_id=anchor["anchor_media_id"], anchor_type="UPLOAD").json
    assert later["clusters"] == []


def test_region_and_existing_media(api: Api, dataset: dict[str, Any],
                                   photos: dict[str, Image.Image]) -> None:
    # The page's bounding_box, url-encoded in the query string as it shows.
    boxed = _upload(api, dataset["id"], jpeg(photos["coffee"]),
                    f"threshold=0&entity_type=IMAGES&bounding_box={BOX}")
    assert boxed.status == 200, boxed.body
    stored = api.ok("GET", f"/v1/anchors/{boxed.json['anchor_media_id']}")
    assert stored["bounding_box"] == {"x": 0.1, "y": 0.2, "width": 0.5, "height": 0.6}

    media = _explore(api, dataset["id"], threshold=0, entity_type="IMAGES", page_number=0,
                     anchor_media_id=dataset["ids"]["coffee.jpg"], anchor_type="MEDIA")
    assert media.status == 200, media.body
    assert media.json["clusters"][0]["previews"][0]["media_id"] == (
        dataset["ids"]["coffee_flip.jpg"])


def test_unsupported_and_not_ready(api: Api, dataset: dict[str, Any],
                                   image_files: dict[str, bytes]) -> None:
    objects = _upload(api, dataset["id"], image_files["coffee.jpg"],
                      "threshold=0&entity_type=OBJECTS")
    assert objects.status == 400 and objects.error["field"] == "entity_type"
    assert "IMAGES" in objects.error["message"]
    explore_objects = _explore(api, dataset["id"], entity_type="OBJECTS", anchor_type="MEDIA",
                               anchor_media_id=dataset["ids"]["coffee.jpg"])
    assert explore_objects.status == 400
    assert _upload(api, dataset["id"], image_files["coffee.jpg"],
                   "threshold=5&entity_type=IMAGES").status == 422
    assert _upload(api, dataset["id"], image_files["coffee.jpg"], "threshold=0").status == 422
    bad_box = _upload(api, dataset["id"], image_files["coffee.jpg"],
                      "entity_type=IMAGES&bounding_box=%7B%22x%22%3A2%7D")
    assert bad_box.status == 422 and bad_box.error["field"] == "bounding_box"
    unknown = _explore(api, dataset["id"], entity_type="IMAGES", anchor_type="MEDIA",
                       anchor_media_id=dataset["ids"]["coffee.jpg"], colour="red")
    assert unknown.status == 422 and unknown.error["field"] == "colour"
    wrong_type = _explore(api, dataset["id"], entity_type="IMAGES", anchor_type="TEXT",
                          anchor_media_id=dataset["ids"]["coffee.jpg"])
    assert wrong_type.status == 422 and wrong_type.error["field"] == "anchor_type"
    assert _explore(api, str(uuid.uuid4()), entity_type="IMAGES", anchor_type="MEDIA",
                    anchor_media_id=dataset["ids"]["coffee.jpg"]).status == 404

    # A dataset whose images are still pending (an upload slot never filled) is not READY.
    waiting = new_dataset(api, f"vl-wait-{uuid.uuid4().hex[:8]}")
    api.ok("POST", f"/v1/datasets/{waiting}/uploads", {"files": [{"name": "a.jpg", "size": 9}]})
    busy = _upload(api, waiting, image_files["coffee.jpg"], "threshold=0&entity_type=IMAGES")
    assert busy.status == 409 and "READY" in busy.error["message"]
    assert _explore(api, waiting, entity_type="IMAGES", anchor_type="MEDIA",
                    anchor_media_id=dataset["ids"]["coffee.jpg"]).status == 409
