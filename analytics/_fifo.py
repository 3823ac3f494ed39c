"""The FIFO walk of :mod:`analytics.round_trips` as one compiled loop over arrays.

>>> out = fifo_walk(group, sign, price, volume, fee, groups)   # numpy arrays, time order
>>> out = fifo_carry(group, sign, price, volume, fee, groups, *carried)  # from open positions

The same rules as :class:`analytics.round_trips.PositionLedger` (which the live tracker keeps
using one fill at a time, and whose batches carry their open positions through
:func:`fifo_carry`): per group (an account and symbol) lots are closed oldest first, a
fill's commission is shared by quantity between what it closes and what it opens, a fill
larger than the position flips it. It runs compiled ahead of time (analytics._fifo_aot: a
fresh process loads it in milliseconds, without importing numba), else by numba's JIT
(cached on disk), else as Python. Tests hold it equal to the ledger.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

EPSILON = 1e-12  # analytics.round_trips.EPSILON


def fifo_walk(group, sign, price, volume, fee, groups):
    """Returns (pnl per fill, trip of what each fill opened (-1 none), trip of what each
    fill closed (-1 none), per trip: group, direction, first fill, last fill, entry
    quantity, entry notional, exit quantity, exit notional, gross, fees, closed flag): the
    walk from flat positions."""
    empty_f, empty_i = np.zeros(0), np.zeros(0, np.int64)
    out = fifo_carry(
        group, sign, price, volume, fee, groups, np.zeros(groups, np.int64), empty_i, empty_f,
        empty_f, np.zeros((0, 6)),
    )  # fmt: skip
    return out[:14]


def fifo_carry(
    group, sign, price, volume, fee, groups, side0, lot_group0, lot_qty0, lot_price0, trip0
):
    """:func:`carry_walk`, run by the fastest kernel this process has (:func:`kernel`)."""
    return kernel()[1](
        group, sign, price, volume, fee, groups, side0, lot_group0, lot_qty0, lot_price0, trip0
    )


@functools.cache
def kernel() -> tuple[str, Callable[..., tuple]]:
    """(source, function) of :func:`carry_walk` as this process runs it, chosen on first use:
    'aot' (compiled ahead of time: analytics._fifo_aot, no numba imported), 'jit' (numba,
    cached on disk) or 'python' (without numba: the same code, slowly)."""
    from analytics._fifo_aot import prebuilt

    compiled = prebuilt()
    if compiled is not None:
        return "aot", compiled
    try:
        from numba import njit
    except ImportError:  # pragma: no cover - numba is a dependency
        return "python", carry_walk
    return "jit", njit(cache=True)(carry_walk)


def carry_walk(
    group, sign, price, volume, fee, groups, side0, lot_group0, lot_qty0, lot_price0, trip0
):  # pragma: no cover - compiled
    """The walk from carried positions: ``side0`` per group (+1, -1, 0 flat), its open lots
    (``lot_group0``, ``lot_qty0``, ``lot_price0``: oldest first within a group) and, per group
    holding a position (in group order), its open trip's entry quantity, entry notional, exit
    quantity, exit notional, gross and fees (``trip0``, one row each). Those trips come first
    (first fill -1). Returns :func:`fifo_walk`'s 14 arrays, then each group's final side,
    first lot (-1 none), the next lot of each lot, the lots' quantities and prices (carried
    lots first, then one per fill), each group's open trip (-1 none), and per fill what it
    opened (its quantity left after what it closed, 0 none), what it closed and the cost of
    that at the lots' prices (0 none)."""
    n = group.shape[0]
    m = lot_qty0.shape[0]
    pnl = np.zeros(n)
    opened = np.full(n, -1, np.int64)
    closed = np.full(n, -1, np.int64)
    opened_qty = np.zeros(n)
    closed_qty = np.zeros(n)
    closed_cost = np.zeros(n)
    lot_qty = np.zeros(m + n)
    lot_price = np.zeros(m + n)
    lot_next = np.full(m + n, -1, np.int64)
    head = np.full(groups, -1, np.int64)
    tail = np.full(groups, -1, np.int64)
    side = side0.copy()
    trip_of = np.full(groups, -1, np.int64)
    size = n + trip0.shape[0]
    t_group = np.empty(size, np.int64)
    t_dir = np.empty(size, np.int64)
    t_first = np.empty(size, np.int64)
    t_last = np.empty(size, np.int64)
    t_eq = np.zeros(size)
    t_en = np.zeros(size)
    t_xq = np.zeros(size)
    t_xn = np.zeros(size)
    t_gross = np.zeros(size)
    t_fees = np.zeros(size)
    t_done = np.zeros(size, np.bool_)
    trips = 0
    for g in range(groups):
        if side[g] != 0:
            t = trips
            trips += 1
            trip_of[g] = t
            t_group[t] = g
            t_dir[t] = side[g]
            t_first[t] = -1
            t_last[t] = -1
            t_eq[t] = trip0[t, 0]
            t_en[t] = trip0[t, 1]
            t_xq[t] = trip0[t, 2]
            t_xn[t] = trip0[t, 3]
            t_gross[t] = trip0[t, 4]
            t_fees[t] = trip0[t, 5]
    for j in range(m):
        g = lot_group0[j]
        lot_qty[j] = lot_qty0[j]
        lot_price[j] = lot_price0[j]
        if tail[g] >= 0:
            lot_next[tail[g]] = j
        else:
            head[g] = j
        tail[g] = j
    for k in range(n):
        g = group[k]
        s = sign[k]
        v = volume[k]
        p = price[k]
        per_unit = fee[k] / v
        left = v
        gross = 0.0
        if side[g] != 0 and s != side[g]:
            t = trip_of[g]
            here = 0.0
            cost = 0.0
            while head[g] >= 0 and left > EPSILON * v:
                lot = head[g]
                q = min(lot_qty[lot], left)
                cost += q * lot_price[lot]
                made = (p - lot_price[lot]) * q * side[g]
                gross += made
                t_gross[t] += made
                t_fees[t] += per_unit * q
                here += q
                lot_qty[lot] -= q
                left -= q
                if lot_qty[lot] <= EPSILON * max(v, q):
                    head[g] = lot_next[lot]
                    if head[g] < 0:
                        tail[g] = -1
            t_xq[t] += here
            t_xn[t] += here * p
            t_last[t] = k
            closed[k] = t
            closed_qty[k] = here
            closed_cost[k] = cost
            if head[g] < 0:
                t_done[t] = True
                side[g] = 0
                trip_of[g] = -1
        if left > EPSILON * v:
            if side[g] == 0:
                side[g] = s
                t = trips
                trips += 1
                trip_of[g] = t
                t_group[t] = g
                t_dir[t] = s
                t_first[t] = k
                t_last[t] = k
            t = trip_of[g]
            lot = m + k
            lot_qty[lot] = left
            lot_price[lot] = p
            if tail[g] >= 0:
                lot_next[tail[g]] = lot
            else:
                head[g] = lot
            tail[g] = lot
            t_eq[t] += left
            t_en[t] += left * p
            t_fees[t] += per_unit * left
            opened[k] = t
            opened_qty[k] = left
        pnl[k] = gross - fee[k]
    return (
        pnl, opened, closed, t_group[:trips], t_dir[:trips], t_first[:trips], t_last[:trips],
        t_eq[:trips], t_en[:trips], t_xq[:trips], t_xn[:trips], t_gross[:trips],
        t_fees[:trips], t_done[:trips], side, head, lot_next, lot_qty, lot_price, trip_of,
        opened_qty, closed_qty, closed_cost,
    )  # fmt: skip


__all__ = ["carry_walk", "fifo_carry", "fifo_walk", "kernel"]
