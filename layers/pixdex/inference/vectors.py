"""Vector arithmetic shared by the models, search and tagging (numpy only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["l2_normalise"]


def l2_normalise(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows scaled to unit length (an all-zero row stays zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: NDArray[np.float32] = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
