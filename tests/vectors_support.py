"""Vector files and models for the bring-your-own-vectors tests (tests/test_vectors_*.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray


def model_name(prefix: str = "byo") -> str:
    """A fresh model name: named vectors are shared by every workspace of the database."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def clustered(n: int, dim: int, seed: int = 0) -> NDArray[np.float32]:
    """``n`` vectors around ``max(1, n // 10)`` directions: neighbours that mean something."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 10), dim))
    vectors = centres[np.arange(n) % len(centres)] + 0.3 * rng.standard_normal((n, dim))
    return vectors.astype(np.float32)


def write_vectors(
    path: Path, names: list[Any], vectors: list[Any] | NDArray[np.float32], *,
    fixed: bool = False, row_group_size: int | None = None, **columns: list[Any],
) -> Path:
    """A Parquet file: ``name``, ``embedding`` (list<float32>, or fixed_size_list with
    ``fixed``) and any other columns given (``metadata`` dicts are written as JSON text)."""
    if isinstance(vectors, np.ndarray) and fixed:
        embedding: pa.Array = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.astype(np.float32).ravel()), vectors.shape[1]
        )
    else:
        rows = [None if v is None else [float(x) for x in v] for v in vectors]
        embedding = pa.array(rows, type=pa.list_(pa.float32()))
    data: dict[str, Any] = {"name": pa.array(names, type=pa.string()), "embedding": embedding}
    for key, values in columns.items():
        if key == "metadata":
            values = [v if v is None or isinstance(v, str) else json.dumps(v) for v in values]
        data[key] = values
    pq.write_table(pa.table(data), path, row_group_size=row_group_size)
    return path
