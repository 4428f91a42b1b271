"""Ingest against the real embedded PostgreSQL and the real model, on real image files."""

from __future__ import annotations

import io
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from PIL import Image
from pydantic import ValidationError

from pixdex.app.ingest import IngestItem, ingest
from pixdex.app.removal import remove
from pixdex.app.sources import local_items, local_uris
from pixdex.blobs import BlobRef
from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.imaging import compute_attributes, decode_image
from pixdex.models import ImageStatus, UserMetadata
from pixdex.storage.connection import connect
from pixdex.storage.images import get_embedding, get_image


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture
def mixed_folder(tmp_path: Path, photos: dict[str, Image.Image]) -> Path:
    root = tmp_path / "shoot"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "chelsea.jpg").write_bytes(_jpeg(photos["chelsea"]))
    photos["coffee"].save(root / "coffee.png")
    photos["astronaut"].save(root / "astronaut.webp")
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("not an image at all")
    whole = _jpeg(photos["rocket"])
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    # 10000 x 10000 pixels in a few kilobytes: a decompression bomb for the default limit.
    Image.new("1", (10_000, 10_000)).save(root / "bomb.png", optimize=True)
    (root / ".hidden.jpg").write_bytes(_jpeg(photos["camera"]))
    return root


def _by_name(report_images: list[object]) -> dict[str, object]:
    return {Path(str(e.path)).name: e for e in report_images}  # type: ignore[attr-defined]


def test_index_folder_records_good_and_bad_files(
    settings: Settings, dataset_name: str, mixed_folder: Path
) -> None:
    selection = local_items([mixed_folder], folder=None, meta=UserMetadata(user_tags=["t1"]))
    report = ingest(selection.items, dataset_name, settings=settings)

    assert (report.indexed, report.failed, report.skipped) == (3, 4, 0)
    entries = _by_name(report.images)
    assert ".hidden.jpg" not in entries
    errors = {name: e.error for name, e in entries.items()}  # type: ignore[attr-defined]
    assert "empty" in errors["empty.jpg"]
    assert "not a recognised image" in errors["notes.txt"]
    assert "truncated" in errors["truncated.jpg"] or "corrupt" in errors["truncated.jpg"]
    assert "100000000" in errors["bomb.png"].replace(",", "").replace("_", "")

    with connect(settings) as conn:
        chelsea = get_image(conn, settings.workspace, entries["chelsea.jpg"].id)  # type: ignore[attr-defined]
        bad = get_image(conn, settings.workspace, entries["notes.txt"].id)  # type: ignore[attr-defined]
        embedding = get_embedding(conn, chelsea.id, settings.model)
    assert chelsea.status is ImageStatus.INDEXED
    assert chelsea.folder == "/cats" and chelsea.name == "chelsea.jpg"
    assert (chelsea.width, chelsea.height, chelsea.format) == (451, 300, "JPEG")
    assert chelsea.user_tags == ["t1"]
    assert any("cat" in name for name in chelsea.auto_tags.objects)
    assert chelsea.sha256 is not None and len(chelsea.sha256) == 64
    assert embedding is not None and embedding.shape == (1280,)
    assert bad.status is ImageStatus.FAILED and bad.error


def test_reindex_is_idempotent_and_picks_up_changes(
    settings: Settings, dataset_name: str, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    photos["chelsea"].save(folder / "a.png")
    photos["coffee"].save(folder / "b.png")
    first = ingest(local_items([folder], folder=None, meta=UserMetadata()).items,
                   dataset_name, settings=settings)
    second = ingest(local_items([folder], folder=None, meta=UserMetadata()).items,
                    dataset_name, settings=settings)
    assert (first.indexed, second.indexed, second.skipped) == (2, 0, 2)
    assert [e.id for e in first.images] == [e.id for e in second.images]

    photos["rocket"].save(folder / "a.png")  # same name, new content
    third = ingest(local_items([folder], folder=None, meta=UserMetadata()).items,
                   dataset_name, settings=settings)
    assert (third.indexed, third.skipped) == (1, 1)
    changed = next(e for e in third.images if e.path.endswith("a.png"))
    assert changed.id == first.images[0].id
    with connect(settings) as conn:
        record = get_image(conn, settings.workspace, changed.id)  # type: ignore[arg-type]
    assert (record.width, record.height) == (640, 427)


def test_same_file_twice_in_one_run_is_indexed_once(
    settings: Settings, dataset_name: str, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    path = tmp_path / "one.jpg"
    path.write_bytes(_jpeg(photos["coins"]))
    report = ingest(local_items([path, path, tmp_path], folder=None, meta=UserMetadata()).items,
                    dataset_name, settings=settings)
    assert report.indexed == 1 and len(report.images) == 1


def _tiled(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size)
    for top in range(0, size[1], picture.height):
        for left in range(0, size[0], picture.width):
            canvas.paste(picture, (left, top))
    return canvas


def test_phone_photos_and_screenshots_are_decoded_reduced_with_the_originals_facts(
    settings: Settings, dataset_name: str, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    """Issue 13: a 12 MP JPEG shot in portrait (stored landscape, EXIF orientation 6) and
    a 2560x1440 PNG are decoded at 1/4 and 1/4 for the model and the attributes; the rows
    keep the originals' displayed size, and the vectors, tags and attributes are those of
    a full decode."""
    upright = _tiled(photos["chelsea"], (3024, 4032))
    exif = Image.Exif()
    exif[0x0112] = 6
    phone = tmp_path / "phone.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(phone, quality=90, exif=exif)
    screen = tmp_path / "screen.png"
    _tiled(photos["coffee"], (2560, 1440)).save(screen)
    report = ingest(local_items([phone, screen], folder=None, meta=UserMetadata()).items,
                    dataset_name, settings=settings)
    assert report.indexed == 2
    ids = {Path(e.path).name: e.id for e in report.images}
    model = get_model(settings.model, settings)
    expected_size = {"phone.jpg": (3024, 4032, "JPEG"), "screen.png": (2560, 1440, "PNG")}
    for name, (width, height, fmt) in expected_size.items():
        with connect(settings) as conn:
            record = get_image(conn, settings.workspace, ids[name])  # type: ignore[arg-type]
            stored = get_embedding(conn, record.id, settings.model)
        assert (record.width, record.height, record.format) == (width, height, fmt)
        full = decode_image((tmp_path / name).read_bytes(), max_pixels=settings.max_image_pixels,
                            max_bytes=settings.max_file_bytes)
        assert full.image.size == (width, height)  # the old path: everything decoded
        reference = model.embed_images([full.image])
        assert stored is not None
        assert float(stored @ reference.embeddings[0]) > 0.99
        assert set(record.auto_tags.attributes) == set(compute_attributes(full.image))
        assert reference.class_scores is not None
        top = model.class_names[int(reference.class_scores[0].argmax())]  # type: ignore[index]
        if reference.class_scores[0].max() > 0.3:  # a confident class stays the tag
            assert top in record.auto_tags.objects


def test_missing_path_is_reported_not_raised(tmp_path: Path) -> None:
    selection = local_items([tmp_path / "nope"], folder=None, meta=UserMetadata())
    assert selection.items == []
    assert selection.missing[0].error == "no such file or directory"


def test_metadata_with_a_name_it_does_not_know_is_refused() -> None:
    # The library's name is user_tags (the API's: tags); a misspelt field must not vanish.
    with pytest.raises(ValidationError, match="tags"):
        UserMetadata(tags=["holiday"])  # type: ignore[call-arg]


def test_remove_by_path_directory_and_id(
    settings: Settings, dataset_name: str, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    root = tmp_path / "r"
    (root / "sub").mkdir(parents=True)
    photos["chelsea"].save(root / "a.png")
    photos["coffee"].save(root / "sub" / "b.png")
    photos["rocket"].save(root / "sub" / "c.png")
    photos["coins"].save(root / "d.png")
    report = ingest(local_items([root], folder=None, meta=UserMetadata()).items,
                    dataset_name, settings=settings)
    ids = {Path(e.path).name: e.id for e in report.images}

    exact, prefixes = local_uris([root / "a.png", root / "sub"])
    removed = remove(dataset_name, uris=exact, uri_prefixes=prefixes,
                     ids=[ids["d.png"]], settings=settings)  # type: ignore[list-item]
    assert removed.removed == 4
    again = remove(dataset_name, uris=exact, settings=settings)
    assert again.removed == 0
    with connect(settings) as conn:
        assert get_embedding(conn, ids["a.png"], settings.model) is None  # type: ignore[arg-type]


def test_explicit_folder_and_metadata(
    settings: Settings, dataset_name: str, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    photos["coffee"].save(tmp_path / "x.png")
    meta = UserMetadata(user_tags=["a", "b"], batch_id="b1", annotation_job_id="j1", split="train")
    report = ingest(local_items([tmp_path / "x.png"], folder="trips/2024/", meta=meta).items,
                    dataset_name, settings=settings)
    with connect(settings) as conn:
        record = get_image(conn, settings.workspace, report.images[0].id)  # type: ignore[arg-type]
    assert record.folder == "/trips/2024"
    assert (record.batch_id, record.annotation_job_id, record.split) == ("b1", "j1", "train")


@mock_aws
def test_ingest_from_s3_references(
    settings: Settings, dataset_name: str, photos: dict[str, Image.Image]
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="pixdex-test")
    s3.put_object(Bucket="pixdex-test", Key="in/cat.jpg", Body=_jpeg(photos["chelsea"]))
    s3.put_object(Bucket="pixdex-test", Key="in/broken.jpg", Body=b"\xff\xd8\xff garbage")
    items = [
        IngestItem(BlobRef("s3", "pixdex-test", "in/cat.jpg"), folder="/in"),
        IngestItem(BlobRef("s3", "pixdex-test", "in/broken.jpg"), folder="/in"),
        IngestItem(BlobRef("s3", "pixdex-test", "in/missing.jpg"), folder="/in"),
    ]
    from pixdex import blobs

    blobs._store.cache_clear()  # the S3 client must be created inside the moto context
    try:
        report = ingest(items, dataset_name, settings=settings)
    finally:
        blobs._store.cache_clear()
    statuses = {Path(e.path).name: (e.status, e.error) for e in report.images}
    assert statuses["cat.jpg"][0] == "indexed"
    assert statuses["broken.jpg"][0] == "failed"
    assert statuses["missing.jpg"] == ("failed", "no such object: s3://pixdex-test/in/missing.jpg")
    assert report.images[0].path == "s3://pixdex-test/in/cat.jpg"
