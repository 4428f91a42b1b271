"""``pixdex.Client``'s dataset-curation calls (a mixin: the client is one class)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pixdex.app.curation_schemas import (
    DuplicateGate,
    Duplicates,
    LabelDoubts,
    Leakage,
    Outliers,
    Recomputed,
)
from pixdex.client.transport import Transport


class CurationCalls:
    _http: Transport

    def duplicates(self, dataset_id: UUID | str, *, level: int = 1, offset: int = 0,
                   limit: int = 50) -> Duplicates:
        """Near-duplicate clusters of the whole dataset at ``level`` (0-4), largest first."""
        return Duplicates.model_validate(self._http.json(
            "GET", f"/v1/datasets/{dataset_id}/duplicates",
            query={"level": level, "offset": offset, "limit": limit},
        ))

    def leakage(self, dataset_id: UUID | str, *, level: int = 1) -> Leakage:
        """Near-duplicate pairs across splits, with counts per split pair."""
        return Leakage.model_validate(self._http.json(
            "GET", f"/v1/datasets/{dataset_id}/leakage", query={"level": level}
        ))

    def outliers(self, dataset_id: UUID | str, *, offset: int = 0, limit: int = 50) -> Outliers:
        return Outliers.model_validate(self._http.json(
            "GET", f"/v1/datasets/{dataset_id}/outliers",
            query={"offset": offset, "limit": limit},
        ))

    def label_doubts(self, dataset_id: UUID | str, *, limit: int = 50) -> LabelDoubts:
        return LabelDoubts.model_validate(self._http.json(
            "GET", f"/v1/datasets/{dataset_id}/label-doubts", query={"limit": limit}
        ))

    def duplicate_gate(self, dataset_id: UUID | str) -> DuplicateGate:
        return DuplicateGate.model_validate(
            self._http.json("GET", f"/v1/datasets/{dataset_id}/duplicate-gate")
        )

    def set_duplicate_gate(self, dataset_id: UUID | str,
                           on_duplicate: Literal["allow", "skip", "link"],
                           level: int = 1) -> DuplicateGate:
        """What indexing does with a near-duplicate of an image the dataset already has."""
        return DuplicateGate.model_validate(self._http.json(
            "PUT", f"/v1/datasets/{dataset_id}/duplicate-gate",
            json_body={"on_duplicate": on_duplicate, "level": level},
        ))

    def recompute_curation(self, dataset_id: UUID | str) -> Recomputed:
        return Recomputed.model_validate(
            self._http.json("POST", f"/v1/datasets/{dataset_id}/curation/recompute")
        )
