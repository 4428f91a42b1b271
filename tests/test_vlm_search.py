"""Vision-language models in the product: reembed, named vectors, prompt and combined search.

A tiny random SigLIP (built and exported here, no download) checks the mechanics only:
the vectors each model gets, which named vector a query uses, and that prompt, negative
prompt and image+text scores are exactly what numpy computes on the stored vectors.
"""

from __future__ import annotations

import base64
import json
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixdex.app.ingest import ingest
from pixdex.app.query_vector import NEGATIVE_WEIGHT
from pixdex.app.reembed import reembed
from pixdex.app.retag import workspace_taxonomy
from pixdex.app.search import search
from pixdex.app.service.anchors import create_anchor
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import SearchRequest
from pixdex.app.sources import local_items
from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.errors import ConflictError, InvalidInputError, NotFoundError
from pixdex.imaging.decode import decode_image
from pixdex.inference.specs import class_vector_name
from pixdex.models import SearchQuery, UserMetadata
from pixdex.pipeline import model_floor
from pixdex.storage import catalog, images
from pixdex.storage.connection import connect
from pixdex.taxonomy import get_tagger
from pixdex.vlm import VisionLanguageModel
from pixdex.vlm.export import export_checkpoint
from tests.test_cli import run as run_cli
from tests.tiny_vlm import build_tiny_checkpoint

Setup = tuple[str, str, dict[str, uuid.UUID], Path]


@pytest.fixture(scope="module")
def vlm_name(settings: Settings) -> str:
    name = f"tiny-siglip-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_tiny_checkpoint("siglip", Path(tmp) / "ckpt")
        export_checkpoint(str(checkpoint), settings.models_dir / "vlm" / name, name=name,
                          settings=settings)
    return name


@pytest.fixture(scope="module")
def setup(settings: Settings, vlm_name: str, tmp_path_factory: pytest.TempPathFactory,
          photos: dict[str, Image.Image]) -> Setup:
    root = tmp_path_factory.mktemp("vlm-photos")
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        photos[name].save(root / f"{name}.png")
    dataset = f"vlm-{uuid.uuid4().hex[:8]}"
    report = ingest(local_items([root], folder=None, meta=UserMetadata()).items, dataset,
                    settings=settings)
    assert report.indexed == 4
    ids = {Path(e.path).stem: e.id for e in report.images if e.id is not None}
    return dataset, vlm_name, ids, root


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _stored(settings: Settings, ids: list[uuid.UUID], model: str) -> dict[uuid.UUID, np.ndarray]:
    with connect(settings) as conn:
        return images.embeddings_by_ids(conn, ids, model)


def test_reembed_adds_a_model_and_ingest_then_fills_it(
    settings: Settings, setup: Setup, photos: dict[str, Image.Image]
) -> None:
    dataset, name, ids, root = setup
    with pytest.raises(NotFoundError, match="no images were embedded"):  # not added yet
        search(SearchQuery(dataset=dataset, model=name, prompt="a cat"), settings)
    first = reembed(dataset, name, settings=settings, batch_size=3)
    assert (first.embedded, first.failed, first.complete) == (4, 0, True)
    again = reembed(dataset, name, settings=settings)
    assert (again.embedded, again.complete) == (0, True)  # idempotent
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, settings.workspace, dataset).id
        assert name in catalog.dataset_models(conn, dataset_id)
    vlm = get_model(name, settings)
    assert isinstance(vlm, VisionLanguageModel)
    stored = _stored(settings, list(ids.values()), name)
    # What the model gives for the picture the pipeline decodes (reduced to the model's
    # floor, issue 13), and close to what it gives for the full-size picture.
    decoded = decode_image((root / "chelsea.png").read_bytes(),
                           max_pixels=settings.max_image_pixels,
                           max_bytes=settings.max_file_bytes, floor=model_floor(vlm))
    direct = vlm.embed_images([decoded.image]).embeddings[0]
    np.testing.assert_allclose(stored[ids["chelsea"]], direct, atol=2e-3)
    full = vlm.embed_images([photos["chelsea"]]).embeddings[0]
    assert float(np.dot(stored[ids["chelsea"]], full)) > 0.99

    photos["camera"].save(root / "camera.png")  # ingest now fills every listed model
    report = ingest(local_items([root], folder=None, meta=UserMetadata()).items, dataset,
                    settings=settings)
    assert (report.indexed, report.skipped) == (1, 4)
    camera = next(e.id for e in report.images if e.status == "indexed")
    assert camera is not None
    for model, dim in ((settings.model, 1280), (class_vector_name(settings.model), 1000),
                       (name, vlm.spec.dim)):
        vector = _stored(settings, [camera], model).get(camera)
        assert vector is not None and vector.shape == (dim,), model
    tagger = get_tagger(vlm, settings, workspace_taxonomy(settings, settings.workspace))
    expected = tagger.tag(_stored(settings, [camera], name)[camera][None, :])[0]
    with connect(settings) as conn:
        record = images.get_image(conn, settings.workspace, camera)
    assert record.auto_tags.scenes == pytest.approx(expected.scenes, abs=2e-2)
    assert set(expected.attributes) <= set(record.auto_tags.attributes)


def test_prompt_negative_and_combined_scores_match_numpy(
    settings: Settings, setup: Setup
) -> None:
    dataset, name, ids, _ = setup
    reembed(dataset, name, settings=settings)
    vlm = get_model(name, settings)
    stored = _stored(settings, list(ids.values()), name)

    def check(query: SearchQuery, q: np.ndarray, skip: uuid.UUID | None = None) -> None:
        page = search(query, settings)
        every = _stored(settings, [h.id for h in page.results], name)
        want = {i: float(v @ q) for i, v in every.items() if i != skip}
        assert {h.id for h in page.results} == set(want) and page.exact
        assert page.total == len(page.results) >= 3  # every image, ranked
        for hit in page.results:
            assert hit.score == pytest.approx(want[hit.id], abs=3e-3)
        scores = [h.score for h in page.results]
        assert scores == sorted(scores, reverse=True)

    text, negative = vlm.embed_texts(["a cat", "a drawing"])
    check(SearchQuery(dataset=dataset, model=name, prompt="a cat"), _unit(text))
    check(SearchQuery(dataset=dataset, model=name, prompt="a cat", negative_prompt="a drawing"),
          _unit(text - NEGATIVE_WEIGHT * negative))
    chelsea = ids["chelsea"]
    for weight in (0.0, 0.7, 1.0):
        blended = _unit(weight * _unit(stored[chelsea]) + (1 - weight) * _unit(text))
        check(SearchQuery(dataset=dataset, model=name, prompt="a cat", like_image_id=chelsea,
                          image_weight=weight), blended, skip=chelsea)
    with pytest.raises(NotFoundError, match="no images were embedded"):
        search(SearchQuery(dataset=dataset, model="never-used", prompt="a cat"), settings)


def test_reembed_class_vectors_heals_an_old_dataset_and_reports_missing_files(
    settings: Settings, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    photos["chelsea"].save(tmp_path / "chelsea.png")
    photos["coffee"].save(tmp_path / "coffee.png")
    dataset = f"old-{uuid.uuid4().hex[:8]}"
    ingest(local_items([tmp_path], folder=None, meta=UserMetadata()).items, dataset,
           settings=settings)
    classes = class_vector_name(settings.model)
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, settings.workspace, dataset).id
        conn.execute("DELETE FROM image_embeddings WHERE dataset_id = %s AND model = %s",
                     (dataset_id, classes))
        conn.execute("DELETE FROM dataset_models WHERE dataset_id = %s AND model = %s",
                     (dataset_id, classes))
    (tmp_path / "coffee.png").unlink()  # an original that has gone missing since
    partial = reembed(dataset, classes, settings=settings)
    assert (partial.embedded, partial.failed, partial.complete) == (1, 1, False)
    assert "coffee.png" in partial.errors[0]
    with pytest.raises(ConflictError, match="reembed"):
        search(SearchQuery(dataset=dataset, prompt="a cat"), settings)
    photos["coffee"].save(tmp_path / "coffee.png")  # resumable: only the missing one runs
    healed = reembed(dataset, classes, settings=settings)
    assert (healed.embedded, healed.failed, healed.complete) == (1, 0, True)
    page = search(SearchQuery(dataset=dataset, prompt="a cat"), settings)
    assert page.results[0].name == "chelsea.png" and page.results[0].score > 0.5
    with pytest.raises(InvalidInputError, match="unknown model"):
        reembed(dataset, "no-such-model", settings=settings)
    with pytest.raises(NotFoundError, match="does not exist"):
        reembed("no-such-dataset", classes, settings=settings)
    with pytest.raises(InvalidInputError, match="batch size"):
        reembed(dataset, classes, settings=settings, batch_size=0)


def test_cli_reembed_and_retag(cli_env: dict[str, str], settings: Settings, setup: Setup
                               ) -> None:
    dataset, name, _, _ = setup
    done = json.loads(run_cli(cli_env, "reembed", "--dataset", dataset, "--model", name,
                              "--json").stdout)
    assert done["complete"] is True and done["model"] == name
    retag = run_cli(cli_env, "retag", "--dataset", dataset)
    assert f"with {name}" in retag.stdout
    plain = f"plain-{uuid.uuid4().hex[:6]}"
    with connect(settings) as conn:
        catalog.ensure_dataset(conn, settings.workspace, plain)
    refused = run_cli(cli_env, "retag", "--dataset", plain, ok=False)
    assert refused.returncode == 2 and "no vision-language model" in refused.stderr
    bad = run_cli(cli_env, "reembed", "--dataset", dataset, "--model", "nope", ok=False)
    assert bad.returncode == 2 and "unknown model 'nope'" in bad.stderr


def test_the_sagemaker_model_artifact_is_found_where_it_is_unpacked(
    settings: Settings, vlm_name: str, tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    """`models export --pack` -> the tarball SageMaker unpacks into /opt/ml/model."""
    import tarfile

    from pixdex.vlm.export import pack_model_dir
    from pixdex.vlm.store import installed_models

    archive = pack_model_dir(settings.models_dir / "vlm" / vlm_name, tmp_path / "model.tar.gz")
    unpacked = tmp_path / "opt-ml-model"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    # A home without the model: only the artifact directory can provide it.
    deployed = Settings(home=tmp_path / "home", model_artifact_dir=unpacked)
    assert vlm_name in [m.name for m in installed_models(deployed)]
    model = get_model(vlm_name, deployed)
    assert isinstance(model, VisionLanguageModel)
    here = get_model(vlm_name, settings).embed_images([photos["chelsea"]]).embeddings
    there = model.embed_images([photos["chelsea"]]).embeddings
    np.testing.assert_allclose(there, here, atol=1e-6)
    with pytest.raises(InvalidInputError, match="unknown model 'not-this-one'"):
        get_model("not-this-one", deployed)


def test_an_api_query_image_is_embedded_by_the_model_the_search_asks_for(
    settings: Settings, setup: Setup, photos: dict[str, Image.Image]
) -> None:
    """Issue 9's bug: ``image`` / ``anchor_id`` were embedded with the server's default
    model whatever ``model`` the search named, and the search failed with a 422 blaming
    ``like_vector``, a field the caller never sent."""
    dataset, name, ids, root = setup
    reembed(dataset, name, settings=settings)
    query = (root / "coffee.png").read_bytes()
    expected = get_model(name, settings).embed_images([photos["coffee"]]).embeddings[0]
    stored = _stored(settings, list(ids.values()), name)
    nearest = max(stored, key=lambda i: float(stored[i] @ _unit(expected)))
    request = SearchRequest(in_dataset=dataset, model=name, limit=4,
                            image=base64.b64encode(query).decode())
    page = run_search(settings, settings.workspace, request)
    assert page.results[0].id == nearest == ids["coffee"]
    assert page.results[0].score == pytest.approx(1.0, abs=1e-3)

    # An anchor embedded with the default model, searched with another: embedded again.
    anchor = create_anchor(settings, settings.workspace, query, None)
    assert anchor.model == settings.model != name
    for field in ("anchor_id", "image"):
        by_anchor = run_search(settings, settings.workspace, SearchRequest.model_validate(
            {"in_dataset": dataset, "model": name, "limit": 1, field: str(anchor.anchor_id)}))
        assert by_anchor.results[0].id == ids["coffee"], field
