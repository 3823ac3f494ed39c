"""What a trade tracker knows of one account (:class:`AccountHistory`: its open positions,
trade ids, labels and entry sizes), and stored rows brought into it: the whole account when
first read, or only the rows another process stored since (tracking.tracker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.round_trips import PositionLedger
from analytics.trade_batch import apply_fills
from database.records import TradeRecord, unchecked_trade


@dataclass
class AccountHistory:
    """What a tracker knows of one account: its open positions and what came before."""

    account_id: str
    ledgers: dict[str, PositionLedger] = field(default_factory=dict)
    cumulative_pnl: float = 0.0
    last_time: dict[str, datetime] = field(default_factory=dict)  # per symbol
    # trade id -> (symbol, side, price, volume, execution time): tracking.tracker._identity's
    ids: dict[str, tuple] = field(default_factory=dict)
    newest_row: int = 0  # the account's newest stored row this history holds
    rows: int = 0  # how many stored rows it holds
    # per symbol: the notional each fill opened or added (opened quantity x price), in order:
    # the trailing entry sizes the labels compare an entry with
    entries: dict[str, list[float]] = field(default_factory=dict)
    # per trade id: its labels and (volatility regime, market session), for its round trip
    tags: dict[str, tuple[tuple[str, ...], Any, Any]] = field(default_factory=dict)

    def trip(self, trip: dict[str, Any]) -> dict[str, Any]:
        """A closed round trip (its dict, completed in place) with its labels (the union of
        its fills') and its entry's volatility regime and market session, as
        analytics.attribution reads them."""
        tags = self.tags
        seen: dict[str, None] = {}
        for trade_id in (*trip["entry_trade_ids"], *trip["exit_trade_ids"]):
            for label in tags.get(trade_id, _UNKNOWN)[0]:
                seen[label] = None
        _, regime, session = tags.get(trip["entry_trade_ids"][0], _UNKNOWN)
        trip["labels"] = tuple(seen)
        trip["volatility_regime"] = regime
        trip["market_session"] = session
        return trip

    def ledger(self, symbol: str) -> PositionLedger:
        found = self.ledgers.get(symbol)
        if found is None:
            found = self.ledgers[symbol] = PositionLedger(self.account_id, symbol)
        return found


_UNKNOWN: tuple[tuple[str, ...], Any, Any] = ((), None, None)  # no tags: a trade not seen


def apply_stored(
    history: AccountHistory, stored: Any, *, trips: bool = True, newest_row: int | None = None
) -> list[dict[str, Any]]:
    """Stored rows (TradeRepository.rows_after's frame, in row order) into ``history``: its
    positions, ids, tags, last times and entry sizes; returns the round trips they closed.
    ``trips`` False: those are not made (an account read whole, whose past trips nobody
    asks of the tracker): []. ``newest_row``: the newest of the rows, for a frame without
    an ``id`` column (TradeRepository.frame's, which says it in its stored version)."""
    if not len(stored):
        return []
    times = stored["time"].dt.to_pydatetime().tolist()
    columns = [
        stored[c].tolist()
        for c in ("trade_id", "strategy_id", "symbol", "side", "price", "volume",
                  "commission", "labels", "volatility_regime", "market_session")
    ]  # fmt: skip
    (trade_ids, strategies, symbols, sides, prices, volumes, fees, labels, regimes,
     wheres) = columns  # fmt: skip
    index: dict[str, int] = {}
    group = [index.setdefault(symbol, len(index)) for symbol in symbols]
    _, closed, roles = apply_fills(
        [history.ledger(symbol) for symbol in index], np.array(group, dtype=np.int64),
        trade_ids, strategies, sides, np.array(prices, dtype=np.float64),
        np.array(volumes, dtype=np.float64), np.array(fees, dtype=np.float64), times,
        closed_trips=trips,
    )  # fmt: skip
    for symbol, quantity, price in zip(symbols, roles.opened.tolist(), prices, strict=True):
        if quantity > 0:
            history.entries.setdefault(symbol, []).append(quantity * price)
    # rows are in row order, not time order across symbols: each symbol's latest time
    last_time = history.last_time
    ns = pd.DatetimeIndex(stored["time"]).asi8
    for symbol, k in _latest_rows(ns, symbols, index).items():
        last = last_time.get(symbol)
        when = times[k]
        last_time[symbol] = when if last is None or when > last else last
    tags = zip(trade_ids, zip(labels, regimes, wheres, strict=True), strict=True)
    if not trips:  # only the fills of trips still open: a closed trip is never made again
        held = {i for ledger in history.ledgers.values() if ledger.trip is not None
                for i in (*ledger.trip.entry_ids, *ledger.trip.exit_ids)}  # fmt: skip
        tags = ((i, tag) for i, tag in tags if i in held)
    history.tags.update(tags)
    identities = zip(symbols, sides, prices, volumes, times, strict=True)
    history.ids.update(zip(trade_ids, identities, strict=True))
    cumulative = float(stored["cumulative_pnl"].iloc[-1])
    history.cumulative_pnl = 0.0 if cumulative != cumulative else cumulative
    history.newest_row = int(stored["id"].max()) if newest_row is None else newest_row
    history.rows += len(stored)
    return closed


def _latest_rows(times: np.ndarray, symbols: list[str], index: dict[str, int]) -> dict[str, int]:
    """Per symbol, the row of its latest time (the first such row)."""
    codes = np.fromiter(map(index.__getitem__, symbols), np.int64, len(symbols))
    order = np.lexsort((-np.arange(len(codes)), times, codes))  # per code: time, then row
    ends = np.flatnonzero(np.diff(codes[order], append=-1))  # each code's last in that order
    names = list(index)
    return {names[codes[order[e]]]: int(order[e]) for e in ends.tolist()}


def records_of(stored: Any) -> list[TradeRecord]:
    """Stored rows (a rows_after frame) as the records a listener hears (the context holds
    the volatility regime and market session the frame carries)."""
    columns = {c: stored[c].tolist() for c in stored.columns}
    times = stored["time"].dt.to_pydatetime().tolist()
    out = []
    for k in range(len(stored)):
        regime, session = columns["volatility_regime"][k], columns["market_session"][k]
        context = {
            key: value
            for key, value in (("volatility_regime", regime), ("market_session", session))
            if isinstance(value, str)
        }
        out.append(
            unchecked_trade(
                trade_id=columns["trade_id"][k], account_id=columns["account_id"][k],
                strategy_id=columns["strategy_id"][k], symbol=columns["symbol"][k],
                side=columns["side"][k], price=columns["price"][k],
                volume=columns["volume"][k], execution_time=times[k],
                commission=columns["commission"][k], market_context=context,
                labels=tuple(columns["labels"][k]), pnl=columns["pnl"][k],
                cumulative_pnl=columns["cumulative_pnl"][k], run_id=None,
                source=columns["source"][k], order_id=_text_or_none(columns["order_id"][k]),
            )
        )  # fmt: skip
    return out


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None  # missing: NaN
