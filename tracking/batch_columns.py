"""A tracker's batch as columns, each taken from its records once: the FIFO pass's inputs
(:func:`positions`) and, from the same lists, the rows the trades table stores
(:func:`stored_columns`, ``TradeRepository.add_columns``' chunk): no second pass over the
stored records attribute by attribute (the repository's ``add_many`` makes sixteen)."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import pandas as pd

from analytics.trade_batch import FillRoles, apply_fills
from database.records import TradeRecord
from database.repositories._trade_io import BARS, column_chunks
from database.repositories._trade_rows import context_values
from database.repositories.trades import context_texts, label_texts
from tracking.history import AccountHistory

# rows per chunk on PostgreSQL: one COPY, the server parsing and storing a chunk while the
# next one's text is made (a batch of 10,000 in one: ~20 % more wall time, bench --only stream)
COPY_CHUNK_ROWS = 2_500
# the columns the FIFO pass reads that the table stores as they are
_SHARED = ("trade_id", "strategy_id", "side", "price", "volume", "commission")
# the other columns the table stores as the records hold them
_OWN = ("account_id", "run_id", "symbol", "source", "order_id")


def positions(
    fresh: list[TradeRecord], histories: dict[str, AccountHistory]
) -> tuple[Any, list[dict[str, Any]], FillRoles, dict[tuple[str, str], int], dict[str, list]]:
    """Each fresh trade's realised pnl, the round trips they closed, each one's role in its
    position (the batch through its accounts' position ledgers in one column-wise pass,
    analytics.trade_batch), per (account, symbol) the position of its last trade, and the
    columns read (:data:`_SHARED` and ``execution_time``)."""
    index: dict[tuple[str, str], int] = {}
    last: dict[tuple[str, str], int] = {}
    keys = list(map(_POSITION, fresh))
    group = [index.setdefault(key, len(index)) for key in keys]
    last.update(zip(keys, range(len(keys)), strict=True))  # each key's last position
    ledgers = [histories[account].ledger(symbol) for account, symbol in index]
    columns = {
        name: list(map(operator.attrgetter(name), fresh)) for name in (*_SHARED, "execution_time")
    }
    pnl, trips, roles = apply_fills(
        ledgers, np.array(group, dtype=np.int64), columns["trade_id"], columns["strategy_id"],
        columns["side"], *(np.array(columns[name], dtype=np.float64)
                           for name in ("price", "volume", "commission")),
        columns["execution_time"],
    )  # fmt: skip
    return pnl, trips, roles, last, columns


def stored_columns(
    fresh: list[TradeRecord],
    read: dict[str, list],
    pnl: list[float],
    cumulative: list[float],
    contexts: list[Any],
    labels: list[tuple[str, ...]],
) -> dict[str, Any]:
    """The rows of ``fresh`` as stored (what ``TradeRepository.add_many`` makes of the stored
    records): ``read`` the columns :func:`positions` read, then each one's pnl, cumulative
    pnl, context and labels as stored."""
    out: dict[str, Any] = {name: read[name] for name in _SHARED}
    for name in _OWN:
        out[name] = list(map(operator.attrgetter(name), fresh))
    times = pd.DatetimeIndex(read["execution_time"]).tz_convert("UTC").tz_localize(None)
    out["execution_time"] = times.as_unit("us").to_numpy()
    out["pnl"] = pnl
    out["cumulative_pnl"] = cumulative
    out[BARS] = bars = {}  # the bars' parts the contexts name, stored with them
    out["market_context"] = context_texts(contexts, bars)
    # as add_many's: the trade cache takes them from here rather than from the JSON texts
    out["volatility_regime"], out["market_session"] = context_values(contexts)
    out["labels"] = label_texts(labels)
    return out


def in_chunks(columns: dict[str, Any], rows: int) -> list[dict[str, Any]]:
    """``columns`` (lists and arrays of one length) as chunks of ``rows`` rows, in order
    (the bars' parts with the first)."""
    if len(columns["trade_id"]) <= rows:
        return [columns]
    return list(column_chunks(columns, rows))


_POSITION = operator.attrgetter("account_id", "symbol")

__all__ = ["COPY_CHUNK_ROWS", "in_chunks", "positions", "stored_columns"]
