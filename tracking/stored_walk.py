"""An account's stored fills through one FIFO walk that gives both what the tracker keeps of
the account (:class:`tracking.history.AccountHistory`, as :func:`tracking.history.apply_stored`
makes it from the same rows) and its round trips (as :func:`analytics.round_trips.round_trips`
makes them): the live view's first read of an account walks its fills once, not twice.

>>> walk = walk_stored(fills)          # None: the rows cannot be walked once (see below)
>>> trips = walk.trips(carry=("labels", "volatility_regime", "market_session"))
>>> history = walk.history("acc", newest_row=812)

The round trips need the fills in time order; the tracker's positions are walked in row order.
Per symbol both orders are the same (the tracker records an account and symbol's trades in
time order), and each symbol's position is walked on its own, so one walk in time order gives
both; when an account's rows are not so (rows of one symbol out of time order),
:func:`walk_stored` gives None and the caller walks them each way as before. Tests hold both
results equal to those functions' on random books.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics._fifo import fifo_carry
from analytics.round_trips import _carry, _Grouped, _Trip, _trip_frame, check_fills, trip_ids
from tracking.history import AccountHistory


class StoredWalk:
    """The walk of one account's fills frame (TradeRepository.frame's, in row order)."""

    def __init__(
        self, fills: pd.DataFrame, ordered: pd.DataFrame, rows: np.ndarray, codes: np.ndarray,
        symbols: list[str], groups: np.ndarray, walked: tuple,
    ) -> None:  # fmt: skip
        self.fills = fills  # row order
        self.ordered = ordered  # time order (check_fills')
        self._rows = rows  # the row of each walked (time-ordered) fill
        self._codes = codes  # per row: its symbol's index in ``symbols`` (first seen first)
        self._symbols = symbols
        self._groups = groups  # per symbol: its group in the walk
        self._walked = walked  # carry_walk's outputs over ``ordered``
        self._grouped: _Grouped | None = None  # the trips' grouping, made by trips()

    def trips(self, carry: Sequence[str] = (), *, ids: bool = True) -> pd.DataFrame:
        """``round_trips(fills, carry=carry)`` without candles, from this walk (``ids``
        False: without the trade id columns, :meth:`trip_ids` gives them)."""
        walked = self._walked[:14]
        grouped = self._grouped = _Grouped(walked)
        frame = _trip_frame(self.ordered, walked, grouped, ids=ids)
        if carry:
            _carry(frame, self.ordered, walked, carry, grouped)
        frame["mae"] = np.nan
        frame["mfe"] = np.nan
        return frame

    def trip_ids(self) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
        """What makes the ``entry_trade_ids`` and ``exit_trade_ids`` columns of :meth:`trips`
        when called (holding the ids and the trips' grouping, not the walk)."""
        grouped = self._grouped or _Grouped(self._walked[:14])
        return functools.partial(trip_ids, self.ordered[["trade_id"]], grouped)

    def history(self, account: str, newest_row: int) -> AccountHistory:
        """``apply_stored(AccountHistory(account), fills, trips=False, newest_row=...)``."""
        fills, ordered = self.fills, self.ordered
        history = AccountHistory(account)
        if not len(fills):
            return history
        (_, opened, closed, _, t_dir, t_first, _, t_eq, t_en, t_xq, t_xn, t_gross, t_fees, _,
         side, head, lot_next, lot_qty, lot_price, trip_of, opened_qty,
         *_) = self._walked  # fmt: skip
        trade_ids = ordered["trade_id"]
        held: list[int] = []  # walked fills of the trips still open
        for symbol, g in zip(self._symbols, self._groups.tolist(), strict=True):
            ledger = history.ledger(symbol)
            lots: deque[list[float]] = deque()
            lot = int(head[g])
            while lot >= 0:
                lots.append([float(lot_qty[lot]), float(lot_price[lot])])
                lot = int(lot_next[lot])
            ledger.lots = lots
            ledger.side = int(side[g])
            t = int(trip_of[g])
            if t < 0:
                continue
            first = int(t_first[t])
            trip = _Trip(ordered["strategy_id"].iat[first], int(t_dir[t]),
                         _pydatetimes(ordered["time"], [first])[0])  # fmt: skip
            numbers = (t_eq, t_en, t_xq, t_xn, t_gross, t_fees)
            (trip.entry_qty, trip.entry_notional, trip.exit_qty, trip.exit_notional, trip.gross,
             trip.fees) = (float(a[t]) for a in numbers)  # fmt: skip
            entries, exits = np.flatnonzero(opened == t), np.flatnonzero(closed == t)
            trip.entry_ids.extend(trade_ids.take(entries).tolist())
            trip.exit_ids.extend(trade_ids.take(exits).tolist())
            ledger.trip = trip
            held.extend((*entries.tolist(), *exits.tolist()))
        # per symbol the notional each fill opened, in its order (the walk's, per symbol)
        notional = opened_qty * ordered["price"].to_numpy(dtype=np.float64)
        opening = np.flatnonzero(opened_qty > 0)
        rows = self._rows[opening]
        code = self._codes[rows]
        # the symbols in the order of their first opening row (no sort of the rows)
        first = np.full(len(self._symbols), len(fills), dtype=np.int64)
        np.minimum.at(first, code, rows)
        held_symbols = np.flatnonzero(first < len(fills))
        for s in held_symbols[np.argsort(first[held_symbols])].tolist():
            history.entries[self._symbols[s]] = notional[opening[code == s]].tolist()
        latest = _latest_rows(pd.DatetimeIndex(fills["time"]).asi8, self._codes)
        found = _pydatetimes(fills["time"], [k for _, k in latest])
        history.last_time.update(
            (self._symbols[s], when) for (s, _), when in zip(latest, found, strict=True)
        )
        columns = [ordered[c] for c in ("labels", "volatility_regime", "market_session")]
        for k in held:
            history.tags[trade_ids.iat[k]] = tuple(c.iat[k] for c in columns)
        history.ids = StoredIds(fills)  # type: ignore[assignment]
        cumulative = float(fills["cumulative_pnl"].iloc[-1])
        history.cumulative_pnl = 0.0 if cumulative != cumulative else cumulative
        history.newest_row = newest_row
        history.rows = len(fills)
        return history


def walk_stored(fills: pd.DataFrame) -> StoredWalk | None:
    """One walk of one account's fills frame (in row order), or None when its rows of a
    symbol are not in time order (see the module text)."""
    ordered = check_fills(fills)
    codes, uniques = pd.factorize(fills["symbol"])
    rows = np.arange(len(fills))
    if ordered is not fills:
        if not fills.index.is_unique:
            return None
        rows = fills.index.get_indexer(ordered.index)
        if len(rows) != len(fills) or (rows < 0).any():
            return None
        # within each symbol, the time order keeps the row order
        by_symbol = np.lexsort((np.arange(len(rows)), codes[rows]))
        seq, grouped = rows[by_symbol], codes[rows][by_symbol]
        if not np.all((np.diff(seq) > 0) | (np.diff(grouped) != 0)):
            return None
    if ordered is fills:  # walked in row order: the same codes, each its own group
        walk_codes, walk_symbols = codes, uniques
        groups = np.arange(len(uniques), dtype=np.int64)
    else:
        walk_codes, walk_symbols = pd.factorize(ordered["symbol"])
        _, first = np.unique(codes[rows], return_index=True)  # each symbol's first walked fill
        groups = walk_codes[first].astype(np.int64)
    sign = np.where((ordered["side"] == "buy").to_numpy(), 1, -1).astype(np.int64)
    count = max(len(walk_symbols), 1)
    empty_f, empty_i = np.zeros(0), np.zeros(0, np.int64)
    walked = fifo_carry(
        walk_codes.astype(np.int64), sign, ordered["price"].to_numpy(dtype=np.float64),
        ordered["volume"].to_numpy(dtype=np.float64),
        ordered["commission"].to_numpy(dtype=np.float64), count, np.zeros(count, np.int64),
        empty_i, empty_f, empty_f, np.zeros((0, 6)),
    )  # fmt: skip
    symbols = [str(s) for s in uniques]
    return StoredWalk(fills, ordered, rows, codes, symbols, groups, walked)


def _latest_rows(times: np.ndarray, codes: np.ndarray) -> list[tuple[int, int]]:
    """(code, row of its latest time, the first such row) per code, by code
    (:func:`tracking.history._latest_rows`' rule, on codes)."""
    latest = np.full(int(codes.max()) + 1, np.iinfo(np.int64).min)
    np.maximum.at(latest, codes, times)
    rows = np.flatnonzero(times == latest[codes])
    found, first = np.unique(codes[rows], return_index=True)
    return list(zip(found.tolist(), rows[first].tolist(), strict=True))


def _pydatetimes(times: pd.Series, rows: list[int]) -> list[Any]:
    """The times at ``rows`` as datetimes (as ``times.dt.to_pydatetime()`` gives them)."""
    return list(times.take(rows).dt.to_pydatetime())


class StoredIds(Mapping[str, tuple]):
    """AccountHistory.ids of stored rows: trade id -> (symbol, side, price, volume, execution
    time), read from the fills frame's columns when asked (the index of ids is made on first
    use, not when the account is read); ids recorded since are kept as in a dict."""

    def __init__(self, fills: pd.DataFrame) -> None:
        self._fills = fills
        self._index: dict[str, int] | None = None
        self._added: dict[str, tuple] = {}

    def _stored(self) -> dict[str, int]:
        if self._index is None:
            ids = self._fills["trade_id"].tolist()
            self._index = dict(zip(ids, range(len(ids)), strict=True))
        return self._index

    def __contains__(self, trade_id: object) -> bool:
        return trade_id in self._added or trade_id in self._stored()

    def __getitem__(self, trade_id: str) -> tuple:
        found = self._added.get(trade_id)
        if found is not None:
            return found
        k = self._stored()[trade_id]
        f = self._fills
        return (f["symbol"].iat[k], f["side"].iat[k], float(f["price"].iat[k]),
                float(f["volume"].iat[k]), _pydatetimes(f["time"], [k])[0])  # fmt: skip

    def get(self, trade_id: str, default: Any = None) -> Any:
        if trade_id not in self:
            return default
        return self[trade_id]

    def __setitem__(self, trade_id: str, identity: tuple) -> None:
        self._added[trade_id] = identity

    def update(self, pairs: Any) -> None:
        self._added.update(pairs)

    def __iter__(self) -> Iterator[str]:
        stored = self._stored()
        yield from (i for i in stored if i not in self._added)
        yield from self._added

    def __len__(self) -> int:
        stored = self._stored()
        return len(stored) + sum(1 for i in self._added if i not in stored)


__all__ = ["StoredIds", "StoredWalk", "walk_stored"]
