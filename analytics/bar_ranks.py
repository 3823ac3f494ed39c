"""The percentile rank of a bar's value in the window of values ending at it, for many bars
at once: :func:`analytics.market_context.rank_pct` over each window, counted with numpy
instead of sorting each window (the same counts, so the same float, to the bit)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def window_ranks(values: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """Per position i, 100 x (values below + half those equal to ``values[i]``, itself
    included) / ``size`` among ``values[i - size + 1 : i + 1]``; NaN when the window is
    short (i < size - 1) or holds a NaN."""
    positions = np.asarray(positions, dtype=np.int64)
    out = np.full(len(positions), np.nan)
    ok = positions >= size - 1
    if not ok.any() or len(values) < size:
        return out
    at = positions[ok]
    windows = sliding_window_view(values, size)[at - size + 1]
    current = values[at][:, None]
    below = np.count_nonzero(windows < current, axis=1)
    equal = np.count_nonzero(windows == current, axis=1)
    ranks = 100.0 * (below + 0.5 * equal) / size
    ranks[np.isnan(windows).any(axis=1)] = np.nan
    out[ok] = ranks
    return out


__all__ = ["window_ranks"]
