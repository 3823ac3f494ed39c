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

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from analytics._fifo import fifo_carry
from analytics.label_config import LabelConfig
from analytics.round_trips import PositionLedger
from analytics.trade_batch import time_ns
from database.repositories._common import DEFAULT_CHUNK_ROWS
from database.repositories._trade_io import BARS, column_chunks
from database.repositories.newest_trades import newest_rows
from database.repositories.trades import TradeRepository
from database.session import threads_connect_apart
from tracking.bulk_labels import Roles, label_symbol
from tracking.history import AccountHistory, apply_stored
from tracking.importers.csv_fills import FillParts, FillTable
from tracking.tracker import ConflictingTradeError, OutOfOrderTradeError
from tracking.trade_records import collector_paused

SOURCE = "csv"
PIPELINED_ROWS = 100_000  # from this many fills, the head is written while the rest is made
HEAD_SHARE = 6  # the head: a sixth of the fills (PostgreSQL stores it in ~0.8 s per 1,000,000)
_log = logging.getLogger(__name__)


def import_table(
    session: Session, table: FillTable, account: str, config: LabelConfig | None
) -> tuple[int, int]:
    """Store the fills of ``table`` that ``account`` does not have yet in the session's
    transaction (the caller commits): (stored, already stored). A fill stored with other
    values raises ConflictingTradeError, one older than the account's last stored fill of
    its symbol OutOfOrderTradeError (the tracker's errors and messages; nothing written).
    ``config``: the labels' (None: no market context, no labels, as a tracker without
    annotator)."""
    newest = newest_rows(session, [account])[account]  # 0: no stored row
    with collector_paused():
        history = None
        if newest:  # what the tracker reads of the account first (its own way)
            history = AccountHistory(account)
            stored = TradeRepository(session).rows_after(account, 0)[0]
            apply_stored(history, stored, trips=False, newest_row=int(newest))
            fresh = _fresh(table, stored, history, account)
            if not fresh.all():
                table = _take(table, np.flatnonzero(fresh))
        n = len(table.trade_ids)
        # the head written while the whole is made, read by a thread's own connection: on
        # SQLite too, whose steps run without the interpreter's lock (1,000,000 fills, quiet,
        # 6 alternated runs: 6.47 -> 6.14 s median wall, ~0.2 s more CPU for the head made
        # twice)
        pipelined = n >= PIPELINED_ROWS and threads_connect_apart(session.get_bind())
        if n and history is None and pipelined:
            head = _take(table, np.arange(max(n // HEAD_SHARE, 1)))
            _write_pipelined(session, head, _done(table), account, config)
        elif n:
            columns = _columns(session, table, account, config, history)
            TradeRepository(session).add_columns(_chunks(columns), _done(columns))
    return n, table.rows_read - n


def import_parts(
    session: Session, parts: FillParts, account: str, config: LabelConfig | None
) -> tuple[FillTable, int, int]:
    """:func:`import_table` of a file as it is read (csv_fills.read_fill_parts): an
    account's first import stores the file's head while the rest is read, checked and made
    (its whole's columns in a thread). (The whole file, stored, already stored.) Raises
    :class:`NotPlain` when the whole file is not plain (a problem past the head): whatever
    was stored then is rolled back by the caller, whose transaction it is."""
    head, bind = parts.head, session.get_bind()
    if head is None or newest_rows(session, [account])[account] or not threads_connect_apart(bind):
        table = parts.whole.result()
        if table is None:
            raise NotPlain
        return table, *import_table(session, table, account, config)
    with collector_paused():
        table = _write_pipelined(session, head, parts.whole, account, config)
    n = len(table.trade_ids)
    return table, n, table.rows_read - n


class NotPlain(Exception):
    """The whole file is not plain or has a problem (its head was): the caller rolls back
    and reads it the careful way, which names every problem."""


def _write_pipelined(
    session: Session, head: FillTable, whole: Future[FillTable | None], account: str,
    config: LabelConfig | None,
) -> FillTable:  # fmt: skip
    """Store the fills of an account's first import while their columns are made: the
    ``head`` (the whole's first fills in time order, when ``whole`` has them) is made alone
    and written first, the whole file's columns are made meanwhile in a thread (once
    ``whole`` is read; reading bars and news through its own connection) and the rest
    written from those. A fill's values depend only on the fills before it (the labels'
    truncation rule), so the head's rows equal the whole's first rows; they are compared
    before the rest is written, and when they differ (a later row older than the head's
    last), the head is rolled back to a savepoint and every row written from the whole. The
    database stores the head while the whole is read and made. Returns the whole (raises
    :class:`NotPlain` when ``whole`` is None)."""
    k = len(head.trade_ids)
    repository = TradeRepository(session)

    def made(reader: Session) -> tuple[FillTable, dict[str, Any]]:
        table = whole.result()
        if table is None:
            raise NotPlain
        return table, _columns(reader, table, account, config, None)

    with Session(bind=session.get_bind()) as reader, ThreadPoolExecutor(1) as making:
        rest = making.submit(made, reader)
        first = _columns(session, head, account, config, None)

        def chunks() -> Iterator[dict[str, Any]]:
            yield from _chunks(first)
            table, rows = rest.result()
            if len(table.trade_ids) < k or not _same_rows(first, rows, k):
                raise _HeadDiffers
            after = {name: values[k:] for name, values in rows.items() if name != BARS}
            after[BARS] = rows[BARS]
            yield from _chunks(after)

        whole_columns: Future[dict[str, Any]] = Future()  # for the cache's file
        rest.add_done_callback(lambda done: _settle(whole_columns, done))
        savepoint = session.begin_nested()
        try:
            repository.add_columns(chunks(), whole_columns)
        except _HeadDiffers:
            savepoint.rollback()
            _log.info(
                "import into %r: the head's rows differ from the whole's first rows"
                " (a later row is older); every row written from the whole",
                account,
            )
            rows = rest.result()[1]
            repository.add_columns(_chunks(rows), _done(rows))
        else:
            savepoint.commit()
        return rest.result()[0]


class _HeadDiffers(Exception):
    """The head's columns are not the whole's first rows."""


def _done(value: Any) -> Future[Any]:
    done: Future[Any] = Future()
    done.set_result(value)
    return done


def _settle(
    columns: Future[dict[str, Any]], made: Future[tuple[FillTable, dict[str, Any]]]
) -> None:
    """``columns``: the whole's columns of ``made`` (or its error)."""
    error = made.exception()
    if error is None:
        columns.set_result(made.result()[1])
    else:
        columns.set_exception(error)


def _same_rows(head: dict[str, Any], whole: dict[str, Any], n: int) -> bool:
    """Whether the first ``n`` rows of ``whole`` are the rows of ``head`` (NaN equal NaN)."""
    for name, values in head.items():
        if name == BARS:  # the bars the contexts name: the contexts' texts say which
            continue
        other = whole[name][:n]
        if isinstance(values, np.ndarray):
            kind = values.dtype.kind
            if not np.array_equal(values, other, equal_nan=kind in "fcmM"):
                return False
        elif list(values) != list(other):
            return False
    return True


def _fresh(
    table: FillTable, stored: pd.DataFrame, history: AccountHistory, account: str
) -> np.ndarray:
    """Which fills of ``table`` the account has not stored (a fill stored with the same
    symbol, side, price, volume and time is left out); raises the tracker's error for the
    first fill (in time order) stored with other values, or older than the account's last
    stored fill of its symbol."""
    at = pd.Index(stored["trade_id"]).get_indexer(table.trade_ids)
    known = at >= 0
    k = np.flatnonzero(known)
    s = at[k]
    stored_us = _micros(stored["time"])
    same = np.ones(len(k), dtype=bool)
    for name, given in (("symbol", table.symbols), ("side", table.sides)):
        same &= stored[name].to_numpy(dtype=object)[s] == np.array(given, dtype=object)[k]
    for name, values in (("price", table.prices), ("volume", table.volumes)):
        same &= stored[name].to_numpy(dtype=np.float64)[s] == values[k]
    same &= stored_us[s] == table.times_us[k]
    problem = np.zeros(len(known), dtype=bool)
    problem[k[~same]] = True
    symbols = np.array(table.symbols, dtype=object)
    for symbol, last in history.last_time.items():
        late = table.times_us < _micros(pd.Series([last]))[0]
        problem |= ~known & late & (symbols == symbol)
    if problem.any():
        j = int(np.flatnonzero(problem)[0])
        trade_id, when = table.trade_ids[j], _datetime(int(table.times_us[j]))
        if known[j]:
            row = int(at[j])
            had = (stored["symbol"].iat[row], stored["side"].iat[row],
                   float(stored["price"].iat[row]), float(stored["volume"].iat[row]),
                   _datetime(int(stored_us[row])).timestamp())  # fmt: skip
            given = (table.symbols[j], table.sides[j], float(table.prices[j]),
                     float(table.volumes[j]), when.timestamp())  # fmt: skip
            raise ConflictingTradeError(
                f"trade {trade_id!r} of account {account!r} is stored with other values"
                f" {had} than {given}: nothing was written"
            )
        last = history.last_time[table.symbols[j]]
        raise OutOfOrderTradeError(
            f"trade {trade_id!r} of account {account!r} at {when.isoformat()} is older than"
            f" the account's last {table.symbols[j]} trade at {last.isoformat()}: trades of an"
            " account and symbol are recorded in time order (its PnL would change trades"
            " already stored); nothing was written"
        )
    return ~known


def _micros(times: pd.Series) -> np.ndarray:
    """UTC times (a column of the stored frame, or datetimes) as epoch microseconds."""
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        index = index.tz_localize("UTC")
    return index.as_unit("us").asi8


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _take(table: FillTable, rows: np.ndarray) -> FillTable:
    """The fills ``rows`` of ``table`` (in order)."""
    take = rows.tolist()
    lists = {name: [getattr(table, name)[k] for k in take]
             for name in ("trade_ids", "strategies", "symbols", "sides", "orders")}  # fmt: skip
    arrays = {name: getattr(table, name)[rows]
              for name in ("prices", "volumes", "fees", "times_us")}  # fmt: skip
    return table._replace(**lists, **arrays)


def _columns(
    session: Session, table: FillTable, account: str, config: LabelConfig | None,
    history: AccountHistory | None,
) -> dict[str, Any]:  # fmt: skip
    """The rows as the writer's columns (TRADE_COLUMNS), the account's ``history`` before
    them (None: none)."""
    n = len(table.trade_ids)
    codes, symbols = pd.factorize(np.array(table.symbols, dtype=object))
    codes = codes.astype(np.int64)
    sign = np.where(np.array(table.sides, dtype=object) == "buy", 1, -1).astype(np.int64)
    t_ns = table.times_us * 1000
    history = history or AccountHistory(account)
    ledgers = [history.ledger(symbol) for symbol in symbols]
    pnl, roles = _positions(codes, ledgers, sign, table, t_ns)
    # the tracker's running sum, from the account's, one addition per fill in order
    cumulative = np.cumsum(np.concatenate(([history.cumulative_pnl], pnl)))[1:]
    contexts: list[Any] = ["{}"] * n
    labels: list[Any] = ["[]"] * n
    bars: dict[str, str] = {}
    if config is not None:
        entries = {symbol: history.entries.get(symbol, []) for symbol in symbols}
        contexts, labels = _annotations(session, config, codes, entries, sign, table, t_ns,
                                        roles, bars)  # fmt: skip
    return {
        "trade_id": table.trade_ids, "account_id": [account] * n,
        "strategy_id": table.strategies, "run_id": [None] * n, "symbol": table.symbols,
        "side": table.sides, "price": table.prices, "volume": table.volumes,
        "commission": table.fees, "execution_time": table.times_us.astype("datetime64[us]"),
        "market_context": contexts, "labels": labels, "pnl": pnl,
        "cumulative_pnl": cumulative, "source": [SOURCE] * n, "order_id": table.orders,
        BARS: bars,
    }  # fmt: skip


def _positions(
    codes: np.ndarray, ledgers: list[PositionLedger], sign: np.ndarray, table: FillTable,
    t_ns: np.ndarray,
) -> tuple[np.ndarray, Roles]:  # fmt: skip
    """Each fill's realised pnl net of its commission and its role in its position, from
    the positions ``ledgers`` hold (one per code): analytics.trade_batch.apply_fills'
    numbers, without its round trips (the ledgers are left as they were)."""
    groups = len(ledgers)
    lots = [(g, *lot) for g, ledger in enumerate(ledgers) for lot in ledger.lots]
    lot_group, lot_qty, lot_price = (np.array(c) for c in zip(*lots, strict=True)) if lots else (
        np.zeros(0, np.int64), np.zeros(0), np.zeros(0))  # fmt: skip
    carried = [ledger.trip for ledger in ledgers if ledger.side and ledger.trip is not None]
    trip0 = np.array(
        [(t.entry_qty, t.entry_notional, t.exit_qty, t.exit_notional, t.gross, t.fees)
         for t in carried]
    ).reshape(len(carried), 6)  # fmt: skip
    walked = fifo_carry(
        codes, sign, table.prices, table.volumes, table.fees, groups,
        np.array([ledger.side for ledger in ledgers], dtype=np.int64),
        lot_group.astype(np.int64), lot_qty.astype(np.float64), lot_price.astype(np.float64),
        trip0,
    )  # fmt: skip
    pnl, closed, t_dir, t_first = walked[0], walked[2], walked[4], walked[5]
    opened_qty, closed_qty, closed_cost = walked[20], walked[21], walked[22]
    closing = closed >= 0
    at = np.where(closing, closed, 0)
    entry_price = np.full(len(codes), np.nan)
    np.divide(closed_cost, closed_qty, out=entry_price, where=closing)
    # each trip's entry time: a carried trip's own, a new one's first fill's
    trip_ns = np.zeros(max(len(t_first), 1), dtype=np.int64)
    trip_ns[: len(carried)] = [time_ns(t.entry_time) for t in carried]
    trip_ns[len(carried) : len(t_first)] = t_ns[t_first[len(carried) :]]
    direction = np.where(closing, t_dir[at] if len(t_dir) else 0, 0)
    entry_ns = np.where(closing, trip_ns[at], 0)
    return pnl, Roles(opened_qty, closed_qty, entry_price, direction, entry_ns)


def _annotations(
    session: Session, config: LabelConfig, codes: np.ndarray, entries: dict[str, list[float]],
    sign: np.ndarray, table: FillTable, t_ns: np.ndarray, roles: Roles, bars: dict[str, str],
) -> tuple[list[str], list[str]]:  # fmt: skip
    """Each fill's context and labels as stored, a symbol at a time (``entries``: per
    symbol, the notionals the account's stored fills opened, in order); the bars' parts the
    contexts name added to ``bars``."""
    symbols = list(entries)
    from analytics.labels import NewsCalendar
    from database.repositories.news import NewsRepository
    from tracking.annotator import MarketAnnotator

    news = NewsCalendar(NewsRepository(session).frame())
    annotator = MarketAnnotator(config)  # a new process's: the symbols' bars as it follows them
    n = len(codes)
    contexts = np.empty(n, dtype=object)
    labels = np.empty(n, dtype=object)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(symbols) + 1))
    for code, symbol in enumerate(symbols):
        rows = order[bounds[code] : bounds[code + 1]]
        part = Roles(*(a[rows] for a in roles))
        made = label_symbol(session, annotator, news, symbol, t_ns[rows], table.prices[rows],
                            sign[rows], part, entries[symbol], bars)  # fmt: skip
        contexts[rows], labels[rows] = made
    return contexts.tolist(), labels.tolist()


def _chunks(columns: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The columns in chunks of DEFAULT_CHUNK_ROWS rows (PostgreSQL stores one while the
    next one's text is made); the bars' parts the contexts name with the first."""
    return column_chunks(columns, DEFAULT_CHUNK_ROWS)


__all__ = ["NotPlain", "import_parts", "import_table"]
