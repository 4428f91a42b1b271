"""What dataset curation answers (library, CLI ``--json``, HTTP API and client alike)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pixdex.errors import InvalidInputError

OnDuplicate = Literal["allow", "skip", "link"]
# Level -> minimum cosine (EfficientNet-Lite0), calibrated by bench/calibrate_curation.py;
# docs/curation.md says what each catches.
LEVEL_THRESHOLDS = (0.95, 0.80, 0.72, 0.65, 0.55)
LEVELS = "0-4 (0 = near-identical ... 4 = similar scene)"


def threshold(level: object) -> float:
    """The level's cosine threshold; anything but an integer 0-4 is refused."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 4:
        raise InvalidInputError(f"level must be an integer {LEVELS}, not {level!r}",
                                field="level")
    return LEVEL_THRESHOLDS[level]


class ClusterMember(BaseModel):
    id: UUID
    name: str
    split: str | None
    score: float = Field(description="Its highest cosine to another member of the cluster.")


class DuplicateCluster(BaseModel):
    id: UUID = Field(description="Stable while its members stay: the smallest member id.")
    size: int
    members: list[ClusterMember]
    keep: UUID = Field(description="Suggested keeper: the largest, then sharpest, original.")


class Duplicates(BaseModel):
    level: int
    threshold: float
    total_clusters: int
    clusters: list[DuplicateCluster]


class LeakSide(BaseModel):
    id: UUID
    name: str
    split: str


class LeakPair(BaseModel):
    a: LeakSide
    b: LeakSide
    score: float


class Leakage(BaseModel):
    level: int
    threshold: float
    pairs: list[LeakPair]
    counts: dict[str, int] = Field(description='Pairs per split pair, e.g. {"train/test": 3}.')
    note: str | None = None


class Outlier(BaseModel):
    id: UUID
    name: str
    split: str | None
    score: float = Field(description="Mean cosine distance to its nearest neighbours.")


class Outliers(BaseModel):
    total: int
    outliers: list[Outlier]


class NeighbourDoubt(BaseModel):
    id: UUID
    name: str
    classes: list[str]
    suggested: str = Field(description="The class most of its annotated neighbours carry.")
    agreement: float = Field(description="Share of annotated neighbours carrying its class.")
    score: float = Field(description="Doubt: 1 - agreement.")


class TagContradiction(BaseModel):
    id: UUID
    name: str
    classes: list[str]
    tags: dict[str, float] = Field(description="Confident object auto-tags naming none of them.")


class LabelDoubts(BaseModel):
    neighbour_doubts: list[NeighbourDoubt]
    tag_contradictions: list[TagContradiction]


class DuplicateGate(BaseModel):
    """The ingest gate: what happens to an image that is a near-duplicate (at ``level``)
    of one the dataset already has."""

    model_config = ConfigDict(extra="forbid")

    on_duplicate: OnDuplicate = "allow"
    level: int = Field(default=1, description=f"the gate's level, {LEVELS}")

    @field_validator("level")
    @classmethod
    def _level(cls, value: int) -> int:
        if not 0 <= value <= 4:
            raise ValueError(f"level must be {LEVELS}, not {value}")
        return value


class Recomputed(BaseModel):
    dataset: str
    model: str
    images: int
    seconds: float
