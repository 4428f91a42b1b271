"""Importing a Parquet file of vectors (``pixdex vectors import``): read in chunks with
pyarrow, each chunk imported by :mod:`pixdex.app.vectors`. The reader alone also serves
:meth:`pixdex.Client.import_parquet` (the same file, sent through the HTTP API).

Columns: ``name`` (string) and ``embedding`` (a list of floats, one fixed dimension) are
required; ``folder``, ``split``, ``batch_id``, ``annotation_job_id`` (strings), ``tags``
(a list of strings) and ``metadata`` (JSON text) are optional; other columns are ignored
(and named in the report's warnings). A column of the wrong type is an error before any
row is read.

Streamed: the file is read a chunk of rows at a time through a small read buffer, never a
whole row group, so memory stays bounded by the chunk (not the file) at any size.

pyarrow is imported here and only here: nothing a Lambda handler loads may import this
module (the import contract in ``pyproject.toml`` forbids pyarrow there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pixdex.app.vector_rows import VectorBatch
from pixdex.app.vectors import IndexMode, Progress, VectorImport, check_model_name, run_import
from pixdex.config import Settings, get_settings
from pixdex.errors import InvalidInputError, NotFoundError
from pixdex.models import VectorImportReport
from pixdex.storage import catalog
from pixdex.storage.connection import connect

REQUIRED = ("name", "embedding")
TEXT_COLUMNS = ("folder", "split", "batch_id", "annotation_job_id", "metadata")
OPTIONAL = (*TEXT_COLUMNS, "tags")
# Rows per chunk: 8192 x 768 float32 is 25 MB; at the 4000-d maximum, 131 MB.
DEFAULT_CHUNK_ROWS = 8192
# pyarrow's read buffer: pages are read through it instead of whole column chunks (a
# row group of a million vectors would otherwise be gigabytes in memory at once).
_READ_BUFFER_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class VectorFile:
    path: Path
    rows: int
    columns: tuple[str, ...]
    ignored: tuple[str, ...]

    def batches(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[VectorBatch]:
        """The file's rows, ``chunk_rows`` at a time, in file order."""
        if chunk_rows < 1:
            raise InvalidInputError("chunk size must be at least 1 row", field="chunk_rows")
        reader = _open(self.path)
        first = 0
        for record in reader.iter_batches(batch_size=chunk_rows, columns=list(self.columns),
                                          use_threads=True):
            yield to_batch(record, first)
            first += record.num_rows


def _open(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise NotFoundError(f"no such file {str(path)!r}", field="file")
    try:
        return pq.ParquetFile(path, buffer_size=_READ_BUFFER_BYTES, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(
            f"{path} is not a readable Parquet file ({exc})", field="file"
        ) from None


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)
                or pa.types.is_string_view(kind) or pa.types.is_null(kind))


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind)
                or pa.types.is_fixed_size_list(kind) or pa.types.is_list_view(kind)
                or pa.types.is_large_list_view(kind))


def _check_type(name: str, kind: pa.DataType) -> None:
    if name == "embedding":
        if not (_is_list(kind) and pa.types.is_floating(kind.value_type)):
            raise InvalidInputError(
                f"column embedding must be a list of floats (float32), not {kind}",
                field="embedding",
            )
    elif name == "tags":
        if not (pa.types.is_null(kind) or (_is_list(kind) and _is_text(kind.value_type))):
            raise InvalidInputError(
                f"column tags must be a list of strings, not {kind}", field="tags"
            )
    elif not _is_text(kind):
        what = "JSON text (a string)" if name == "metadata" else "a string"
        raise InvalidInputError(f"column {name} must be {what}, not {kind}", field=name)


def open_vector_file(path: str | Path) -> VectorFile:
    """The file's layout, checked: required columns present, every known column of a
    usable type. Reads only the footer."""
    path = Path(path).expanduser()
    parquet = _open(path)
    schema = parquet.schema_arrow
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise InvalidInputError(
            f"{path.name} has no {' and no '.join(missing)} column; a vector file needs "
            f"name (string) and embedding (list of float32), and may have "
            f"{', '.join(OPTIONAL)}", field=missing[0],
        )
    columns = tuple(c for c in (*REQUIRED, *OPTIONAL) if c in schema.names)
    for column in columns:
        _check_type(column, schema.field(column).type)
    ignored = tuple(c for c in schema.names if c not in columns)
    return VectorFile(path, parquet.metadata.num_rows, columns, ignored)


def _embeddings(column: pa.Array) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any],
                                           np.ndarray[Any, Any]]:
    """(values, offsets, present) of a list column: row k's values are
    ``values[offsets[k]:offsets[k + 1]]``."""
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        column = column.cast(pa.large_list(kind.value_type))
    offsets = column.offsets.to_numpy().astype(np.int64)
    values = column.values.to_numpy(zero_copy_only=False)  # nulls become NaN
    present = column.is_valid().to_numpy(zero_copy_only=False)
    return values.astype(np.float32, copy=False), offsets, present.astype(bool)


def to_batch(record: pa.RecordBatch, first_row: int) -> VectorBatch:
    names = record.schema.names
    values, offsets, present = _embeddings(record.column("embedding"))

    def text(name: str) -> list[Any]:
        return record.column(name).to_pylist() if name in names else []

    return VectorBatch(
        first_row=first_row,
        names=record.column("name").to_pylist(),
        values=values,
        offsets=offsets,
        present=present,
        folders=text("folder"),
        splits=text("split"),
        batch_ids=text("batch_id"),
        annotation_job_ids=text("annotation_job_id"),
        tags=text("tags"),
        metadata=text("metadata"),
    )


def import_file(
    path: str | Path, dataset: str, model: str, *, settings: Settings | None = None,
    workspace: str | None = None, index: IndexMode = "auto", chunk_rows: int | None = None,
    progress: Progress | None = None,
) -> VectorImportReport:
    """Import a Parquet file of vectors into ``dataset`` (created if new) as ``model``."""
    settings = settings or get_settings()
    chunk_rows = DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows
    if chunk_rows < 1:
        raise InvalidInputError("chunk size must be at least 1 row", field="chunk_rows")
    source = open_vector_file(path)
    check_model_name(settings, model)
    with connect(settings) as conn:
        row = catalog.ensure_dataset(conn, workspace or settings.workspace, dataset)
    job = VectorImport(settings, row.id, row.name, model, source.rows, index)
    if source.ignored:
        job.warnings.append(f"columns ignored: {', '.join(source.ignored)}")
    return run_import(job, source.batches(chunk_rows), progress)
