"""Bring your own vectors from the command line and the library, on the embedded
PostgreSQL: ``pixdex vectors import`` (bad rows, file errors, dimension mismatch, the
model's index), then searching the imported rows by a raw vector (``--vector-file``),
with filters and pages."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pixdex.app import vectors as vector_import
from pixdex.app.search import search
from pixdex.app.vector_file import import_file, open_vector_file
from pixdex.config import Settings
from pixdex.errors import ConflictError, InvalidInputError, NotFoundError
from pixdex.inference.base import ModelSpec
from pixdex.models import SearchQuery
from pixdex.storage import catalog, search_sql
from pixdex.storage import vectors as vector_rows
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


def test_import_file_errors(cli_env: dict[str, str], tmp_path: Path) -> None:
    model = model_name()

    def refused(path: Path, *extra: str) -> str:
        result = run(cli_env, "vectors", "import", str(path), "--dataset", f"bad-{model}",
                     "--model", model, *extra, ok=False)
        assert result.returncode == 2, (path, result.stdout, result.stderr)
        return result.stderr

    assert "no such file" in refused(tmp_path / "missing.parquet")
    pq.write_table(pa.table({"name": ["a"]}), tmp_path / "no-embedding.parquet")
    assert "has no embedding column" in refused(tmp_path / "no-embedding.parquet")
    write_vectors(tmp_path / "ok.parquet", ["a"], np.ones((1, 4), np.float32))
    assert "is computed by pixdex" in run(
        cli_env, "vectors", "import", str(tmp_path / "ok.parquet"), "--dataset", "x",
        "--model", "efficientnet-lite0", ok=False).stderr


def test_file_layout_errors(settings: Settings, tmp_path: Path) -> None:
    def refused(table: pa.Table | None, match: str, **options: Any) -> None:
        path = tmp_path / "file.parquet"
        if table is not None:
            pq.write_table(table, path)
        with pytest.raises(InvalidInputError, match=match):
            import_file(path, "layout", options.pop("model", model_name()), settings=settings,
                        **options)

    (tmp_path / "file.parquet").write_text("name,embedding\n")
    refused(None, "is not a readable Parquet file")
    refused(pa.table({"embedding": [[1.0]]}), "has no name column")
    refused(pa.table({"name": ["a"], "embedding": [[1, 2]]}), "must be a list of floats")
    refused(pa.table({"name": ["a"], "embedding": ["1,2"]}), "must be a list of floats")
    refused(pa.table({"name": [1], "embedding": [[1.0]]}), "column name must be a string")
    refused(pa.table({"name": ["a"], "embedding": [[1.0]], "tags": ["x"]}),
            "column tags must be a list of strings")
    refused(pa.table({"name": ["a"], "embedding": [[1.0]], "metadata": [{"a": 1}]}),
            "column metadata must be JSON text")
    refused(pa.table({"name": ["a"], "embedding": [[1.0]], "split": [1]}),
            "column split must be a string")
    refused(pa.table({"name": ["a"], "embedding": pa.array([[1.0] * 4001])}),
            "4001 dimensions; at most 4000")
    refused(pa.table({"name": ["a"], "embedding": [[1.0]]}), "invalid model name",
            model="Not A Name")
    refused(pa.table({"name": ["a"], "embedding": [[1.0]]}), "chunk size", chunk_rows=0)
    # float64 and float16 lists are fine (stored as half precision anyway).
    for kind in (pa.float64(), pa.float16()):
        pq.write_table(pa.table({"name": ["a", "b"], "embedding": pa.array(
            [np.ones(3, np.float16), np.arange(3, dtype=np.float16)],
            type=pa.list_(kind))}), tmp_path / "floats.parquet")
        report = import_file(tmp_path / "floats.parquet", f"layout-{kind}", model_name(),
                             settings=settings)
        assert (report.imported, report.dim) == (2, 3)


def test_dimension_mismatch_with_an_existing_model(
    cli_env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    model = model_name()
    dataset = f"dims-{model}"
    first = write_vectors(tmp_path / "16.parquet", ["a", "b"], clustered(2, 16))
    run(cli_env, "vectors", "import", str(first), "--dataset", dataset, "--model", model)
    wider = write_vectors(tmp_path / "32.parquet", ["c", "d"], clustered(2, 32))
    result = run(cli_env, "vectors", "import", str(wider), "--dataset", dataset, "--model",
                 model, ok=False)
    assert result.returncode == 2
    assert f"model {model!r} holds 16-d vectors; these are 32-d" in result.stderr
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, "default", dataset).id
        count = conn.execute("SELECT count(*) AS n FROM images WHERE dataset_id = %s",
                             (dataset_id,)).fetchone()
        assert count is not None and count["n"] == 2
        # An imported name is never filled by pixdex's own models, nor the reverse.
        with pytest.raises(ConflictError, match="holds imported vectors"):
            catalog.register_model(conn, ModelSpec(model, 16, False, False, 224))
        with pytest.raises(ConflictError, match="holds 16-d vectors"):
            catalog.register_imported_model(conn, model, 17)


def test_names_already_in_the_dataset_are_refused_even_with_a_file(
    settings: Settings, tmp_path: Path, dataset_name: str
) -> None:
    with connect(settings) as conn:
        row = catalog.ensure_dataset(conn, "default", dataset_name)
        conn.execute("INSERT INTO images (dataset_id, storage_key, name, status)"
                     " VALUES (%s, 'file:///photos/a.jpg', 'a.jpg', 'indexed')", (row.id,))
    path = write_vectors(tmp_path / "v.parquet", ["a.jpg", "b.jpg"], clustered(2, 8))
    report = import_file(path, dataset_name, model_name(), settings=settings)
    assert (report.imported, report.reasons) == (1, {"name_in_dataset": 1})


def test_streamed_in_chunks_whatever_the_row_groups(tmp_path: Path) -> None:
    path = write_vectors(tmp_path / "one-group.parquet", [f"r{n}" for n in range(5000)],
                         clustered(5000, 16), fixed=True, row_group_size=5000)
    source = open_vector_file(path)
    assert source.rows == 5000 and pq.ParquetFile(path).metadata.num_row_groups == 1
    sizes = [len(batch) for batch in source.batches(700)]
    assert max(sizes) == 700 and sum(sizes) == 5000


def test_the_model_index_is_built_after_loading_deferred_or_rebuilt(
    settings: Settings, tmp_path: Path, dataset_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_name()
    vectors = clustered(200, 16, seed=3)

    def part(first: int, count: int) -> Path:
        names = [f"r{n}" for n in range(first, first + count)]
        return write_vectors(tmp_path / f"{first}.parquet", names, vectors[first:first + count])

    def state() -> str:
        with connect(settings) as conn:
            return vector_rows.index_state(conn, model)

    def uses_index() -> bool:
        with connect(settings) as conn:
            dataset_id = catalog.get_dataset(conn, "default", dataset_name).id
            return search_sql.uses_hnsw(conn, model, 16, search_sql.Filters(dataset_id=dataset_id))

    assert import_file(part(0, 20), dataset_name, model, settings=settings,
                       index="defer").index == "deferred"
    assert state() == "missing"
    assert import_file(part(20, 20), dataset_name, model, settings=settings).index == "built"
    assert state() == "valid" and uses_index()
    assert import_file(part(40, 5), dataset_name, model, settings=settings).index == "updated"
    monkeypatch.setattr(vector_import, "REBUILD_MIN_ROWS", 10)
    assert import_file(part(45, 40), dataset_name, model, settings=settings).index == "built"
    assert state() == "valid" and uses_index()
    # A deferred index: the API's small batches never build it, and say so.
    assert import_file(part(85, 5), dataset_name, model, settings=settings,
                       index="defer").index == "deferred"
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, "default", dataset_name).id
    batch = open_vector_file(part(90, 5)).batches().__next__()
    report = vector_import.import_rows(settings, dataset_id, dataset_name, model, batch)
    assert report.index == "deferred" and "no HNSW index yet" in report.warnings[0]
    assert state() == "missing"
    # Searches work meanwhile, exactly; the next file import builds the index again.
    page = search(SearchQuery(dataset=dataset_name, model=model, vector=vectors[7].tolist(),
                              limit=3), settings.model_copy(update={"exact_search_max_rows": 0}))
    assert page.results[0].name == "r7"
    assert import_file(part(95, 25), dataset_name, model, settings=settings).index == "built"
    assert state() == "valid"
    # A dataset past the exact path gets an index of its own, built after the load; a
    # large import drops and rebuilds it, --no-index drops it.
    small_exact = settings.model_copy(update={"exact_search_max_rows": 50})
    with connect(settings) as conn:
        assert not vector_rows.has_dataset_index(conn, model, dataset_id)
    assert import_file(part(120, 4), dataset_name, model, settings=small_exact).index == (
        "updated")
    with connect(settings) as conn:
        assert vector_rows.has_dataset_index(conn, model, dataset_id)
    assert import_file(part(124, 60), dataset_name, model, settings=small_exact,
                       index="defer").index == "deferred"
    with connect(settings) as conn:
        assert not vector_rows.has_dataset_index(conn, model, dataset_id)
    assert import_file(part(184, 16), dataset_name, model, settings=small_exact).index == (
        "built")
    with connect(settings) as conn:
        assert vector_rows.has_dataset_index(conn, model, dataset_id)
        assert vector_rows.index_state(conn, model) == "valid"


def test_pages_of_a_raw_vector_search_are_consistent_on_both_paths(
    settings: Settings, tmp_path: Path, dataset_name: str
) -> None:
    """Exact ranking (few rows) and the HNSW index (exact_search_max_rows 0): pages
    continue each other, ties included (every vector is one of 20 directions)."""
    model = model_name()
    rng = np.random.default_rng(5)
    directions = rng.standard_normal((20, 32)).astype(np.float32)
    vectors = directions[np.arange(300) % 20]  # exact duplicates: ties in every page
    path = write_vectors(tmp_path / "ties.parquet", [f"t{n:03d}" for n in range(300)], vectors,
                         split=["a" if n % 3 else "b" for n in range(300)])
    assert import_file(path, dataset_name, model, settings=settings).imported == 300
    for exact_cap in (20_000, 0):
        tuned = settings.model_copy(update={"exact_search_max_rows": exact_cap})
        for split, expected in ((None, 300), ("b", 100)):
            seen: list[str] = []
            for offset in range(0, expected, 40):
                page = search(SearchQuery(dataset=dataset_name, model=model, split=split,
                                          vector=directions[3].tolist(), offset=offset,
                                          limit=40), tuned)
                assert page.exact is (exact_cap > 0)
                seen += [hit.name for hit in page.results]
            assert len(seen) == len(set(seen)) == expected, (exact_cap, split)
            # The 15 copies of direction 3 come first (5 with split b).
            top = 15 if split is None else 5
            assert {int(n[1:]) % 20 for n in seen[:top]} == {3}


def test_vector_import_library_refusals(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        import_file(tmp_path / "none.parquet", "x", model_name(), settings=settings)
    path = write_vectors(tmp_path / "v.parquet", ["a"], np.ones((1, 4), np.float32))
    with pytest.raises(InvalidInputError, match="chunk size"):
        import_file(path, "x", model_name(), settings=settings, chunk_rows=0)
    with pytest.raises(ConflictError, match="computed by pixdex"):
        import_file(path, "x", "efficientnet-lite0-classes", settings=settings)


def test_imported_rows_never_hold_back_the_models_pixdex_computes(
    settings: Settings, tmp_path: Path, dataset_name: str
) -> None:
    """A prompt search (or reembed) over datasets with imported rows: those rows cannot
    get pixdex's own vectors (no file), so they do not make the dataset 'incomplete'."""
    from pixdex.app.reembed import _missing_page

    path = write_vectors(tmp_path / "v.parquet", ["a", "b"], clustered(2, 8))
    import_file(path, dataset_name, model_name(), settings=settings)
    classes = "efficientnet-lite0-classes"
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, "default", dataset_name).id
        assert not catalog.has_indexed_files(conn, dataset_id)
        assert catalog.datasets_without_model(conn, [dataset_id], classes) == []
        assert _missing_page(conn, dataset_id, classes, None, 10) == []
        conn.execute("INSERT INTO images (dataset_id, storage_key, name, status, sha256)"
                     " VALUES (%s, 'file:///photos/c.jpg', 'c.jpg', 'indexed', 'c0ffee')",
                     (dataset_id,))
        assert catalog.has_indexed_files(conn, dataset_id)
        assert catalog.datasets_without_model(conn, [dataset_id], classes) == [dataset_name]
        assert [key for _, key in _missing_page(conn, dataset_id, classes, None, 10)] == [
            "file:///photos/c.jpg"]
