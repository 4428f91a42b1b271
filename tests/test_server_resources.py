"""Datasets and images over real HTTP: every route, and bad input on each."""

from __future__ import annotations

import io
import json
import uuid

from PIL import Image

from pixdex.config import Settings
from pixdex.storage.connection import connect
from tests.test_server_support import Api, FileHost, Keys, add, b64, new_dataset, wait_indexed

pytest_plugins = ["tests.test_server_support"]


def _multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    from pixdex.client.transport import multipart

    return multipart(fields, files)


def test_dataset_lifecycle(api: Api, dataset_name: str, image_files: dict[str, bytes]) -> None:
    created = api.call("POST", "/v1/datasets", {"name": dataset_name})
    assert created.status == 201
    dataset = created.json
    assert set(dataset) >= {"id", "name", "status"} and dataset["status"] == "READY"
    again = api.call("POST", "/v1/datasets", {"name": dataset_name})
    assert again.status == 409 and again.error["field"] == "name"
    assert "already exists" in again.error["message"]

    added = add(api, dataset["id"], [
        {"base64": b64(image_files["chelsea.jpg"]), "name": "cat.jpg", "tags": ["pets"]},
        {"base64": b64(b"this is not an image"), "name": "notes.jpg"},
    ])
    assert [a["status"] for a in added] == ["indexed", "failed"]
    assert "not a recognised image format" in added[1]["error"]

    got = api.ok("GET", f"/v1/datasets/{dataset['id']}")
    assert got["images"] == {"total": 2, "indexed": 1, "pending": 0, "failed": 1}
    assert got["status"] == "READY"
    listed = api.ok("GET", "/v1/datasets")["datasets"]
    assert dataset["id"] in {d["id"] for d in listed}

    deleted = api.ok("DELETE", f"/v1/datasets/{dataset['id']}")
    assert deleted == {"id": dataset["id"], "deleted": True, "images": 2}
    assert api.call("GET", f"/v1/datasets/{dataset['id']}").status == 404
    assert api.call("GET", f"/v1/images/{added[0]['id']}").status == 404
    assert api.call("DELETE", f"/v1/datasets/{dataset['id']}").status == 404


def test_dataset_status_is_indexing_while_images_are_pending(
    api: Api, settings: Settings, dataset_name: str, image_files: dict[str, bytes]
) -> None:
    dataset_id = new_dataset(api, dataset_name)
    add(api, dataset_id, [{"base64": b64(image_files["coffee.jpg"])}])
    with connect(settings) as conn:  # an upload still being indexed by another request
        conn.execute(
            "INSERT INTO images (dataset_id, storage_key, name)"
            " VALUES (%s, 'file:///x/p.jpg', 'p')",
            (dataset_id,),
        )
    state = api.ok("GET", f"/v1/datasets/{dataset_id}")
    assert state["status"] == "INDEXING" and state["images"]["pending"] == 1
    listed = api.ok("GET", f"/v1/datasets/{dataset_id}/images?status=pending")
    assert [i["name"] for i in listed["images"]] == ["p"]


def test_add_by_url_and_multipart(
    api: Api, dataset_name: str, file_host: FileHost, image_files: dict[str, bytes]
) -> None:
    dataset_id = new_dataset(api, dataset_name)
    by_url = add(api, dataset_id, [
        {"url": f"{file_host.url}/rocket.jpg", "folder": "space/2024", "split": "train"},
        {"url": f"{file_host.url}/redirect/coins.png", "metadata": {"source": "web"}},
    ])
    assert [a["status"] for a in by_url] == ["indexed", "indexed"]
    assert [a["name"] for a in by_url] == [by_url[0]["name"], by_url[1]["name"]]
    rocket = api.ok("GET", f"/v1/images/{by_url[0]['id']}")
    assert rocket["folder"] == "/space/2024" and rocket["split"] == "train"
    assert rocket["format"] == "JPEG" and rocket["width"] > 0

    body, kind = _multipart(
        {"tags": "a,b", "folder": "/up", "metadata": json.dumps({"k": 1}),
         "annotations": json.dumps({"cat": 2})},
        [("file", "cat one.jpg", image_files["chelsea.jpg"]),
         ("file", "coins.png", image_files["coins.png"])],
    )
    reply = api.call("POST", f"/v1/datasets/{dataset_id}/images/upload", raw=body,
                     headers={"Content-Type": kind})
    assert reply.status == 202, reply.body
    assert {u["status"] for u in reply.json["images"]} == {"pending"}
    uploaded = wait_indexed(api, reply.json["images"])
    assert {u["status"] for u in uploaded} == {"indexed"}
    assert [u["name"] for u in uploaded] == ["cat one.jpg", "coins.png"]
    cat = api.ok("GET", f"/v1/images/{uploaded[0]['id']}")
    assert cat["tags"] == ["a", "b"] and cat["metadata"] == {"k": 1}
    assert cat["annotations"] == {"cat": 2} and cat["folder"] == "/up"
    # The stored original is byte-for-byte what was uploaded (binary body passed faithfully).
    original = api.call("GET", cat["file_url"])
    assert original.status == 200 and original.body == image_files["chelsea.jpg"]
    assert original.headers["content-type"] == "image/jpeg"

    # The same bytes under the same name again: same id, the new metadata.
    body, kind = _multipart({"tags": "c"}, [("file", "cat one.jpg", image_files["chelsea.jpg"])])
    again = api.ok("POST", f"/v1/datasets/{dataset_id}/images/upload", raw=body,
                   headers={"Content-Type": kind})
    assert again["images"][0]["id"] == uploaded[0]["id"]
    assert again["images"][0]["status"] == "indexed"  # nothing to index again
    assert api.ok("GET", f"/v1/images/{uploaded[0]['id']}")["tags"] == ["c"]


def test_add_images_bad_input(
    api: Api, dataset_name: str, file_host: FileHost, image_files: dict[str, bytes]
) -> None:
    dataset_id = new_dataset(api, dataset_name)
    path = f"/v1/datasets/{dataset_id}/images"
    cases = [
        ({"images": []}, 422, "images"),
        ({"images": [{"name": "x.jpg"}]}, 422, "images.0"),
        ({"images": [{"base64": "AAAA", "url": "http://x"}]}, 422, "images.0"),
        ({"images": [{"base64": "@@not base64@@"}]}, 422, "images.0.base64"),
        ({"images": [{"base64": b64(image_files["coffee.jpg"]), "name": "../x.jpg"}]}, 422,
         "images.0.name"),
        ({"images": [{"url": "ftp://example.com/a.jpg"}]}, 422, "images.0.url"),
        ({"images": [{"url": f"{file_host.url}/missing.jpg"}]}, 422, "images.0.url"),
        ({"images": [{"url": f"{file_host.url}/to-metadata"}]}, 422, "images.0.url"),
        ({"images": [{"url": "http://169.254.169.254/latest/"}]}, 422, "images.0.url"),
        ({"images": [{"base64": "AAAA"}] * 129}, 413, "images"),
        ({"images": [{"base64": "AAAA", "colour": "red"}]}, 422, "images.0.colour"),
    ]
    for body, status, field in cases:
        reply = api.call("POST", path, body)
        assert reply.status == status, (body if len(str(body)) < 300 else field, reply.body)
        assert reply.error["field"] == field, reply.error
        assert reply.error["message"]
    # Nothing was stored by any refused call.
    assert api.ok("GET", f"/v1/datasets/{dataset_id}")["images"]["total"] == 0

    wrong_type = api.call("POST", path, raw=b"images=1",
                          headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 415 and wrong_type.error["code"] == "unsupported_media"
    not_json = api.call("POST", path, raw=b'{"images": [', headers={"Content-Type":
                                                                   "application/json"})
    assert not_json.status == 400 and not_json.error["code"] == "bad_request"
    no_boundary = api.call("POST", f"{path}/upload", raw=b"--x--",
                           headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status == 400
    form, kind = _multipart({"tags": "a"}, [])
    no_file = api.call("POST", f"{path}/upload", raw=form, headers={"Content-Type": kind})
    assert no_file.status == 422 and no_file.error["field"] == "file"
    assert api.call("POST", f"/v1/datasets/{uuid.uuid4()}/images",
                    {"images": [{"base64": b64(image_files["coffee.jpg"])}]}).status == 404
    assert api.call("POST", "/v1/datasets/not-a-uuid/images", {"images": []}).status == 422
    for name in ("", " padded ", "x" * 201):
        reply = api.call("POST", "/v1/datasets", {"name": name})
        assert reply.status == 422, name
        assert reply.error["field"] == "name"


def test_image_listing_editing_and_bytes(
    api: Api, dataset_name: str, image_files: dict[str, bytes]
) -> None:
    dataset_id = new_dataset(api, dataset_name)
    added = add(api, dataset_id, [
        {"base64": b64(image_files["chelsea.jpg"]), "name": "cat.jpg", "tags": ["pets", "2024"],
         "folder": "/pets", "batch_id": "b1"},
        {"base64": b64(image_files["coffee.jpg"]), "name": "coffee.jpg", "tags": ["2024"],
         "split": "valid"},
        {"base64": b64(image_files["rocket.jpg"]), "name": "rocket.jpg", "folder": "/pets/x"},
    ])
    ids = [a["id"] for a in added]
    base = f"/v1/datasets/{dataset_id}/images"
    listed = api.ok("GET", base)
    assert listed["total"] == 3 and {i["id"] for i in listed["images"]} == set(ids)
    assert {i["name"] for i in api.ok("GET", f"{base}?folder=/pets")["images"]} == {
        "cat.jpg", "rocket.jpg"}
    assert [i["name"] for i in api.ok("GET", f"{base}?tag=pets,2024")["images"]] == ["cat.jpg"]
    assert [i["name"] for i in api.ok("GET", f"{base}?split=valid")["images"]] == ["coffee.jpg"]
    assert [i["name"] for i in api.ok("GET", f"{base}?batch_id=b1")["images"]] == ["cat.jpg"]
    first, second = api.ok("GET", f"{base}?limit=2"), api.ok("GET", f"{base}?limit=2&offset=2")
    assert len(first["images"]) == 2 and len(second["images"]) == 1
    assert {i["id"] for i in first["images"] + second["images"]} == set(ids)
    for bad in ("?limit=0", "?limit=251", "?offset=-1", "?status=done"):
        assert api.call("GET", base + bad).status == 422, bad

    image = api.ok("PATCH", f"/v1/images/{ids[0]}", {
        "add_tags": ["cute"], "remove_tags": ["2024"], "metadata": {"owner": "ana"},
        "split": "test", "batch_id": None, "folder": "cats/indoor",
    })
    assert image["tags"] == ["pets", "cute"] and image["metadata"] == {"owner": "ana"}
    assert image["split"] == "test" and image["batch_id"] is None
    assert image["folder"] == "/cats/indoor"
    assert api.ok("PATCH", f"/v1/images/{ids[0]}", {"tags": ["x"]})["tags"] == ["x"]
    for bad in ({"tags": "x"}, {"colour": 1}, {"annotations": {"cat": "many"}}):
        assert api.call("PATCH", f"/v1/images/{ids[0]}", bad).status == 422, bad
    assert api.call("PATCH", f"/v1/images/{uuid.uuid4()}", {"tags": []}).status == 404

    thumb = api.call("GET", f"/v1/images/{ids[1]}/thumbnail?size=128")
    assert thumb.status == 200 and thumb.headers["content-type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(thumb.body))
    assert max(picture.size) == 128
    assert api.call("GET", f"/v1/images/{ids[1]}/thumbnail?size=100").status == 422
    cached = api.call("GET", f"/v1/images/{ids[1]}/thumbnail?size=128")
    assert cached.body == thumb.body

    assert api.ok("DELETE", f"/v1/images/{ids[2]}") == {"id": ids[2], "deleted": True,
                                                        "images": None}
    for path in (f"/v1/images/{ids[2]}", f"/v1/images/{ids[2]}/file",
                 f"/v1/images/{ids[2]}/thumbnail"):
        assert api.call("GET", path).status == 404, path
    assert api.call("DELETE", f"/v1/images/{ids[2]}").status == 404
    assert api.call("GET", "/v1/images/not-a-uuid").status == 422


def test_failed_image_has_no_thumbnail(api: Api, dataset_name: str) -> None:
    dataset_id = new_dataset(api, dataset_name)
    broken = add(api, dataset_id, [{"base64": b64(b"\xff\xd8\xff\xe0 truncated jpeg")}])[0]
    assert broken["status"] == "failed"
    reply = api.call("GET", f"/v1/images/{broken['id']}/thumbnail")
    assert reply.status == 409 and "failed" in reply.error["message"]
    assert api.ok("GET", f"/v1/images/{broken['id']}")["error"]
    # Nor its bytes: they may be what a server-side URL fetch read (SSRF read-back).
    original = api.call("GET", f"/v1/images/{broken['id']}/file")
    assert original.status == 409 and "indexed" in original.error["message"]


def test_authentication_and_scopes(
    api: Api, api_keys: Keys, dataset_name: str, image_files: dict[str, bytes]
) -> None:
    anonymous = api.as_key(None)
    missing = anonymous.call("GET", "/v1/datasets")
    assert missing.status == 401 and "Bearer" in missing.error["message"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    # 401 comes before body validation: nothing is parsed for an anonymous caller.
    assert anonymous.call("POST", "/v1/search", raw=b"{broken").status == 401
    assert api.as_key("pdx_0000000000_" + "x" * 43).call("GET", "/v1/datasets").status == 401
    assert api.as_key("garbage").call("GET", "/v1/datasets").status == 401
    roboflow_style = anonymous.call("GET", f"/v1/datasets?api_key={api_keys.a}")
    assert roboflow_style.status == 200
    assert anonymous.call("GET", "/v1/health").json["status"] == "ok"
    assert anonymous.call("GET", "/openapi.json").status == 200
    assert anonymous.call("GET", "/docs").status == 200

    reader = api.as_key(api_keys.a_read)
    dataset_id = new_dataset(api, dataset_name)
    add(api, dataset_id, [{"base64": b64(image_files["coffee.jpg"])}])
    assert reader.call("GET", f"/v1/datasets/{dataset_id}").status == 200
    assert reader.call("POST", "/v1/search", {"in_dataset": dataset_id}).status == 200
    for method, path, body in (
        ("POST", "/v1/datasets", {"name": "nope"}),
        ("DELETE", f"/v1/datasets/{dataset_id}", None),
        ("POST", f"/v1/datasets/{dataset_id}/images", {"images": []}),
        ("POST", "/v1/anchors", {"image": "AAAA"}),
    ):
        reply = reader.call(method, path, body)
        assert reply.status == 403, (method, path)
        assert "read-only" in reply.error["message"]
    assert api.call("GET", "/v1/nothing-here").status == 404
