"""Small numeric helpers of the metrics: safe ratio, mean, deviation, compounding, moments,
runs, drawdown and its episodes. NaN marks an undefined value, never a sentinel number."""

from __future__ import annotations

import math

import numpy as np

NAN = float("nan")


def _div(a: float, b: float) -> float:
    """a / b, NaN when b is zero or NaN (an undefined ratio, never inf or a sentinel)."""
    if b == 0 or math.isnan(b):
        return NAN
    return float(a) / float(b)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else NAN


def _std(x: np.ndarray, ddof: int) -> float:
    return float(x.std(ddof=ddof)) if x.size > ddof else NAN


def _compound_vol(var: float, g: float, n_per_year: float) -> float:
    """Annualized volatility of compounded returns (backtesting.py, SSRN 3054517)."""
    x = (var + (1 + g) ** 2) ** n_per_year - (1 + g) ** (2 * n_per_year)
    # rounding can leave a zero variance a hair below zero
    return math.sqrt(max(x, 0.0)) if not math.isnan(x) else NAN


def _geometric_mean(r: np.ndarray) -> float:
    """Geometric mean return; NaN once any return loses everything (backtesting.py gives 0)."""
    if not r.size or np.any(r <= -1):
        return NAN
    return math.exp(np.log1p(r).sum() / r.size) - 1


def _moments(d: np.ndarray, d2: np.ndarray, ddof: int) -> tuple[float, float]:
    """Skew and excess kurtosis from deviations ``d`` and their squares; ddof=1 gives the
    bias-corrected (pandas) estimators."""
    n = d.size
    if n < 4:
        return NAN, NAN
    m2, m3, m4 = d2.sum() / n, np.dot(d2, d) / n, np.dot(d2, d2) / n
    if m2 == 0:
        return NAN, NAN
    g1, g2 = m3 / m2**1.5, m4 / m2**2 - 3
    if ddof == 0:
        return float(g1), float(g2)
    skew = g1 * math.sqrt(n * (n - 1)) / (n - 2)
    kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6)
    return float(skew), float(kurt)


def _longest_run(flags: np.ndarray) -> int:
    """Longest run of True: ``_longest_run(np.array([1, 1, 0, 1], bool)) == 2``."""
    if not flags.any():
        return 0
    padded = np.zeros(flags.size + 2, dtype=np.int8)
    padded[1:-1] = flags
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return int((edges[1::2] - edges[::2]).max())


def _drawdown(values: np.ndarray) -> np.ndarray:
    """Drawdown fraction from the running peak, >= 0 (0.25 = 25% below the peak)."""
    return 1 - values / np.maximum.accumulate(values)


def _drawdown_episodes(dd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, depth) of each drawdown: from a peak bar to the bar it is regained (or the
    last bar), as backtesting.py delimits them."""
    ends = np.flatnonzero(dd == 0)
    if not ends.size or ends[-1] != dd.size - 1:
        ends = np.r_[ends, dd.size - 1]
    start, end = ends[:-1], ends[1:]
    keep = end > start + 1
    start, end = start[keep], end[keep]
    if not start.size:
        return start, end, np.empty(0)
    # maximum over dd[start:end + 1]; the padded zero keeps end + 1 in bounds
    bounds = np.column_stack([start, end + 1]).ravel()
    depth = np.maximum.reduceat(np.r_[dd, 0.0], bounds)[::2]
    return start, end, depth


def _cagr_periods(wealth: float, n: int, n_per_year: float) -> float:
    if not n or wealth < 0:
        return NAN
    return wealth ** (n_per_year / n) - 1
