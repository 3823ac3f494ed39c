"""The dataset's two loops over bars that no whole-column expression states: a trailing
percentile rank and the triple-barrier walk. They are plain Python here;
:func:`analytics._execution_aot.kernel` runs them compiled ahead of time (a fresh process
imports no numba), else by numba's JIT (cached on disk), else as Python (tests hold them equal
to plain pandas/Python). The public functions hand them contiguous arrays of the exact
dtypes."""

from __future__ import annotations

import numpy as np

from analytics._execution_aot import kernel


def trailing_rank_pct(values, window):
    """Per position i: 100 x (values below values[i] + half those equal, itself included) /
    window over values[i - window + 1 .. i]; NaN with fewer than ``window`` values or a NaN
    among them (analytics.market_context.rank_pct over the same window)."""
    _, compiled = kernel("trailing_rank_pct", trailing_rank_pct_loop)
    return compiled(_f(values), int(window))


def triple_barrier(position, reference, side, atr_share, high, low, close, group_end, horizon,
                   profit_atr, stop_atr):  # fmt: skip
    """Per decision: (label +1 profit barrier first, -1 stop barrier first (both in one bar:
    the stop, the worse), 0 the vertical barrier, -2 unknown; return in bps at the exit; bars
    to the exit). ``position``: the last bar closed by the decision (global index into the
    concatenated bars), ``group_end``: one past the symbol's last bar; the walk reads bars
    position + 1 .. position + horizon."""
    _, compiled = kernel("triple_barrier", triple_barrier_loop)
    return compiled(
        _i(position), _f(reference), _i(side), _f(atr_share), _f(high), _f(low), _f(close),
        _i(group_end), int(horizon), float(profit_atr), float(stop_atr),
    )  # fmt: skip


def _i(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


def _f(values) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def trailing_rank_pct_loop(values, window):  # pragma: no cover - compiled
    """:func:`trailing_rank_pct`'s loop."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    nan_run = 0  # NaNs in the current window
    for i in range(n):
        if np.isnan(values[i]):
            nan_run += 1
        if i >= window and np.isnan(values[i - window]):
            nan_run -= 1
        if i < window - 1 or nan_run > 0:
            continue
        current = values[i]
        below = 0
        equal = 0
        for j in range(i - window + 1, i + 1):
            v = values[j]
            if v < current:
                below += 1
            elif v == current:
                equal += 1
        out[i] = 100.0 * (below + 0.5 * equal) / window
    return out


def triple_barrier_loop(position, reference, side, atr_share, high, low, close, group_end,
                        horizon, profit_atr, stop_atr):  # fmt: skip  # pragma: no cover - compiled
    """:func:`triple_barrier`'s loop."""
    n = position.shape[0]
    label = np.full(n, -2, np.int8)
    ret = np.full(n, np.nan)
    bars = np.full(n, -1, np.int64)
    for k in range(n):
        p = position[k]
        ref = reference[k]
        a = atr_share[k]
        if p < 0 or not (ref > 0) or a != a:
            continue
        s = side[k]
        up = ref * (1.0 + s * profit_atr * a)  # the profit barrier (below ref for a sell)
        down = ref * (1.0 - s * stop_atr * a)
        last = min(p + horizon, group_end[k] - 1)
        for j in range(p + 1, last + 1):
            if s > 0:
                stop = low[j] <= down
                profit = high[j] >= up
            else:
                stop = high[j] >= down
                profit = low[j] <= up
            if stop:
                label[k] = -1
                ret[k] = -stop_atr * a * 1e4
                bars[k] = j - p
                break
            if profit:
                label[k] = 1
                ret[k] = profit_atr * a * 1e4
                bars[k] = j - p
                break
        if label[k] == -2 and p + horizon <= group_end[k] - 1:
            label[k] = 0
            ret[k] = s * (close[p + horizon] - ref) / ref * 1e4
            bars[k] = horizon
    return label, ret, bars


__all__ = ["trailing_rank_pct", "triple_barrier"]
