"""A batch of fills through their positions' ledgers at once: the live tracker's FIFO pass.

>>> pnl, trips, roles = apply_fills(ledgers, group, ids, strategies, sides, prices, volumes,
...                                  fees, times)

``ledgers`` are the :class:`analytics.round_trips.PositionLedger` of the batch's (account,
symbol) pairs, ``group`` each fill's index into them; the fills are in the order they are
recorded (time order per ledger). The ledgers' open lots and trips are carried into one
compiled walk (:func:`analytics._fifo.fifo_carry`) and the ledgers left as
:meth:`PositionLedger.apply`, fill after fill, would have left them. ``pnl``: each fill's
realised pnl net of its commission; ``trips``: the round trips the batch closed, in the order
of the fills that closed them, as :meth:`PositionLedger.apply` returns them: the same numbers,
bit for bit (tests hold the two equal on random books). ``roles``: what each fill did to its
position, as the labels read it (:class:`analytics.labels.FillBook`'s rule, bit for bit):
the quantity it opened or added, the quantity it closed at the FIFO lots' mean entry price,
and the direction and entry time (ns) of the position it closed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from analytics.round_trips import PositionLedger, _Trip


class FillRoles(NamedTuple):
    """Per fill (arrays): what it opened or added, what it closed, the closed lots' mean
    entry price (NaN: closed nothing), and the closed position's direction (+1 long, -1
    short, 0: closed nothing) and entry time in ns since the epoch (0: closed nothing)."""

    opened: np.ndarray
    closed: np.ndarray
    entry_price: np.ndarray
    direction: np.ndarray
    entry_ns: np.ndarray


def apply_fills(
    ledgers: Sequence[PositionLedger],
    group: np.ndarray,
    trade_ids: Sequence[str],
    strategies: Sequence[str],
    sides: Sequence[str],
    prices: np.ndarray,
    volumes: np.ndarray,
    fees: np.ndarray,
    times: Sequence[Any],
    *,
    closed_trips: bool = True,
) -> tuple[np.ndarray, list[dict[str, Any]], FillRoles]:
    """(pnl per fill, round trips closed, roles) of the fills, the ledgers brought forward.
    ``closed_trips`` False: the trips closed are not made (an empty list; a reader of an
    account's stored fills that only needs its open positions), only those still open."""
    from analytics._fifo import fifo_carry

    n = len(group)
    if not n:
        empty = np.zeros(0)
        return empty, [], FillRoles(empty, empty, empty, empty.astype(np.int64),
                                    empty.astype(np.int64))  # fmt: skip
    side0 = np.array([ledger.side for ledger in ledgers], dtype=np.int64)
    lot_group, lot_qty, lot_price, trip0 = [], [], [], []
    carried: list[_Trip] = []
    for g, ledger in enumerate(ledgers):
        for quantity, price in ledger.lots:
            lot_group.append(g)
            lot_qty.append(quantity)
            lot_price.append(price)
        if ledger.side:
            trip = ledger.trip
            assert trip is not None
            carried.append(trip)
            trip0.append((trip.entry_qty, trip.entry_notional, trip.exit_qty,
                          trip.exit_notional, trip.gross, trip.fees))  # fmt: skip
    sign = np.fromiter((1 if s == "buy" else -1 for s in sides), dtype=np.int64, count=n)
    (pnl, opened, closed, t_group, t_dir, t_first, t_last, t_eq, t_en, t_xq, t_xn, t_gross,
     t_fees, t_done, side, head, lot_next, lots_left, lots_price, trip_of, opened_qty,
     closed_qty, closed_cost) = fifo_carry(
        np.asarray(group, dtype=np.int64), sign, np.asarray(prices, dtype=np.float64),
        np.asarray(volumes, dtype=np.float64), np.asarray(fees, dtype=np.float64),
        len(ledgers), side0, np.array(lot_group, dtype=np.int64), np.array(lot_qty),
        np.array(lot_price), np.array(trip0).reshape(len(trip0), 6),
    )  # fmt: skip
    # without the closed trips: those still open and those carried in (few) are made
    wanted = None if closed_trips else {*range(len(carried)), *(t for t in trip_of.tolist()
                                                                 if t >= 0)}  # fmt: skip
    entry_ids = _ids(opened, trade_ids, len(t_group), wanted)
    exit_ids = _ids(closed, trade_ids, len(t_group), wanted)
    trips: list[_Trip] = []
    trip_ns: list[int] = []
    numbers = (t_eq, t_en, t_xq, t_xn, t_gross, t_fees)
    firsts = t_first.tolist()
    for t, values in enumerate(zip(*(a.tolist() for a in numbers), strict=True)):
        if t < len(carried):
            trip = carried[t]
        elif wanted is not None and t not in wanted:  # closed, not asked for: its time only
            trips.append(None)  # type: ignore[arg-type]
            trip_ns.append(time_ns(times[firsts[t]]))
            continue
        else:
            first = firsts[t]
            trip = _Trip(strategies[first], int(t_dir[t]), times[first])
        (trip.entry_qty, trip.entry_notional, trip.exit_qty, trip.exit_notional, trip.gross,
         trip.fees) = values  # fmt: skip
        trip.entry_ids.extend(entry_ids[t])
        trip.exit_ids.extend(exit_ids[t])
        trips.append(trip)
        trip_ns.append(time_ns(trip.entry_time))
    done = np.flatnonzero(t_done) if closed_trips else np.zeros(0, dtype=np.int64)
    done = done[np.argsort(t_last[done], kind="stable")]  # the order of the closing fills
    made = [
        ledgers[g]._close(trips[t], times[k])
        for t, g, k in zip(done.tolist(), t_group[done].tolist(), t_last[done].tolist(),
                           strict=True)
    ]  # fmt: skip
    next_lot, left, at = lot_next.tolist(), lots_left.tolist(), lots_price.tolist()
    for g, ledger in enumerate(ledgers):
        lots: deque[list[float]] = deque()
        lot = int(head[g])
        while lot >= 0:
            lots.append([left[lot], at[lot]])
            lot = next_lot[lot]
        ledger.lots = lots
        ledger.side = int(side[g])
        ledger.trip = trips[trip_of[g]] if trip_of[g] >= 0 else None
    closing = closed >= 0
    at = np.where(closing, closed, 0)
    entry_price = np.full(n, np.nan)
    np.divide(closed_cost, closed_qty, out=entry_price, where=closing)
    direction = np.where(closing, t_dir[at], 0)
    entry_ns = np.where(closing, np.array(trip_ns, dtype=np.int64)[at], 0)
    return pnl, made, FillRoles(opened_qty, closed_qty, entry_price, direction, entry_ns)


def time_ns(when: Any) -> int:
    """A time as int ns since the epoch: a Timestamp's own, a datetime's to the microsecond
    (as :func:`analytics.labels.as_fill` reads a record's)."""
    if isinstance(when, pd.Timestamp):
        return int(when.value)
    return (when - _EPOCH) // _MICROSECOND * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _ids(
    trip_of: np.ndarray, trade_ids: Sequence[str], trips: int, wanted: set[int] | None = None
) -> list[list[str]]:
    """Per trip, the trade ids of the fills with that trip in ``trip_of`` (in order); with
    ``wanted``, only those trips' (a dict by trip)."""
    if wanted is not None:
        some: dict[int, list[str]] = {t: [] for t in wanted}
        at = trip_of.tolist()
        for k in np.flatnonzero(np.isin(trip_of, list(wanted))).tolist():
            some[at[k]].append(trade_ids[k])
        return some  # type: ignore[return-value]
    out: list[list[str]] = [[] for _ in range(trips)]
    for k, t in enumerate(trip_of.tolist()):
        if t >= 0:
            out[t].append(trade_ids[k])
    return out


__all__ = ["FillRoles", "apply_fills", "time_ns"]
