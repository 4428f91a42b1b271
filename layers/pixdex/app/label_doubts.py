"""Label doubts: annotated images whose classes their neighbours do not share (a kNN vote
over annotation classes), and annotated images whose confident auto-tags name none of
their classes.

A neighbour vote counts only annotated neighbours, and only images with at least
``MIN_VOTERS`` of them are judged (one neighbour is an opinion, not a vote). Tag
contradictions match words (a class "cat" agrees with the tag "tabby cat", "dogs" with
"dog"), so a synonym the tagger uses ("coffee" / "espresso") is reported too: they are
doubts to look at, not verdicts.
"""

from __future__ import annotations

import re
from uuid import UUID

from pixdex.app.curation import curated_model, refresh, resolve
from pixdex.app.curation_schemas import LabelDoubts, NeighbourDoubt, TagContradiction
from pixdex.config import Settings, get_settings
from pixdex.storage import curation
from pixdex.storage.connection import connect

MIN_VOTERS = 2
# The neighbours must agree among themselves: a class carried by at least this share of
# them. Neighbours that each say something else are no vote against the image.
MIN_CONSENSUS = 0.5
# A contradiction needs a confident tag: below this the classifier is only guessing.
TAG_CONFIDENCE = 0.5
_WORD = re.compile(r"[a-z0-9]+")


def label_doubts(dataset: str | UUID, *, limit: int = 50, max_agreement: float = 0.5,
                 workspace: str | None = None, settings: Settings | None = None) -> LabelDoubts:
    """The ``limit`` strongest doubts of each kind, strongest first."""
    settings = settings or get_settings()
    with connect(settings) as conn:
        ds = resolve(conn, workspace or settings.workspace, dataset)
        model = curated_model(conn, settings)
        votes = []
        if model is not None:
            refresh(conn, settings, ds.id, model)
            votes = curation.class_votes(conn, ds.id, model.name)
        tagged = curation.tagged_annotations(conn, ds.id, TAG_CONFIDENCE)
    doubts = [d for row in votes if (d := _vote(row)) is not None and d.agreement <= max_agreement]
    doubts.sort(key=lambda d: (-d.score, d.name, str(d.id)))
    contradictions = [c for row in tagged if (c := _contradiction(row)) is not None]
    contradictions.sort(key=lambda c: (-max(c.tags.values()), c.name, str(c.id)))
    return LabelDoubts(neighbour_doubts=doubts[:limit], tag_contradictions=contradictions[:limit])


def _vote(row: dict[str, object]) -> NeighbourDoubt | None:
    voters = int(str(row["voters"]))
    classes = row["classes"]
    votes = row["votes"]
    if voters < MIN_VOTERS or not isinstance(classes, dict) or not isinstance(votes, dict):
        return None
    own = sorted(str(c) for c in classes)
    agreement = max((int(votes.get(c, 0)) for c in own), default=0) / voters
    suggested = max(sorted(votes), key=lambda c: int(votes[c]))
    if suggested in own or int(votes[suggested]) / voters < MIN_CONSENSUS:
        return None
    return NeighbourDoubt(id=UUID(str(row["id"])), name=str(row["name"]), classes=own,
                          suggested=str(suggested), agreement=round(agreement, 4),
                          score=round(1 - agreement, 4))


def _words(text: str) -> set[str]:
    words = set(_WORD.findall(text.lower()))
    return words | {w[:-1] for w in words if w.endswith("s") and len(w) > 3}  # plurals


def _contradiction(row: dict[str, object]) -> TagContradiction | None:
    classes, objects = row["classes"], row["objects"]
    if not isinstance(classes, dict) or not isinstance(objects, dict):
        return None
    confident = {str(t): float(s) for t, s in objects.items() if float(s) >= TAG_CONFIDENCE}
    class_words = set().union(*(_words(str(c)) for c in classes))
    tag_words = set().union(*(_words(t) for t in objects))
    if not confident or class_words & tag_words:
        return None
    return TagContradiction(id=UUID(str(row["id"])), name=str(row["name"]),
                            classes=sorted(str(c) for c in classes),
                            tags={t: round(s, 4) for t, s in confident.items()})
