"""A closed bar's (or a replay chunk's) paper-trading rows in a few driver statements.

>>> with sessions.begin() as session:
...     write_batch(session, TradingBatch(now, orders=[(account_id, order_row)], ...))

What :class:`database.repositories.trading.TradingRepository` writes kind by kind (orders,
fills, positions, accounts, deployment states), written at once for the live runner's
closed candle and the replay's chunk of bars, without SQLAlchemy's statement compilation
per call (its plain SQL text is built once per row count):

- PostgreSQL: every kind in ONE round trip (one ``execute`` of several statements): the
  orders' upsert by client order id, the fills (their order's id looked up by client order
  id in the same statement), the positions' upsert, the accounts' and the deployments'
  ``UPDATE ... FROM json_to_recordset(...)``, each kind's rows one JSON parameter (the
  statements' text fixed); with ``no_flush_wait`` led by
  ``SET LOCAL synchronous_commit = off`` (docs/trading.md, "Durability").
- SQLite: one ``executemany`` per kind (no network: the statements' count costs nothing,
  their compilation did).

The live runner's candle on PostgreSQL also carries its executed trades (``trades``, the
trade tracker's records: tracking/tracker.py ``record_in(write=...)``), in the same text:
a guard first refuses the whole batch (an error naming :data:`STALE_TRADES`, nothing
written: :func:`stale_trades` tells it) when an account's newest stored trade row is not the
one the tracker holds (another writer stored trades meanwhile: the tracker reads them and the
batch is written again), then the trades' INSERT, then each account's newest row (after the
``COMMIT`` when the batch ends its transaction). A candle with fills is then one round trip
as well.

The rows and their checks are the repository's: the same columns and values are stored
(tests/trading/test_repository.py compares both ways). Never commits.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from database.records import SignalRecord, TradeRecord, utc_datetime
from database.repositories._pg_text import PREPARED, prepared, recordset, rows_json
from database.repositories.newest_trades import newest_sql
from database.repositories.signals import SignalRepository, new_signals
from database.repositories.trades import context_texts, label_texts
from database.trading_records import AccountRow, FillRow, OrderRow, PositionRow

_ORDER_COLUMNS = (
    "client_order_id", "account_id", "deployment_id", "symbol", "side", "order_type",
    "time_in_force", "quantity", "limit_price", "stop_price", "trail_pct", "reduce_only",
    "oco_group", "purpose", "status", "filled_quantity", "average_price", "fees",
    "reject_reason", "decision_time", "decision_price", "arrival_time", "arrival_price",
    "created_at", "updated_at", "extra",
)  # fmt: skip
_ORDER_MUTABLE = (
    "status", "quantity", "limit_price", "stop_price", "filled_quantity", "average_price",
    "fees", "reject_reason", "updated_at", "extra",
)  # fmt: skip
_FILL_COLUMNS = (
    "fill_id", "order_id", "account_id", "deployment_id", "symbol", "side", "price",
    "quantity", "fee", "realised_pnl", "venue", "time", "seq", "bar_ts",
)  # fmt: skip
_POSITION_COLUMNS = (
    "account_id", "symbol", "quantity", "average_price", "realised_pnl", "last_price",
    "updated_at",
)  # fmt: skip
_POSITION_MUTABLE = ("quantity", "average_price", "realised_pnl", "last_price", "updated_at")
# (column, PostgreSQL type) of the updates by key: the key first
ACCOUNT_COLUMNS = (
    ("id", "BIGINT"), ("cash", "DOUBLE PRECISION"), ("realised_pnl", "DOUBLE PRECISION"),
    ("fees", "DOUBLE PRECISION"), ("peak_equity", "DOUBLE PRECISION"),
    ("max_drawdown_pct", "DOUBLE PRECISION"), ("status", "TEXT"), ("halt_reason", "TEXT"),
    ("updated_at", "TIMESTAMPTZ"),
)  # fmt: skip
STATE_COLUMNS = (
    ("id", "BIGINT"), ("last_bar_ts", "BIGINT"), ("bar_index", "BIGINT"),
    ("updated_at", "TIMESTAMPTZ"), ("state", "JSONB"),  # a JSON object (null: unchanged)
)  # fmt: skip


# a connection's ``info`` key: it is in autocommit mode and the batch's statements open the
# transaction ("BEGIN" leads them; services/bar_sessions.py commits it)
OPENS_TRANSACTION = "stratlens_batch_opens_transaction"


@dataclass
class TradingBatch:
    """The rows of one write (see the module docstring). ``states``: (deployment id, last
    bar ts, bar index, state or None when unchanged); ``advanced``: (deployment id, last bar
    ts) of deployments one bar further with their state unchanged."""

    now: datetime
    orders: Sequence[tuple[int, OrderRow]] = ()
    fills: Sequence[tuple[int, FillRow]] = ()
    positions: Sequence[tuple[int, PositionRow]] = ()
    accounts: Sequence[AccountRow] = ()
    states: Sequence[tuple[int, int, int, Mapping[str, Any] | None]] = ()
    advanced: Sequence[tuple[int, int]] = ()
    signals: Sequence[SignalRecord] = ()  # new signals (of paper runs), stored after the rest
    no_flush_wait: bool = False  # PostgreSQL: this transaction's COMMIT skips the WAL flush
    # nothing follows in the transaction: one the batch opens (OPENS_TRANSACTION) it also
    # commits, "COMMIT" ending its statements (a candle without fills: ONE round trip)
    last: bool = False
    # executed trades stored in the same text (PostgreSQL only: see the module docstring),
    # refused unless each of their accounts' newest stored trade row is ``trades_newest``'s
    trades: Sequence[TradeRecord] = ()
    trades_newest: Mapping[str, int] = field(default_factory=dict)
    _times: dict[Any, Any] = field(default_factory=dict, repr=False)


def write_batch(session: Session, batch: TradingBatch) -> dict[str, int]:
    """Store ``batch`` in the session's transaction (see the module docstring); each account
    of its ``trades``, its newest stored trade row after them (none without trades)."""
    connection = session.connection()
    signals = batch.signals
    newest: dict[str, int] = {}
    if connection.dialect.name == "postgresql":
        opens = connection.info.pop(OPENS_TRANSACTION, False)
        newest = _write_postgresql(connection, batch, opens)
        if len(signals) <= PG_SIGNALS_IN_STATEMENT:
            return newest  # in the batch's statements
    else:
        if batch.trades:
            raise ValueError("a batch's trades are stored with it on PostgreSQL only")
        _write_sqlite(connection, batch)
    if signals:
        SignalRepository(session).add_many(signals)
    return newest


def stale_trades(error: BaseException) -> bool:
    """Whether ``error`` is a batch's refusal of its trades: an account's newest stored trade
    row was not the one given (nothing of the batch was written)."""
    return STALE_TRADES in str(getattr(error, "orig", None) or error)


# -- PostgreSQL: one round trip --------------------------------------------------------------
def _write_postgresql(
    connection: Connection, batch: TradingBatch, opens: bool = False
) -> dict[str, int]:
    """Each kind's rows as ONE JSON parameter read by ``json_to_recordset``: the statements'
    text is the same for any row count (parsed and planned in microseconds where a VALUES
    list of thousands of literals took milliseconds), psycopg2 quotes one string per kind
    instead of adapting every value. The values are those of the VALUES statements (the
    same SQL types: a float's shortest repr, a time's ISO text, ``extra`` and ``state`` the
    JSON text cast to JSONB as before)."""
    dumps = _json_dumps(connection)
    when = utc_datetime(batch.now, "now").isoformat()
    time = functools.partial(_pg_iso, batch._times)
    last = batch.last
    parts: list[str] = ["BEGIN"] if opens else []
    if batch.no_flush_wait:
        parts.append("SET LOCAL synchronous_commit = off")
    params: list[Any] = []
    orders = _latest_orders(batch.orders)
    if orders:
        rows = []
        for a, o in orders:
            values = _order_values(o, a, time)
            values[-1] = dumps(dict(o.extra))
            rows.append(dict(zip(_ORDER_COLUMNS, values, strict=True)))
        parts.append(_PG_ORDERS)
        params.append(rows_json(rows))
    if batch.fills:
        rows = [
            dict(zip(_FILL_KEYS, _fill_values(f, a, time), strict=True)) for a, f in batch.fills
        ]
        parts.append(_PG_FILLS)
        params.append(rows_json(rows))
    positions = _latest_positions(batch.positions)
    if positions:
        rows = [
            dict(zip(_POSITION_COLUMNS, _position_values(p, a, time), strict=True))
            for a, p in positions
        ]
        parts.append(_PG_POSITIONS)
        params.append(rows_json(rows))
    if batch.accounts:
        names = [c for c, _ in ACCOUNT_COLUMNS]
        rows = [dict(zip(names, _account_values(r, when), strict=True)) for r in batch.accounts]
        parts.append(_PG_ACCOUNTS)
        params.append(rows_json(rows))
    if batch.states:
        names = [c for c, _ in STATE_COLUMNS]
        rows = [
            dict(zip(names, (i, ts, bar, when, None if st is None else dict(st)), strict=True))
            for i, ts, bar, st in batch.states
        ]  # fmt: skip
        parts.append(_PG_STATES)
        params.append(rows_json(rows))
    for ts, ids in _by_bar(batch.advanced).items():  # the runner's bar: one statement
        parts.append(_PG_ADVANCE)
        params.extend((ts, when, ids))
    if batch.signals and len(batch.signals) <= PG_SIGNALS_IN_STATEMENT:
        parts.append(_PG_SIGNALS)
        params.append(_signals_json(batch.signals))
    elif batch.signals:
        last = False  # the binary COPY follows
    accounts: list[str] = []
    if batch.trades:
        accounts = sorted({r.account_id for r in batch.trades})
        guard = [{"account_id": a, "newest": int(batch.trades_newest[a])} for a in accounts]
        parts.extend((_PG_TRADES_GUARD, _PG_TRADES))
        params.extend((rows_json(guard), _trades_json(batch.trades, time)))
    if opens and last:
        parts.append("COMMIT")
    if accounts:  # the last statement: its row is the text's answer
        parts.append(newest_sql(len(accounts)))
        params.extend(accounts)
    if not parts:
        return {}
    info = connection.info  # the DBAPI connection's (read before a failure invalidates it)
    if opens:  # the runner's own connection: its statements prepared once
        parts = prepared(info, parts, _preparable)
    try:
        result = connection.exec_driver_sql(";\n".join(parts), tuple(params))
    except BaseException:
        info.pop(PREPARED, None)  # which were prepared: not known any more
        raise
    if not accounts:
        return {}
    row = result.one()
    return {a: int(n or 0) for a, n in zip(accounts, row, strict=True)}


def _trades_json(trades: Sequence[TradeRecord], time: Any) -> str:
    """The trades' rows as the repository's COPY stores them: the JSON columns the same
    texts (trades.context_texts, label_texts), floats exact, times ISO with their offset."""
    contexts = context_texts([r.market_context for r in trades])
    labels = label_texts([r.labels for r in trades])
    rows = [
        {
            "trade_id": r.trade_id, "account_id": r.account_id, "strategy_id": r.strategy_id,
            "run_id": r.run_id, "symbol": r.symbol, "side": r.side, "price": r.price,
            "volume": r.volume, "commission": r.commission,
            "execution_time": time(r.execution_time), "market_context": context,
            "labels": label, "pnl": r.pnl, "cumulative_pnl": r.cumulative_pnl,
            "source": r.source, "order_id": r.order_id,
        }
        for r, context, label in zip(trades, contexts, labels, strict=True)
    ]  # fmt: skip
    return rows_json(rows)


def _signals_json(records: Sequence[SignalRecord]) -> str:
    """The signals' rows as the repository's bulk insert stores them (``_signal_io``'s
    ``signal_columns`` without a new run: the config's JSON text, NULL for ``{}`` without a
    run; the metadata's JSON text, NULL for none; the time in UTC), made row by row: its
    column-wise arrays took ~0.5 ms for the few signals of a candle."""
    configs: dict[int, str] = {}  # one text per config object (one run's signals share one)
    rows = []
    for r in new_signals(records):
        config = r.strategy_config
        if not config:
            text = "{}"
        elif (text := configs.get(id(config))) is None:
            text = configs[id(config)] = json.dumps(dict(config))
        rows.append(
            {
                "strategy_name": r.strategy_name, "symbol": r.symbol, "timeframe": r.timeframe,
                "signal_type": r.signal_type, "run_id": r.run_id,
                "strategy_config": None if r.run_id is None and text == "{}" else text,
                "signal_metadata": json.dumps(dict(r.metadata)) if r.metadata else None,
                "timestamp": r.timestamp.isoformat(), "price": r.price,
                "confidence": r.confidence,
            }
        )  # fmt: skip
    return rows_json(rows)


_ORDER_TYPES = (
    ("client_order_id", "TEXT"), ("account_id", "BIGINT"), ("deployment_id", "BIGINT"),
    ("symbol", "TEXT"), ("side", "TEXT"), ("order_type", "TEXT"), ("time_in_force", "TEXT"),
    ("quantity", "DOUBLE PRECISION"), ("limit_price", "DOUBLE PRECISION"),
    ("stop_price", "DOUBLE PRECISION"), ("trail_pct", "DOUBLE PRECISION"),
    ("reduce_only", "BOOLEAN"), ("oco_group", "TEXT"), ("purpose", "TEXT"), ("status", "TEXT"),
    ("filled_quantity", "DOUBLE PRECISION"), ("average_price", "DOUBLE PRECISION"),
    ("fees", "DOUBLE PRECISION"), ("reject_reason", "TEXT"), ("decision_time", "TIMESTAMPTZ"),
    ("decision_price", "DOUBLE PRECISION"), ("arrival_time", "TIMESTAMPTZ"),
    ("arrival_price", "DOUBLE PRECISION"), ("created_at", "TIMESTAMPTZ"),
    ("updated_at", "TIMESTAMPTZ"), ("extra", "TEXT"),
)  # fmt: skip
# the fills' rows carry their order's client order id where the table has the order's id
_FILL_KEYS = ("fill_id", "client_order_id", *_FILL_COLUMNS[2:])
_FILL_TYPES = (
    ("fill_id", "TEXT"), ("client_order_id", "TEXT"), ("account_id", "BIGINT"),
    ("deployment_id", "BIGINT"), ("symbol", "TEXT"), ("side", "TEXT"),
    ("price", "DOUBLE PRECISION"), ("quantity", "DOUBLE PRECISION"), ("fee", "DOUBLE PRECISION"),
    ("realised_pnl", "DOUBLE PRECISION"), ("venue", "TEXT"), ("time", "TIMESTAMPTZ"),
    ("seq", "INTEGER"), ("bar_ts", "BIGINT"),
)  # fmt: skip
_POSITION_TYPES = (
    ("account_id", "BIGINT"), ("symbol", "TEXT"), ("quantity", "DOUBLE PRECISION"),
    ("average_price", "DOUBLE PRECISION"), ("realised_pnl", "DOUBLE PRECISION"),
    ("last_price", "DOUBLE PRECISION"), ("updated_at", "TIMESTAMPTZ"),
)  # fmt: skip
_PG_ORDERS = (
    f"INSERT INTO orders ({', '.join(_ORDER_COLUMNS)})"
    f" SELECT {', '.join(f'v.{c}' for c in _ORDER_COLUMNS[:-1])}, CAST(v.extra AS JSONB)"
    f" FROM {recordset(_ORDER_TYPES)} ON CONFLICT (client_order_id) DO UPDATE SET"
    f" {', '.join(f'{c} = EXCLUDED.{c}' for c in _ORDER_MUTABLE)}"
)
# the fill's order (stored before in this statement list, or earlier) by client order id
_PG_FILLS = (
    f"INSERT INTO fills ({', '.join(_FILL_COLUMNS)}) SELECT v.fill_id,"
    f" (SELECT o.id FROM orders AS o WHERE o.client_order_id = v.client_order_id),"
    f" {', '.join(f'v.{c}' for c in _FILL_COLUMNS[2:])} FROM {recordset(_FILL_TYPES)}"
)
_PG_POSITIONS = (
    f"INSERT INTO positions ({', '.join(_POSITION_COLUMNS)})"
    f" SELECT {', '.join(f'v.{c}' for c in _POSITION_COLUMNS)}"
    f" FROM {recordset(_POSITION_TYPES)} ON CONFLICT (account_id, symbol) DO UPDATE SET"
    f" {', '.join(f'{c} = EXCLUDED.{c}' for c in _POSITION_MUTABLE)}"
)
_PG_ACCOUNTS = (
    f"UPDATE accounts AS t SET {', '.join(f'{c} = v.{c}' for c, _ in ACCOUNT_COLUMNS[1:])}"
    f" FROM {recordset(ACCOUNT_COLUMNS)} WHERE t.id = v.id"
)
PG_SIGNALS_IN_STATEMENT = 1000  # more signals (a replay's chunk): the binary COPY after it
_SIGNAL_TYPES = (
    ("strategy_name", "TEXT"), ("symbol", "TEXT"), ("timeframe", "TEXT"),
    ("signal_type", "TEXT"), ("run_id", "BIGINT"), ("strategy_config", "TEXT"),
    ("signal_metadata", "TEXT"), ("timestamp", "TIMESTAMPTZ"), ("price", "DOUBLE PRECISION"),
    ("confidence", "DOUBLE PRECISION"),
)  # fmt: skip
_PG_SIGNALS = (
    "INSERT INTO strategy_signals (strategy_name, symbol, timeframe, signal_type, run_id,"
    " strategy_config, signal_metadata, timestamp, price, confidence) SELECT v.strategy_name,"
    " v.symbol, v.timeframe, v.signal_type, v.run_id, CAST(v.strategy_config AS JSON),"
    " CAST(v.signal_metadata AS JSON), v.timestamp, v.price, v.confidence"
    f" FROM {recordset(_SIGNAL_TYPES)}"
)
# an error naming STALE_TRADES (a text cast to INTEGER; evaluated only for an account whose
# newest stored row is not the one given) refuses the whole text: nothing of it is written
STALE_TRADES = "stratlens_stale_trades"
_PG_TRADES_GUARD = (
    f"SELECT CAST('{STALE_TRADES}: ' || v.account_id AS INTEGER)"
    f" FROM {recordset((('account_id', 'TEXT'), ('newest', 'BIGINT')))} WHERE"
    " COALESCE((SELECT max(t.id) FROM trades AS t WHERE t.account_id = v.account_id), 0)"
    " <> v.newest"
)
_TRADE_TYPES = (
    ("trade_id", "TEXT"), ("account_id", "TEXT"), ("strategy_id", "TEXT"), ("run_id", "BIGINT"),
    ("symbol", "TEXT"), ("side", "TEXT"), ("price", "DOUBLE PRECISION"),
    ("volume", "DOUBLE PRECISION"), ("commission", "DOUBLE PRECISION"),
    ("execution_time", "TIMESTAMPTZ"), ("market_context", "TEXT"), ("labels", "TEXT"),
    ("pnl", "DOUBLE PRECISION"), ("cumulative_pnl", "DOUBLE PRECISION"), ("source", "TEXT"),
    ("order_id", "TEXT"),
)  # fmt: skip
_JSONB = {"market_context", "labels"}
# rows inserted in the given order (their ids: the order the tracker recorded them)
_PG_TRADES = (
    f"INSERT INTO trades ({', '.join(c for c, _ in _TRADE_TYPES)}) SELECT"
    f" {', '.join(f'CAST(v.{c} AS JSONB)' if c in _JSONB else f'v.{c}' for c, _ in _TRADE_TYPES)}"
    f" FROM ROWS FROM ({recordset(_TRADE_TYPES, alias='')})"
    f" WITH ORDINALITY AS v ({', '.join(c for c, _ in _TRADE_TYPES)}, n) ORDER BY v.n"
)


_PG_STATES = (
    "UPDATE deployments AS t SET last_bar_ts = v.last_bar_ts, bar_index = v.bar_index,"
    " updated_at = v.updated_at, state = COALESCE(v.state, t.state)"
    f" FROM {recordset(STATE_COLUMNS)} WHERE t.id = v.id"
)


_PG_ADVANCE = (
    "UPDATE deployments SET last_bar_ts = %s, bar_index = bar_index + 1, updated_at = %s"
    " WHERE id = ANY(%s)"
)


# the statements the runner's connection prepares (name, parameter types)
_PREPARABLE = {
    statement: (f"stratlens_{name}", types)
    for statement, name, types in (
        (_PG_ORDERS, "orders", ("JSON",)), (_PG_FILLS, "fills", ("JSON",)),
        (_PG_POSITIONS, "positions", ("JSON",)), (_PG_ACCOUNTS, "accounts", ("JSON",)),
        (_PG_STATES, "states", ("JSON",)),
        (_PG_ADVANCE, "advance", ("BIGINT", "TIMESTAMPTZ", "BIGINT[]")),
        (_PG_SIGNALS, "signals", ("JSON",)), (_PG_TRADES_GUARD, "trades_guard", ("JSON",)),
        (_PG_TRADES, "trades", ("JSON",)),
    )
}  # fmt: skip
_NEWEST_HEAD = newest_sql(1).split("%s", 1)[0]


def _preparable(statement: str) -> tuple[str, tuple[str, ...]] | None:
    """The name and parameter types ``statement`` is prepared as (None: not prepared)."""
    spec = _PREPARABLE.get(statement)
    if spec is None and statement.startswith(_NEWEST_HEAD):
        count = statement.count("%s")
        spec = (f"stratlens_newest_{count}", ("TEXT",) * count)
    return spec


def _by_bar(advanced: Sequence[tuple[int, int]]) -> dict[int, list[int]]:
    """The advanced deployments' ids by the bar they reached."""
    out: dict[int, list[int]] = {}
    for i, ts in advanced:
        out.setdefault(ts, []).append(i)
    return out


# -- SQLite: one executemany per kind -------------------------------------------------------
def _write_sqlite(connection: Connection, batch: TradingBatch) -> None:
    dumps = _json_dumps(connection)
    when = _sqlite_time(batch._times, batch.now)
    time = functools.partial(_sqlite_time, batch._times)
    orders = _latest_orders(batch.orders)
    if orders:
        rows = []
        for a, o in orders:
            values = _order_values(o, a, time)
            values[11] = int(o.reduce_only)
            values[-1] = dumps(dict(o.extra))
            rows.append(tuple(values))
        connection.exec_driver_sql(_SQLITE_ORDERS, rows)
    if batch.fills:
        connection.exec_driver_sql(
            _SQLITE_FILLS, [tuple(_fill_values(f, a, time)) for a, f in batch.fills]
        )
    positions = _latest_positions(batch.positions)
    if positions:
        connection.exec_driver_sql(
            _SQLITE_POSITIONS, [tuple(_position_values(p, a, time)) for a, p in positions]
        )
    if batch.accounts:
        connection.exec_driver_sql(
            _SQLITE_ACCOUNTS, [(*_account_values(r, when)[1:], r.id) for r in batch.accounts]
        )
    if batch.advanced:
        connection.exec_driver_sql(_SQLITE_ADVANCE, [(ts, when, i) for i, ts in batch.advanced])
    if batch.states:
        connection.exec_driver_sql(
            _SQLITE_COUNTERS, [(ts, bar, when, i) for i, ts, bar, _ in batch.states]
        )
        changed = [(dumps(dict(st)), i) for i, _, _, st in batch.states if st is not None]
        if changed:
            connection.exec_driver_sql(_SQLITE_STATE, changed)


_SQLITE_ORDERS = (
    f"INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) VALUES"
    f" ({', '.join(['?'] * len(_ORDER_COLUMNS))}) ON CONFLICT (client_order_id) DO UPDATE SET"
    f" {', '.join(f'{c} = excluded.{c}' for c in _ORDER_MUTABLE)}"
)
_SQLITE_FILLS = (
    f"INSERT INTO fills ({', '.join(_FILL_COLUMNS)}) VALUES"
    f" (?, (SELECT o.id FROM orders AS o WHERE o.client_order_id = ?),"
    f" {', '.join(['?'] * (len(_FILL_COLUMNS) - 2))})"
)
_SQLITE_POSITIONS = (
    f"INSERT INTO positions ({', '.join(_POSITION_COLUMNS)}) VALUES"
    f" ({', '.join(['?'] * len(_POSITION_COLUMNS))}) ON CONFLICT (account_id, symbol) DO UPDATE"
    f" SET {', '.join(f'{c} = excluded.{c}' for c in _POSITION_MUTABLE)}"
)
_SQLITE_ACCOUNTS = (
    f"UPDATE accounts SET {', '.join(f'{c} = ?' for c, _ in ACCOUNT_COLUMNS[1:])} WHERE id = ?"
)
_SQLITE_ADVANCE = (
    "UPDATE deployments SET last_bar_ts = ?, bar_index = bar_index + 1, updated_at = ? WHERE id = ?"
)
_SQLITE_COUNTERS = (
    "UPDATE deployments SET last_bar_ts = ?, bar_index = ?, updated_at = ? WHERE id = ?"
)
_SQLITE_STATE = "UPDATE deployments SET state = ? WHERE id = ?"


# -- rows ----------------------------------------------------------------------------------
def _latest_orders(orders: Sequence[tuple[int, OrderRow]]) -> list[tuple[int, OrderRow]]:
    """One row per client order id (its last), in the order first seen."""
    latest = {o.client_order_id: (a, o) for a, o in orders}
    return list(latest.values())


def _latest_positions(
    positions: Sequence[tuple[int, PositionRow]],
) -> list[tuple[int, PositionRow]]:
    latest = {(a, p.symbol): (a, p) for a, p in positions}
    return list(latest.values())


def _order_values(o: OrderRow, account_id: int, time: Any) -> list[Any]:
    """``_ORDER_COLUMNS``' values (``extra`` left as the mapping: the caller encodes it)."""
    return [
        o.client_order_id, account_id, o.deployment_id, o.symbol, o.side, o.order_type,
        o.time_in_force, o.quantity, o.limit_price, o.stop_price, o.trail_pct, o.reduce_only,
        o.oco_group, o.purpose, o.status, o.filled_quantity, o.average_price, o.fees,
        o.reject_reason, time(o.decision_time), o.decision_price, time(o.arrival_time),
        o.arrival_price, time(o.arrival_time), time(o.updated_at), o.extra,
    ]  # fmt: skip


def _fill_values(f: FillRow, account_id: int, time: Any) -> list[Any]:
    """``_FILL_COLUMNS``' values, the order's client order id in place of its id."""
    return [
        f.fill_id, f.client_order_id, account_id, f.deployment_id, f.symbol, f.side, f.price,
        f.quantity, f.fee, f.realised_pnl, f.venue, time(f.time), f.seq, f.bar_ts,
    ]  # fmt: skip


def _position_values(p: PositionRow, account_id: int, time: Any) -> list[Any]:
    return [
        account_id, p.symbol, p.quantity, p.average_price, p.realised_pnl, p.last_price,
        time(p.updated_at),
    ]  # fmt: skip


def _account_values(r: AccountRow, when: Any) -> tuple[Any, ...]:
    return (
        r.id, r.cash, r.realised_pnl, r.fees, r.peak_equity, r.max_drawdown_pct, r.status,
        r.halt_reason, when,
    )  # fmt: skip


def _pg_iso(cache: dict[Any, Any], value: datetime | None) -> str | None:
    """A UTC datetime as ISO text, the value the repository binds (checked: naive raises)."""
    if value is None:
        return None
    found = cache.get(value)
    if found is None:
        found = cache[value] = utc_datetime(value).isoformat()
    return found


def _sqlite_time(cache: dict[Any, Any], value: datetime | None) -> str | None:
    """A UTC datetime as SQLAlchemy's SQLite DATETIME stores it (the UTC wall time as
    ``YYYY-MM-DD HH:MM:SS.ffffff``; checked: naive raises)."""
    if value is None:
        return None
    found = cache.get(value)
    if found is None:
        plain = utc_datetime(value).replace(tzinfo=None)
        found = cache[value] = plain.isoformat(" ", "microseconds")
    return found


def _json_dumps(connection: Connection) -> Any:
    return getattr(connection.dialect, "_json_serializer", None) or json.dumps


__all__ = [
    "ACCOUNT_COLUMNS",
    "OPENS_TRANSACTION",
    "STALE_TRADES",
    "STATE_COLUMNS",
    "TradingBatch",
    "stale_trades",
    "write_batch",
]
