"""Bring your own vectors, the file and the model's side, on the embedded PostgreSQL: file
and layout errors, a dimension that disagrees with the model, names already taken,
streaming in chunks, the model's index (deferred, built, rebuilt), pages of a raw-vector
search on both paths, and imported rows next to pixdex's own models."""

from __future__ import annotations

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
