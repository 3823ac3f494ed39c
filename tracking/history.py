"""What a trade tracker knows of one account (:class:`AccountHistory`: its open positions,
trade ids, labels and entry sizes), and stored rows brought into it: the whole account when
first read, or only the rows another process stored since (tracking.tracker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

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


def apply_stored(history: AccountHistory, stored: Any) -> list[dict[str, Any]]:
    """Stored rows (TradeRepository.rows_after's frame, in row order) into ``history``: its
    positions, ids, tags, last times and entry sizes; returns the round trips they closed."""
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
    _, trips, roles = apply_fills(
        [history.ledger(symbol) for symbol in index], np.array(group, dtype=np.int64),
        trade_ids, strategies, sides, np.array(prices, dtype=np.float64),
        np.array(volumes, dtype=np.float64), np.array(fees, dtype=np.float64), times,
    )  # fmt: skip
    for symbol, quantity, price in zip(symbols, roles.opened.tolist(), prices, strict=True):
        if quantity > 0:
            history.entries.setdefault(symbol, []).append(quantity * price)
    rows = zip(trade_ids, symbols, sides, prices, volumes, labels, regimes, wheres, times,
               strict=True)  # fmt: skip
    for trade_id, symbol, side, price, volume, tags, regime, where, when in rows:
        history.tags[trade_id] = (tags, regime, where)
        last = history.last_time.get(symbol)
        history.last_time[symbol] = when if last is None or when > last else last
        history.ids[trade_id] = (symbol, side, price, volume, when)
    cumulative = float(stored["cumulative_pnl"].iloc[-1])
    history.cumulative_pnl = 0.0 if cumulative != cumulative else cumulative
    history.newest_row = int(stored["id"].max())
    history.rows += len(stored)
    return trips


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
