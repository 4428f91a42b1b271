"""POST /v1/search over real HTTP: every kind of query, fields, pages, anchors, clusters."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from PIL import Image, ImageEnhance

from pixdex.config import Settings
from pixdex.models import MAX_PROMPT_CHARS
from pixdex.storage.connection import connect
from tests.test_server_support import Api, FileHost, add, b64, jpeg, new_dataset

pytest_plugins = ["tests.test_server_support"]


@pytest.fixture(scope="module")
def gallery(
    api: Api, image_files: dict[str, bytes], photos: dict[str, Image.Image]
) -> dict[str, Any]:
    """A dataset of photos, near-duplicates and metadata to filter on."""
    dataset = f"gallery-{uuid.uuid4().hex[:8]}"
    dataset_id = new_dataset(api, dataset)
    darker = jpeg(ImageEnhance.Brightness(photos["chelsea"]).enhance(0.6))
    added = add(api, dataset_id, [
        {"base64": b64(image_files["chelsea.jpg"]), "name": "chelsea.jpg", "folder": "/pets",
         "tags": ["cat", "2024"], "annotations": {"cat": 1}, "batch_id": "b1", "split": "train"},
        {"base64": b64(image_files["chelsea_flip.jpg"]), "name": "chelsea_flip.jpg",
         "folder": "/pets/edits", "tags": ["cat"], "annotation_job_id": "job-1"},
        {"base64": b64(darker), "name": "chelsea_dark.jpg", "folder": "/pets/edits"},
        {"base64": b64(image_files["coffee.jpg"]), "name": "coffee.jpg", "folder": "/food",
         "tags": ["2024"], "annotations": {"cup": 1}, "metadata": {"by": "ana"}},
        {"base64": b64(image_files["coffee_flip.jpg"]), "name": "coffee_flip.jpg",
         "folder": "/food"},
        {"base64": b64(image_files["rocket.jpg"]), "name": "rocket.jpg", "folder": "/space"},
        {"base64": b64(image_files["astronaut.jpg"]), "name": "astronaut.jpg", "folder": "/space"},
        {"base64": b64(image_files["camera.jpg"]), "name": "camera.jpg"},
        {"base64": b64(image_files["coins.png"]), "name": "coins.png"},
    ])
    assert all(a["status"] == "indexed" for a in added)
    return {"name": dataset, "id": dataset_id, "ids": {a["name"]: a["id"] for a in added}}


def _names(reply: dict[str, Any]) -> list[str]:
    return [r["name"] for r in reply["results"]]


def test_search_by_image_id_base64_url_and_region(
    api: Api, gallery: dict[str, Any], file_host: FileHost, photos: dict[str, Image.Image]
) -> None:
    ids = gallery["ids"]
    like = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"],
                                         "like_image": ids["chelsea.jpg"], "limit": 2})
    assert set(_names(like)) == {"chelsea_flip.jpg", "chelsea_dark.jpg"}
    assert like["total"] == 8 and like["exact"] is True
    assert all(set(r) == {"id", "score", "name"} for r in like["results"])

    query = jpeg(photos["coffee"].rotate(3))
    by_bytes = api.ok("POST", "/v1/search", {"in_dataset": gallery["id"], "image": b64(query),
                                             "limit": 2})
    assert set(_names(by_bytes)) == {"coffee.jpg", "coffee_flip.jpg"}
    by_url = api.ok("POST", "/v1/search", {"image": f"{file_host.url}/rocket.jpg", "limit": 1,
                                           "in_dataset": gallery["name"]})
    assert _names(by_url) == ["rocket.jpg"] and by_url["results"][0]["score"] > 0.99

    # The rocket photo with the coffee cup pasted into its top-left corner: the whole
    # picture looks like the rocket, the region like the coffee.
    rocket = photos["rocket"].copy()
    cup = photos["coffee"].resize((rocket.width // 2, rocket.height // 2))
    rocket.paste(cup, (0, 0))
    region = {"x": 0.0, "y": 0.0, "width": 0.5, "height": 0.5}
    boxed = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "image": b64(jpeg(rocket)),
                                          "bounding_box": region, "limit": 1})
    assert _names(boxed) == ["coffee.jpg"] or _names(boxed) == ["coffee_flip.jpg"]

    floor = api.ok("POST", "/v1/search", {"like_image": ids["chelsea.jpg"], "threshold": 0.8,
                                          "in_dataset": gallery["name"]})
    assert floor["results"] and all(r["score"] >= 0.8 for r in floor["results"])
    assert floor["total"] == len(floor["results"])


def test_search_filters_and_fields(api: Api, gallery: dict[str, Any]) -> None:
    def names(**body: Any) -> set[str]:
        return set(_names(api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], **body})))

    assert names(tag="cat") == {"chelsea.jpg", "chelsea_flip.jpg"}
    assert names(tag=["cat", "2024"]) == {"chelsea.jpg"}
    assert names(class_name="cup") == {"coffee.jpg"}
    assert names(batch=True) == {"chelsea.jpg"}
    assert names(batch_id="b1") == names(batch=True)
    assert names(annotation_job=True) == {"chelsea_flip.jpg"}
    assert names(annotation_job_id="job-1") == {"chelsea_flip.jpg"}
    assert len(names(annotation_job=False)) == 8
    assert names(folder_path="/pets") == {"chelsea.jpg", "chelsea_flip.jpg", "chelsea_dark.jpg"}
    assert names(folder_path="pets/edits/") == {"chelsea_flip.jpg", "chelsea_dark.jpg"}
    assert names(split="train") == {"chelsea.jpg"}
    assert "chelsea.jpg" in names(objects=["tabby cat", "tiger cat", "Egyptian cat"])
    assert "coffee.jpg" in names(objects="espresso,cup")
    assert "chelsea_flip.jpg" not in names(like_image=gallery["ids"]["chelsea.jpg"],
                                           folder_path="/food")
    assert len(names()) == 9  # no criterion: everything, newest first

    every = ["name", "folder", "dataset", "dataset_id", "status", "tags", "auto_tags",
             "annotations", "split", "batch_id", "annotation_job_id", "width", "height",
             "created", "metadata", "embedding", "thumbnail_url", "file_url"]
    full = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "tag": "cat",
                                         "class_name": "cat", "fields": every})["results"][0]
    assert set(full) == {"id", "score", *every}
    assert full["dataset"] == gallery["name"] and full["annotations"] == {"cat": 1}
    assert full["split"] == "train" and full["metadata"] == {} and full["status"] == "indexed"
    assert len(full["embedding"]) == 1280 and full["width"] == 451
    assert api.call("GET", full["thumbnail_url"]).status == 200
    only = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "fields": ["split"]})
    assert all(set(r) == {"id", "score", "split"} for r in only["results"])


def test_pagination_is_consistent(api: Api, gallery: dict[str, Any]) -> None:
    body = {"in_dataset": gallery["name"], "like_image": gallery["ids"]["coins.png"]}
    whole = api.ok("POST", "/v1/search", {**body, "limit": 250})
    seen: list[str] = []
    for offset in range(0, whole["total"], 3):
        page = api.ok("POST", "/v1/search", {**body, "offset": offset, "limit": 3})
        assert page["offset"] == offset and page["total"] == whole["total"]
        seen += [r["id"] for r in page["results"]]
    assert seen == [r["id"] for r in whole["results"]]
    assert len(set(seen)) == len(seen) == 8
    past = api.ok("POST", "/v1/search", {**body, "offset": 100})
    assert past["results"] == [] and past["total"] == 8


def test_clusters_group_near_duplicates(api: Api, gallery: dict[str, Any]) -> None:
    body = {"in_dataset": gallery["name"], "limit": 250, "fields": ["name"]}
    by_level = {}
    for level in range(5):
        reply = api.ok("POST", "/v1/search", {**body, "group": level})
        clusters = reply["clusters"]
        assert sum(c["size"] for c in clusters) == len(reply["results"]) == 9
        for cluster in clusters:
            assert cluster["previews"][0]["id"] == cluster["id"] == cluster["members"][0]
            assert cluster["size"] == len(cluster["members"]) >= len(cluster["previews"])
        assert all(r["cluster"] in {c["id"] for c in clusters} for r in reply["results"])
        by_level[level] = {frozenset(c["members"]) for c in clusters}
    ids = gallery["ids"]
    coarse = by_level[4]
    assert frozenset({ids["coffee.jpg"], ids["coffee_flip.jpg"]}) in coarse
    assert any({ids["chelsea.jpg"], ids["chelsea_flip.jpg"]} <= c for c in coarse)
    assert frozenset({ids["rocket.jpg"]}) in coarse  # different photos stay apart
    # Finer levels only split clusters, never merge them.
    assert len(by_level[0]) >= len(by_level[2]) >= len(by_level[4])
    plain = api.ok("POST", "/v1/search", body)
    assert plain["clusters"] is None and all("cluster" not in r for r in plain["results"])
    assert api.call("POST", "/v1/search", {**body, "group": 5}).status == 422


def test_anchors(api: Api, gallery: dict[str, Any], image_files: dict[str, bytes]) -> None:
    created = api.call("POST", "/v1/anchors", {"image": b64(image_files["chelsea_flip.jpg"])})
    assert created.status == 201
    anchor = created.json
    assert anchor["anchor_type"] == "UPLOAD" and anchor["width"] == 451
    for body in ({"anchor_id": anchor["anchor_id"]}, {"image": anchor["anchor_id"]}):
        found = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "limit": 1, **body})
        assert _names(found) == ["chelsea_flip.jpg"]
    region = {"x": 0.5, "y": 0.0, "width": 0.5, "height": 1.0}
    cropped = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "limit": 3,
                                            "anchor_id": anchor["anchor_id"],
                                            "bounding_box": region})
    assert cropped["results"][0]["score"] < 0.999

    from pixdex.client.transport import multipart

    form, kind = multipart({"bounding_box": '{"x":0,"y":0,"width":0.5,"height":0.5}'},
                           [("file", "q.jpg", image_files["coffee.jpg"])])
    uploaded = api.call("POST", "/v1/anchors/upload", raw=form, headers={"Content-Type": kind})
    assert uploaded.status == 201, uploaded.body
    # A form part the route does not take is refused, not dropped.
    extra, kind = multipart({"bounding_box": "{}", "boundingbox": "{}"},
                            [("file", "q.jpg", image_files["coffee.jpg"])])
    refused = api.call("POST", "/v1/anchors/upload", raw=extra, headers={"Content-Type": kind})
    assert refused.status == 422 and refused.error["field"] == "boundingbox"
    assert "bounding_box, file" in refused.error["message"]
    assert uploaded.json["bounding_box"] == {"x": 0.0, "y": 0.0, "width": 0.5, "height": 0.5}
    assert api.ok("GET", f"/v1/anchors/{anchor['anchor_id']}")["anchor_id"] == anchor["anchor_id"]
    assert api.ok("DELETE", f"/v1/anchors/{anchor['anchor_id']}")["deleted"] is True
    gone = api.call("POST", "/v1/search", {"anchor_id": anchor["anchor_id"]})
    assert gone.status == 404 and gone.error["field"] == "anchor_id"
    assert api.call("GET", f"/v1/anchors/{anchor['anchor_id']}").status == 404

    not_image = api.call("POST", "/v1/anchors", {"image": b64(b"plain text, not a picture")})
    assert not_image.status == 415
    broken = api.call("POST", "/v1/anchors", {"image": b64(image_files["coffee.jpg"][:300])})
    assert broken.status == 422 and broken.error["code"] == "image_decode_failed"
    bad_box = api.call("POST", "/v1/anchors", {"image": b64(image_files["coffee.jpg"]),
                                               "bounding_box": {"x": 0.8, "y": 0, "width": 0.5,
                                                                "height": 1}})
    assert bad_box.status == 422 and "inside the image" in bad_box.error["message"]


def test_prompt_search(api: Api, gallery: dict[str, Any]) -> None:
    body: dict[str, Any] = {"in_dataset": gallery["name"], "prompt": "a cup of espresso",
                            "fields": ["name", "folder"]}
    espresso = api.ok("POST", "/v1/search", body)
    assert _names(espresso)[:2] in (["coffee.jpg", "coffee_flip.jpg"],
                                    ["coffee_flip.jpg", "coffee.jpg"])
    assert espresso["total"] == 9 and espresso["warnings"] == []
    scores = [r["score"] for r in espresso["results"]]
    assert scores == sorted(scores, reverse=True) and 0.5 < scores[0] <= 1.0
    cats = api.ok("POST", "/v1/search", {**body, "prompt": "a cat", "folder_path": "/pets",
                                         "threshold": 0.3})
    assert set(_names(cats)) == {"chelsea.jpg", "chelsea_flip.jpg", "chelsea_dark.jpg"}
    assert cats["total"] == 3 and all(r["folder"].startswith("/pets") for r in cats["results"])
    # The class vector named as the model ranks the prompt itself (it answered 409 naming
    # "efficientnet-lite0-classes-classes").
    named = api.ok("POST", "/v1/search", {**body, "model": "efficientnet-lite0-classes"})
    assert _names(named) == _names(espresso)
    # An indexed image and a prompt together (Roboflow sends both): blended in class space,
    # so the cat photos lead for the cat query image whatever the prompt adds.
    both = api.ok("POST", "/v1/search", {**body, "prompt": "a cat",
                                         "like_image": gallery["ids"]["chelsea.jpg"]})
    assert set(_names(both)[:2]) == {"chelsea_flip.jpg", "chelsea_dark.jpg"}
    assert "chelsea.jpg" not in _names(both)
    nonsense = api.ok("POST", "/v1/search", {**body, "prompt": "quantum entanglement"})
    assert nonsense["total"] == 0 and nonsense["results"] == []
    assert any("quantum" in w for w in nonsense["warnings"])


def test_search_errors(api: Api, gallery: dict[str, Any], dataset_name: str,
                       image_files: dict[str, bytes], settings: Settings) -> None:
    def error(body: Any, status: int) -> dict[str, Any]:
        reply = api.call("POST", "/v1/search", body)
        assert reply.status == status, (body, reply.body)
        return reply.error

    combined = error({"prompt": "a cat", "image": b64(image_files["coffee.jpg"])}, 400)
    assert combined["code"] == "model_capability" and "no text encoder" in combined["message"]
    assert error({"prompt": "   "}, 422)["field"] == "prompt"
    assert error({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, 422)["field"] == "prompt"
    assert error({"prompt": "not cats"}, 422)["field"] == "prompt"
    assert error({"negative_prompt": "cats"}, 422)["field"] == "negative_prompt"
    assert error({"prompt": "a cat", "image_weight": 1.5}, 422)["field"] == "image_weight"
    assert error({"in_dataset": "no-such-dataset"}, 404)["field"] == "in_dataset"
    assert error({"like_image": str(uuid.uuid4())}, 404)["field"] == "id"
    assert error({"limit": 251}, 422)["field"] == "limit"
    assert error({"limit": 0}, 422)["field"] == "limit"
    assert error({"offset": -1}, 422)["field"] == "offset"
    assert error({"threshold": 1.5}, 422)["field"] == "threshold"
    assert "'colour'" in error({"fields": ["name", "colour"]}, 422)["message"]
    assert error({"like_image": "not-an-id"}, 422)["field"] == "like_image"
    assert error({"unknown_knob": 1}, 422)["field"] == "unknown_knob"
    # Unknown query parameters are refused too, on every route (they were dropped).
    boxed = api.call("POST", "/v1/search?bounding_box=%7B%22x%22%3A0.1%7D", {"limit": 1})
    assert boxed.status == 422 and boxed.error["field"] == "bounding_box"
    assert "'bounding_box'" in boxed.error["message"]
    listed = api.call("GET", f"/v1/datasets/{gallery['id']}/images?limit=1&colour=red")
    assert listed.status == 422 and listed.error["field"] == "colour"
    assert "limit" in listed.error["message"]  # it says what the route takes
    keyed = api.as_key(None).call("GET", f"/v1/datasets/{gallery['id']}/images?limit=1"
                                  f"&api_key={api.key}")
    assert keyed.status == 200, keyed.body
    two = error({"like_image": gallery["ids"]["coins.png"], "image": b64(b"x")}, 422)
    assert "one query image" in two["message"]
    assert error({"bounding_box": {"x": 0, "y": 0, "width": 1, "height": 1}}, 422)[
        "field"] == "bounding_box"
    assert error({"image": "%%%"}, 422)["field"] == "image"
    assert error({"image": b64(b"GIF89a but broken")}, 422)["code"] == "image_decode_failed"
    assert error({"image": b64(b"just some words")}, 415)["field"] == "image"

    empty_id = new_dataset(api, dataset_name)
    assert "add images" in error({"in_dataset": empty_id}, 409)["message"]
    pending_id = new_dataset(api, dataset_name + "-pending")
    with connect(settings) as conn:  # an upload another request is still indexing
        conn.execute("INSERT INTO images (dataset_id, storage_key, name)"
                     " VALUES (%s, 'file:///x/p.jpg', 'p')", (pending_id,))
    assert "retry when its status is READY" in error({"in_dataset": pending_id}, 409)["message"]
    failed = add(api, empty_id, [{"base64": b64(b"not an image")}])[0]
    assert error({"in_dataset": empty_id}, 409)["field"] == "in_dataset"
    assert "status is failed" in error({"like_image": failed["id"]}, 409)["message"]
    add(api, empty_id, [{"base64": b64(image_files["camera.jpg"])}])
    assert api.ok("POST", "/v1/search", {"in_dataset": empty_id})["total"] == 1


def test_large_bodies_and_pixel_bombs_are_refused(api: Api) -> None:
    # Over the 32 MiB request limit: refused from Content-Length, body never parsed.
    huge = api.call("POST", "/v1/search", raw=b"{" + b" " * (33 * 1024 * 1024) + b"}",
                    headers={"Content-Type": "application/json"})
    assert huge.status == 413 and huge.error["code"] == "payload_too_large"
    buffer = io.BytesIO()
    Image.new("RGB", (9000, 9000)).save(buffer, "PNG")  # 81 Mpx, a few hundred KB
    bomb = api.call("POST", "/v1/search", {"image": b64(buffer.getvalue())})
    assert bomb.status in (413, 422) and "pixels" in bomb.error["message"], bomb.body


def test_a_tag_search_that_finds_nothing_names_the_tags_it_may_mean(
    api: Api, gallery: dict[str, Any]
) -> None:
    """Tags match names, their synonyms and everyday words, not parts of names: an API
    caller asking for "Mau" is told about "Egyptian Mau" (the same hint the CLI prints),
    while "Tabbies" (a WordNet synonym of "tabby cat", plural) finds the cat, no hint."""
    missed = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "objects": ["Mau"]})
    assert missed["results"] == []
    assert any("'Egyptian Mau'" in warning for warning in missed["warnings"]), missed["warnings"]
    for word in ("tabby cat", "Tabbies", "cats"):
        found = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "objects": [word],
                                              "fields": ["name"]})
        assert found["results"] and not any("known objects" in w for w in found["warnings"])
        assert all(r["name"].startswith("chelsea") for r in found["results"])


def test_facets_count_what_the_filters_admit(api: Api, gallery: dict[str, Any]) -> None:
    def facets(**body: Any) -> dict[str, dict[str, int]]:
        reply = api.ok("POST", "/v1/search",
                       {"in_dataset": gallery["name"], "facets": True, "limit": 1, **body})
        assert reply["facets"]["complete"] is True
        return {kind: {f["value"]: f["count"] for f in values}
                for kind, values in reply["facets"].items() if isinstance(values, list)}

    every = facets(folder_path="/")  # every image of the dataset
    assert every["folders"] == {"/pets": 3, "/pets/edits": 2, "/food": 2, "/space": 2}
    assert every["tags"] == {"cat": 2, "2024": 2}
    assert every["annotations"] == {"cat": 1, "cup": 1}
    assert every["split"] == {"train": 1} and every["batch_id"] == {"b1": 1}
    assert every["annotation_job_id"] == {"job-1": 1}
    assert every["objects"] and all(n >= 1 for n in every["objects"].values())
    # Counts follow the query's filters, not the page: one folder, then one tag within it.
    pets = facets(folder_path="/pets")
    assert pets["folders"] == {"/pets": 3, "/pets/edits": 2}
    assert pets["tags"] == {"cat": 2, "2024": 1}
    assert facets(folder_path="/pets", tag="2024")["tags"] == {"cat": 1, "2024": 1}
    plain = api.ok("POST", "/v1/search", {"in_dataset": gallery["name"], "tag": "cat"})
    assert plain["facets"] is None  # only when asked: counting costs a scan
    bad = api.call("POST", "/v1/search", {"in_dataset": gallery["name"], "facets": "maybe"})
    assert (bad.status, bad.error["field"]) == (422, "facets")
