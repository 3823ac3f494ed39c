"""ExecutionRepository: imported orders and their fills (``execution_orders``,
``execution_fills``, migration 0012), append-only and immutable, keyed by (account, order id).

>>> repo = ExecutionRepository(session)
>>> repo.add("ft-live", orders, fills)      # frames in the columns below: (orders, fills) stored
>>> repo.orders("ft-live")                  # the orders frame analytics.tca reads
>>> repo.fills("ft-live")                   # ... and its fills frame

Writes and reads go a column at a time: a batch is one executemany per chunk of rows (Core
inserts, no ORM objects), and a read is one query whose columns become the frame's.

A batch stored by :meth:`ExecutionRepository.add` also goes into the account's columnar file
cache (``_execution_cache``) once its transaction commits, from the columns already in
memory: the first read after an import (``app.py dataset export``) then reads no order or
fill row through the driver. The rows' ids are read back (ids only) and the file written
only when the account's rows are exactly the cached ones plus the batch (see
:func:`_cache_stored`); otherwise nothing is written and the next read fills the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Table, event, false, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from database.errors import DuplicateOrderError, TradeImmutableError
from database.execution_models import ExecutionFill, ExecutionOrder
from database.models import DatabaseIdentity
from database.repositories._common import (
    DEFAULT_CHUNK_ROWS,
    IN_CHUNK,
    accounts_with_source,
    chunks,
    stored_keys,
)
from database.repositories._execution_io import read_columns, text_column, utc_micros
from database.repositories._trade_io import insert_columns

ORDERS: Table = ExecutionOrder.__table__  # type: ignore[assignment]
FILLS: Table = ExecutionFill.__table__  # type: ignore[assignment]

# the orders frame: analytics.tca's order columns (docs/tca.md#inputs) and the source
ORDER_COLUMNS = (
    "order_id", "account_id", "strategy_id", "symbol", "side", "order_qty", "order_type",
    "limit_price", "decision_time", "decision_price", "arrival_time", "arrival_price",
    "end_time", "venue", "algo", "bid", "ask", "expected_return_bps", "source",
)  # fmt: skip
REQUIRED_ORDER_COLUMNS = (
    "order_id", "strategy_id", "symbol", "side", "order_qty", "arrival_time", "source",
)  # fmt: skip
# the fills frame: analytics.tca's fill columns, the trade each was recorded as, its place
FILL_COLUMNS = ("order_id", "fill_time", "fill_price", "fill_qty", "fee", "trade_id", "seq")
REQUIRED_FILL_COLUMNS = ("order_id", "fill_time", "fill_price", "fill_qty", "fee")
_ORDER_NUMBERS = {
    "order_qty", "limit_price", "decision_price", "arrival_price", "bid", "ask",
    "expected_return_bps",
}  # fmt: skip
_TIMES = {"decision_time", "arrival_time", "end_time", "fill_time"}
_FILL_NUMBERS = {"fill_price", "fill_qty", "fee"}
_PENDING = "execution_cache_pending"  # Session.info: batches to cache once it commits
_LISTENING = "execution_cache_listening"  # Session.info: its commit and rollback are heard

log = logging.getLogger(__name__)


class ExecutionRepository:
    """Imported orders with their fills: append-only, an order stored once with all of them."""

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows

    def add(
        self, account: str, orders: pd.DataFrame, fills: pd.DataFrame, *, checked: bool = False
    ) -> tuple[int, int]:
        """Store new orders of ``account`` with their fills; returns (orders, fills) stored.

        ``orders`` holds :data:`ORDER_COLUMNS` (those of :data:`REQUIRED_ORDER_COLUMNS` at
        least; ``account_id``, when there, must be ``account``), ``fills`` the fills of those
        orders (:data:`REQUIRED_FILL_COLUMNS`, optionally ``trade_id``); each fill's ``seq``
        is its place among its order's fills in time order. An order id repeated in the batch
        or already stored in the account raises DuplicateOrderError naming them, a fill of an
        order not in the batch ValueError, and nothing is written. ``checked``: the caller
        knows the ids are new (no query looks; the unique key still refuses a repeat).
        """
        if not isinstance(account, str) or not account.strip():
            raise ValueError(f"account={account!r} is invalid: expected a non-empty account name")
        _require(orders, REQUIRED_ORDER_COLUMNS, "orders")
        _require(fills, REQUIRED_FILL_COLUMNS, "fills")
        ids = orders["order_id"].astype(object)
        if "account_id" in orders.columns:
            other = sorted(set(orders["account_id"].dropna()) - {account})
            if other:
                raise ValueError(f"orders of account(s) {other} given to store in {account!r}")
        repeated = ids[ids.duplicated()].tolist()
        if repeated:
            raise DuplicateOrderError(repeated, where="within the batch", account=account)
        if not checked and self._has_orders(account):  # none stored: none can repeat
            stored = self.stored_order_ids(account, ids.tolist())
            if stored:
                raise DuplicateOrderError(stored, where="already stored", account=account)
        strangers = sorted(set(fills["order_id"]) - set(ids))
        if strangers:
            raise ValueError(
                f"fills of order(s) {strangers[:10]} that are not in the batch: an order is "
                "stored once, with all of its fills"
            )
        order_columns = {"account_id": [account] * len(orders)} | {
            name: _values(orders, name) for name in ORDER_COLUMNS if name != "account_id"
        }
        fills = fills.iloc[_time_order(fills)]
        fill_columns = (
            {"account_id": [account] * len(fills)}
            | {name: _values(fills, name) for name in FILL_COLUMNS if name != "seq"}
            | {"seq": fills.groupby("order_id", sort=False).cumcount().to_numpy(np.int64)}
        )
        for table, columns, n in (
            ("execution_orders", order_columns, len(orders)),
            ("execution_fills", fill_columns, len(fills)),
        ):
            for start in range(0, n, self._chunk_rows):
                part = {k: v[start : start + self._chunk_rows] for k, v in columns.items()}
                insert_columns(self._session, table, list(columns), part)
        _cache_after_commit(self._session, account, ORDERS, order_columns, _ORDER_NUMBERS)
        _cache_after_commit(self._session, account, FILLS, fill_columns, _FILL_NUMBERS)
        return len(orders), len(fills)

    def stored_order_ids(self, account: str, order_ids: Iterable[str]) -> set[str]:
        """Which of ``order_ids`` the account already has."""
        return stored_keys(self._session, ORDERS, "order_id", account, order_ids)

    def _has_orders(self, account: str) -> bool:
        first = select(ORDERS.c.id).where(ORDERS.c.account_id == account).limit(1)
        return self._session.execute(first).first() is not None

    def orders(
        self, account: str, *, order_ids: Iterable[str] | None = None, cached: bool = False
    ) -> pd.DataFrame:
        """The account's orders (of ``order_ids`` only, when given) in arrival order, in
        :data:`ORDER_COLUMNS`: times UTC (NaT where not known), numbers float (NaN where not
        known), the texts as stored (None where not known). ``cached``: all of them through
        the account's columnar file cache (``_execution_cache``: only the rows stored since it
        was written are read from the database); for a session that has written nothing."""
        return _frame(
            self._session, ORDERS, account, order_ids, ORDER_COLUMNS, _ORDER_NUMBERS,
            "arrival_time", cached,
        )  # fmt: skip

    def fills(
        self, account: str, *, order_ids: Iterable[str] | None = None, cached: bool = False
    ) -> pd.DataFrame:
        """The account's fills (of ``order_ids`` only, when given) in time order, in
        :data:`FILL_COLUMNS`; ``cached`` as for :meth:`orders`."""
        frame = _frame(
            self._session, FILLS, account, order_ids, FILL_COLUMNS, _FILL_NUMBERS, "fill_time",
            cached,
        )  # fmt: skip
        frame["seq"] = frame["seq"].astype(np.int64)
        return frame

    def accounts(self) -> list[tuple[str, int, str]]:
        """(account, orders, source of its first order) of every account with imported
        orders."""
        return accounts_with_source(self._session, ORDERS)

    def update(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored order and its fills are immutable."""
        raise TradeImmutableError("imported orders are immutable: they cannot be updated")

    def delete(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored order and its fills are immutable."""
        raise TradeImmutableError("imported orders are immutable: they cannot be deleted")


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}")


def _values(frame: pd.DataFrame, name: str) -> Any:
    """One column as the values to store: a datetime64[us] UTC array (NaT where empty), a
    float array (NaN where empty), or texts (None where empty or the column is absent)."""
    if name not in frame.columns:
        return [None] * len(frame)
    column = frame[name]
    if name in _TIMES:
        times = pd.Series(pd.to_datetime(column, utc=True, format="ISO8601")).dt.as_unit("us")
        return times.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    if name in _ORDER_NUMBERS or name in _FILL_NUMBERS:
        return pd.to_numeric(column).to_numpy(dtype=float, na_value=np.nan)
    return column.to_numpy(dtype=object, na_value=None).tolist()


def _time_order(fills: pd.DataFrame) -> np.ndarray:
    times = pd.to_datetime(fills["fill_time"], utc=True, format="ISO8601")
    return np.argsort(times.to_numpy(), kind="stable")


def _frame(
    session: Session,
    table: Table,
    account: str,
    order_ids: Iterable[str] | None,
    names: tuple[str, ...],
    numbers: set[str],
    clock: str,
    cached: bool,
) -> pd.DataFrame:
    """The account's rows (of ``order_ids`` when given) as a frame of ``names``, sorted by
    the ``clock`` column then by row id; read a column at a time (``_execution_io``), through
    the file cache when ``cached`` and every row is wanted."""
    wanted = [name for name in names if name != "account_id"]  # the account: known

    def read(where: Any) -> dict[str, Any]:
        return read_columns(
            session, table, [*wanted, "id"], where, times=_TIMES, numbers=numbers,
            integers=("id", "seq"),
        )  # fmt: skip

    mine = table.c.account_id == account
    cache = None
    if cached and order_ids is None:
        from database.repositories._execution_cache import execution_cache_for

        cache = execution_cache_for(session.connection().engine.url)
    if cache is not None:
        parts = [_through_cache(session, cache, table, account, read)]
    elif order_ids is None:
        parts = [read(mine)]
    else:
        ids = list(dict.fromkeys(order_ids))
        parts = [read(mine & table.c.order_id.in_(c)) for c in chunks(ids, IN_CHUNK)] or [
            read(mine & false())
        ]
    columns = {name: _joined([part[name] for part in parts]) for name in [*wanted, "id"]}
    n = len(columns["id"])
    order = _sort_order(np.asarray(columns[clock].asi8), np.asarray(columns["id"]))
    frame = pd.DataFrame(
        {
            name: [account] * n if name == "account_id"
            else _taken(columns[name], order) for name in names
        }
    )  # fmt: skip
    return frame


def _sort_order(clock: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
    """The rows' order by ``clock`` then id (a stable sort), None when they are in it
    already (stored in time order: an import of a history), found in one pass first."""
    later, same = clock[1:] > clock[:-1], clock[1:] == clock[:-1]
    if bool(np.all(later | (same & (ids[1:] >= ids[:-1])))):
        return None
    return np.lexsort((ids, clock))


def _through_cache(
    session: Session, cache: Any, table: Table, account: str, read: Callable[[Any], dict]
) -> dict[str, Any]:
    """Every row of the account in ``table``: the cached ones from the file and the newer
    ones from the database; the file brought up to date (``_execution_cache``).

    On SQLite a file that noted the table's last row id before its rows were read is current
    while that id is still the table's last: writes are serialised there, so a row committed
    later has a higher id (an index lookup, where the account's count and last id scan its
    rows: ~0.5 s at 1,000,000 orders and fills). Elsewhere (a PostgreSQL sequence can hand a
    lower id to a transaction that commits later) the count and last id are always asked."""
    mine = table.c.account_id == account
    token = session.scalar(select(DatabaseIdentity.token).limit(1))
    if not token:  # a schema without its identity: nothing to key the files to
        return read(mine)
    serial = session.connection().dialect.name == "sqlite"
    table_last = int(session.scalar(select(func.max(table.c.id))) or 0) if serial else None
    hit = cache.load(table.name, account, token, tuple(_TIMES))
    if hit is not None and table_last is not None and hit.table_last_id == table_last:
        return hit.columns
    total, last = session.execute(select(func.count(), func.max(table.c.id)).where(mine)).one()
    last = int(last or 0)
    columns = None
    if hit is not None and hit.last_id <= last and hit.count <= total:
        if hit.last_id == last and hit.count == total:
            return hit.columns
        newer = read(mine & (table.c.id > hit.last_id))
        if hit.count + len(newer["id"]) == total:
            columns = {name: _joined([hit.columns[name], newer[name]]) for name in newer}
    if columns is None:
        columns = read(mine)
        if len(columns["id"]) != total:  # rows came in between the two reads: not cached
            return columns
    if total:
        cache.store(table.name, account, token, columns, last, table_last)
    return columns


def _cache_after_commit(
    session: Session, account: str, table: Table, columns: dict[str, Any], numbers: set[str]
) -> None:
    """Note the batch ``columns`` (as :meth:`ExecutionRepository.add` inserted them, in
    insertion order) to go into the account's cache file of ``table`` when ``session``
    commits (nothing when the database has no file cache or the batch is empty)."""
    from database.repositories._execution_cache import execution_cache_for

    n = len(columns["order_id"])
    engine = session.connection().engine
    if not n or execution_cache_for(engine.url) is None:
        return
    if not session.info.get(_LISTENING):  # once per session: it may commit many times
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", _write_pending)
        event.listen(session, "after_rollback", _drop_pending)
    session.info.setdefault(_PENDING, []).append((engine, account, table, columns, numbers))


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _write_pending(session: Session) -> None:
    """After the commit: each noted batch into its account's cache file (one file per table
    and account, batches of one transaction joined in their order). A failure is logged and
    costs only speed: the next read fills the cache from the database."""
    pending = session.info.pop(_PENDING, None) or []
    batches: dict[tuple, list[dict[str, Any]]] = {}
    for engine, account, table, columns, numbers in pending:
        batches.setdefault((engine, account, table.name, frozenset(numbers)), []).append(columns)
    for (engine, account, name, numbers), parts in batches.items():
        table = ORDERS if name == ORDERS.name else FILLS
        joined = (
            parts[0]
            if len(parts) == 1
            else {key: [v for part in parts for v in part[key]] for key in parts[0]}
        )
        try:
            _cache_stored(engine, account, table, joined, set(numbers))
        except Exception:  # the import is committed: the cache is only speed
            log.warning("execution cache of %r (%s) not written after the import", account,
                        name, exc_info=True)  # fmt: skip


def _cache_stored(
    engine: Engine, account: str, table: Table, batch: dict[str, Any], numbers: set[str]
) -> bool:
    """Write the account's cache file of ``table`` as its cached rows (if any) plus ``batch``
    (the values just committed, in insertion order), exactly as a read through the cache
    would write it; True when written.

    The account's row ids are read back (ids only): the file is written only when they are
    the cached file's ids followed by exactly ``len(batch)`` higher ones, which are then the
    batch's in insertion order (an insert numbers its rows in order). Anything else (a row
    of another writer in between, a cache file behind the database, no file while the
    account had rows before, a batch rolled back to a savepoint) writes nothing. Values whose
    stored form may differ from the one in memory (a text that is not a str, an infinite
    number or -0.0: SQLite keeps 0.0) write nothing either."""
    from database.repositories._execution_cache import execution_cache_for

    cache = execution_cache_for(engine.url)
    wanted = [name for name in batch if name != "account_id"]
    n = len(batch["order_id"])
    columns = _cache_columns(batch, wanted, numbers)
    if cache is None or columns is None:
        return False
    mine = table.c.account_id == account
    with engine.connect() as connection, Session(bind=connection) as session:
        token = session.scalar(select(DatabaseIdentity.token).limit(1))
        if not token:
            return False
        serial = connection.dialect.name == "sqlite"
        # before the ids, as a read through the cache notes it (_through_cache)
        table_last = int(session.scalar(select(func.max(table.c.id))) or 0) if serial else None
        ids = np.sort(read_columns(session, table, ["id"], mine, times=(), numbers=(),
                                   integers=("id",))["id"])  # fmt: skip
    hit = cache.load(table.name, account, token, tuple(_TIMES))
    before = np.sort(hit.columns["id"]) if hit is not None else np.empty(0, dtype=np.int64)
    if len(ids) != len(before) + n or not np.array_equal(ids[: len(before)], before):
        return False
    columns["id"] = ids[len(before) :]
    if hit is not None:
        columns = {name: _joined([hit.columns[name], columns[name]]) for name in columns}
    return cache.store(table.name, account, token, columns, int(ids[-1]), table_last)


def _cache_columns(
    batch: dict[str, Any], wanted: list[str], numbers: set[str]
) -> dict[str, Any] | None:
    """``batch``'s values (as ``add`` stores them) as ``read_columns`` gives them back, or
    None when a value's stored form may differ from it."""
    out: dict[str, Any] = {}
    for name in wanted:
        values = batch[name]
        if name in _TIMES:
            micros = np.asarray(values, dtype="datetime64[us]")
            known = pa.array(micros.view(np.int64), mask=np.isnat(micros))
            out[name] = utc_micros(known)
        elif name in numbers:
            floats = np.asarray(values, dtype=np.float64)
            if np.isinf(floats).any() or ((floats == 0) & np.signbit(floats)).any():
                return None
            out[name] = floats
        elif name == "seq":
            out[name] = np.asarray(values, dtype=np.int64)
        else:
            try:
                out[name] = pa.array(values, type=pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return None
    return out


def _joined(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], pd.DatetimeIndex):
        return parts[0].append(parts[1:])
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return pa.concat_arrays(parts)


def _taken(column: Any, order: np.ndarray | None) -> Any:
    """``column`` in ``order`` (None: as it is) as a frame's column."""
    if isinstance(column, pd.DatetimeIndex):
        return pd.Series(column if order is None else column[order])
    if isinstance(column, np.ndarray):
        return column if order is None else column[order]
    return text_column(column if order is None else column.take(order))


__all__ = [
    "FILLS",
    "FILL_COLUMNS",
    "ORDERS",
    "ORDER_COLUMNS",
    "REQUIRED_FILL_COLUMNS",
    "REQUIRED_ORDER_COLUMNS",
    "ExecutionRepository",
]
