"""Bring your own vectors from the command line and the library, on the embedded
PostgreSQL: ``pixdex vectors import`` (bad rows, the report), then searching the imported
rows by a raw vector (``--vector-file``), with filters and pages. File errors, dimension
mismatches and the model's index: ``test_vectors_import_files.py``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError
from pixdex.models import SearchQuery
from pixdex.storage.connection import connect
from tests.test_cli import run
from tests.vectors_support import clustered, model_name, write_vectors

DIM = 24


@pytest.fixture(scope="module")
def imported(
    cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A file with good rows and every kind of bad row, imported by the CLI in chunks of
    4 rows (so a duplicate can sit in another chunk than its first)."""
    folder = tmp_path_factory.mktemp("vectors")
    vectors: list[Any] = list(clustered(40, DIM, seed=1))
    names: list[Any] = [f"img-{n:03d}.jpg" for n in range(40)]
    vectors[3] = np.zeros(DIM)                               # zero vector
    vectors[5] = np.full(DIM, np.nan)                        # NaN
    vectors[6] = np.array([np.inf] + [0.0] * (DIM - 1))      # infinity
    vectors[7] = np.ones(DIM + 1)                            # wrong dimension
    vectors[8] = None                                        # no embedding
    names[9] = None                                          # no name
    names[15] = names[14]                                    # duplicate in the same chunk
    names[30] = names[1]                                     # duplicate chunks later
    metadata: list[Any] = [{"n": n, "source": "test"} for n in range(40)]
    metadata[11] = "{not json"                               # bad metadata
    metadata[12] = "[1, 2]"                                  # JSON, not an object
    path = write_vectors(
        folder / "vectors.parquet", names, vectors,
        folder=["/pets/cats" if n % 2 else "pets/dogs/" for n in range(40)],
        split=["train" if n < 20 else "test" for n in range(40)],
        tags=[["even"] if n % 2 == 0 else ["odd", "cli"] for n in range(40)],
        batch_id=["b1" if n < 10 else None for n in range(40)],
        annotation_job_id=[None] * 39 + ["job-9"],
        metadata=metadata, ignored_column=list(range(40)),
    )
    model = model_name()
    dataset = f"vectors-{model}"
    result = run(cli_env, "vectors", "import", str(path), "--dataset", dataset, "--model",
                 model, "--chunk-rows", "4", "--json")
    return {"path": path, "model": model, "dataset": dataset, "vectors": vectors,
            "names": names, "report": json.loads(result.stdout)}


def test_import_reports_bad_rows_by_reason_and_row(imported: dict[str, Any]) -> None:
    report = imported["report"]
    assert report["model"] == imported["model"] and report["dim"] == DIM
    assert report["model_created"] is True and report["index"] == "built"
    assert (report["rows"], report["imported"], report["rejected"]) == (40, 30, 10)
    assert report["reasons"] == {
        "bad_metadata": 2, "duplicate_name": 2, "no_embedding": 1, "no_name": 1,
        "not_finite": 2, "wrong_dimension": 1, "zero_vector": 1,
    }
    by_row = {e["row"]: e for e in report["examples"]}
    assert by_row[3]["reason"] == "zero_vector" and by_row[3]["name"] == "img-003.jpg"
    assert by_row[5]["reason"] == by_row[6]["reason"] == "not_finite"
    assert by_row[7]["reason"] == "wrong_dimension"
    assert f"{DIM + 1} dimensions, expected {DIM}" in by_row[7]["message"]
    assert by_row[8]["reason"] == "no_embedding" and by_row[9]["reason"] == "no_name"
    assert by_row[11]["reason"] == by_row[12]["reason"] == "bad_metadata"
    assert by_row[15]["reason"] == "duplicate_name" and "row 14" in by_row[15]["message"]
    assert by_row[30]["reason"] == "duplicate_name" and by_row[30]["name"] == "img-001.jpg"
    assert report["warnings"] == ["columns ignored: ignored_column"]


def test_imported_rows_are_indexed_images_without_a_file(
    imported: dict[str, Any], settings: Settings
) -> None:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT i.name, i.folder, i.status, i.storage_key, i.user_tags, i.split,"
            " i.batch_id, i.annotation_job_id, i.metadata, e.embedding"
            " FROM images i JOIN datasets d ON d.id = i.dataset_id"
            " JOIN image_embeddings e ON e.image_id = i.id AND e.model = %s"
            " WHERE d.name = %s ORDER BY i.name",
            (imported["model"], imported["dataset"]),
        ).fetchall()
    assert len(rows) == 30
    first = {str(r["name"]): r for r in rows}
    one, two = first["img-001.jpg"], first["img-002.jpg"]
    assert one["status"] == "indexed" and one["storage_key"] is None
    assert one["folder"] == "/pets/cats" and two["folder"] == "/pets/dogs"
    assert one["user_tags"] == ["odd", "cli"] and one["split"] == "train"
    assert one["batch_id"] == "b1" and one["metadata"] == {"n": 1, "source": "test"}
    assert first["img-039.jpg"]["annotation_job_id"] == "job-9"
    stored = np.asarray(one["embedding"].to_numpy(), dtype=np.float32)  # type: ignore[attr-defined]
    given = imported["vectors"][1] / np.linalg.norm(imported["vectors"][1])
    assert abs(float(np.linalg.norm(stored)) - 1.0) < 1e-2  # unit length, half precision
    assert float(stored @ given) > 0.999


def test_reimporting_the_same_file_adds_nothing(
    cli_env: dict[str, str], imported: dict[str, Any]
) -> None:
    again = json.loads(run(cli_env, "vectors", "import", str(imported["path"]), "--dataset",
                           imported["dataset"], "--model", imported["model"],
                           "--json").stdout)
    assert again["imported"] == 0 and again["model_created"] is False
    assert again["reasons"]["name_in_dataset"] == 30
    example = next(e for e in again["examples"] if e["reason"] == "name_in_dataset")
    assert "already has an image named" in example["message"]


def test_human_report_lists_refused_rows_on_stderr(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    vectors: list[Any] = list(clustered(5, 8))
    vectors[2] = np.zeros(8)
    path = write_vectors(tmp_path / "v.parquet", [f"r{n}" for n in range(5)], vectors)
    model = model_name()
    result = run(cli_env, "vectors", "import", str(path), "--dataset", f"human-{model}",
                 "--model", model)
    assert result.stdout.startswith(f"imported 4 of 5 row(s) into human-{model} as {model} "
                                    "(8-d, new; index built), refused 1 (zero_vector 1)")
    assert "refused row 2 'r2': embedding is all zeros" in result.stderr


def test_search_by_a_vector_file_with_filters_and_pages(
    cli_env: dict[str, str], imported: dict[str, Any], tmp_path: Path, settings: Settings
) -> None:
    query = tmp_path / "q.npy"
    np.save(query, imported["vectors"][4])
    common = ("search", "--dataset", imported["dataset"], "--model", imported["model"],
              "--vector-file", str(query))
    page = json.loads(run(cli_env, *common, "--limit", "5", "--json").stdout)
    assert page["results"][0]["name"] == "img-004.jpg"
    assert math.isclose(page["results"][0]["score"], 1.0, abs_tol=1e-2)
    assert page["results"][0]["storage_key"] is None and page["total"] == 30
    scores = [r["score"] for r in page["results"]]
    assert scores == sorted(scores, reverse=True)
    cats = json.loads(run(cli_env, *common, "--folder", "/pets/cats", "--split", "test",
                          "--json").stdout)["results"]
    assert cats and all(int(r["name"][4:7]) % 2 == 1 and int(r["name"][4:7]) >= 20
                        for r in cats)
    text = run(cli_env, *common, "--limit", "1").stdout
    assert "(no file: img-004.jpg)" in text

    def names(**query: Any) -> list[str]:
        found = search(SearchQuery(dataset=imported["dataset"], model=imported["model"],
                                   vector=imported["vectors"][4].tolist(), **query), settings)
        return [hit.name for hit in found.results]

    paged = [name for offset in range(0, 30, 7) for name in names(limit=7, offset=offset)]
    assert len(paged) == len(set(paged)) == 30 and paged == names(limit=30)
    for filters, expected in (
        ({"split": "test"}, lambda n: n >= 20),
        ({"tags": ["even"]}, lambda n: n % 2 == 0),
        ({"tags": ["odd", "cli"]}, lambda n: n % 2 == 1),
        ({"folder": "/pets"}, lambda n: True),
        ({"batch_id": "b1"}, lambda n: n < 10),
        ({"in_batch": False}, lambda n: n >= 10),
        ({"annotation_job_id": "job-9"}, lambda n: n == 39),
    ):
        found = names(limit=50, **filters)
        assert found and all(expected(int(n[4:7])) for n in found), filters
    assert len(names(limit=50, folder="/pets")) == 30
    floor = search(SearchQuery(dataset=imported["dataset"], model=imported["model"],
                               vector=imported["vectors"][4].tolist(), threshold=0.9), settings)
    assert floor.results and all(hit.score >= 0.9 for hit in floor.results)
    assert floor.total == len(floor.results)
    # Metadata-only searches and listings see the imported rows as well.
    listed = search(SearchQuery(dataset=imported["dataset"], tags=["cli"], limit=50), settings)
    assert listed.total == len(listed.results) == 14


def test_vector_file_bad_input(
    cli_env: dict[str, str], imported: dict[str, Any], tmp_path: Path
) -> None:
    from pixdex.cli.search import load_vector

    good = tmp_path / "good.npy"
    np.save(good, imported["vectors"][4])
    base = ("search", "--dataset", imported["dataset"])

    def refused(*args: str) -> str:
        result = run(cli_env, *base, *args, ok=False)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        return result.stderr

    assert "needs --model" in refused("--vector-file", str(good))
    model = ("--model", imported["model"])
    assert "not with --prompt" in refused(*model, "--vector-file", str(good), "--prompt", "a cat")
    np.save(tmp_path / "short.npy", np.ones(DIM - 1))
    message = refused(*model, "--vector-file", str(tmp_path / "short.npy"))
    assert f"vector has {DIM - 1} dimensions; model {imported['model']} expects {DIM}" in message

    with pytest.raises(NotFoundError, match="no such file"):
        load_vector(str(tmp_path / "missing.npy"))
    (tmp_path / "text.npy").write_text("not numpy")
    with pytest.raises(InvalidInputError, match=r"not a numpy \.npy file"):
        load_vector(str(tmp_path / "text.npy"))
    np.save(tmp_path / "two.npy", np.ones((2, DIM)))
    with pytest.raises(InvalidInputError, match=r"shape \(2, 24\)"):
        load_vector(str(tmp_path / "two.npy"))
    np.save(tmp_path / "words.npy", np.array(["a", "b"]))
    with pytest.raises(InvalidInputError, match="one vector of numbers"):
        load_vector(str(tmp_path / "words.npy"))
    assert load_vector(str(good)) == pytest.approx(imported["vectors"][4].tolist())
    np.save(tmp_path / "row.npy", np.ones((1, 3)))
    assert load_vector(str(tmp_path / "row.npy")) == [1.0, 1.0, 1.0]


def test_raw_vector_refusals_in_the_library(
    imported: dict[str, Any], settings: Settings
) -> None:
    def query(vector: list[float], model: str | None = None) -> None:
        search(SearchQuery(dataset=imported["dataset"], model=model or imported["model"],
                           vector=vector), settings)

    with pytest.raises(InvalidInputError, match=f"expects {DIM}"):
        query([1.0] * (DIM + 3))
    with pytest.raises(InvalidInputError, match="not all zeros"):
        query([0.0] * DIM)
    with pytest.raises(InvalidInputError, match="finite"):
        query([math.nan] * DIM)
    with pytest.raises(NotFoundError, match="no images were embedded with model"):
        query([1.0] * DIM, model="no-such-model")
    with pytest.raises(ValueError, match="needs model"):
        SearchQuery(dataset="x", vector=[1.0, 0.0])
    with pytest.raises(ValueError, match="not with a prompt"):
        SearchQuery(dataset="x", model="m", vector=[1.0], prompt="a cat")
    with pytest.raises(ValueError, match="not with an image id"):
        SearchQuery(dataset="x", model="m", vector=[1.0],
                    like_image_id="3f1c0000-0000-0000-0000-000000000000")  # type: ignore[arg-type]
    # Huge components are fine for cosine: the query is scaled to unit length first.
    page = search(SearchQuery(dataset=imported["dataset"], model=imported["model"], limit=1,
                              vector=(imported["vectors"][4] * 1e30).tolist()), settings)
    assert page.results[0].name == "img-004.jpg"
