"""``pixdex.Client`` against the real server over loopback HTTP."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

import pixdex
from pixdex.app.service.schemas import ImageMeta
from pixdex.app.service.search_schemas import SearchRequest
from pixdex.client import ApiError, Client
from pixdex.errors import InvalidInputError
from pixdex.server import RunningServer
from tests.test_server_support import FileHost, Keys

pytest_plugins = ["tests.test_server_support"]


@pytest.fixture(scope="module")
def client(api_server: RunningServer, api_keys: Keys) -> Client:
    return pixdex.Client(api_server.url, api_keys.a)


@pytest.fixture(scope="module")
def library(client: Client, tmp_path_factory: pytest.TempPathFactory,
            image_files: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("client-photos")
    (root / "pets").mkdir()
    (root / ".hidden").mkdir()
    for name in ("chelsea.jpg", "chelsea_flip.jpg"):
        (root / "pets" / name).write_bytes(image_files[name])
    for name in ("coffee.jpg", "coffee_flip.jpg", "rocket.jpg", "camera.jpg"):
        (root / name).write_bytes(image_files[name])
    (root / ".hidden" / "skip.jpg").write_bytes(image_files["coins.png"])
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    dataset = client.create_dataset(f"client-{uuid.uuid4().hex[:8]}")
    report = client.add_paths(dataset.id, [root / "pets"], meta=ImageMeta(folder="/pets",
                                                                         tags=["pet"]))
    rest = client.add_paths(dataset.id, [p for p in root.iterdir() if p.is_file()],
                            batch_size=2, progress=False)
    assert (report.indexed, rest.indexed, rest.failed) == (2, 4, 1)
    ids = {i.name: str(i.id) for i in report.images + rest.images}
    return dataset.name, ids


def test_datasets_and_images(client: Client, library: tuple[str, dict[str, str]],
                             file_host: FileHost, capsys: pytest.CaptureFixture[str]) -> None:
    name, ids = library
    dataset = client.dataset_by_name(name)
    assert dataset.status == "READY" and dataset.images.total == 7
    assert dataset.id in {d.id for d in client.datasets()}
    assert client.dataset(dataset.id).name == name

    cat = client.image(ids["chelsea.jpg"])
    assert cat.folder == "/pets" and cat.tags == ["pet"] and cat.auto_tags.objects
    urls = client.add_urls(dataset.id, [f"{file_host.url}/coins.png"], meta=ImageMeta(
        split="test"))
    assert urls.indexed == 1 and "img" in capsys.readouterr().err  # the progress bar
    assert client.images(dataset.id, split="test").images[0].id == urls.images[0].id
    edited = client.update_image(ids["camera.jpg"], add_tags=["bw"], metadata={"k": "v"})
    assert edited.tags == ["bw"] and edited.metadata == {"k": "v"}
    assert client.image_file(ids["coffee.jpg"])[:3] == b"\xff\xd8\xff"
    assert client.thumbnail(ids["coffee.jpg"], size=64)[:3] == b"\xff\xd8\xff"
    assert client.delete_image(urls.images[0].id or "").deleted

    with pytest.raises(ApiError) as missing:
        client.image(uuid.uuid4())
    assert missing.value.http_status == 404 and missing.value.code == "not_found"
    with pytest.raises(ApiError) as taken:
        client.create_dataset(name)
    assert taken.value.http_status == 409 and taken.value.field == "name"
    with pytest.raises(ApiError) as unknown:
        client.dataset_by_name("no-such-dataset")
    assert unknown.value.http_status == 404
    with pytest.raises(InvalidInputError):
        client.add_paths(dataset.id, ["/no/such/folder"])
    with pytest.raises(ValidationError):
        client.update_image(ids["camera.jpg"], colour="red")


def test_search_and_pages(client: Client, library: tuple[str, dict[str, str]]) -> None:
    name, ids = library
    page = client.search(in_dataset=name, like_image=ids["coffee.jpg"], limit=2,
                         fields=["name", "folder"])
    assert page.results[0].name == "coffee_flip.jpg" and page.results[0].folder == "/"
    assert page.results[0].model_fields_set == {"id", "score", "name", "folder"}
    request = SearchRequest(in_dataset=name, like_image=ids["rocket.jpg"], limit=2)
    pages = list(client.search_all(request))
    assert [len(p) for p in pages] == [2, 2, 1]
    whole = client.search(request.model_copy(update={"limit": 250}))
    assert [r.id for p in pages for r in p] == [r.id for r in whole.results]
    with pytest.raises(ValidationError):
        client.search(limit=0)
    cats = client.search(in_dataset=name, prompt="a cat", negative_prompt="drawings")
    assert {r.name for r in cats.results[:2]} == {"chelsea.jpg", "chelsea_flip.jpg"}
    assert all(0.0 <= r.score <= 1.0 for r in cats.results) and cats.warnings == []
    # The offline model blends an indexed image with a prompt in class space.
    both = client.search(in_dataset=name, prompt="a cat", like_image=ids["coffee.jpg"])
    assert both.results and all(r.name != "coffee.jpg" for r in both.results)
    with pytest.raises(ValidationError):
        client.search(negative_prompt="drawings", image_weight=2)
    with pytest.raises(ApiError) as denied:
        Client(client._http._parts.geturl(), "pdx_wrong_key_that_is_long_enough").datasets()
    assert denied.value.http_status == 401


def test_by_similarity_and_by_tag(client: Client, library: tuple[str, dict[str, str]],
                                  tmp_path: Path, image_files: dict[str, bytes]) -> None:
    name, ids = library
    in_folder = client.by_similarity(ids["chelsea.jpg"], threshold=0.0)
    assert [r.name for r in in_folder] == ["chelsea_flip.jpg"]  # its folder, not itself
    everywhere = client.by_similarity(ids["chelsea.jpg"], threshold=0.0, folder_path="/")
    assert len(everywhere) == 5 and everywhere[0].name == "chelsea_flip.jpg"
    assert all(r.score >= 0.6 for r in client.by_similarity(ids["coffee.jpg"], folder_path="/"))
    scores = [r.score for r in everywhere]
    assert scores == sorted(scores, reverse=True)

    cats = client.by_tag(objects=["tabby cat", "tiger cat", "Egyptian cat"], dataset_name=name)
    assert {r.name for r in cats} >= {"chelsea.jpg", "chelsea_flip.jpg"}
    assert all(r.auto_tags is not None for r in cats)
    with pytest.raises(InvalidInputError, match="at least one"):
        client.by_tag(dataset_name=name)
    with pytest.raises(InvalidInputError):
        client.by_similarity(ids["chelsea.jpg"], limit=501)

    query = tmp_path / "query.jpg"
    query.write_bytes(image_files["coffee_flip.jpg"])
    anchor = client.create_anchor(query)
    found = client.search(anchor_id=anchor.anchor_id, in_dataset=name, limit=1)
    assert found.results[0].name == "coffee_flip.jpg"
    assert client.delete_anchor(anchor.anchor_id).deleted
    with pytest.raises(InvalidInputError):
        Client("ftp://example.com")
