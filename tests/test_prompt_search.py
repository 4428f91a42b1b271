"""Text prompts on the offline model: real photos, real model, real database.

Scores are checked against numpy on the very class vectors the database stores, so the
SQL ranking (inner product, exact and HNSW) is tested, not just the order of a few hits.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from pixdex.app.ingest import ingest
from pixdex.app.query_vector import class_prompt_weights
from pixdex.app.search import search
from pixdex.app.sources import local_items
from pixdex.config import Settings
from pixdex.errors import ConflictError, InvalidInputError, ModelCapabilityError
from pixdex.inference.base import ModelSpec
from pixdex.inference.specs import class_vector_name
from pixdex.models import MAX_PROMPT_CHARS, SearchPage, SearchQuery, UserMetadata
from pixdex.storage import catalog, images, search_sql
from pixdex.storage.connection import connect
from pixdex.text import prompt_to_class_weights

Gallery = tuple[str, dict[str, uuid.UUID]]


@pytest.fixture(scope="module")
def gallery(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Image.Image]
) -> Gallery:
    root = tmp_path_factory.mktemp("prompt-photos")
    (root / "pets").mkdir()
    for name, picture in photos.items():
        picture.save(root / ("pets" if name == "chelsea" else ".") / f"{name}.png")
    name = f"prompts-{uuid.uuid4().hex[:8]}"
    report = ingest(local_items([root], folder=None, meta=UserMetadata()).items, name,
                    settings=settings)
    assert report.indexed == len(photos)
    return name, {Path(e.path).stem: e.id for e in report.images if e.id is not None}


def _query(dataset: str, **fields: object) -> SearchQuery:
    return SearchQuery.model_validate({"dataset": dataset, "limit": 50, **fields})


def _expected(settings: Settings, ids: dict[str, uuid.UUID], weights: np.ndarray
              ) -> dict[uuid.UUID, float]:
    with connect(settings) as conn:
        stored = images.embeddings_by_ids(conn, list(ids.values()),
                                          class_vector_name(settings.model))
    assert set(stored) == set(ids.values())  # every indexed image has its class vector
    order = list(stored)
    probs = np.stack([stored[i] for i in order])
    assert probs.shape == (len(ids), 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.02)  # probabilities
    return {i: float(s) for i, s in zip(order, probs @ weights, strict=True)}


def _check_scores(page: SearchPage, expected: dict[uuid.UUID, float]) -> None:
    for hit in page.results:
        assert hit.score == pytest.approx(expected[hit.id], abs=2e-3)
    scores = [hit.score for hit in page.results]
    assert scores == sorted(scores, reverse=True)


def test_prompt_ranks_images_by_class_probability(settings: Settings, gallery: Gallery) -> None:
    name, ids = gallery
    for prompt, best in (("a cat", "chelsea"), ("a cup of espresso", "coffee")):
        page = search(_query(name, prompt=prompt), settings)
        assert page.results[0].name == f"{best}.png", prompt
        assert page.total == len(ids) and page.exact and page.warnings == []
        assert 0.5 < page.results[0].score <= 1.0
        assert all(hit.score < 0.1 for hit in page.results[1:])
        _check_scores(page, _expected(settings, ids, prompt_to_class_weights(prompt).weights))


def test_prompts_outside_the_classes_score_low_or_match_nothing(
    settings: Settings, gallery: Gallery
) -> None:
    name, _ = gallery
    nothing = search(_query(name, prompt="quantum entanglement"), settings)
    assert (nothing.total, nothing.results) == (0, [])
    assert any("quantum" in w and "entanglement" in w for w in nothing.warnings)
    plain = search(_query(name, prompt="a cat"), settings).results[0]
    vague = search(_query(name, prompt="a cat thinking about quantum philosophy"), settings)
    assert vague.results[0].id == plain.id
    assert vague.results[0].score < plain.score / 2  # half understood: at most half as sure
    assert any("quantum" in w for w in vague.warnings)


def test_negative_prompt_pushes_down_what_it_names(settings: Settings, gallery: Gallery) -> None:
    name, ids = gallery
    plain = {h.id: h.score for h in search(_query(name, prompt="a cat"), settings).results}
    page = search(_query(name, prompt="a cat", negative_prompt="tabby, tiger cat"), settings)
    match = class_prompt_weights("a cat", "tabby, tiger cat")
    _check_scores(page, _expected(settings, ids, match.weights))
    assert dict((h.id, h.score) for h in page.results)[ids["chelsea"]] < plain[ids["chelsea"]]
    inline = search(_query(name, prompt="a cat, not tabby"), settings)
    _check_scores(inline, _expected(settings, ids, prompt_to_class_weights(
        "a cat, not tabby").weights))


def test_prompt_with_filters_threshold_pages_and_the_hnsw_path(
    settings: Settings, gallery: Gallery
) -> None:
    name, ids = gallery
    pets = search(_query(name, prompt="a cup of espresso", folder="/pets"), settings)
    assert [h.name for h in pets.results] == ["chelsea.png"] and pets.total == 1
    sure = search(_query(name, prompt="a cup of espresso", threshold=0.5), settings)
    assert [h.name for h in sure.results] == ["coffee.png"] and sure.total == 1
    whole = search(_query(name, prompt="a rocket"), settings).results
    pages = [search(_query(name, prompt="a rocket", offset=o, limit=3), settings).results
             for o in range(0, len(ids), 3)]
    assert [h.id for p in pages for h in p] == [h.id for h in whole]
    ann_settings = settings.model_copy(update={"exact_search_max_rows": 0})
    ann = search(_query(name, prompt="a rocket", limit=3), ann_settings)
    assert not ann.exact and [h.id for h in ann.results] == [h.id for h in whole[:3]]
    with connect(settings) as conn:
        model = class_vector_name(settings.model)
        dataset_id = catalog.get_dataset(conn, "default", name).id
        filters = search_sql.Filters(dataset_id=dataset_id)
        assert search_sql.uses_hnsw(conn, model, 1000, filters, metric="ip")


def test_a_dataset_indexed_before_class_vectors_says_so(
    settings: Settings, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    workspace = f"legacy-{uuid.uuid4().hex[:8]}"
    photos["chelsea"].save(tmp_path / "chelsea.png")
    items = local_items([tmp_path], folder=None, meta=UserMetadata()).items
    ingest(items, "old", workspace=workspace, settings=settings)
    classes = class_vector_name(settings.model)
    with connect(settings) as conn:  # what a dataset indexed by an older release looks like
        dataset_id = catalog.get_dataset(conn, workspace, "old").id
        conn.execute("DELETE FROM image_embeddings WHERE dataset_id = %s AND model = %s",
                     (dataset_id, classes))
        conn.execute("DELETE FROM dataset_models WHERE dataset_id = %s AND model = %s",
                     (dataset_id, classes))
    for dataset in ("old", None):
        with pytest.raises(ConflictError, match="reembed") as refused:
            search(SearchQuery(dataset=dataset, workspace=workspace, prompt="a cat"), settings)
        assert refused.value.http_status == 409 and "'old'" in refused.value.message
    # New images into the old dataset do not hide the older ones' missing vectors.
    photos["coffee"].save(tmp_path / "coffee.png")
    ingest(local_items([tmp_path], folder=None, meta=UserMetadata()).items, "old",
           workspace=workspace, settings=settings)
    with pytest.raises(ConflictError, match="reembed"):
        search(SearchQuery(dataset="old", workspace=workspace, prompt="a cat"), settings)
    like = search(SearchQuery(dataset="old", workspace=workspace, like_vector=[1.0] * 1280),
                  settings)
    assert like.total == 2  # image search there is unaffected


def test_bad_prompt_queries_are_refused_clearly(settings: Settings, gallery: Gallery) -> None:
    name, _ids = gallery
    with pytest.raises(ValidationError, match="prompt"):
        SearchQuery(dataset=name, prompt="   ")
    with pytest.raises(ValidationError, match="negative_prompt needs a prompt"):
        SearchQuery(dataset=name, negative_prompt="drawings")
    with pytest.raises(ValidationError, match="image_weight"):
        SearchQuery(dataset=name, prompt="a cat", image_weight=1.5)
    # One limit for every interface (the API schema, the CLI, the library).
    search(_query(name, prompt=("cat " * MAX_PROMPT_CHARS)[:MAX_PROMPT_CHARS]), settings)
    with pytest.raises(ValidationError, match=f"at most {MAX_PROMPT_CHARS} characters"):
        _query(name, prompt="cat " * MAX_PROMPT_CHARS)
    with pytest.raises(InvalidInputError, match="only says what to exclude"):
        search(_query(name, prompt="not cats"), settings)
    with pytest.raises(ModelCapabilityError, match="no text encoder") as combined:
        search(_query(name, prompt="a cat", like_vector=[1.0] * 1280), settings)
    assert combined.value.http_status == 400


def test_model_metric_is_recorded_and_enforced(settings: Settings) -> None:
    spec = ModelSpec(name=f"test-ip-{uuid.uuid4().hex[:6]}", dim=8, encodes_text=False,
                     tags=False, input_size=224)
    with connect(settings) as conn:
        catalog.register_model(conn, spec, metric="ip")
        catalog.register_model(conn, spec, metric="ip")  # idempotent
        assert catalog.model_info(conn, spec.name).metric == "ip"
        row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                           (catalog.hnsw_index_name(spec.name),)).fetchone()
        assert row is not None and "halfvec_ip_ops" in str(row["indexdef"])
        with pytest.raises(ConflictError, match="metric ip"):
            catalog.register_model(conn, spec, metric="cosine")
        with pytest.raises(InvalidInputError, match="unknown metric"):
            catalog.register_model(conn, spec, metric="l2")  # type: ignore[arg-type]
        with pytest.raises(ConflictError, match="dim 8"):
            catalog.register_model(conn, ModelSpec(spec.name, 9, False, False, 224), metric="ip")
