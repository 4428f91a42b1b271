"""Zero-shot taxonomy and tagger mechanics, with tiny random SigLIP / CLIP models.

Random weights say nothing about tag quality, so these tests check the mechanics only:
sizes, prompt ensembling, the cache, each family's scoring rule, thresholds, workspace
extensions and re-tagging stored embeddings in the real database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from pixdex.app.retag import retag_dataset, workspace_taxonomy
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError
from pixdex.models import TAG_KINDS, AutoTags, ImageStatus
from pixdex.storage.catalog import ensure_dataset, register_model
from pixdex.storage.connection import connect
from pixdex.storage.images import ImageWrite, get_image, write_images
from pixdex.storage.taxonomy import delete_extension, list_extensions, upsert_extension
from pixdex.taxonomy import (
    KindRule,
    Taxonomy,
    TaxonomyExtension,
    ZeroShotTagger,
    base_taxonomy,
    merge,
)
from pixdex.vlm import VisionLanguageModel
from pixdex.vlm.export import export_checkpoint
from tests.tiny_vlm import build_tiny_checkpoint


@pytest.fixture(scope="module", params=["siglip", "clip"])
def vlm(request: pytest.FixtureRequest, settings: Settings) -> Iterator[VisionLanguageModel]:
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny_checkpoint(request.param, Path(tmp) / "ckpt")
        name = f"tax-{request.param}"
        export_checkpoint(str(ckpt), Path(tmp) / name, name=name, settings=settings)
        yield VisionLanguageModel(Path(tmp) / name, settings, batch_size=64)


def small_taxonomy() -> Taxonomy:
    base = base_taxonomy()
    return base.model_copy(
        update={"objects": base.objects[:6], "scenes": base.scenes[:4],
                "attributes": base.attributes[:5]}
    )  # fmt: skip


def test_base_taxonomy_is_big_enough_and_well_formed() -> None:
    t = base_taxonomy()
    assert len(t.objects) >= 150 and len(t.scenes) >= 40 and len(t.attributes) >= 30
    assert t.version
    for kind in TAG_KINDS:
        for entry in t.entries(kind):
            prompts = t.prompts(kind, entry)
            assert prompts and all(p.strip() for p in prompts)
            assert entry.prompts or all(entry.name in p for p in prompts)
    assert t.digest() == base_taxonomy().digest()


@pytest.mark.parametrize("name", ["", "a:b", "x,y", "n" * 81])
def test_bad_entry_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError):
        TaxonomyExtension(kind="objects", name=name)


def test_bad_templates_and_duplicates_are_rejected() -> None:
    data = base_taxonomy().model_dump()
    data["templates"]["objects"] = ["a photo without a slot"]
    with pytest.raises(ValidationError, match="templates"):
        Taxonomy.model_validate(data)
    data = base_taxonomy().model_dump()
    data["scenes"] = [*data["scenes"], data["scenes"][0]]
    with pytest.raises(ValidationError, match="duplicate"):
        Taxonomy.model_validate(data)
    with pytest.raises(ValidationError):
        TaxonomyExtension(kind="colours", name="teal")  # type: ignore[arg-type]


def test_merge_adds_replaces_and_disables_entries() -> None:
    base = base_taxonomy()
    assert merge(base, []) is base
    merged = merge(base, [
        TaxonomyExtension(kind="objects", name="Forklift", prompts=("a forklift in a warehouse",)),
        TaxonomyExtension(kind="objects", name="cat", enabled=False),
        TaxonomyExtension(kind="scenes", name="beach", prompts=("a sandy beach",)),
    ])  # fmt: skip
    names = [e.name for e in merged.objects]
    assert "forklift" in names and "cat" not in names
    assert len(merged.objects) == len(base.objects)
    beach = next(e for e in merged.scenes if e.name == "beach")
    assert merged.prompts("scenes", beach) == ("a sandy beach",)
    assert merged.version.startswith(base.version + "+ws.")
    assert merged.digest() != base.digest()


def test_text_embeddings_are_prompt_ensembles(vlm: VisionLanguageModel, tmp_path: Path) -> None:
    t = small_taxonomy()
    tagger = ZeroShotTagger(vlm, Settings(home=tmp_path), t)
    text = tagger.text_embeddings()
    for kind in TAG_KINDS:
        assert text[kind].shape == (len(t.entries(kind)), vlm.spec.dim)
        np.testing.assert_allclose(np.linalg.norm(text[kind], axis=1), 1.0, atol=1e-5)
    entry = t.objects[2]
    mean = vlm.embed_texts(list(t.prompts("objects", entry))).mean(axis=0)
    np.testing.assert_allclose(text["objects"][2], mean / np.linalg.norm(mean), atol=1e-5)


def test_text_embeddings_are_cached_per_model_and_taxonomy(
    vlm: VisionLanguageModel, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path)
    first = ZeroShotTagger(vlm, settings, small_taxonomy())
    expected = first.text_embeddings()
    assert (
        first.cache_path.is_file() and first.cache_path.parent == settings.models_dir / "taxonomy"
    )
    calls: list[int] = []
    real = vlm.embed_texts

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return real(texts)

    vlm.embed_texts = counting  # type: ignore[method-assign]
    try:
        again = ZeroShotTagger(vlm, settings, small_taxonomy()).text_embeddings()
        assert calls == []  # read from the cache file
        for kind in TAG_KINDS:
            np.testing.assert_array_equal(again[kind], expected[kind])
        first.cache_path.write_bytes(b"corrupt")
        rebuilt = ZeroShotTagger(vlm, settings, small_taxonomy()).text_embeddings()
        assert calls  # recomputed
        np.testing.assert_allclose(rebuilt["objects"], expected["objects"], atol=1e-6)
        other = merge(small_taxonomy(), [TaxonomyExtension(kind="objects", name="forklift")])
        assert ZeroShotTagger(vlm, settings, other).cache_path != first.cache_path
    finally:
        del vlm.embed_texts


def test_scores_follow_each_familys_rule(
    vlm: VisionLanguageModel, photos: dict[str, Image.Image], tmp_path: Path
) -> None:
    tagger = ZeroShotTagger(vlm, Settings(home=tmp_path), small_taxonomy())
    emb = vlm.embed_images(list(photos.values())).embeddings
    scores = tagger.scores(emb)
    text = tagger.text_embeddings()
    m = vlm.manifest
    for kind in TAG_KINDS:
        logits = (emb @ text[kind].T) * m.logit_scale + m.logit_bias
        if m.family == "siglip":
            expected = 1 / (1 + np.exp(-logits))
        else:
            expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            np.testing.assert_allclose(scores[kind].sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(scores[kind], expected, atol=1e-5)
        assert np.all((scores[kind] >= 0) & (scores[kind] <= 1))


def test_thresholds_and_top_k_decide_the_tags(
    vlm: VisionLanguageModel, photos: dict[str, Image.Image], tmp_path: Path
) -> None:
    emb = vlm.embed_images([photos["chelsea"], photos["coffee"]]).embeddings
    settings = Settings(home=tmp_path)
    keep_two = {kind: KindRule(0.0, 2) for kind in TAG_KINDS}
    tags = ZeroShotTagger(vlm, settings, small_taxonomy(), keep_two).tag(emb)
    assert len(tags) == 2
    names = {kind: {e.name for e in small_taxonomy().entries(kind)} for kind in TAG_KINDS}
    for t in tags:
        for kind in TAG_KINDS:
            got = getattr(t, kind)
            assert len(got) == 2 and set(got) <= names[kind]
            assert list(got.values()) == sorted(got.values(), reverse=True)
    none = {kind: KindRule(1.01, 5) for kind in TAG_KINDS}
    assert ZeroShotTagger(vlm, settings, small_taxonomy(), none).tag(emb) == [AutoTags()] * 2


def test_embeddings_of_another_size_are_rejected(vlm: VisionLanguageModel, tmp_path: Path) -> None:
    tagger = ZeroShotTagger(vlm, Settings(home=tmp_path), small_taxonomy())
    with pytest.raises(InvalidInputError, match="shape"):
        tagger.tag(np.zeros((1, vlm.spec.dim + 1), np.float32))


def test_workspace_extensions_and_retagging_in_the_database(
    vlm: VisionLanguageModel, photos: dict[str, Image.Image], settings: Settings,
    dataset_name: str,
) -> None:  # fmt: skip
    workspace = f"ws-{dataset_name}"
    with connect(settings) as conn:
        upsert_extension(
            conn,
            workspace,
            TaxonomyExtension(kind="objects", name="forklift", prompts=("a yellow forklift",)),
        )
        upsert_extension(conn, workspace, TaxonomyExtension(kind="objects", name="dog",
                                                            enabled=False))  # fmt: skip
        assert [e.name for e in list_extensions(conn, workspace)] == ["dog", "forklift"]
    taxonomy = workspace_taxonomy(settings, workspace)
    assert "forklift" in [e.name for e in taxonomy.objects]
    assert "dog" not in [e.name for e in taxonomy.objects]

    images = [photos["chelsea"], photos["coffee"], photos["rocket"]]
    emb = vlm.embed_images(images).embeddings
    with connect(settings) as conn:
        ds = ensure_dataset(conn, workspace, dataset_name)
        register_model(conn, vlm.spec, ds.id)
        ids = write_images(conn, vlm.spec.name, [
            ImageWrite(dataset_id=ds.id, storage_key=f"file:///x/{i}.png", name=f"{i}.png",
                       folder="/x", sha256=f"{i:064d}", byte_size=1, status=ImageStatus.INDEXED,
                       auto_tags=AutoTags(objects={"old": 0.9}, attributes={"dark": 0.7}),
                       embedding=e)
            for i, e in enumerate(emb)
        ])  # fmt: skip
    report = retag_dataset(dataset_name, vlm, settings, workspace=workspace, page_size=2)
    assert report.images == 3 and report.taxonomy_version == taxonomy.version
    expected = ZeroShotTagger(vlm, settings, taxonomy).tag(emb)
    with connect(settings) as conn:
        for image_id, want in zip(ids, expected, strict=True):
            got = get_image(conn, workspace, image_id).auto_tags
            assert "old" not in got.objects and got.attributes.get("dark") == 0.7
            assert got.objects == want.objects and got.scenes == want.scenes
        assert delete_extension(conn, workspace, "objects", "dog")
        assert not delete_extension(conn, workspace, "objects", "dog")
    with pytest.raises(NotFoundError):
        retag_dataset("no-such-dataset", vlm, settings, workspace=workspace)
