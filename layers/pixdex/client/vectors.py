"""``pixdex.Client``'s calls that import your own vectors (a mixin: the client is one
class). Searching by a vector is ``Client.by_vector``."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from pixdex.app.service.schemas import ImportVectors, NewVector
from pixdex.client.transport import Transport
from pixdex.errors import InvalidInputError
from pixdex.models import MAX_VECTOR_EXAMPLES, MAX_VECTORS_PER_REQUEST, VectorImportReport

# Rows of vectors a call carries at most, in JSON bytes: one call goes through API Gateway
# and Lambda, whose invocation payload is 6 MB (client.DIRECT_UPLOAD_BYTES, for files).
VECTOR_REQUEST_BYTES = 4 * 1024 * 1024
# The Parquet reader (pyarrow), loaded by name when a file is imported.
VECTOR_FILE = "pixdex.app.vector_file"


def _vector_row(row: NewVector | dict[str, Any]) -> dict[str, Any]:
    if isinstance(row, NewVector):
        return row.model_dump(exclude_none=True)
    out = dict(row)
    embedding = out.get("embedding")
    if embedding is not None and hasattr(embedding, "tolist"):
        out["embedding"] = embedding.tolist()  # a numpy array
    return out


def _by_json_size(
    rows: list[dict[str, Any]], count: int, size: int
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(first row, rows) chunks of at most ``count`` rows and about ``size`` JSON bytes."""
    start, used = 0, 0
    chunk: list[dict[str, Any]] = []
    for n, row in enumerate(rows):
        length = len(json.dumps(row, allow_nan=True))
        if chunk and (len(chunk) >= count or used + length > size):
            yield start, chunk
            start, used, chunk = n, 0, []
        chunk.append(row)
        used += length
    if chunk:
        yield start, chunk


def _batch_rows(batch: Any) -> list[dict[str, Any]]:
    """A :class:`pixdex.app.vector_rows.VectorBatch` as API rows."""
    rows: list[dict[str, Any]] = []
    for k in range(len(batch)):
        start, end = int(batch.offsets[k]), int(batch.offsets[k + 1])
        row: dict[str, Any] = {
            "name": batch.names[k],
            "embedding": batch.values[start:end].tolist() if batch.present[k] else None,
        }
        for key, values in (("folder", batch.folders), ("split", batch.splits),
                            ("batch_id", batch.batch_ids),
                            ("annotation_job_id", batch.annotation_job_ids),
                            ("tags", batch.tags)):
            if values and values[k] is not None:
                row[key] = values[k]
        if row.get("tags") is not None:
            row["tags"] = [t for t in row["tags"] if t is not None]
        if batch.metadata and batch.metadata[k] is not None:
            row["metadata"] = batch.metadata[k]  # JSON text: the server parses (or refuses) it
        rows.append(row)
    return rows


def _merged_reports(reports: list[tuple[int, VectorImportReport]]) -> VectorImportReport:
    """One report for several calls; ``start`` is each call's first row in the whole."""
    first, last = reports[0][1], reports[-1][1]
    reasons: dict[str, int] = {}
    examples = []
    for start, report in reports:
        for reason, count in report.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
        examples += [e.model_copy(update={"row": e.row + start}) for e in report.examples]
    states = {report.index for _, report in reports}
    return VectorImportReport(
        dataset=first.dataset, dataset_id=first.dataset_id, model=first.model,
        dim=last.dim or first.dim, model_created=any(r.model_created for _, r in reports),
        rows=sum(r.rows for _, r in reports), imported=sum(r.imported for _, r in reports),
        rejected=sum(r.rejected for _, r in reports), reasons=dict(sorted(reasons.items())),
        examples=examples[:MAX_VECTOR_EXAMPLES],
        index="built" if "built" in states else "deferred" if "deferred" in states
        else "updated",
        seconds=round(sum(r.seconds for _, r in reports), 3),
        warnings=list(dict.fromkeys(w for _, r in reports for w in r.warnings)),
    )


class VectorCalls:
    _http: Transport

    def import_vectors(
        self, dataset_id: UUID | str, rows: Sequence[NewVector | dict[str, Any]], *,
        model: str, batch_size: int = MAX_VECTORS_PER_REQUEST, progress: bool = True,
    ) -> VectorImportReport:
        """Import rows (``name``, ``embedding`` (a list or numpy array), optional ``folder``,
        ``split``, ``tags``, ``batch_id``, ``annotation_job_id``, ``metadata``) as images
        without a file, in calls of at most ``batch_size`` rows and ~4 MB. Refused rows
        are reported with their 0-based position in ``rows``."""
        payload = [_vector_row(r) for r in rows]
        if not payload:
            raise InvalidInputError("give at least one row to import", field="rows")
        from tqdm import tqdm

        with tqdm(total=len(payload), unit="row", disable=not progress) as bar:
            return _merged_reports(self._send_vectors(dataset_id, payload, model, batch_size,
                                                      bar.update))

    def _send_vectors(
        self, dataset_id: UUID | str, payload: list[dict[str, Any]], model: str,
        batch_size: int, done: Any,
    ) -> list[tuple[int, VectorImportReport]]:
        step = max(1, min(batch_size, MAX_VECTORS_PER_REQUEST))
        reports: list[tuple[int, VectorImportReport]] = []
        for start, chunk in _by_json_size(payload, step, VECTOR_REQUEST_BYTES):
            body = ImportVectors(model=model, vectors=[NewVector(**r) for r in chunk])
            answer = self._http.json("POST", f"/v1/datasets/{dataset_id}/vectors",
                                     json_body=body.model_dump(mode="json", exclude_none=True))
            reports.append((start, VectorImportReport.model_validate(answer)))
            done(len(chunk))
        return reports

    def import_parquet(
        self, dataset_id: UUID | str, path: str | Path, *, model: str,
        batch_size: int = MAX_VECTORS_PER_REQUEST, progress: bool = True,
    ) -> VectorImportReport:
        """Import a Parquet file of vectors (the columns ``pixdex vectors import`` reads)
        through the API, a chunk at a time: for a server whose database you cannot reach.
        ``pixdex vectors import`` next to the database is much faster for large files."""
        from tqdm import tqdm

        # By name, like the model runtime: pyarrow is loaded only here, and the import
        # contract keeps it out of everything a Lambda loads (this package included).
        source = importlib.import_module(VECTOR_FILE).open_vector_file(path)
        if not source.rows:
            raise InvalidInputError(f"{path} has no rows", field="path")
        reports: list[tuple[int, VectorImportReport]] = []
        with tqdm(total=source.rows, unit="row", disable=not progress) as bar:
            for batch in source.batches(4096):
                sent = self._send_vectors(dataset_id, _batch_rows(batch), model, batch_size,
                                          bar.update)
                reports += [(batch.first_row + start, r) for start, r in sent]
        return _merged_reports(reports)
