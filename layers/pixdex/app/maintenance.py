"""``pixdex db optimize``: the vectors table rewritten in the order searches read it
(:func:`pixdex.storage.maintenance.regroup_vectors`)."""

from __future__ import annotations

from pixdex.config import Settings
from pixdex.storage import maintenance
from pixdex.storage.connection import connect
from pixdex.storage.maintenance import LayoutCheck, VectorLayout

__all__ = ["LayoutCheck", "VectorLayout", "check_vectors", "optimize_vectors"]


def optimize_vectors(settings: Settings) -> VectorLayout:
    """Regroup every dataset's vectors by model and split, with their indexes rebuilt."""
    with connect(settings):  # the first pool brings the schema up to date
        pass
    return maintenance.regroup_vectors(settings)


def check_vectors(settings: Settings) -> LayoutCheck:
    """How spread the vectors with a split are, and how few pages regrouping would leave
    them on: ``pixdex db optimize --check``, read without the rewrite's lock."""
    with connect(settings):  # the schema brought up to date, as any command does
        pass
    return maintenance.check_layout(settings)
