"""Round trips rebuilt from executed fills, first in first out.

>>> trips = round_trips(fills)                     # fills: the fills frame (docs/tracking.md)
>>> trips[["direction", "entry_time", "exit_time", "net_pnl"]]
>>> pnl = fill_pnl(fills)                           # per fill: realised pnl, cumulative pnl

A position is kept per (account_id, symbol). A fill on the position's side (or on a flat
position) opens a lot; a fill against it closes the oldest lots first (FIFO). A fill larger
than the position closes it and opens the rest on the other side (a flip). A round trip runs
from the fill that opens a flat position to the fill that brings it back to zero (or flips
it); scaling in and out stays inside one trip.

Conventions (docs/tracking.md):

- gross PnL of a closed quantity q of a lot: (exit price - lot price) x q for a long,
  (lot price - exit price) x q for a short;
- a fill's commission is shared by quantity between what it closes and what it opens; a
  trip's ``fees`` are the shares of its entries' and exits' commissions, ``net_pnl`` =
  ``gross_pnl`` - ``fees``, ``return`` = ``net_pnl`` / entry notional (sum of entry quantity
  x entry price);
- a fill's ``pnl`` (what it realised) = the gross PnL of what it closed - its whole
  commission, so that ``cumulative_pnl``, their running sum per account, is the account's net
  realised PnL with every fee paid so far counted (fees of still open lots included);
- ``mae`` / ``mfe`` (with candles): the worst and best excursion of the bars the trip spans
  (low and high; a short's mirrored), as a fraction of the entry price.

Quantities are fractional; a quantity below :data:`EPSILON` x the fill's volume is zero.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analytics.distinct import factorized

FILL_COLUMNS = (
    "trade_id",
    "account_id",
    "strategy_id",
    "symbol",
    "side",
    "price",
    "volume",
    "commission",
    "time",
)
TRIP_COLUMNS = (
    "account_id",
    "strategy_id",
    "symbol",
    "direction",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "volume",
    "entry_trade_ids",
    "exit_trade_ids",
    "holding_s",
    "gross_pnl",
    "fees",
    "net_pnl",
    "return",
    "mae",
    "mfe",
)
EPSILON = 1e-12


@dataclass
class _Trip:
    """An open round trip: what it has entered and closed so far."""

    strategy_id: str
    direction: int  # +1 long, -1 short
    entry_time: pd.Timestamp
    entry_qty: float = 0.0
    entry_notional: float = 0.0
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    gross: float = 0.0
    fees: float = 0.0
    entry_ids: list[str] = field(default_factory=list)
    exit_ids: list[str] = field(default_factory=list)


@dataclass
class PositionLedger:
    """One (account, symbol) position as FIFO lots, fed one fill at a time (O(lots closed)).

    ``apply`` returns the fill's realised pnl and the round trips it finished; the same
    ledger serves the batch :func:`round_trips` and the live tracker.
    """

    account_id: str
    symbol: str
    lots: deque[list[float]] = field(default_factory=deque)  # [quantity left, price]
    side: int = 0  # +1 long, -1 short, 0 flat
    trip: _Trip | None = None

    @property
    def quantity(self) -> float:
        return self.side * sum(lot[0] for lot in self.lots)

    def apply(
        self,
        trade_id: str,
        strategy_id: str,
        side: str,
        price: float,
        volume: float,
        commission: float,
        time: pd.Timestamp,
    ) -> tuple[float, list[dict]]:
        sign = 1 if side == "buy" else -1
        left = float(volume)
        fee_per_unit = commission / volume
        gross = 0.0
        done: list[dict] = []
        if self.side and sign != self.side:  # closes (part of) the position
            trip = self.trip
            assert trip is not None
            closed_here = 0.0
            while self.lots and left > EPSILON * volume:
                lot = self.lots[0]
                q = min(lot[0], left)
                pnl = (price - lot[1]) * q * self.side
                gross += pnl
                trip.gross += pnl
                trip.fees += fee_per_unit * q  # the entry's share was counted when it opened
                closed_here += q
                lot[0] -= q
                left -= q
                if lot[0] <= EPSILON * max(volume, q):
                    self.lots.popleft()
            trip.exit_qty += closed_here
            trip.exit_notional += closed_here * price
            trip.exit_ids.append(trade_id)
            if not self.lots:
                done.append(self._close(trip, time))
                self.side, self.trip = 0, None
        if left > EPSILON * volume:  # opens or adds to a position
            if not self.side:
                self.side = sign
                self.trip = _Trip(strategy_id, sign, time)
            trip = self.trip
            assert trip is not None
            self.lots.append([left, float(price)])
            trip.entry_qty += left
            trip.entry_notional += left * price
            trip.fees += fee_per_unit * left
            trip.entry_ids.append(trade_id)
        return gross - commission, done

    def _close(self, trip: _Trip, time: pd.Timestamp) -> dict:
        net = trip.gross - trip.fees
        return {
            "account_id": self.account_id,
            "strategy_id": trip.strategy_id,
            "symbol": self.symbol,
            "direction": "long" if trip.direction > 0 else "short",
            "entry_time": trip.entry_time,
            "exit_time": time,
            "entry_price": trip.entry_notional / trip.entry_qty,
            "exit_price": trip.exit_notional / trip.exit_qty,
            "volume": trip.entry_qty,
            "entry_trade_ids": tuple(trip.entry_ids),
            "exit_trade_ids": tuple(trip.exit_ids),
            "holding_s": (time - trip.entry_time).total_seconds(),
            "gross_pnl": trip.gross,
            "fees": trip.fees,
            "net_pnl": net,
            "return": net / trip.entry_notional,
        }


def check_fills(fills: pd.DataFrame) -> pd.DataFrame:
    """The fills frame in time order (stable), its columns checked; raises ValueError naming
    the first missing column or invalid row."""
    missing = [c for c in FILL_COLUMNS if c not in fills.columns]
    if missing:
        raise ValueError(f"fills: missing column(s) {missing}")
    bad_side = ~fills["side"].isin(("buy", "sell"))
    if bad_side.any():
        row = fills.index[bad_side.to_numpy()][0]
        raise ValueError(f"fills row {row!r}: side={fills.at[row, 'side']!r}: expected buy or sell")
    for column in ("price", "volume"):
        values = fills[column].to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            row = fills.index[bad][0]
            raise ValueError(f"fills row {row!r}: {column}={float(values[bad][0])!r}: expected > 0")
    if not fills["time"].is_monotonic_increasing:
        fills = fills.sort_values("time", kind="stable")
    return fills


def _walk(fills: pd.DataFrame) -> tuple[np.ndarray, list[dict]]:
    """Each fill of ``fills`` (checked, in time order) through its position's ledger."""
    ledgers: dict[tuple[str, str], PositionLedger] = {}
    pnl = np.empty(len(fills))
    trips: list[dict] = []
    columns = [fills[c].tolist() for c in FILL_COLUMNS]
    for k, (trade_id, account, strategy, symbol, side, price, volume, fee, time) in enumerate(
        zip(*columns, strict=True)
    ):
        ledger = ledgers.get((account, symbol))
        if ledger is None:
            ledger = ledgers[(account, symbol)] = PositionLedger(account, symbol)
        pnl[k], done = ledger.apply(trade_id, strategy, side, price, volume, fee, time)
        trips.extend(done)
    return pnl, trips


def fill_pnl(fills: pd.DataFrame) -> pd.DataFrame:
    """``pnl`` (realised by each fill, net of its commission) and ``cumulative_pnl`` (per
    account, in time order), indexed like ``fills`` sorted by time."""
    ordered = check_fills(fills)
    pnl = _compiled(ordered)[0]
    out = pd.DataFrame({"pnl": pnl}, index=ordered.index)
    out["cumulative_pnl"] = out["pnl"].groupby(ordered["account_id"].to_numpy()).cumsum()
    return out


def round_trips(
    fills: pd.DataFrame,
    candles: Mapping[str, pd.DataFrame] | None = None,
    *,
    carry: Sequence[str] = (),
) -> pd.DataFrame:
    """Closed round trips (columns :data:`TRIP_COLUMNS`) in exit order. With ``candles``
    (symbol -> bars indexed by open time, UTC) each trip gets ``mae`` and ``mfe``; NaN
    without. ``carry``: fill columns the trips take, found by the fills' positions (no trade
    id looked up): ``labels`` as the union of the trip's fills' labels (entries then exits,
    first seen first: :func:`analytics.trade_summary.trip_labels`' rule), any other column as
    its entry fill's value."""
    ordered = check_fills(fills)
    walked = _compiled(ordered)
    grouped = _Grouped(walked)
    frame = _trip_frame(ordered, walked, grouped)
    if carry:
        _carry(frame, ordered, walked, carry, grouped)
    frame["mae"] = np.nan
    frame["mfe"] = np.nan
    if candles and len(frame):
        _excursions(frame, candles)
    return frame


def _compiled(fills: pd.DataFrame) -> tuple:
    """:func:`analytics._fifo.fifo_walk` over the checked, time-ordered fills."""
    from analytics._fifo import fifo_walk

    keys = fills["account_id"].astype(str) + "\x00" + fills["symbol"].astype(str)
    codes, uniques = pd.factorize(keys)
    sign = np.where(fills["side"].to_numpy() == "buy", 1, -1).astype(np.int64)
    return fifo_walk(
        codes.astype(np.int64), sign, fills["price"].to_numpy(dtype=np.float64),
        fills["volume"].to_numpy(dtype=np.float64),
        fills["commission"].to_numpy(dtype=np.float64), max(len(uniques), 1),
    )  # fmt: skip


class _Grouped:
    """What the trip frame and the carried columns share of a walk (:func:`fifo_walk`'s
    outputs): ``keep``, the closed trips in exit order (the frame's rows), and per side
    (``entries``, ``exits``) the fills trip by trip, each trip's in time order, with their
    count per trip."""

    def __init__(self, walked: tuple) -> None:
        (_, opened, closed, _, _, first, last, *_rest) = walked
        keep = np.flatnonzero(walked[13])
        self.keep = keep[np.argsort(last[keep], kind="stable")]
        self.entries = _by_trip(opened, len(first))
        self.exits = _by_trip(closed, len(first))


def _by_trip(trip_of: np.ndarray, trips: int) -> tuple[np.ndarray, np.ndarray]:
    """(the fills of a trip (``trip_of``: -1 none) trip by trip, in time order within one;
    the count of each of the ``trips``)."""
    rows = np.flatnonzero(trip_of >= 0)
    rows = rows[np.argsort(trip_of[rows], kind="stable")]
    return rows, np.bincount(trip_of[rows], minlength=trips)


def _carry(
    frame: pd.DataFrame, fills: pd.DataFrame, walked: tuple, names: Sequence[str],
    grouped: _Grouped | None = None,
) -> None:  # fmt: skip
    grouped = grouped or _Grouped(walked)
    keep, first = grouped.keep, walked[5]
    for name in names:
        if name == "labels":
            frame[name] = _label_unions(fills[name], grouped)[keep]
        else:
            frame[name] = _taken(fills[name], first[keep])


def _label_unions(labels: pd.Series, grouped: _Grouped) -> np.ndarray:
    """Per trip, the union of its fills' label tuples (:func:`merge_label_sets`), its fills
    found by the walk's trip of each fill: entries then exits, each in time order. The
    distinct tuples are found by identity first (a stored frame holds one tuple per distinct
    text), then by value among those (analytics.distinct)."""
    codes, distinct = factorized(labels.tolist())
    held = []
    for rows, counts in (grouped.entries, grouped.exits):
        held += [codes[rows], counts]
    return merge_label_sets(*held, distinct.tolist())


def merge_label_sets(
    entry_codes: np.ndarray,
    entries: np.ndarray,
    exit_codes: np.ndarray,
    exits: np.ndarray,
    values: list[tuple[str, ...]],
) -> np.ndarray:
    """Per trip, the union of its fills' label sets: ``entries``/``exits`` fills a trip
    (counts per trip), whose label sets are ``values[code]`` with the codes flattened trip by
    trip; entries then exits, each label where first seen. Each trip's sequence of distinct
    codes is packed into one integer (base len(values) + 1, while it fits 62 bits)
    column-wise, and each distinct sequence merged once; longer sequences one by one."""
    trips = len(entries)
    unions = np.empty(trips, dtype=object)
    if not trips:
        return unions
    # each trip's codes, entries then exits (placed, not sorted), a code repeating the one
    # before it left out (it adds no label)
    size = entries + exits
    start = np.cumsum(size) - size
    trip = np.repeat(np.arange(trips), size)
    codes = np.empty(len(trip), dtype=np.int64)
    for values_of, count, offset in ((entry_codes, entries, 0), (exit_codes, exits, entries)):
        first = np.cumsum(count) - count
        place = np.arange(len(values_of)) - np.repeat(first - start - offset, count)
        codes[place] = values_of
    codes[codes < 0] += len(values)  # -1: the last value, as values[-1] reads it
    base = len(values) + 1
    kept = np.ones(len(trip), dtype=bool)
    kept[1:] = (codes[1:] != codes[:-1]) | (trip[1:] != trip[:-1])
    trip, codes = trip[kept], codes[kept]
    size = np.bincount(trip, minlength=trips)
    start = np.cumsum(size) - size
    at = np.arange(len(trip)) - start[trip]  # each code's place in its trip
    longest = max(int(62 / np.log2(base)), 1)  # codes one key holds
    packed = size <= longest
    fits = packed[trip]
    digits = np.zeros(len(trip), dtype=np.int64)
    powers = np.array([base**k for k in range(longest)], dtype=np.int64)  # < 2**62 each
    digits[fits] = (codes[fits] + 1) * powers[at[fits]]
    keys = np.zeros(trips, dtype=np.int64)
    held = size > 0  # the trips holding a code: their starts increase
    if held.any():
        keys[held] = np.add.reduceat(digits, start[held])
    inverse, unique = pd.factorize(keys[packed])
    merged = np.empty(len(unique), dtype=object)
    merged[:] = [_union(_unpacked(key, base), values) for key in unique.tolist()]
    unions[packed] = merged[inverse]
    for t in np.flatnonzero(~packed).tolist():
        unions[t] = _union(codes[start[t] : start[t] + size[t]].tolist(), values)
    return unions


def _unpacked(key: int, base: int) -> list[int]:
    """The codes :func:`merge_label_sets` packed into ``key``, first first."""
    codes = []
    while key:
        key, digit = divmod(key, base)
        codes.append(digit - 1)
    return codes


def _union(codes: list[int], values: list[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x for c in codes for x in values[c]))


def _ids_by_trip(
    side: tuple[np.ndarray, np.ndarray], ids: np.ndarray, trips: np.ndarray
) -> np.ndarray:
    """The trade ids each of ``trips`` holds (fills in time order), from one side of
    :class:`_Grouped` (the fills trip by trip, the count per trip): a tuple each, those of one
    length made at once (``zip`` of shifted columns)."""
    order, counts = side
    held = ids[order]
    starts = (np.cumsum(counts) - counts)[trips]
    sizes = counts[trips]
    out = np.empty(len(trips), dtype=object)
    for size in np.unique(sizes).tolist():
        at = np.flatnonzero(sizes == size)
        first = starts[at]
        made = zip(*(held[first + j].tolist() for j in range(size)), strict=True)
        out[at] = np.fromiter(made, dtype=object, count=len(at))
    return out


def trip_ids(fills: pd.DataFrame, grouped: _Grouped) -> tuple[np.ndarray, np.ndarray]:
    """The ``entry_trade_ids`` and ``exit_trade_ids`` columns of the trip frame of ``fills``
    (checked, in time order) and its walk's :class:`_Grouped`."""
    ids = fills["trade_id"].to_numpy(dtype=object)
    keep = grouped.keep
    return _ids_by_trip(grouped.entries, ids, keep), _ids_by_trip(grouped.exits, ids, keep)


def _trip_frame(
    fills: pd.DataFrame, walked: tuple, grouped: _Grouped | None = None, *, ids: bool = True
) -> pd.DataFrame:
    """The trip frame (``ids`` False: without ``entry_trade_ids`` and ``exit_trade_ids``,
    :func:`trip_ids` gives them)."""
    (_, _, _, _, direction, first, last, entry_qty, entry_notional, exit_qty, exit_notional,
     gross, fees, _) = walked  # fmt: skip
    grouped = grouped or _Grouped(walked)
    keep = grouped.keep  # exit order
    times = pd.DatetimeIndex(fills["time"])
    entry_time = times[first[keep]]
    exit_time = times[last[keep]]
    net = gross[keep] - fees[keep]
    columns: dict[str, Any] = {
        "account_id": _taken(fills["account_id"], first[keep]),
        "strategy_id": _taken(fills["strategy_id"], first[keep]),
        "symbol": _taken(fills["symbol"], first[keep]),
        "direction": _DIRECTIONS.take((direction[keep] > 0).astype(np.intp)),
        "entry_time": entry_time,
        "exit_time": exit_time,
        "entry_price": entry_notional[keep] / entry_qty[keep],
        "exit_price": exit_notional[keep] / exit_qty[keep],
        "volume": entry_qty[keep],
        "entry_trade_ids": None,
        "exit_trade_ids": None,
        "holding_s": (exit_time - entry_time).total_seconds().to_numpy(),
        "gross_pnl": gross[keep],
        "fees": fees[keep],
        "net_pnl": net,
        "return": net / entry_notional[keep],
    }  # fmt: skip
    if ids:
        columns["entry_trade_ids"], columns["exit_trade_ids"] = trip_ids(fills, grouped)
    else:
        del columns["entry_trade_ids"], columns["exit_trade_ids"]
    frame = pd.DataFrame(columns)
    for column in ("entry_time", "exit_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _taken(column: pd.Series, rows: np.ndarray) -> Any:
    """``column``'s values at positions ``rows`` as a frame built from their object array
    holds them (only those converted): a text column's own values (no conversion, the same
    texts and dtype) when one of them is a text, else the object array."""
    taken = column.array.take(rows)
    if taken.dtype == _DIRECTIONS.dtype and len(taken) and not taken.isna().all():
        return taken  # the default text dtype: a frame infers it from the object array too
    return np.asarray(taken, dtype=object)


_DIRECTIONS = pd.array(np.array(["short", "long"], dtype=object), dtype="str")


def _excursions(frame: pd.DataFrame, candles: Mapping[str, pd.DataFrame]) -> None:
    """MAE / MFE of each trip, the backtest engine's convention (docs/backtest.md): the worst
    and best move from the entry price over the lows and highs of the bars from the entry's
    bar to the one before the exit's, and the exit price (the exit bar counts only up to the
    exit: its range after a fill at its open, or beyond a stop, is not the trade's). The
    exit price is the fill's, costs included: with slippage or a spread in the fill prices
    the excursion reaches a little further than the engine's, which ends at the market price."""
    mae = frame["mae"].to_numpy(copy=True)
    mfe = frame["mfe"].to_numpy(copy=True)
    for symbol, rows in frame.groupby("symbol").indices.items():
        bars = candles.get(symbol)
        if bars is None or bars.empty:
            continue
        high = bars["high"].to_numpy(dtype=float)
        low = bars["low"].to_numpy(dtype=float)
        entry = pd.DatetimeIndex(frame["entry_time"].iloc[rows]).as_unit("ns").asi8
        exit_ = pd.DatetimeIndex(frame["exit_time"].iloc[rows]).as_unit("ns").asi8
        opens = pd.DatetimeIndex(bars.index).as_unit("ns").asi8
        first = np.searchsorted(opens, entry, side="right") - 1
        last = np.searchsorted(opens, exit_, side="left")
        exits = frame["exit_price"].to_numpy(dtype=float)
        for j, row in enumerate(rows):
            if first[j] < 0:  # entered before the bars given: not known
                continue
            a, b = first[j], last[j]
            top = max(high[a:b].max(), exits[row]) if b > a else exits[row]
            bottom = min(low[a:b].min(), exits[row]) if b > a else exits[row]
            price = frame["entry_price"].iat[row]
            hi, lo = top / price - 1, bottom / price - 1
            if frame["direction"].iat[row] == "long":
                mae[row], mfe[row] = min(lo, 0.0), max(hi, 0.0)
            else:
                mae[row], mfe[row] = min(-hi, 0.0), max(-lo, 0.0)
    frame["mae"] = mae
    frame["mfe"] = mfe


__all__ = [
    "EPSILON",
    "FILL_COLUMNS",
    "TRIP_COLUMNS",
    "PositionLedger",
    "check_fills",
    "fill_pnl",
    "round_trips",
    "trip_ids",
]
