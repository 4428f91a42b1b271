"""Imported vectors, row by row: what makes a row good, and the report of an import.

Pure (numpy, no database, no pyarrow): the Parquet reader (:mod:`pixdex.app.vector_file`)
and the HTTP API both hand chunks of rows over as a :class:`VectorBatch`, and
:func:`check` splits a chunk into rows to import and rows refused, each refusal with its
row number and reason. A bad row is reported, never fatal; what is wrong with the input
as a whole (no ``name`` column, vectors of another dimension than the model's) is an
error instead.

Vectors are stored as unit vectors in half precision: they are compared by cosine, which
ignores length, and a unit vector cannot overflow float16.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pixdex.models import MAX_VECTOR_EXAMPLES, RowProblem, VectorRowReason
from pixdex.storage.vectors import NewRows

# halfvec's HNSW index takes at most 4000 dimensions (and so does embedding_models.dim).
MAX_DIM = 4000
MAX_NAME_CHARS = 255
MAX_FOLDER_CHARS = 1000
MAX_TEXT_CHARS = 200
MAX_TAGS = 100

@dataclass
class VectorBatch:
    """A chunk of input rows, columnar. Row ``k`` is input row ``first_row + k``; its
    vector is ``values[offsets[k]:offsets[k + 1]]`` (absent where ``present[k]`` is
    False). Text columns hold None for a missing value."""

    first_row: int
    names: list[Any]
    values: NDArray[np.float32]
    offsets: NDArray[np.int64]
    present: NDArray[np.bool_]
    folders: list[Any] = field(default_factory=list)
    splits: list[Any] = field(default_factory=list)
    batch_ids: list[Any] = field(default_factory=list)
    annotation_job_ids: list[Any] = field(default_factory=list)
    tags: list[Any] = field(default_factory=list)
    metadata: list[Any] = field(default_factory=list)  # JSON text (files) or objects (API)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def lengths(self) -> NDArray[np.int64]:
        out: NDArray[np.int64] = np.diff(self.offsets)
        return out

    def column(self, values: list[Any], k: int) -> Any:
        return values[k] if values else None


def batch_dim(batch: VectorBatch) -> int | None:
    """The dimension most of the batch's vectors have (a stray row does not decide it)."""
    lengths = batch.lengths[batch.present & (batch.lengths > 0)]
    if lengths.size == 0:
        return None
    counts = np.bincount(lengths)
    return int(np.argmax(counts))


class Tally:
    """Counts and first examples of refused rows, across the chunks of one import."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()
        self.examples: list[RowProblem] = []

    def refuse(self, row: int, name: Any, reason: VectorRowReason, message: str) -> None:
        self.reasons[reason] += 1
        if len(self.examples) < MAX_VECTOR_EXAMPLES:
            shown = name if isinstance(name, str) else None
            self.examples.append(RowProblem(row=row, name=shown, reason=reason, message=message))

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())


def _text(value: Any, limit: int) -> str | Literal[False] | None:
    """The value as optional text, or False when it is not usable text."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        return False
    return value or None


def _folder(value: Any) -> str | None:
    """``a/b/`` -> ``/a/b``, as every interface files images; None when unusable."""
    if value is None:
        return "/"
    if not isinstance(value, str) or len(value) > MAX_FOLDER_CHARS or "\x00" in value:
        return None
    parts = [p for p in value.replace("\\", "/").split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        return None
    return "/" + "/".join(parts)


def _tags(value: Any) -> list[str] | None:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or len(value) > MAX_TAGS:
        return None
    tags = [t for t in value if t is not None]
    if not all(isinstance(t, str) and 0 < len(t) <= MAX_TEXT_CHARS and "\x00" not in t
               for t in tags):
        return None
    return list(dict.fromkeys(tags))


def _metadata(value: Any) -> str | None:
    """The metadata as the JSON text of an object (what is stored), None when it is not
    one. Text from a file is kept as it is, once parsed to check it."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except ValueError:
            return None
    else:
        text = json.dumps(value)
    # PostgreSQL's jsonb takes no NUL character anywhere, escaped or not.
    return text if isinstance(value, dict) and "\\u0000" not in text else None


def check(
    batch: VectorBatch, dim: int, tally: Tally, seen: dict[str, int]
) -> tuple[list[int], NewRows]:
    """The batch's good rows (their input row numbers, and the rows to insert), with every
    other row refused into ``tally``. ``seen``: names taken by earlier rows of this
    chunk (name -> row), filled in as rows pass."""
    n = len(batch)
    lengths = batch.lengths
    present = batch.present & (lengths > 0)
    rows_ok = np.flatnonzero(present & (lengths == dim))
    # The well-shaped rows as one (n_ok, dim) matrix: a view when every row is one.
    offsets, values = batch.offsets, batch.values
    if rows_ok.size == n and n and offsets[0] == 0 and offsets[-1] == n * dim:
        matrix = values[: n * dim].reshape(n, dim)
    elif rows_ok.size:
        matrix = np.stack([values[start : start + dim] for start in offsets[rows_ok]])
    else:
        matrix = np.zeros((0, dim), np.float32)
    finite = np.isfinite(matrix).all(axis=1)
    # Scaled by the largest component before the norm: squares of large float32 overflow.
    scale = np.abs(matrix).max(axis=1, initial=0.0)
    nonzero = scale > 0
    status: dict[int, tuple[VectorRowReason, str]] = {}
    for bad in np.flatnonzero(~present):
        status[int(bad)] = ("no_embedding", "no embedding")
    for bad in np.flatnonzero(present & (lengths != dim)):
        status[int(bad)] = ("wrong_dimension",
                            f"embedding has {int(lengths[bad])} dimensions, expected {dim}")
    for pos in np.flatnonzero(~finite):
        status[int(rows_ok[pos])] = ("not_finite", "embedding has NaN, infinite or null values")
    for pos in np.flatnonzero(finite & ~nonzero):
        status[int(rows_ok[pos])] = ("zero_vector",
                                     "embedding is all zeros (it has no direction to compare)")
    keep_pos: list[int] = []
    good_rows: list[int] = []
    out = NewRows([], [], [], [], [], [], [], np.zeros((0, dim), np.float32))
    position = {int(k): p for p, k in enumerate(rows_ok)}
    for k in range(n):
        row = batch.first_row + k
        raw_name = batch.names[k]
        if k in status:
            reason, message = status[k]
            tally.refuse(row, raw_name, reason, message)
            continue
        name = _text(raw_name, MAX_NAME_CHARS)
        if name is None:
            tally.refuse(row, raw_name, "no_name", "no name")
            continue
        if name is False or not name.strip():
            tally.refuse(row, raw_name, "bad_name",
                         f"name must be 1-{MAX_NAME_CHARS} characters without NUL")
            continue
        folder = _folder(batch.column(batch.folders, k))
        if folder is None:
            tally.refuse(row, name, "bad_folder",
                         f"folder must be a path of at most {MAX_FOLDER_CHARS} characters "
                         "without '..'")
            continue
        texts = [_text(batch.column(values, k), MAX_TEXT_CHARS)
                 for values in (batch.splits, batch.batch_ids, batch.annotation_job_ids)]
        if any(t is False for t in texts):
            tally.refuse(row, name, "bad_text", "split, batch_id and annotation_job_id must "
                         f"be text of at most {MAX_TEXT_CHARS} characters")
            continue
        tags = _tags(batch.column(batch.tags, k))
        if tags is None:
            tally.refuse(row, name, "bad_tags", f"tags must be at most {MAX_TAGS} strings of "
                         f"1-{MAX_TEXT_CHARS} characters")
            continue
        metadata = _metadata(batch.column(batch.metadata, k))
        if metadata is None:
            tally.refuse(row, name, "bad_metadata", "metadata must be a JSON object")
            continue
        if name in seen:
            tally.refuse(row, name, "duplicate_name",
                         f"duplicate name: row {seen[name]} has it too")
            continue
        seen[name] = row
        split, batch_id, job_id = (t if isinstance(t, str) else None for t in texts)
        out.names.append(name)
        out.folders.append(folder)
        out.tags.append(tags)
        out.splits.append(split)
        out.batch_ids.append(batch_id)
        out.annotation_job_ids.append(job_id)
        out.metadata.append(metadata)
        keep_pos.append(position[k])
        good_rows.append(row)
    if keep_pos:
        chosen = matrix[keep_pos].astype(np.float32)
        chosen /= scale[keep_pos, None].astype(np.float32)
        chosen /= np.linalg.norm(chosen, axis=1, keepdims=True)
        out.vectors = chosen
    return good_rows, out


def drop_rows(rows: NewRows, row_numbers: list[int], drop: set[int]) -> tuple[list[int], NewRows]:
    """``rows`` without those whose input row number is in ``drop``."""
    keep = [p for p, row in enumerate(row_numbers) if row not in drop]
    if len(keep) == len(row_numbers):
        return row_numbers, rows

    def pick(values: list[Any]) -> list[Any]:
        return [values[p] for p in keep]

    return [row_numbers[p] for p in keep], NewRows(
        pick(rows.names), pick(rows.folders), pick(rows.tags), pick(rows.splits),
        pick(rows.batch_ids), pick(rows.annotation_job_ids), pick(rows.metadata),
        rows.vectors[keep],
    )
