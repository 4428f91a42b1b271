"""The duplicate gate at ingest: ``on_duplicate = allow | skip | link`` at a level.

An embedded image is checked, before it is written, against the dataset (one nearest-
neighbour query) and against the images this run has already accepted (they may not be
written yet). ``skip``: a near-duplicate is not indexed and the report names its match;
``link``: it is indexed and the relation is recorded (``duplicate_links``).
The gate of a request wins over the dataset's (``pixdex curation gate``); neither: allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from pixdex.app.curation import resolve
from pixdex.app.curation_schemas import DuplicateGate, threshold
from pixdex.config import Settings, get_settings
from pixdex.storage import catalog, curation
from pixdex.storage.connection import Conn, connect


@dataclass(frozen=True)
class Match:
    """What an image duplicates: an indexed image (``id``) or one earlier in this run."""

    score: float
    id: UUID | None = None
    label: str | None = None  # the earlier item of this run

    def describe(self, level: int) -> str:
        what = f"image {self.id}" if self.id is not None else repr(self.label)
        return (f"near-duplicate of {what} (cosine {self.score:.3f} at level {level}); "
                "not indexed (on_duplicate=skip)")


def dataset_gate(conn: Conn, dataset_id: UUID) -> DuplicateGate:
    found = curation.get_gate(conn, dataset_id)
    if found is None:
        return DuplicateGate()
    return DuplicateGate.model_validate({"on_duplicate": found[0], "level": found[1]})


def set_dataset_gate(dataset: str | UUID, gate: DuplicateGate, *, workspace: str | None = None,
                     settings: Settings | None = None) -> DuplicateGate:
    settings = settings or get_settings()
    with connect(settings) as conn:
        ds = resolve(conn, workspace or settings.workspace, dataset)
        curation.set_gate(conn, ds.id, gate.on_duplicate, gate.level)
        return dataset_gate(conn, ds.id)


def get_dataset_gate(dataset: str | UUID, *, workspace: str | None = None,
                     settings: Settings | None = None) -> DuplicateGate:
    settings = settings or get_settings()
    with connect(settings) as conn:
        return dataset_gate(conn, resolve(conn, workspace or settings.workspace, dataset).id)


class GateCheck:
    """One ingest run's gate: checks each embedded image in input order."""

    def __init__(self, settings: Settings, gate: DuplicateGate, dataset_id: UUID,
                 model: str) -> None:
        self.gate = gate
        self.threshold = threshold(gate.level)
        self.settings = settings
        self.matches: list[tuple[str, Match]] = []  # (item label, its match), in order
        self._dataset_id = dataset_id
        self._model = model
        self._labels: list[str] = []
        self._accepted: list[NDArray[np.float32]] = []

    @property
    def active(self) -> bool:
        return self.gate.on_duplicate != "allow"

    def check(self, conn: Conn, label: str, vector: NDArray[np.float32]) -> Match | None:
        """The image's match at the gate's level, if any; an image let in is remembered."""
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        match = self._in_run(unit)
        info = catalog.model_info(conn, self._model)
        cap = self.settings.exact_search_max_rows
        exact = curation.embedded_count(conn, self._dataset_id, self._model, cap) <= cap
        found = curation.nearest(conn, info.name, info.dim, self._dataset_id, unit, exact=exact)
        if found is not None and found[1] >= self.threshold - 1e-6 and (
            match is None or found[1] > match.score
        ):
            match = Match(score=found[1], id=found[0])
        if match is None or self.gate.on_duplicate == "link":
            self._labels.append(label)
            self._accepted.append(unit.astype(np.float32))
        if match is not None:
            self.matches.append((label, match))
        return match

    def _in_run(self, unit: NDArray[np.float32]) -> Match | None:
        if not self._accepted:
            return None
        scores = np.stack(self._accepted) @ unit
        best = int(np.argmax(scores))
        if float(scores[best]) < self.threshold - 1e-6:
            return None
        return Match(score=float(scores[best]), label=self._labels[best])
