"""Blob references, the local-folder store and the S3 store (moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pixdex.blobs import BlobInfo, BlobRef, LocalFolderStore, S3Store, store_for
from pixdex.errors import InvalidInputError, NotFoundError, PayloadTooLargeError

BUCKET = "pixdex-test"


# --- BlobRef -------------------------------------------------------------------------


def test_s3_uri_round_trip() -> None:
    ref = BlobRef("s3", BUCKET, "a/b c/#1.jpg")
    assert ref.uri == f"s3://{BUCKET}/a/b c/#1.jpg"
    assert BlobRef.parse(ref.uri) == ref


def test_file_uri_round_trip(tmp_path: Path) -> None:
    ref = BlobRef("file", str(tmp_path), "sub dir/x#1.png")
    assert ref.uri.startswith("file:///")
    assert "%20" in ref.uri and "%23" in ref.uri
    assert BlobRef.parse(ref.uri, root=str(tmp_path)) == ref
    assert BlobRef.parse(ref.uri) == BlobRef("file", str(tmp_path / "sub dir"), "x#1.png")


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "just/a/path.jpg",
        "http://example.com/x.jpg",
        "s3://",
        f"s3://{BUCKET}",
        f"s3://{BUCKET}/",
        "s3://Bad_Bucket/x.jpg",
        "file://otherhost/x.jpg",
        "file:///folder/",
        "file:///x.jpg?version=2",
    ],
)
def test_bad_uris(uri: str) -> None:
    with pytest.raises(InvalidInputError):
        BlobRef.parse(uri)


def test_bad_refs() -> None:
    with pytest.raises(InvalidInputError):
        BlobRef("file", "relative/root", "x.jpg")
    with pytest.raises(InvalidInputError):
        BlobRef("s3", BUCKET, "")
    with pytest.raises(InvalidInputError):
        BlobRef("ftp", BUCKET, "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        BlobRef.parse("file:///a/b/x.jpg", root="/elsewhere")


def test_store_for_is_cached() -> None:
    assert isinstance(store_for("file"), LocalFolderStore)
    assert store_for("file") is store_for(BlobRef("file", "/tmp", "x"))
    assert isinstance(store_for(f"s3://{BUCKET}/x"), S3Store)
    assert store_for("s3") is store_for("S3://b/x")
    with pytest.raises(InvalidInputError):
        store_for("gopher")


# --- local folder store ------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> tuple[LocalFolderStore, str]:
    root = tmp_path / "root"
    root.mkdir()
    return LocalFolderStore(), str(root)


def keys(infos: Iterator[BlobInfo]) -> list[str]:
    return [info.ref.key for info in infos]


def test_local_round_trip(local: tuple[LocalFolderStore, str]) -> None:
    store, root = local
    ref = BlobRef("file", root, "a/b/image.jpg")
    store.put(ref, b"hello")
    assert store.get(ref, max_bytes=5) == b"hello"
    info = store.stat(ref)
    assert info.size == 5 and info.etag and info.modified is not None
    store.put(ref, b"replaced!")
    assert store.get(ref, max_bytes=100) == b"replaced!"
    assert store.stat(ref).etag != info.etag
    # No temporary files are left next to the target.
    assert sorted(os.listdir(Path(root, "a/b"))) == ["image.jpg"]
    store.delete(ref)
    store.delete(ref)  # idempotent
    with pytest.raises(NotFoundError):
        store.get(ref, max_bytes=100)


def test_local_listing(local: tuple[LocalFolderStore, str], tmp_path: Path) -> None:
    store, root = local
    for key in ["b.jpg", "a/z.png", "a/b/c.gif", "a.jpg", ".hidden.jpg", ".git/x", "a/.cache/y"]:
        store.put(BlobRef("file", root, key), key.encode())
    Path(root, "empty-dir").mkdir()
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"secret")
    Path(root, "escape.jpg").symlink_to(outside)
    Path(root, "linked-dir").symlink_to(tmp_path)
    Path(root, "inside-link.jpg").symlink_to(Path(root, "b.jpg"))

    listed = keys(store.list(root))
    assert listed == ["a.jpg", "a/b/c.gif", "a/z.png", "b.jpg", "inside-link.jpg"]
    assert listed == sorted(listed)
    assert keys(store.list(root, "a/")) == ["a/b/c.gif", "a/z.png"]
    assert keys(store.list(root, "a")) == ["a.jpg", "a/b/c.gif", "a/z.png"]
    assert keys(store.list(root, "a/b")) == ["a/b/c.gif"]
    assert keys(store.list(root, "nope/")) == []
    sizes = {info.ref.key: info.size for info in store.list(root)}
    assert sizes["a/z.png"] == len(b"a/z.png")
    with pytest.raises(NotFoundError):
        list(store.list(str(tmp_path / "missing")))


@pytest.mark.parametrize("key", ["../x.jpg", "a/../../x.jpg", "a//b.jpg", "./a.jpg", "a/./b"])
def test_local_path_escape_refused(local: tuple[LocalFolderStore, str], key: str) -> None:
    store, root = local
    with pytest.raises(InvalidInputError):
        store.put(BlobRef("file", root, key), b"x")
    with pytest.raises(InvalidInputError):
        store.get(BlobRef("file", root, key), max_bytes=10)


def test_local_symlink_escape_refused(local: tuple[LocalFolderStore, str], tmp_path: Path) -> None:
    store, root = local
    (tmp_path / "secret.txt").write_bytes(b"secret")
    Path(root, "link").symlink_to(tmp_path)
    with pytest.raises(InvalidInputError):
        store.get(BlobRef("file", root, "link/secret.txt"), max_bytes=100)
    with pytest.raises(InvalidInputError):
        store.put(BlobRef("file", root, "link/new.txt"), b"x")
    assert not (tmp_path / "new.txt").exists()


def test_local_missing_and_too_large(local: tuple[LocalFolderStore, str]) -> None:
    store, root = local
    with pytest.raises(NotFoundError):
        store.get(BlobRef("file", root, "missing.jpg"), max_bytes=10)
    with pytest.raises(NotFoundError):
        store.stat(BlobRef("file", root, "missing/deeper.jpg"))
    Path(root, "folder").mkdir()
    with pytest.raises(NotFoundError):
        store.get(BlobRef("file", root, "folder"), max_bytes=10)
    ref = BlobRef("file", root, "big.bin")
    store.put(ref, b"x" * 1001)
    with pytest.raises(PayloadTooLargeError, match="1,001 bytes"):
        store.get(ref, max_bytes=1000)


def test_local_rejects_s3_ref(local: tuple[LocalFolderStore, str]) -> None:
    store, _ = local
    with pytest.raises(InvalidInputError):
        store.get(BlobRef("s3", BUCKET, "x"), max_bytes=1)


# --- S3 store -----------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Store]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield S3Store(client)


def test_s3_round_trip(s3: S3Store) -> None:
    ref = BlobRef("s3", BUCKET, "a/b/image.jpg")
    s3.put(ref, b"hello")
    assert s3.get(ref, max_bytes=5) == b"hello"
    info = s3.stat(ref)
    assert info.size == 5 and info.etag and '"' not in info.etag
    assert info.modified is not None
    s3.delete(ref)
    s3.delete(ref)
    with pytest.raises(NotFoundError):
        s3.get(ref, max_bytes=10)


def test_s3_missing_and_too_large(s3: S3Store) -> None:
    with pytest.raises(NotFoundError):
        s3.get(BlobRef("s3", BUCKET, "missing.jpg"), max_bytes=10)
    with pytest.raises(NotFoundError):
        s3.stat(BlobRef("s3", "no-such-bucket", "x.jpg"))
    with pytest.raises(NotFoundError):
        list(s3.list("no-such-bucket"))
    ref = BlobRef("s3", BUCKET, "big.bin")
    s3.put(ref, b"x" * 1001)
    with pytest.raises(PayloadTooLargeError, match="1,001 bytes"):
        s3.get(ref, max_bytes=1000)


def test_s3_listing_sorted_recursive(s3: S3Store) -> None:
    for key in ["b.jpg", "a/z.png", "a/b/c.gif", "a.jpg"]:
        s3.put(BlobRef("s3", BUCKET, key), b"")
    s3.client.put_object(Bucket=BUCKET, Key="folder/", Body=b"")  # a console "folder" marker
    assert keys(s3.list(BUCKET)) == ["a.jpg", "a/b/c.gif", "a/z.png", "b.jpg"]
    assert keys(s3.list(BUCKET, "a/")) == ["a/b/c.gif", "a/z.png"]
    with pytest.raises(InvalidInputError):
        list(s3.list("Bad_Bucket"))


def test_s3_pagination_over_1000_keys(s3: S3Store) -> None:
    expected = [f"img/{i:05d}.jpg" for i in range(1100)]
    for key in expected:
        s3.client.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    assert keys(s3.list(BUCKET)) == expected  # two pages of the default size (1000)
    small_pages = S3Store(s3.client, page_size=7)
    assert keys(small_pages.list(BUCKET, "img/0000")) == expected[:10]


def test_s3_store_rejects_file_ref_and_bad_page_size(s3: S3Store) -> None:
    with pytest.raises(InvalidInputError):
        s3.get(BlobRef("file", "/tmp", "x"), max_bytes=1)
    with pytest.raises(InvalidInputError):
        S3Store(s3.client, page_size=0)


def test_s3_default_client_is_created_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        store = S3Store()
        assert store.client is store.client
        store.client.create_bucket(Bucket=BUCKET)
        store.put(BlobRef("s3", BUCKET, "k"), b"v")
        assert store.get(BlobRef("s3", BUCKET, "k"), max_bytes=1) == b"v"
