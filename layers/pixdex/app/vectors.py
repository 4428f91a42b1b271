"""Bring your own vectors: rows of (name, vector, metadata) become images without a file.

Each row becomes an image of the dataset with status ``indexed``, the given metadata and
one vector of the named model; it has no file (where one is asked for, the answer says
so). The model is created with the vectors' dimension if new (an imported model: pixdex
never computes it, and never imports into a model it computes); its vectors are compared
by cosine, through its own partial HNSW index like every model's.

Two ways in, one path: :func:`pixdex.app.vector_file.import_file` streams a Parquet file
chunk by chunk (the CLI); :func:`import_rows` takes one small batch (the HTTP API). Bad
rows (no name, wrong dimension, NaN / inf, zero vector, bad metadata, a name the input
repeats or the dataset already has) are counted and the first few reported with their
row numbers; they never stop the import. Each chunk is one transaction: an interrupted
import keeps the chunks it committed, and running it again imports the rest (the rows
already in are reported as names the dataset has).

The index (see :mod:`pixdex.storage.vectors`): a model without one (new, or deferred) is
loaded first and indexed after; a large import into an indexed model drops the index,
loads, and rebuilds it (searches of that model rank exactly meanwhile: correct, slower
at scale); a small one updates it row by row. ``index="defer"`` leaves it unbuilt, for
several imports in a row (the last one, without it, builds it once). A dataset past the
exact path also gets an index of its own (:mod:`pixdex.storage.dataset_indexes`): the
same rule applies to it, and every build runs ``CONCURRENTLY``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from pixdex.app.vector_rows import MAX_DIM, Tally, VectorBatch, batch_dim, check, drop_rows
from pixdex.config import Settings
from pixdex.errors import ConflictError, InvalidInputError, NotFoundError, PayloadTooLargeError
from pixdex.inference.specs import builtin_specs, class_vector_name
from pixdex.models import MAX_VECTORS_PER_REQUEST, VectorImportReport
from pixdex.storage import catalog, images
from pixdex.storage import vectors as rows_sql
from pixdex.storage.connection import connect

__all__ = ["IndexMode", "VectorImport", "check_model_name", "import_rows", "run_import"]

IndexMode = Literal["auto", "defer", "incremental"]
# An indexed model is rebuilt rather than grown when the import brings at least 1/6 of
# the rows its index holds (measured: a build runs ~8x faster per row than inserts into
# the graph) and enough rows for the difference to matter.
REBUILD_FRACTION = 6
REBUILD_MIN_ROWS = 5_000
# Statistics are refreshed after an import this large (the planner's filter estimates).
_ANALYZE_AFTER = 1_000
Progress = Callable[[int], object]


def _reserved(settings: Settings) -> set[str]:
    names = {spec.name for spec in builtin_specs()} | {settings.model}
    return names | {class_vector_name(name) for name in names}


def check_model_name(settings: Settings, model: str) -> None:
    """Refuse, before anything is written, a name no import may use: an invalid one, or a
    model pixdex computes itself."""
    if not catalog.valid_model_name(model):
        raise InvalidInputError(
            f"invalid model name {model!r}: 1-63 characters of a-z, 0-9, '.', '_' and '-', "
            "starting with a letter or digit", field="model",
        )
    if model in _reserved(settings):
        raise ConflictError(
            f"model {model!r} is computed by pixdex; import your vectors under a name of "
            "their own", field="model",
        )


@dataclass
class VectorImport:
    """One import into one dataset and model: :meth:`add` chunks, then :meth:`finish`."""

    settings: Settings
    dataset_id: UUID
    dataset: str
    model: str
    expected_rows: int
    index_mode: IndexMode = "auto"
    tally: Tally = field(default_factory=Tally)
    rows: int = 0
    imported: int = 0
    dim: int | None = None
    model_created: bool = False
    warnings: list[str] = field(default_factory=list)
    _plan: Literal["build", "updated", "deferred"] = field(default="updated", init=False)
    _since: datetime | None = field(default=None, init=False)
    _model_dim: int | None = field(default=None, init=False)
    _indexed: int = field(default=0, init=False)
    _own_indexed: int = field(default=0, init=False)
    _started: float = field(default_factory=time.monotonic, init=False)

    def __post_init__(self) -> None:
        check_model_name(self.settings, self.model)
        with connect(self.settings) as conn:
            self._since = rows_sql.now(conn)
            try:
                info: catalog.ModelInfo | None = catalog.model_info(conn, self.model)
            except NotFoundError:
                info = None
        if info is not None and not info.imported:
            raise ConflictError(
                f"model {self.model!r} is computed by pixdex ({info.dim}-d); import your "
                "vectors under a name of their own", field="model",
            )
        self._model_dim = None if info is None else info.dim

    def _open_model(self, dim: int) -> None:
        """Register the model (``dim``-d) and decide what happens to its index."""
        if not 1 <= dim <= MAX_DIM:
            raise InvalidInputError(
                f"vectors have {dim} dimensions; at most {MAX_DIM} can be indexed",
                field="embedding",
            )
        with connect(self.settings) as conn:
            self.model_created = catalog.register_imported_model(conn, self.model, dim)
            state = rows_sql.index_state(conn, self.model)
            self._indexed = rows_sql.indexed_rows(conn, self.model) if state == "valid" else 0
            own = rows_sql.has_dataset_index(conn, self.model, self.dataset_id)
            self._own_indexed = rows_sql.indexed_rows(conn, self.model, self.dataset_id)
        self.dim = dim
        # The dataset's own index (a large dataset's, see pixdex.storage.dataset_indexes)
        # follows the same rule as the model's: dropped before a load it would slow down,
        # built again after it.
        if own and (self.index_mode == "defer" or (
                self.index_mode == "auto" and self.expected_rows >= REBUILD_MIN_ROWS
                and self.expected_rows * REBUILD_FRACTION >= self._own_indexed)):
            rows_sql.drop_index(self.settings, self.model, self.dataset_id)
        if self.index_mode == "defer":
            if state != "missing":
                rows_sql.drop_index(self.settings, self.model)
            self._plan = "deferred"
        elif self.model_created or state != "valid":
            if self.index_mode == "incremental" and not self.model_created:
                self._plan = "deferred"  # a request does not build a deferred index
                self.warnings.append(
                    f"model {self.model!r} has no HNSW index yet (a deferred import): its "
                    "searches rank exactly until `pixdex vectors import` builds it"
                )
            else:
                self._plan = "build"
        elif (self.index_mode == "auto" and self.expected_rows >= REBUILD_MIN_ROWS
              and self.expected_rows * REBUILD_FRACTION >= self._indexed):
            rows_sql.drop_index(self.settings, self.model)
            self._plan = "build"
        else:
            self._plan = "updated"

    def add(self, batch: VectorBatch) -> int:
        """Import one chunk; return how many of its rows went in."""
        self.rows += len(batch)
        if self.dim is None:
            found = batch_dim(batch)
            if found is None:  # no row has a vector yet: each is refused as such
                check(batch, 1, self.tally, {})
                return 0
            if self._model_dim is not None and found != self._model_dim:
                raise ConflictError(
                    f"model {self.model!r} holds {self._model_dim}-d vectors; these are "
                    f"{found}-d. Import them under another model name, or give "
                    f"{self._model_dim}-d vectors", field="model",
                )
            self._open_model(self._model_dim or found)
        assert self.dim is not None
        row_numbers, good = check(batch, self.dim, self.tally, {})
        if not row_numbers:
            return 0
        with connect(self.settings) as conn, conn.transaction():
            rows_sql.lock_names(conn, self.dataset_id)
            taken = rows_sql.existing_names(conn, self.dataset_id, good.names, self._since)
            if taken:
                drop: set[int] = set()
                for row, name in zip(row_numbers, good.names, strict=True):
                    if name not in taken:
                        continue
                    drop.add(row)
                    if taken[name]:
                        self.tally.refuse(row, name, "duplicate_name",
                                          "duplicate name: an earlier row has it too")
                    else:
                        self.tally.refuse(row, name, "name_in_dataset",
                                          f"the dataset already has an image named {name!r}")
                row_numbers, good = drop_rows(good, row_numbers, drop)
            if len(good):
                rows_sql.insert_rows(conn, self.dataset_id, self.model, good)
        self.imported += len(good)
        return len(good)

    def finish(self) -> VectorImportReport:
        if self.dim is not None and self._plan == "build":
            rows_sql.build_index(self.settings, self.model, self.dim, "cosine",
                                 self._indexed + self.imported)
        elif self.imported >= _ANALYZE_AFTER:
            with connect(self.settings) as conn:
                images.refresh_statistics(conn)
        if self.dim is not None and self.imported and self._plan != "deferred":
            # As after an ingest: a dataset past the exact path gets its own HNSW index.
            rows_sql.index_dataset_if_over(
                self.settings, self.model, self.dim, "cosine", self.dataset_id,
                min_rows=self.settings.exact_search_max_rows,
                rows=self._own_indexed + self.imported,
            )
        return VectorImportReport(
            dataset=self.dataset, dataset_id=self.dataset_id, model=self.model,
            dim=self.dim or 0, model_created=self.model_created, rows=self.rows,
            imported=self.imported, rejected=self.tally.rejected,
            reasons=dict(sorted(self.tally.reasons.items())), examples=self.tally.examples,
            index="built" if self._plan == "build" else self._plan,
            seconds=round(time.monotonic() - self._started, 3), warnings=self.warnings,
        )


def run_import(job: VectorImport, batches: Iterable[VectorBatch],
               progress: Progress | None = None) -> VectorImportReport:
    for batch in batches:
        job.add(batch)
        if progress is not None:
            progress(len(batch))
    return job.finish()


def import_rows(
    settings: Settings, dataset_id: UUID, dataset: str, model: str, batch: VectorBatch
) -> VectorImportReport:
    """Import one small batch (the HTTP API): at most
    :data:`~pixdex.models.MAX_VECTORS_PER_REQUEST` rows."""
    if len(batch) > MAX_VECTORS_PER_REQUEST:
        raise PayloadTooLargeError(
            f"at most {MAX_VECTORS_PER_REQUEST} vectors per call, got {len(batch)}; send them in "
            "several calls, or import a file with `pixdex vectors import`", field="vectors",
        )
    job = VectorImport(settings, dataset_id, dataset, model, len(batch), "incremental")
    return run_import(job, [batch])
