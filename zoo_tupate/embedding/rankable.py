"""Which embedding vectors can be ranked: finite, and with a squared norm within float32's normal range.

A zero vector (an all-zero ΔW, e.g. ``lora_alpha`` 1e-300) or one of values near 1e-45 has no direction:
its cosines are 0/0. Such a vector is degenerate when embedded and is never ranked when found in an index.
"""

from __future__ import annotations

import numpy as np

#: Smallest normal float32: a vector whose squared norm is below it cannot be compared (its cosines are 0/0).
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def vector_reason(vector: np.ndarray) -> str | None:
    """Why an embedding vector cannot be ranked (non-finite, zero, or too small for float32), or None."""
    v = np.asarray(vector, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        return "the embedding has non-finite values"
    square = float(np.dot(v, v))
    if square == 0.0:
        return "every value of the embedding is zero (nothing to compare)"
    if square < FLOAT32_TINY:
        return f"the embedding's values are too small to compare (squared norm {square:.3g}, under float32's range)"
    return None


def rankable(square_norms: np.ndarray) -> np.ndarray:
    """Which rows (given their float64 squared norms) can be ranked: finite and not zero (see :func:`vector_reason`)."""
    sq = np.asarray(square_norms, dtype=np.float64)
    return np.isfinite(sq) & (sq >= FLOAT32_TINY)
