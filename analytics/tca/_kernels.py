"""The compiled loops of the TCA: sorts in O(n) and the statistics of one metric per group.

>>> order = time_order(times_ns)                     # np.argsort(times, kind="stable")
>>> order = value_order(values)                      # the rows by ascending value (finite)
>>> stats = group_stats(values[order], weights[order], codes[order], groups, quantiles)

Both sorts are least-significant-byte-first radix sorts of 64-bit keys (:func:`radix_order`),
skipping the bytes every key shares (times of one month share their top three), stable; the
keys are made in numpy: a time's bits with the sign bit flipped, a float's bits made
monotonic.

For ``group_stats``, ``values`` are the metric's finite values in ascending order,
``weights`` theirs, ``codes`` a (values x groupings) array of each value's group in each
grouping (0..groups[d]-1). A counting sort by group keeps each group's values in order, so
its quantiles are read at their ranks. The rows of the result are the groups of the first
grouping, then of the next, and so on.

The loops are plain Python here; :func:`analytics._execution_aot.kernel` runs them compiled
ahead of time (a fresh process imports no numba), else by numba's JIT (cached on disk), else
as Python (slowly). The public functions hand them contiguous arrays of the exact dtypes.
"""

from __future__ import annotations

import numpy as np

from analytics._execution_aot import kernel

SIGN = np.uint64(0x8000000000000000)


def group_stats(values, weights, codes, groups, quantiles):
    """Per group: count, mean, weighted mean (over finite weights), then each quantile
    (linear between closest ranks, numpy's default); NaN for a group without values."""
    codes = np.asarray(codes)
    width = {np.dtype(np.int8): "c1", np.dtype(np.int16): "c2"}.get(codes.dtype, "c8")
    dtype = {"c1": np.int8, "c2": np.int16, "c8": np.int64}[width]
    _, compiled = kernel(f"group_stats_{width}", group_stats_loop)
    return compiled(
        _array(values, np.float64), _array(weights, np.float64),
        np.ascontiguousarray(codes, dtype=dtype), _array(groups, np.int64),
        _array(quantiles, np.float64),
    )  # fmt: skip


def value_order(values):
    """The positions of the finite float64 ``values`` by ascending value, ties in position
    order (their bits made monotonic: the sign bit of a positive number flipped, every bit of
    a negative one; -0.0 counts as 0.0). O(n), where a comparison sort is O(n log n)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.flatnonzero(np.isfinite(values))
    bits = (values[order] + 0.0).view(np.uint64)  # + 0.0: -0.0 becomes 0.0
    keys = np.where(bits >> np.uint64(63) != 0, ~bits, bits | SIGN)
    return radix_order(keys, order)


def time_order(times):
    """The positions of the int64 ``times`` (nanoseconds) by ascending time, ties in position
    order: ``np.argsort(times, kind="stable")`` in O(n)."""
    keys = np.asarray(times, dtype=np.int64).view(np.uint64) ^ SIGN
    return radix_order(keys, np.arange(len(keys), dtype=np.int64))


def radix_order(keys, order):
    """``order`` rearranged by ascending ``keys`` (uint64), ties kept in place; both arrays
    are used as scratch space (pass copies to keep them)."""
    _, compiled = kernel("radix_order", radix_order_loop)
    return compiled(_array(keys, np.uint64), _array(order, np.int64))


def _array(values, dtype) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=dtype)


def group_stats_loop(values, weights, codes, groups, quantiles):  # pragma: no cover - compiled
    """:func:`group_stats`' loop."""
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


def radix_order_loop(keys, order):  # pragma: no cover - compiled
    """:func:`radix_order`'s loop: a least-significant-byte-first radix sort; a byte that
    every key shares is skipped."""
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


__all__ = ["group_stats", "radix_order", "time_order", "value_order"]
