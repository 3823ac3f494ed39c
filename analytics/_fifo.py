"""The FIFO walk of :mod:`analytics.round_trips` as one compiled loop over arrays.

>>> out = fifo_walk(group, sign, price, volume, fee, groups)   # numpy arrays, time order

The same rules as :class:`analytics.round_trips.PositionLedger` (which the live tracker keeps
using one fill at a time): per group (an account and symbol) lots are closed oldest first, a
fill's commission is shared by quantity between what it closes and what it opens, a fill
larger than the position flips it. numba compiles it (cached on disk); without numba the same
function runs as Python. Tests hold it equal to the ledger.
"""

from __future__ import annotations

import numpy as np

try:  # pragma: no cover - numba is a dependency; the fallback keeps analytics importable
    from numba import njit
except ImportError:  # pragma: no cover

    def njit(*_args, **_kwargs):  # type: ignore[no-redef]
        return lambda f: f


EPSILON = 1e-12  # analytics.round_trips.EPSILON


@njit(cache=True)
def fifo_walk(group, sign, price, volume, fee, groups):  # pragma: no cover - compiled
    """Returns (pnl per fill, trip of what each fill opened (-1 none), trip of what each
    fill closed (-1 none), per trip: group, direction, first fill, last fill, entry
    quantity, entry notional, exit quantity, exit notional, gross, fees, closed flag)."""
    n = group.shape[0]
    pnl = np.zeros(n)
    opened = np.full(n, -1, np.int64)
    closed = np.full(n, -1, np.int64)
    lot_qty = np.zeros(n)
    lot_next = np.full(n, -1, np.int64)
    head = np.full(groups, -1, np.int64)
    tail = np.full(groups, -1, np.int64)
    side = np.zeros(groups, np.int64)
    trip_of = np.full(groups, -1, np.int64)
    t_group = np.empty(n, np.int64)
    t_dir = np.empty(n, np.int64)
    t_first = np.empty(n, np.int64)
    t_last = np.empty(n, np.int64)
    t_eq = np.zeros(n)
    t_en = np.zeros(n)
    t_xq = np.zeros(n)
    t_xn = np.zeros(n)
    t_gross = np.zeros(n)
    t_fees = np.zeros(n)
    t_done = np.zeros(n, np.bool_)
    trips = 0
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
            while head[g] >= 0 and left > EPSILON * v:
                lot = head[g]
                q = min(lot_qty[lot], left)
                made = (p - price[lot]) * q * side[g]
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
            lot_qty[k] = left
            if tail[g] >= 0:
                lot_next[tail[g]] = k
            else:
                head[g] = k
            tail[g] = k
            t_eq[t] += left
            t_en[t] += left * p
            t_fees[t] += per_unit * left
            opened[k] = t
        pnl[k] = gross - fee[k]
    return (
        pnl, opened, closed, t_group[:trips], t_dir[:trips], t_first[:trips], t_last[:trips],
        t_eq[:trips], t_en[:trips], t_xq[:trips], t_xn[:trips], t_gross[:trips],
        t_fees[:trips], t_done[:trips],
    )  # fmt: skip


__all__ = ["fifo_walk"]
