"""The compiled loops of the TCA: sorts in O(n) and the statistics of one metric per group.

>>> order = time_order(times_ns)                     # np.argsort(times, kind="stable")
>>> order = value_order(values)                      # the rows by ascending value (finite)
>>> stats = group_stats(values[order], weights[order], codes[order], groups, quantiles)

Both sorts are least-significant-byte-first radix sorts of 64-bit keys, skipping the bytes
every key shares (times of one month share their top three), stable.

For ``group_stats``, ``values`` are the metric's finite values in ascending order,
``weights`` theirs, ``codes`` a (values x groupings) array of each value's group in each
grouping (0..groups[d]-1). A counting sort by group keeps each group's values in order, so
its quantiles are read at their ranks. The rows of the result are the groups of the first
grouping, then of the next, and so on.
numba compiles them (cached on disk); without numba the same functions run as Python (slowly).
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - numba is a dependency; the fallback keeps analytics importable
    from numba import njit
except ImportError:  # pragma: no cover

    def njit(*_args, **_kwargs):  # type: ignore[no-redef]
        return lambda f: f


@njit(cache=True)
def group_stats(values, weights, codes, groups, quantiles):  # pragma: no cover - compiled
    """Per group: count, mean, weighted mean (over finite weights), then each quantile
    (linear between closest ranks, numpy's default); NaN for a group without values."""
    n = values.shape[0]
    dims = codes.shape[1]
    offset = np.zeros(dims + 1, np.int64)
    for d in range(dims):
        offset[d + 1] = offset[d] + groups[d]
    rows = offset[dims]
    count = np.zeros(rows, np.int64)
    total = np.zeros(rows)
    w_total = np.zeros(rows)
    wx_total = np.zeros(rows)
    for k in range(n):
        x = values[k]
        w = weights[k]
        weighted = np.isfinite(w)
        for d in range(dims):
            g = offset[d] + codes[k, d]
            count[g] += 1
            total[g] += x
            if weighted:
                w_total[g] += w
                wx_total[g] += w * x
    start = np.zeros(rows, np.int64)
    for d in range(dims):  # each grouping's groups share the n places
        at = 0
        for g in range(offset[d], offset[d + 1]):
            start[g] = at
            at += count[g]
    placed = start.copy()
    by_group = np.empty((dims, n))
    for k in range(n):  # values come sorted: each group's stay sorted
        for d in range(dims):
            g = offset[d] + codes[k, d]
            by_group[d, placed[g]] = values[k]
            placed[g] += 1
    out = np.full((rows, 3 + quantiles.shape[0]), np.nan)
    for d in range(dims):
        for g in range(offset[d], offset[d + 1]):
            c = count[g]
            out[g, 0] = c
            if c == 0:
                continue
            out[g, 1] = total[g] / c
            if w_total[g] != 0:
                out[g, 2] = wx_total[g] / w_total[g]
            for j in range(quantiles.shape[0]):
                position = (c - 1) * quantiles[j]
                lo = int(np.floor(position))
                hi = min(lo + 1, c - 1)
                a = by_group[d, start[g] + lo]
                b = by_group[d, start[g] + hi]
                out[g, 3 + j] = a + (b - a) * (position - lo)
    return out


@njit(cache=True)
def _radix_order(keys, order):  # pragma: no cover - compiled
    """``order`` rearranged by ascending ``keys`` (uint64), ties kept in place: a
    least-significant-byte-first radix sort; a byte that every key shares is skipped."""
    m = keys.shape[0]
    spare_keys, spare_order = np.empty(m, np.uint64), np.empty(m, np.int64)
    counts = np.zeros(256, np.int64)
    for byte in range(8):
        shift = np.uint64(8 * byte)
        counts[:] = 0
        for k in range(m):
            counts[(keys[k] >> shift) & np.uint64(255)] += 1
        if counts.max() == m:
            continue  # every key has this byte: the order stands
        at = 0
        for b in range(256):
            c = counts[b]
            counts[b] = at
            at += c
        for k in range(m):
            b = (keys[k] >> shift) & np.uint64(255)
            spare_keys[counts[b]] = keys[k]
            spare_order[counts[b]] = order[k]
            counts[b] += 1
        keys, spare_keys = spare_keys, keys
        order, spare_order = spare_order, order
    return order


@njit(cache=True)
def value_order(values):  # pragma: no cover - compiled
    """The positions of the finite float64 ``values`` by ascending value, ties in position
    order (their bits made monotonic: the sign bit of a positive number flipped, every bit of
    a negative one; -0.0 counts as 0.0). O(n), where a comparison sort is O(n log n)."""
    n = values.shape[0]
    keys = np.empty(n, np.uint64)
    order = np.empty(n, np.int64)
    m = 0
    for k in range(n):
        x = values[k]
        if np.isfinite(x):
            bits = np.float64(x + 0.0).view(np.uint64)
            if bits >> np.uint64(63):
                keys[m] = ~bits
            else:
                keys[m] = bits | np.uint64(0x8000000000000000)
            order[m] = k
            m += 1
    return _radix_order(keys[:m], order[:m])


@njit(cache=True)
def time_order(times):  # pragma: no cover - compiled
    """The positions of the int64 ``times`` (nanoseconds) by ascending time, ties in position
    order: ``np.argsort(times, kind="stable")`` in O(n)."""
    n = times.shape[0]
    keys = np.empty(n, np.uint64)
    for k in range(n):
        keys[k] = np.uint64(times[k]) ^ np.uint64(0x8000000000000000)
    return _radix_order(keys, np.arange(n))


__all__ = ["group_stats", "time_order", "value_order"]
