"""Dataset curation through the library, on the embedded PostgreSQL with real photos:
duplicate clusters, split leakage, outliers, label doubts, the ingest gate, and that all
of it stays current as images are added and removed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest
from PIL import Image

from pixdex.app import curation, duplicate_gate, label_doubts
from pixdex.app.curation_schemas import LEVEL_THRESHOLDS, DuplicateGate
from pixdex.app.ingest import IngestItem, ingest
from pixdex.app.removal import remove
from pixdex.blobs import BlobRef
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError
from pixdex.models import IndexReport, UserMetadata
from pixdex.storage.connection import connect
from tests.curation_photos import AUGMENTATIONS

Add = Callable[..., IndexReport]
LIGHT = AUGMENTATIONS["light"]


@pytest.fixture
def add(tmp_path: Path, settings: Settings, dataset_name: str) -> Add:
    """Index pictures given as ``name -> (image, split, classes)`` into the test's dataset."""

    def run(pictures: dict[str, tuple[Image.Image, str | None, dict[str, int]]],
            gate: DuplicateGate | None = None) -> IndexReport:
        items = []
        for name, (picture, split, classes) in pictures.items():
            path = tmp_path / name
            picture.save(path)
            meta = UserMetadata(split=split, annotation_classes=classes)
            items.append(IngestItem(BlobRef.parse(path.as_uri()), meta=meta))
        return ingest(items, dataset_name, settings=settings, gate=gate)

    return run


def _ids(report: IndexReport) -> dict[str, UUID]:
    return {Path(e.path).name: e.id for e in report.images if e.id is not None}


@pytest.fixture
def planted(add: Add, photos: dict[str, Image.Image]) -> dict[str, UUID]:
    """Five originals in train; a resized copy of chelsea in test and a JPEG re-encode of
    coffee in valid (leaks), a mirrored astronaut in train (a duplicate, no leak)."""
    pictures: dict[str, tuple[Image.Image, str | None, dict[str, int]]] = {
        f"{name}.png": (photos[name], "train", {}) for name in
        ("chelsea", "coffee", "astronaut", "rocket", "coins")
    }
    pictures["chelsea_small.png"] = (LIGHT["resize"](photos["chelsea"]), "test", {})
    pictures["coffee_q70.jpg"] = (LIGHT["jpeg"](photos["coffee"]), "valid", {})
    pictures["astronaut_flip.png"] = (LIGHT["flip"](photos["astronaut"]), "train", {})
    report = add(pictures)
    assert report.indexed == 8
    return _ids(report)


def _clusters(settings: Settings, dataset: str, level: int = 1) -> set[frozenset[str]]:
    page = curation.duplicates(dataset, level=level, settings=settings)
    assert page.total_clusters == len(page.clusters)
    return {frozenset(m.name for m in c.members) for c in page.clusters}


def test_duplicate_clusters_and_keeper(settings: Settings, dataset_name: str,
                                       planted: dict[str, UUID]) -> None:
    page = curation.duplicates(dataset_name, level=1, settings=settings)
    assert page.level == 1 and page.threshold == LEVEL_THRESHOLDS[1]
    assert {frozenset(m.name for m in c.members) for c in page.clusters} == {
        frozenset({"chelsea.png", "chelsea_small.png"}),
        frozenset({"coffee.png", "coffee_q70.jpg"}),
        frozenset({"astronaut.png", "astronaut_flip.png"}),
    }
    chelsea = next(c for c in page.clusters if any(m.name == "chelsea.png" for m in c.members))
    assert chelsea.keep == planted["chelsea.png"]  # the full-size original, not the copy
    assert chelsea.size == 2 and all(m.score >= page.threshold for m in chelsea.members)
    assert {m.split for m in chelsea.members} == {"train", "test"}


def test_level_zero_keeps_only_near_identical(settings: Settings, dataset_name: str,
                                              planted: dict[str, UUID]) -> None:
    finest = _clusters(settings, dataset_name, level=0)
    assert finest <= _clusters(settings, dataset_name, level=1)
    assert not any("rocket.png" in c or "coins.png" in c for c in finest)
    # Coarser levels only ever merge: every level-1 cluster sits inside one at level 4.
    coarse = _clusters(settings, dataset_name, level=4)
    assert all(any(c <= big for big in coarse) for c in _clusters(settings, dataset_name))


def test_paging_by_cluster(settings: Settings, dataset_name: str,
                           planted: dict[str, UUID]) -> None:
    whole = curation.duplicates(dataset_name, level=1, settings=settings)
    first = curation.duplicates(dataset_name, level=1, limit=2, settings=settings)
    rest = curation.duplicates(dataset_name, level=1, offset=2, limit=2, settings=settings)
    assert [c.id for c in first.clusters + rest.clusters] == [c.id for c in whole.clusters]
    assert first.total_clusters == rest.total_clusters == 3


def test_leakage_across_splits(settings: Settings, dataset_name: str,
                               planted: dict[str, UUID]) -> None:
    found = curation.leakage(dataset_name, level=1, settings=settings)
    assert found.counts == {"train/test": 1, "train/valid": 1}
    assert {frozenset((p.a.name, p.b.name)) for p in found.pairs} == {
        frozenset({"chelsea.png", "chelsea_small.png"}), frozenset({"coffee.png", "coffee_q70.jpg"})
    }
    assert found.note is None


def test_leakage_without_splits_has_a_note(add: Add, settings: Settings, dataset_name: str,
                                           photos: dict[str, Image.Image]) -> None:
    add({"a.png": (photos["chelsea"], None, {}), "b.png": (LIGHT["flip"](photos["chelsea"]),
                                                           None, {})})
    found = curation.leakage(dataset_name, settings=settings)
    assert found.pairs == [] and found.counts == {}
    assert found.note is not None and "no splits" in found.note
    assert len(_clusters(settings, dataset_name)) == 1  # the duplicate is there all the same


def test_bad_input(settings: Settings, planted: dict[str, UUID], dataset_name: str) -> None:
    for level in (-1, 5, True):
        with pytest.raises(InvalidInputError, match="0-4") as caught:
            curation.duplicates(dataset_name, level=level, settings=settings)
        assert caught.value.field == "level"
    with pytest.raises(InvalidInputError, match="0-4"):
        curation.leakage(dataset_name, level=9, settings=settings)
    for call in (curation.duplicates, curation.leakage, curation.outliers,
                 label_doubts.label_doubts, curation.recompute):
        with pytest.raises(NotFoundError):
            call("no-such-dataset", settings=settings)


def _graph(settings: Settings, dataset: str) -> tuple[dict[UUID, int], int]:
    """Neighbours listed per image, and images still queued."""
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT n.image_id, count(*) AS k FROM image_neighbours n JOIN datasets d"
            " ON d.id = n.dataset_id WHERE d.name = %s GROUP BY n.image_id", (dataset,),
        ).fetchall()
        queued = conn.execute(
            "SELECT count(*) AS n FROM curation_pending p JOIN datasets d"
            " ON d.id = p.dataset_id WHERE d.name = %s", (dataset,),
        ).fetchone()
    assert queued is not None
    return {UUID(str(r["image_id"])): int(str(r["k"])) for r in rows}, int(str(queued["n"]))


def test_live_as_images_come_and_go(add: Add, settings: Settings, dataset_name: str,
                                    planted: dict[str, UUID],
                                    photos: dict[str, Image.Image]) -> None:
    graph, queued = _graph(settings, dataset_name)
    assert queued == 0 and set(graph.values()) == {7}  # ingest listed them as it wrote
    add({"rocket_crop.png": (LIGHT["crop"](photos["rocket"]), "test", {})})
    assert frozenset({"rocket.png", "rocket_crop.png"}) in _clusters(settings, dataset_name)
    assert curation.leakage(dataset_name, settings=settings).counts["train/test"] == 2

    remove(dataset_name, ids=[planted["chelsea_small.png"]], settings=settings)
    assert frozenset({"chelsea.png", "chelsea_small.png"}) not in _clusters(
        settings, dataset_name)
    graph, queued = _graph(settings, dataset_name)
    # The survivors that listed the removed image were given a replacement on the read.
    assert queued == 0 and len(graph) == 8 and set(graph.values()) == {7}
    assert planted["chelsea_small.png"] not in graph


def test_recompute_matches_incremental(settings: Settings, dataset_name: str,
                                       planted: dict[str, UUID]) -> None:
    before = {level: _clusters(settings, dataset_name, level) for level in range(5)}
    done = curation.recompute(dataset_name, settings=settings)
    assert (done.images, done.model) == (8, settings.model)
    assert {level: _clusters(settings, dataset_name, level) for level in range(5)} == before
    graph, queued = _graph(settings, dataset_name)
    assert queued == 0 and set(graph.values()) == {7}
    # A large dataset's path: batched kNN over the HNSW index on parallel connections.
    ann = settings.model_copy(update={"exact_search_max_rows": 0, "curation_batch": 3})
    assert curation.recompute(dataset_name, settings=ann).images == 8
    assert {level: _clusters(settings, dataset_name, level) for level in range(5)} == before
    graph, queued = _graph(settings, dataset_name)
    assert queued == 0 and set(graph.values()) == {7}


def test_outliers_rank_the_odd_one_out(add: Add, settings: Settings, dataset_name: str,
                                       photos: dict[str, Image.Image]) -> None:
    pictures: dict[str, tuple[Image.Image, str | None, dict[str, int]]] = {}
    for name in ("chelsea", "coffee"):
        for aug in ("crop", "flip", "colour", "blur"):
            pictures[f"{name}_{aug}.png"] = (LIGHT[aug](photos[name]), None, {})
    pictures["hubble.png"] = (photos["hubble_deep_field"], None, {})
    add(pictures)
    ranked = curation.outliers(dataset_name, settings=settings)
    assert ranked.total == 9 and ranked.outliers[0].name == "hubble.png"
    scores = [o.score for o in ranked.outliers]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    page = curation.outliers(dataset_name, offset=1, limit=3, settings=settings)
    assert [o.id for o in page.outliers] == [o.id for o in ranked.outliers[1:4]]


def test_label_doubts(add: Add, settings: Settings, dataset_name: str,
                      photos: dict[str, Image.Image]) -> None:
    pictures: dict[str, tuple[Image.Image, str | None, dict[str, int]]] = {
        f"cat_{aug}.png": (LIGHT[aug](photos["chelsea"]), None, {"cat": 1})
        for aug in ("crop", "flip", "colour", "blur")
    }
    pictures["cat_resize.png"] = (LIGHT["resize"](photos["chelsea"]), None, {"dog": 1})
    pictures["cup.png"] = (photos["coffee"], None, {"rocket": 1})
    add(pictures)
    found = label_doubts.label_doubts(dataset_name, settings=settings)
    doubted = {d.name: d for d in found.neighbour_doubts}
    assert "cat_resize.png" in doubted and doubted["cat_resize.png"].suggested == "cat"
    assert doubted["cat_resize.png"].classes == ["dog"] and doubted["cat_resize.png"].score > 0.5
    assert not any(name.startswith("cat_") and name != "cat_resize.png" for name in doubted)
    contradicted = {c.name: c for c in found.tag_contradictions}
    assert "cup.png" in contradicted and contradicted["cup.png"].classes == ["rocket"]
    assert all(score >= label_doubts.TAG_CONFIDENCE
               for score in contradicted["cup.png"].tags.values())
    assert not any(name.startswith("cat_") for name in contradicted if name != "cat_resize.png")


def test_gate_skip_link_allow(add: Add, settings: Settings, dataset_name: str,
                              photos: dict[str, Image.Image]) -> None:
    first = add({"chelsea.png": (photos["chelsea"], None, {})})
    original = _ids(first)["chelsea.png"]
    skipped = add({"chelsea_flip.png": (LIGHT["flip"](photos["chelsea"]), None, {}),
                   "coffee.png": (photos["coffee"], None, {}),
                   "coffee_copy.jpg": (LIGHT["jpeg"](photos["coffee"]), None, {})},
                  gate=DuplicateGate(on_duplicate="skip", level=1))
    entries = {Path(e.path).name: e for e in skipped.images}
    assert (skipped.indexed, skipped.skipped) == (1, 2)
    assert entries["chelsea_flip.png"].status == "skipped"
    assert entries["chelsea_flip.png"].duplicate_of == original
    assert str(original) in (entries["chelsea_flip.png"].error or "")
    # A duplicate of an image earlier in the same run is caught too.
    assert entries["coffee_copy.jpg"].duplicate_of == entries["coffee.png"].id
    assert curation.duplicates(dataset_name, settings=settings).total_clusters == 0

    duplicate_gate.set_dataset_gate(dataset_name, DuplicateGate(on_duplicate="link", level=1),
                                    settings=settings)
    linked = add({"chelsea_colour.png": (LIGHT["colour"](photos["chelsea"]), None, {})})
    entry = linked.images[0]
    assert entry.status == "indexed" and entry.duplicate_of == original
    with connect(settings) as conn:
        row = conn.execute("SELECT duplicate_of, level FROM duplicate_links WHERE image_id = %s",
                           (entry.id,)).fetchone()
    assert row is not None and (row["duplicate_of"], row["level"]) == (original, 1)
    allowed = add({"chelsea_crop.png": (LIGHT["crop"](photos["chelsea"]), None, {})},
                  gate=DuplicateGate(on_duplicate="allow"))
    assert allowed.indexed == 1 and allowed.images[0].duplicate_of is None
    assert duplicate_gate.get_dataset_gate(dataset_name, settings=settings).on_duplicate == "link"
    with pytest.raises(ValueError, match="0-4"):
        DuplicateGate(on_duplicate="skip", level=5)
