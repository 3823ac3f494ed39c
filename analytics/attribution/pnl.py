"""PnL attribution: what each group of round trips made (docs/attribution.md#pnl-attribution).

>>> pnl_attribution(trips, "hour")                 # one row per entry hour (UTC), then "all"
   group  trades  wins  win_rate  net_pnl  pnl_share  avg_net_pnl  avg_return
>>> state = AttributionState(size_edges=size_edges(history))
>>> state.add(trip)                                 # O(groups), live
>>> state.table("hour")                             # == pnl_attribution(trips so far, "hour")

Both build their table through :func:`attribution_table` from the same sums, taken in the same
order (trip after trip), so the live table equals the batch one to the last bit.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.attribution.groups import (
    ALL,
    COLUMN_OF,
    DIMENSIONS,
    HOURS,
    WEEKDAYS,
    Clock,
    TripKeys,
    _edges,
    _one_text,
    check_by,
    check_clock,
    check_columns,
    edges_for,
    group_codes,
    labels_of,
    sort_keys,
)

PNL_COLUMNS = (
    "group",
    "trades",
    "wins",
    "win_rate",
    "net_pnl",
    "pnl_share",
    "avg_net_pnl",
    "avg_return",
)
Sums = tuple[int, int, float, float]  # trades, wins, sum of net_pnl, sum of return


def check_finite(trips: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column as float64; a NaN or infinite value is refused, naming its row."""
    values = trips[column].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row = trips.index[bad][0]
        raise ValueError(
            f"round trips row {row!r}: {column}={float(values[bad][0])!r}: expected a number"
        )
    return values


def attribution_table(
    by: str, groups: Mapping[str, Sums], total: Sums, edges: Sequence[float] = ()
) -> pd.DataFrame:
    """The table of :data:`PNL_COLUMNS`: groups in their natural order, then the ``all`` row
    (every trip once). Averages of an empty group and the share of a zero total are NaN."""
    keys = [*sort_keys(by, list(groups)), ALL]
    sums = [*(groups[k] for k in keys[:-1]), total]
    trades = np.array([s[0] for s in sums], dtype=np.int64)
    wins = np.array([s[1] for s in sums], dtype=np.int64)
    net = np.array([s[2] for s in sums], dtype=float)
    ret = np.array([s[3] for s in sums], dtype=float)
    counted = np.where(trades > 0, trades, np.nan)  # NaN averages, not a division by zero
    total_net = float(total[2])
    share = net / total_net if total_net != 0 else np.full(len(keys), np.nan)
    columns = (keys, trades, wins, wins / counted, net, share, net / counted, ret / counted)
    frame = pd.DataFrame(dict(zip(PNL_COLUMNS, columns, strict=True)))
    frame.attrs.update(by=by, size_edges=tuple(edges))
    return frame


def pnl_attribution(
    trips: pd.DataFrame,
    by: str,
    *,
    size_edges: Sequence[float] | None = None,
    clock: Clock = "entry",
) -> pd.DataFrame:
    """Per group of ``by`` (label, session, hour, weekday, size, regime, strategy, symbol): the
    trades, wins (net_pnl > 0), win rate, net PnL, share of the total net PnL, average net PnL
    and average return; groups in order, then ``all`` (each trip once).

    >>> pnl_attribution(trips, "label")     # a trip with two labels counts in both groups
    >>> pnl_attribution(trips, "size")      # quintiles of entry notional (attrs["size_edges"])

    ``clock``: hour and weekday of the entry (default) or the exit time, in UTC. ``size_edges``:
    the inner cut points of the size buckets; None: :func:`size_edges` of these trips.
    """
    check_by(by)
    check_clock(clock)
    check_columns(trips, ("net_pnl", "return"), "every table sums them")
    edges = edges_for(trips, by, size_edges)
    rows, codes, names = group_codes(trips, by, edges=edges, clock=clock)
    net = check_finite(trips, "net_pnl")
    ret = check_finite(trips, "return")
    count = len(names)
    trades = np.bincount(codes, minlength=count)
    # bincount adds each group's weights one row after the other, as AttributionState.add does
    wins = np.bincount(codes, weights=(net[rows] > 0), minlength=count).astype(np.int64)
    net_sum = np.bincount(codes, weights=net[rows], minlength=count)
    ret_sum = np.bincount(codes, weights=ret[rows], minlength=count)
    groups = {
        str(names[i]): (int(trades[i]), int(wins[i]), float(net_sum[i]), float(ret_sum[i]))
        for i in np.flatnonzero(trades)
    }
    one = np.zeros(len(trips), dtype=np.int64)
    total = (
        len(trips),
        int((net > 0).sum()),
        float(np.bincount(one, weights=net, minlength=1)[0]),
        float(np.bincount(one, weights=ret, minlength=1)[0]),
    )
    return attribution_table(by, groups, total, edges)


class AttributionState:
    """Live PnL attribution: ``add`` one closed round trip in O(groups); ``table(by)`` equals
    :func:`pnl_attribution` of every trip added so far, in the order added.

    >>> state = AttributionState(size_edges=(1000.0, 5000.0))
    >>> for trip in trips.to_dict("records"):
    ...     state.add(trip)
    >>> state.table("label")

    Size buckets need fixed ``size_edges`` (quantile edges would move with every trade and
    re-bucket the whole history); without them the state keeps no size table. A trip without
    a label or context field counts as none / unknown.
    """

    def __init__(
        self, *, size_edges: Sequence[float] | None = None, clock: Clock = "entry"
    ) -> None:
        self.size_edges = None if size_edges is None else tuple(map(float, _edges(size_edges)))
        self.clock = check_clock(clock)
        self._keys = TripKeys(self.size_edges or (), clock)
        self._dimensions = [d for d in DIMENSIONS if d != "size" or self.size_edges is not None]
        self._groups: dict[str, dict[str, list]] = {d: {} for d in self._dimensions}
        self._total: list = [0, 0, 0.0, 0.0]

    @property
    def trades(self) -> int:
        return self._total[0]

    def add(self, trip: Mapping[str, Any]) -> None:
        """Count one closed round trip (a dict or a row of the round-trips frame)."""
        net, ret = float(trip["net_pnl"]), float(trip["return"])
        for name, value in (("net_pnl", net), ("return", ret)):
            if not np.isfinite(value):
                raise ValueError(f"round trip {name}={value!r}: expected a number")
        win = int(net > 0)
        stamp = self._keys.stamp(trip)  # once for hour and weekday
        for by in self._dimensions:
            table = self._groups[by]
            for key in self._keys.keys(trip, by, stamp):
                sums = table.get(key)
                if sums is None:
                    sums = table[key] = [0, 0, 0.0, 0.0]
                _accumulate(sums, win, net, ret)
        _accumulate(self._total, win, net, ret)

    def add_many(self, trips: Sequence[Mapping[str, Any]]) -> None:
        """Count closed round trips, in order: :meth:`add` of each (the same sums to the bit:
        each group's sums taken trip after trip, ``np.add.at``), column-wise per dimension.
        A trip without a finite net PnL or return: one at a time (raising at it, as add)."""
        n = len(trips)
        if n < _COLUMNS_FROM:
            for trip in trips:
                self.add(trip)
            return
        try:
            net = np.fromiter(map(_NET, trips), np.float64, n)
            ret = np.fromiter(map(_RETURN, trips), np.float64, n)
            clocks = self._clocks(trips)
            usable = clocks is not None and np.isfinite(net).all() and np.isfinite(ret).all()
            groups = [self._memberships(trips, by, clocks) for by in self._dimensions]
        except (KeyError, TypeError, ValueError):  # a trip add refuses: where it does
            usable = False
        if not usable:
            for trip in trips:
                self.add(trip)
            return
        win = (net > 0).astype(np.int64)
        for by, (rows, keys) in zip(self._dimensions, groups, strict=True):
            _accumulate_many(self._groups[by], keys, win[rows], net[rows], ret[rows])
        _accumulate_many({ALL: self._total}, [ALL] * n, win, net, ret)

    def _clocks(self, trips: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]] | None:
        """Each trip's hour and weekday groups, as :meth:`TripKeys.stamp` reads them, for
        trips whose clock time is a datetime (a Timestamp too); None for any other."""
        hours, weekdays = [], []
        field = self._keys.time_field
        for trip in trips:
            when = trip[field]
            if not isinstance(when, datetime):
                return None
            offset = when.utcoffset()
            if offset:  # the UTC hour and weekday, as stamp converts it
                when = self._keys.stamp(trip)
            hours.append(HOURS[when.hour])
            weekdays.append(WEEKDAYS[when.weekday()])
        return hours, weekdays

    def _memberships(
        self, trips: Sequence[Mapping[str, Any]], by: str, clocks: Any
    ) -> tuple[np.ndarray, list[str]]:
        """(rows, keys): trip ``rows[i]`` in group ``keys[i]``, trips in order, each one's
        groups in :meth:`TripKeys.keys`' order."""
        n = len(trips)
        every = np.arange(n)
        if by == "hour":
            return every, clocks[0]
        if by == "weekday":
            return every, clocks[1]
        if by == "size":
            size = np.fromiter(map(_PRICE, trips), np.float64, n) * np.fromiter(
                map(_VOLUME, trips), np.float64, n
            )
            # bisect_left's bucket: the first edge >= size; NaN compares below none: the first
            at = np.searchsorted(np.asarray(self._keys.edges, dtype=float), size, side="left")
            names = self._keys.size_names
            return every, [names[k] for k in np.where(np.isnan(size), 0, at).tolist()]
        if by in COLUMN_OF:
            column = COLUMN_OF[by]
            made: dict[Any, str] = {}
            keys = []
            for trip in trips:
                value = trip.get(column)
                try:
                    key = made.get(value)
                    if key is None:
                        key = made[value] = _one_text(value)
                except TypeError:  # unhashable: as it is
                    key = _one_text(value)
                keys.append(key)
            return every, keys
        rows: list[int] = []
        keys = []
        sets: dict[Any, tuple[str, ...]] = {}
        for k, trip in enumerate(trips):
            value = trip.get("labels")
            try:
                labels = sets.get(value)
                if labels is None:
                    labels = sets[value] = labels_of(value)
            except TypeError:  # a list (from JSON)
                labels = labels_of(value)
            if len(labels) == 1:
                rows.append(k)
                keys.append(labels[0])
            else:
                rows.extend([k] * len(labels))
                keys.extend(labels)
        return np.array(rows, dtype=np.int64), keys

    def table(self, by: str) -> pd.DataFrame:
        """The attribution table by ``by`` of the trips added so far."""
        check_by(by)
        if by == "size" and self.size_edges is None:
            raise ValueError(
                "by='size': this AttributionState keeps no size buckets; create it with "
                "size_edges=... (fixed cut points, e.g. size_edges(history))"
            )
        groups = {k: tuple(v) for k, v in self._groups[by].items()}
        edges = self.size_edges if by == "size" else ()
        return attribution_table(by, groups, tuple(self._total), edges or ())


def _accumulate_many(
    table: dict[str, list], keys: list[str], win: np.ndarray, net: np.ndarray, ret: np.ndarray
) -> None:
    """:func:`_accumulate` of each membership in order (group ``keys[i]`` gets ``win[i]``,
    ``net[i]``, ``ret[i]``): per group the float sums taken one after the other, from the
    group's own (``np.add.at`` adds repeated indices in order, unbuffered)."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, len(keys))
    held = []
    for key in index:
        sums = table.get(key)
        if sums is None:
            sums = table[key] = [0, 0, 0.0, 0.0]
        held.append(sums)
    count = np.bincount(codes, minlength=len(held)).tolist()
    wins = np.bincount(codes, weights=win, minlength=len(held)).astype(np.int64).tolist()
    net_sum = np.array([s[2] for s in held], dtype=np.float64)
    ret_sum = np.array([s[3] for s in held], dtype=np.float64)
    np.add.at(net_sum, codes, net)
    np.add.at(ret_sum, codes, ret)
    for sums, c, w, x, r in zip(held, count, wins, net_sum.tolist(), ret_sum.tolist(),
                                strict=True):  # fmt: skip
        sums[0] += c
        sums[1] += w
        sums[2] = x
        sums[3] = r


_COLUMNS_FROM = 8  # trips from which add_many works column-wise
_NET, _RETURN, _PRICE, _VOLUME = (
    operator.itemgetter(name) for name in ("net_pnl", "return", "entry_price", "volume")
)


def _accumulate(sums: list, win: int, net: float, ret: float) -> None:
    sums[0] += 1
    sums[1] += win
    sums[2] += net
    sums[3] += ret
