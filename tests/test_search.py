"""Search against the real database: real photos for relevance, synthetic vectors for recall."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps
from pydantic import ValidationError

from pixdex.app.ingest import ingest
from pixdex.app.search import MAX_SIMILARITY_WINDOW, encode_query_image, search
from pixdex.app.sources import local_items
from pixdex.config import Settings
from pixdex.errors import ConflictError, InvalidInputError, NotFoundError
from pixdex.inference.base import ModelSpec
from pixdex.models import (
    MAX_SEARCH_LIMIT,
    AutoTags,
    BoundingBox,
    ImageStatus,
    SearchQuery,
    UserMetadata,
)
from pixdex.storage import catalog, search_sql
from pixdex.storage.connection import connect
from pixdex.storage.images import ImageWrite, write_images

SYNTHETIC = ModelSpec(name="test-64", dim=64, encodes_text=False, tags=False, input_size=224)


@pytest.fixture(scope="module")
def photo_dataset(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Image.Image]
) -> tuple[str, dict[str, uuid.UUID], Path]:
    """Originals plus edited copies, indexed once for the module."""
    root = tmp_path_factory.mktemp("photos")
    (root / "edits").mkdir()
    for name, picture in photos.items():
        picture.save(root / f"{name}.png")
    for name in ("chelsea", "coffee", "rocket"):
        picture = photos[name]
        ImageOps.mirror(picture).save(root / "edits" / f"{name}_flip.jpg", quality=70)
        w, h = picture.size
        cropped = picture.crop((w // 8, h // 8, w - w // 8, h - h // 8))
        cropped.save(root / "edits" / f"{name}_crop.jpg")
        ImageEnhance.Brightness(picture).enhance(0.15).save(root / "edits" / f"{name}_dark.jpg")
    name = f"photos-{uuid.uuid4().hex[:8]}"
    report = ingest(local_items([root], folder=None, meta=UserMetadata(split="train")).items,
                    name, settings=settings)
    assert report.failed == 0
    ids = {Path(e.path).stem: e.id for e in report.images if e.id is not None}
    return name, ids, root


def _query_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def test_near_duplicates_come_first(
    settings: Settings, photo_dataset: tuple[str, dict[str, uuid.UUID], Path],
    photos: dict[str, Image.Image],
) -> None:
    dataset, _, _ = photo_dataset
    for name in ("chelsea", "coffee", "rocket"):
        # A fresh edit never indexed: rotated slightly and recompressed.
        query = photos[name].rotate(4, expand=False)
        vector = encode_query_image(_query_bytes(query), settings=settings)
        page = search(SearchQuery(dataset=dataset, like_vector=vector, limit=3), settings)
        top_two = {hit.name.split(".")[0] for hit in page.results[:2]}
        assert top_two <= {name, f"{name}_flip", f"{name}_crop"}, (name, page.results)
        assert page.results[0].score > 0.8
        assert page.exact  # small dataset: exact ranking


def test_like_image_id_excludes_itself_and_ranks_copies(
    settings: Settings, photo_dataset: tuple[str, dict[str, uuid.UUID], Path]
) -> None:
    dataset, ids, _ = photo_dataset
    page = search(SearchQuery(dataset=dataset, like_image_id=ids["coffee"], limit=5), settings)
    names = [hit.name.split(".")[0] for hit in page.results]
    assert "coffee" not in names
    assert set(names[:2]) == {"coffee_flip", "coffee_crop"}
    assert page.total == len(ids) - 1


def test_bounding_box_searches_a_region(
    settings: Settings, photo_dataset: tuple[str, dict[str, uuid.UUID], Path],
    photos: dict[str, Image.Image],
) -> None:
    dataset, _, _ = photo_dataset
    # Paste the cat into the corner of an unrelated photo; searching that corner finds cats.
    canvas = photos["hubble_deep_field"].resize((900, 600))
    canvas.paste(photos["chelsea"], (0, 0))
    box = BoundingBox(x=0.0, y=0.0, width=451 / 900, height=300 / 600)
    whole = encode_query_image(_query_bytes(canvas), settings=settings)
    region = encode_query_image(_query_bytes(canvas), box=box, settings=settings)
    by_region = search(SearchQuery(dataset=dataset, like_vector=region, limit=1), settings)
    assert by_region.results[0].name.startswith("chelsea")
    assert not np.allclose(whole, region)


def test_tag_search_or_within_and_across_kinds(
    settings: Settings, photo_dataset: tuple[str, dict[str, uuid.UUID], Path]
) -> None:
    dataset, _, _ = photo_dataset
    cats = search(SearchQuery(dataset=dataset, objects=["tabby cat,tiger cat"]), settings)
    assert cats.total >= 2 and all(h.name.startswith("chelsea") for h in cats.results)
    assert [h.score for h in cats.results] == sorted((h.score for h in cats.results), reverse=True)
    either = search(SearchQuery(dataset=dataset, objects=["tabby cat", "espresso"]), settings)
    assert {h.name.split("_")[0].split(".")[0] for h in either.results} == {"chelsea", "coffee"}
    dark_cats = search(
        SearchQuery(dataset=dataset, objects=["tabby cat,tiger cat"], attributes=["dark"]),
        settings,
    )
    assert [h.name for h in dark_cats.results] == ["chelsea_dark.jpg"]
    assert search(SearchQuery(dataset=dataset, objects=["unicorn"]), settings).total == 0


def test_metadata_filters_and_threshold(
    settings: Settings, photo_dataset: tuple[str, dict[str, uuid.UUID], Path]
) -> None:
    dataset, ids, _ = photo_dataset
    edits = search(SearchQuery(dataset=dataset, folder="/edits", limit=100), settings)
    assert edits.total == 9 and all(h.folder == "/edits" for h in edits.results)
    assert search(SearchQuery(dataset=dataset, split="test"), settings).total == 0
    assert search(SearchQuery(dataset=dataset, split="train"), settings).total == len(ids)
    close = search(
        SearchQuery(dataset=dataset, like_image_id=ids["chelsea"], threshold=0.8, limit=50),
        settings,
    )
    assert close.results and all(h.score >= 0.8 for h in close.results)
    assert close.total == len(close.results)
    in_folder = search(
        SearchQuery(dataset=dataset, like_image_id=ids["chelsea"], folder="/edits"), settings
    )
    assert all(h.folder == "/edits" for h in in_folder.results)


def test_bad_queries_get_clear_errors(
    settings: Settings, photo_dataset: tuple[str, dict[str, uuid.UUID], Path]
) -> None:
    dataset, _, _ = photo_dataset
    with pytest.raises(NotFoundError, match="does not exist"):
        search(SearchQuery(dataset="no-such-dataset", objects=["cat"]), settings)
    with pytest.raises(InvalidInputError, match="at least one search criterion"):
        search(SearchQuery(dataset=dataset), settings)
    with pytest.raises(NotFoundError):
        search(SearchQuery(dataset=dataset, like_image_id=uuid.uuid4()), settings)
    with pytest.raises(InvalidInputError, match="dimensions"):
        search(SearchQuery(dataset=dataset, like_vector=[0.1] * 3), settings)
    with pytest.raises(InvalidInputError, match="non-zero"):
        search(SearchQuery(dataset=dataset, like_vector=[0.0] * 1280), settings)
    # Deep similarity pages would sort every matching row: refused, with what to do.
    deep = SearchQuery(dataset=dataset, like_vector=[0.1] * 1280, offset=MAX_SIMILARITY_WINDOW,
                       limit=1)
    with pytest.raises(InvalidInputError, match="narrow the search") as too_deep:
        search(deep, settings)
    assert too_deep.value.field == "offset"
    last = deep.model_copy(update={"offset": MAX_SIMILARITY_WINDOW - 1})
    assert search(last, settings).results == []  # the last page allowed: past the end here
    assert search(SearchQuery(dataset=dataset, folder="/", offset=50_000), settings).total
    for bad in ({"limit": 0}, {"limit": MAX_SEARCH_LIMIT + 1}, {"offset": -1}, {"threshold": 1.5}):
        with pytest.raises(ValidationError):
            SearchQuery(dataset=dataset, objects=["x"], **bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SearchQuery(dataset=dataset, like_vector=[1.0], like_image_id=uuid.uuid4())
    with pytest.raises(ValueError, match="inside the image"):
        BoundingBox.parse("0.5,0.5,0.6,0.1")
    with pytest.raises(ValueError, match="four"):
        BoundingBox.parse("0.5,0.5")


def test_failed_image_cannot_be_a_query(
    settings: Settings, dataset_name: str, tmp_path: Path
) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    (tmp_path / "ok.png").write_bytes(_query_bytes(Image.new("RGB", (64, 64), "red")))
    report = ingest(local_items([tmp_path], folder=None, meta=UserMetadata()).items,
                    dataset_name, settings=settings)
    bad = next(e for e in report.images if e.status == "failed")
    with pytest.raises(ConflictError, match="status is failed"):
        search(SearchQuery(dataset=dataset_name, like_image_id=bad.id), settings)


# --- synthetic vectors: recall of filtered search and pagination --------------------------

def _clustered(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    centres = rng.normal(size=(20, dim))
    points = centres[rng.integers(0, 20, n)] + 0.6 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def synthetic(settings: Settings) -> tuple[str, np.ndarray, list[uuid.UUID], list[str]]:
    rng = np.random.default_rng(7)
    vectors = _clustered(rng, 3000, SYNTHETIC.dim)
    splits = ["rare" if i % 100 == 0 else ("valid" if i % 10 == 0 else "train")
              for i in range(len(vectors))]
    name = f"synthetic-{uuid.uuid4().hex[:8]}"
    with connect(settings) as conn:
        ds = catalog.ensure_dataset(conn, settings.workspace, name)
        catalog.register_model(conn, SYNTHETIC, ds.id)
        writes = [
            ImageWrite(
                dataset_id=ds.id, storage_key=f"mem://{i}", name=f"{i}.jpg", folder="/",
                sha256=None, byte_size=None, status=ImageStatus.INDEXED,
                meta=UserMetadata(split=split), auto_tags=AutoTags(), embedding=vector,
            )
            for i, (vector, split) in enumerate(zip(vectors, splits, strict=True))
        ]
        ids = write_images(conn, SYNTHETIC.name, writes)
    return name, vectors, ids, splits


def _exact_top(vectors: np.ndarray, mask: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    # The database stores halfvec: rank the same rounded values, in float64.
    stored = vectors.astype(np.float16).astype(np.float64)
    asked = query.astype(np.float16).astype(np.float64)
    sims = (stored @ asked) / (np.linalg.norm(stored, axis=1) * np.linalg.norm(asked))
    sims[~mask] = -np.inf
    order = np.argsort(-sims, kind="stable")
    return [int(i) for i in order[:k] if np.isfinite(sims[i])]


@pytest.mark.parametrize("exact_cap", [0, 100_000], ids=["hnsw", "exact"])
@pytest.mark.parametrize("split", [None, "valid", "rare"])
def test_filtered_search_matches_exact_answer(
    settings: Settings, synthetic: tuple[str, np.ndarray, list[uuid.UUID], list[str]],
    exact_cap: int, split: str | None,
) -> None:
    name, vectors, ids, splits = synthetic
    tuned = settings.model_copy(update={"exact_search_max_rows": exact_cap})
    mask = np.array([split is None or s == split for s in splits])
    rng = np.random.default_rng(11)
    recalls = []
    for row in rng.choice(len(vectors), 20, replace=False):
        query = vectors[row] + 0.05 * rng.normal(size=vectors.shape[1]).astype(np.float32)
        page = search(
            SearchQuery(dataset=name, model=SYNTHETIC.name, like_vector=query.tolist(),
                        split=split, limit=10),
            tuned,
        )
        truth = {ids[i] for i in _exact_top(vectors, mask, query, 10)}
        got = {hit.id for hit in page.results}
        assert len(got) == 10, (page.exact, page.total, len(page.results))
        recalls.append(len(got & truth) / 10)
    assert np.mean(recalls) >= (1.0 if exact_cap else 0.95), recalls


def test_hnsw_is_used_for_large_unfiltered_sets(
    settings: Settings, synthetic: tuple[str, np.ndarray, list[uuid.UUID], list[str]]
) -> None:
    name, _, _, _ = synthetic
    with connect(settings) as conn:
        ds = catalog.get_dataset(conn, settings.workspace, name)
        assert search_sql.uses_hnsw(conn, SYNTHETIC.name, SYNTHETIC.dim,
                                    search_sql.Filters(dataset_id=ds.id))


@pytest.mark.parametrize("exact_cap", [0, 100_000], ids=["hnsw", "exact"])
def test_pages_neither_overlap_nor_skip(
    settings: Settings, synthetic: tuple[str, np.ndarray, list[uuid.UUID], list[str]],
    exact_cap: int,
) -> None:
    name, vectors, _, _ = synthetic
    tuned = settings.model_copy(update={"exact_search_max_rows": exact_cap})
    query = vectors[5].tolist()
    whole = search(SearchQuery(dataset=name, model=SYNTHETIC.name, like_vector=query,
                               limit=120), tuned)
    pages = []
    for offset in range(0, 120, 25):
        page = search(SearchQuery(dataset=name, model=SYNTHETIC.name, like_vector=query,
                                  offset=offset, limit=25), tuned)
        pages.extend(hit.id for hit in page.results)
    assert pages[:120] == [hit.id for hit in whole.results]
    assert len(set(pages)) == len(pages)


