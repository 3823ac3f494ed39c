"""A CSV file's fills recorded a column at a time: what ``TradeTracker.record_many`` stores for
the same records (the same rows, values, context and labels: tests hold the two equal),
without a Python object per fill.

>>> stored = import_table(sessions, table, "desk", config)   # None: the tracker's way

Columns checked by the reader (tracking.importers.csv_fills.read_fill_table: every check a
record makes, in time order) -> realised PnL and each fill's role in its position (one
compiled FIFO walk per symbol, :func:`analytics._fifo.fifo_carry`, the tracker's) -> market
context and labels per symbol (tracking.bulk_labels) -> the rows written in bulk
(TradeRepository.add_columns: SQLite executemany, PostgreSQL COPY) in one transaction.

It stores an account's first trades only: an account with stored trades (whose positions,
ids and entry sizes the new ones continue) is recorded by the tracker (None). The caller
holds the tracker's lock and makes it forget the account afterwards: the tracker (and its
live view) read it from the database when next used, as for trades another process stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics._fifo import fifo_carry
from analytics.label_config import LabelConfig
from database.repositories._common import DEFAULT_CHUNK_ROWS
from database.repositories.trades import TRADES, TradeRepository
from tracking.bulk_labels import Roles, label_symbol
from tracking.importers.csv_fills import FillTable
from tracking.trade_records import collector_paused

SOURCE = "csv"


def import_table(
    session: Session, table: FillTable, account: str, config: LabelConfig | None
) -> int | None:
    """Store the fills of ``table`` as ``account``'s first trades in the session's
    transaction (the caller commits); how many. None (nothing written) when the account
    has stored trades. ``config``: the labels' (None: no market context, no labels, as a
    tracker without annotator)."""
    newest = session.scalar(select(func.max(TRADES.c.id)).where(TRADES.c.account_id == account))
    if newest is not None:
        return None
    n = len(table.trade_ids)
    if not n:
        return 0
    with collector_paused():
        columns = _columns(session, table, account, config)
        TradeRepository(session).add_columns(_chunks(columns, n))
    return n


def _columns(
    session: Session, table: FillTable, account: str, config: LabelConfig | None
) -> dict[str, Any]:
    """The rows as the writer's columns (TRADE_COLUMNS)."""
    n = len(table.trade_ids)
    codes, symbols = pd.factorize(np.array(table.symbols, dtype=object))
    codes = codes.astype(np.int64)
    sign = np.where(np.array(table.sides, dtype=object) == "buy", 1, -1).astype(np.int64)
    t_ns = table.times_us * 1000
    pnl, roles = _positions(codes, len(symbols), sign, table, t_ns)
    # the tracker's running sum, from 0.0, one addition per fill in order
    cumulative = np.cumsum(np.concatenate(([0.0], pnl)))[1:]
    contexts: list[Any] = ["{}"] * n
    labels: list[Any] = ["[]"] * n
    if config is not None:
        contexts, labels = _annotations(session, config, codes, list(symbols), sign, table,
                                        t_ns, roles)  # fmt: skip
    return {
        "trade_id": table.trade_ids, "account_id": [account] * n,
        "strategy_id": table.strategies, "run_id": [None] * n, "symbol": table.symbols,
        "side": table.sides, "price": table.prices, "volume": table.volumes,
        "commission": table.fees, "execution_time": table.times_us.astype("datetime64[us]"),
        "market_context": contexts, "labels": labels, "pnl": pnl,
        "cumulative_pnl": cumulative, "source": [SOURCE] * n, "order_id": table.orders,
    }  # fmt: skip


def _positions(
    codes: np.ndarray, groups: int, sign: np.ndarray, table: FillTable, t_ns: np.ndarray
) -> tuple[np.ndarray, Roles]:
    """Each fill's realised pnl net of its commission and its role in its position, from
    flat positions (analytics.trade_batch.apply_fills' numbers, without its round trips)."""
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
    walked = fifo_carry(
        codes, sign, table.prices, table.volumes, table.fees, groups,
        np.zeros(groups, np.int64), empty_i, empty_f, empty_f, np.zeros((0, 6)),
    )  # fmt: skip
    pnl, closed, t_dir, t_first = walked[0], walked[2], walked[4], walked[5]
    opened_qty, closed_qty, closed_cost = walked[20], walked[21], walked[22]
    closing = closed >= 0
    at = np.where(closing, closed, 0)
    entry_price = np.full(len(codes), np.nan)
    np.divide(closed_cost, closed_qty, out=entry_price, where=closing)
    trip_ns = t_ns[t_first] if len(t_first) else np.zeros(1, np.int64)
    direction = np.where(closing, t_dir[at] if len(t_dir) else 0, 0)
    entry_ns = np.where(closing, trip_ns[at], 0)
    return pnl, Roles(opened_qty, closed_qty, entry_price, direction, entry_ns)


def _annotations(
    session: Session, config: LabelConfig, codes: np.ndarray, symbols: list[str],
    sign: np.ndarray, table: FillTable, t_ns: np.ndarray, roles: Roles,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Each fill's context and labels as stored, a symbol at a time."""
    from analytics.labels import NewsCalendar
    from database.repositories.news import NewsRepository

    news = NewsCalendar(NewsRepository(session).frame())
    n = len(codes)
    contexts = np.empty(n, dtype=object)
    labels = np.empty(n, dtype=object)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(symbols) + 1))
    for code, symbol in enumerate(symbols):
        rows = order[bounds[code] : bounds[code + 1]]
        part = Roles(*(a[rows] for a in roles))
        made = label_symbol(session, config, news, symbol, t_ns[rows], table.prices[rows],
                            sign[rows], part)  # fmt: skip
        contexts[rows], labels[rows] = made
    return contexts.tolist(), labels.tolist()


def _chunks(columns: dict[str, Any], n: int) -> Iterator[dict[str, Any]]:
    """The columns in chunks of DEFAULT_CHUNK_ROWS rows (PostgreSQL stores one while the
    next one's text is made)."""
    for start in range(0, n, DEFAULT_CHUNK_ROWS):
        stop = start + DEFAULT_CHUNK_ROWS
        yield {name: values[start:stop] for name, values in columns.items()}


__all__ = ["import_table"]
