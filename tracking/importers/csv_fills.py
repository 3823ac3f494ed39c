"""A CSV of fills (.csv, or .csv.gz), one row per execution, with a header row.

Columns (names case-insensitive, in any order; other columns are ignored):
- ``trade_id`` (required): unique in the file, and per account once stored;
- ``timestamp`` (required): epoch milliseconds (digits) or ISO 8601 with a zone (Z, +02:00);
- ``symbol`` (required): as the account trades it, e.g. BTC/USDT or SP500;
- ``side`` (required): buy or sell, any case;
- ``price``, ``volume`` (required): > 0; price in the quote currency;
- ``commission``: quote currency, < 0 for a rebate; empty or no column = 0;
- ``strategy_id``: empty or no column = "manual";
- ``account_id``: when given, must be the account being imported;
- ``order_id``: the order the fill belongs to; empty or no column = none.
Text longer than a stored trade holds (trade_id and strategy_id 128 characters, symbol 64,
order_id 160) is refused.

Every cell is checked, every problem is listed (file, data row, column) and a file with any
problem is rejected whole. Row N is the N-th data row (the header is not counted); blank lines
count as rows and are skipped, so row N is line N + 1 of the file unless a quoted cell spans
lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from database.records import TradeRecord
from tracking.importers.csv_arrow import (
    ReadAhead,
    any_equal,
    arrow_columns,
    decimals,
    epoch_digits,
    longest,
    texts,
)
from tracking.importers.result import (
    TEXT_LIMITS,
    ImportedTrades,
    ImportSource,
    ProblemLog,
    RowCheck,
    finite,
    ordered,
    summary_line,
)
from tracking.trade_records import checked_record, collector_paused

REQUIRED = ("trade_id", "timestamp", "symbol", "side", "price", "volume")
OPTIONAL = ("commission", "strategy_id", "account_id", "order_id")
DEFAULT_STRATEGY = "manual"
SIDES = ("buy", "sell")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_EPOCH_MS = 10**11  # 1973-03-03: a smaller integer is epoch seconds, not milliseconds
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time a datetime holds
HEAD_FROM_ROWS = 100_000  # from this many rows, read_fill_parts gives a head checked first
HEAD_SHARE = 3  # the head: a third of the rows (an import stores it while the rest is made)
_DIGITS = re.compile(r"^\d+$")


def read_csv_fills(path: str | Path, account: str) -> ImportedTrades:
    """The fills of a CSV file, as TradeRecords of ``account`` (no database write).

    Raises TradeImportError listing every problem when any cell is wrong.
    """
    path = Path(path)
    fast = _arrow_file(path, account)
    if fast is not None:
        return ImportedTrades(fast[0], ImportSource("csv", str(path)), fast[1], {}, {})
    log = ProblemLog(str(path))
    table, header = read_table(path, log, REQUIRED)
    fast = _clean_file(table.iloc[1:], header, account)
    if fast is not None:
        return ImportedTrades(fast, ImportSource("csv", str(path)), len(table) - 1, {}, {})

    skipped: Counter[str] = Counter()
    first_row: dict[str, int] = {}
    keyed = []
    for number, row in data_rows(table, header, skipped):
        check = RowCheck(log, f"row {number}", row)
        fill = _fill(check, account)
        if fill is None:
            continue
        if fill.trade_id in first_row:
            check.problem("trade_id", f"{fill.trade_id!r} repeats row {first_row[fill.trade_id]}")
            continue
        first_row[fill.trade_id] = number
        keyed.append(((fill.execution_time, number), fill))
    log.raise_if_any()
    return ordered(keyed, ImportSource("csv", str(path)), len(table) - 1, skipped, Counter())


class FillTable(NamedTuple):
    """A plain CSV file's fills as checked columns, in time order (ties in file order): what
    the records would hold, without a record per fill (tracking.bulk_import stores them)."""

    path: Path
    rows_read: int  # the file's data rows (each one fill)
    trade_ids: list[str]
    strategies: list[str]
    symbols: list[str]
    sides: list[str]
    prices: np.ndarray  # float64
    volumes: np.ndarray
    fees: np.ndarray
    times_us: np.ndarray  # int64 epoch microseconds, UTC
    orders: list[str | None]

    def summary(self) -> str:
        """What the reader's ImportedTrades.summary says of the same file."""
        return summary_line(ImportSource("csv", str(self.path)), self.rows_read,
                            len(self.trade_ids), {}, {})  # fmt: skip


def read_fill_table_ahead(path: str | Path, account: str) -> None:
    """Start :func:`read_fill_table` of ``path`` in a thread (Arrow reads and checks the
    columns without the interpreter's lock; csv_arrow.ReadAhead): the next
    :func:`read_fill_table` (or :func:`read_fill_parts`) of the same file, unchanged, and
    account takes its result (or its exception) instead of reading it again. A one-shot
    import starts it before it migrates the database and imports the rest."""
    path = Path(path)
    key = (str(path), account)
    head: Future[FillTable | None] = Future()

    def read() -> FillTable | None:
        try:
            return _read_fill_table(path, account, head)
        finally:
            if not head.done():  # no head (or the read failed before it): none
                head.set_result(None)

    _HEADS[key] = head
    _AHEAD.start(key, path, read, "fills-read-ahead")


_AHEAD = ReadAhead()
_HEADS: dict[tuple[str, str], Future[FillTable | None]] = {}  # each read ahead's head


class FillParts(NamedTuple):
    """A file's fills as they are read: ``head``, its first rows checked before the rest
    (None: no head), and ``whole``, every row (None: the file is not plain or has a problem,
    as :func:`read_fill_table`)."""

    head: FillTable | None
    whole: Future[FillTable | None]


def read_fill_parts(path: str | Path, account: str) -> FillParts:
    """:func:`read_fill_table` of ``path`` in a thread (started now unless read ahead) and,
    for a file of HEAD_FROM_ROWS rows or more, its first ``1 / HEAD_SHARE`` rows checked
    before the rest and given at once when they are plain and in time order (the whole's
    first rows in time order unless a later row is older: the caller compares them). An
    import stores the head while the rest is read and checked (the whole may still be
    None: the caller then rolls the head back)."""
    path = Path(path)
    key = (str(path), account)
    if key not in _AHEAD.started:
        read_fill_table_ahead(path, account)
    head = _HEADS.pop(key, None)
    whole = _AHEAD.take(key, path)
    if whole is None or head is None:  # changed since read ahead: read now, no head
        whole = Future()
        try:
            whole.set_result(_read_fill_table(path, account))
        except Exception as exc:  # raised when the whole is asked for, as reading raises
            whole.set_exception(exc)
        return FillParts(None, whole)
    return FillParts(head.result(), whole)


def read_fill_table(path: str | Path, account: str) -> FillTable | None:
    """The fills of a plain CSV file with no problem as checked columns (see FillTable);
    None when the file is not plain or any cell fails a check (:func:`read_csv_fills` then
    names every problem, or reads the file the careful way)."""
    path = Path(path)
    _HEADS.pop((str(path), account), None)
    ahead = _AHEAD.take((str(path), account), path)
    return _read_fill_table(path, account) if ahead is None else ahead.result()


def _read_fill_table(
    path: Path, account: str, head: Future[FillTable | None] | None = None
) -> FillTable | None:
    read = _arrow_checked(path, account, head)
    if read is None:
        return None
    return _in_time_order(read[0])


def _in_time_order(table: FillTable) -> FillTable:
    """The fills sorted by time, ties in file order (the row reading's order)."""
    if len(table.times_us) < 2 or (table.times_us[1:] >= table.times_us[:-1]).all():
        return table
    ranking = np.argsort(table.times_us, kind="stable")
    take = ranking.tolist()
    return table._replace(
        trade_ids=[table.trade_ids[k] for k in take],
        strategies=[table.strategies[k] for k in take],
        symbols=[table.symbols[k] for k in take], sides=[table.sides[k] for k in take],
        prices=table.prices[ranking], volumes=table.volumes[ranking], fees=table.fees[ranking],
        times_us=table.times_us[ranking], orders=[table.orders[k] for k in take],
    )  # fmt: skip


def _arrow_file(path: Path, account: str) -> tuple[list[TradeRecord], int] | None:
    """(the records, the data rows) of a plain file with no problem, its cells read and
    checked a column at a time by Arrow (csv_arrow): the same records, in the same order, as
    the row reading (tests hold them equal). None when the file is not plain or any cell
    fails a check: it is then read by pandas, and row by row if need be."""
    read = _arrow_checked(path, account)
    if read is None:
        return None
    t, times = read
    if times is None:
        utc = pd.DatetimeIndex((t.times_us // 1000).astype("datetime64[ms]")).tz_localize("UTC")
        times = utc.to_pydatetime().tolist()
    records = _records(account, t.trade_ids, t.strategies, t.symbols, t.sides,
                       t.prices.tolist(), t.volumes.tolist(), times, t.times_us,
                       t.fees.tolist(), t.orders)  # fmt: skip
    return records, t.rows_read


def _arrow_checked(
    path: Path, account: str, head: Future[FillTable | None] | None = None
) -> tuple[FillTable, list[datetime] | None] | None:
    """The checked columns of a plain file in file order, and the times as datetimes when
    they were read as ISO texts (None: epoch milliseconds, ``times_us`` alone); None when
    the file is not plain or any cell fails a check. ``head``: given the file's first rows
    (see :func:`read_fill_parts`) before the rest is checked."""
    read = arrow_columns(path, REQUIRED)
    if read is None:
        return None
    columns, n = read
    if head is not None:
        head.set_result(_head(path, account, columns, n))
    return _checked(path, account, columns, n)


def _head(
    path: Path, account: str, columns: dict[str, pa.ChunkedArray], n: int
) -> FillTable | None:
    """The first ``n // HEAD_SHARE`` rows checked, when the file has HEAD_FROM_ROWS rows or
    more and they are plain and in time order; else None."""
    if n < HEAD_FROM_ROWS:
        return None
    k = n // HEAD_SHARE
    checked = _checked(path, account, {name: c.slice(0, k) for name, c in columns.items()}, k)
    if checked is None:
        return None
    times = checked[0].times_us
    return checked[0] if (times[1:] >= times[:-1]).all() else None


def _checked(
    path: Path, account: str, columns: dict[str, pa.ChunkedArray], n: int
) -> tuple[FillTable, list[datetime] | None] | None:
    """:func:`_arrow_checked` of the cells ``columns`` (``n`` rows each)."""
    if "account_id" in columns:
        given = columns["account_id"]
        if pc.any(pc.and_(pc.not_equal(given, ""), pc.not_equal(given, account))).as_py():
            return None
    # an empty trade id or symbol (a blank row, which the row reading skips, among them)
    if any_equal(columns["trade_id"], "") or any_equal(columns["symbol"], ""):
        return None
    side = columns["side"]
    if not pc.all(pc.string_is_ascii(side)).as_py():
        return None
    side = pc.utf8_lower(side)
    if not pc.all(pc.is_in(side, pa.array(SIDES))).as_py():
        return None
    if len(pc.unique(columns["trade_id"])) != n:  # no null cell: unique counts them all
        return None
    strategy = columns.get("strategy_id")
    if strategy is not None:
        strategy = pc.if_else(pc.equal(strategy, ""), DEFAULT_STRATEGY, strategy)
    order = columns.get("order_id")
    for name, values in (("trade_id", columns["trade_id"]), ("symbol", columns["symbol"]),
                         ("strategy_id", strategy), ("order_id", order)):  # fmt: skip
        if values is not None and longest(values) > TEXT_LIMITS[name]:
            return None
    fee = columns.get("commission")
    if fee is not None:
        fee = pc.if_else(pc.equal(fee, ""), "0", fee)
    try:
        price = _arrow_numbers(columns["price"], positive=True)
        volume = _arrow_numbers(columns["volume"], positive=True)
        fees = np.zeros(n) if fee is None else _arrow_numbers(fee)
        stamps = columns["timestamp"]
        ms = epoch_digits(stamps)
        if ms is None:
            times, times_us = _times(None, stamps.to_pylist)
        else:
            times, times_us = None, _epoch_us(ms)
    except ValueError:
        return None
    strategies = [DEFAULT_STRATEGY] * n if strategy is None else texts(strategy)
    orders = [None] * n if order is None else [o or None for o in order.to_pylist()]
    table = FillTable(path, n, columns["trade_id"].to_pylist(), strategies,
                      texts(columns["symbol"]), texts(side), price, volume, fees, times_us,
                      orders)  # fmt: skip
    return table, times


def _arrow_numbers(texts: pa.ChunkedArray, *, positive: bool = False) -> np.ndarray:
    """:func:`_numbers` of Arrow cells (float64): parsed by Arrow when every one is a plain
    decimal (both parsers round correctly), else by ``float`` each."""
    values = decimals(texts)
    if values is None:
        series = pd.Series(texts.to_pylist(), dtype=object)
        return np.array(_numbers(series, positive=positive), dtype=np.float64)
    if not np.isfinite(values).all() or (positive and (values <= 0).any()):
        raise ValueError("a cell is not a finite number")
    return values


def _clean_file(data: pd.DataFrame, header: list[str], account: str) -> list[TradeRecord] | None:
    """The records of a file with no problem and no blank line, in time order (ties in file
    order), checked column by column: the same records the row-by-row reading gives (tests
    hold them equal). None when any cell fails a check: the rows are then read one by one so
    that every problem is named."""
    if data.empty:
        return None
    columns = {name: data.iloc[:, i] for i, name in enumerate(header) if name}
    text = {name: col.fillna("").astype(str).str.strip() for name, col in columns.items()}
    n = len(data)
    empty = np.zeros(n, dtype=bool)
    blank = ~empty
    for values in text.values():
        blank &= (values == "").to_numpy()
    if blank.any():
        return None
    for name in ("trade_id", "symbol"):
        if (text[name] == "").any():
            return None
    side = text["side"].str.lower()
    if not side.isin(SIDES).all() or text["trade_id"].duplicated().any():
        return None
    given = text.get("account_id")
    if given is not None and ((given != "") & (given != account)).any():
        return None
    strategy = text["strategy_id"].where(text["strategy_id"] != "", DEFAULT_STRATEGY) if (
        "strategy_id" in text
    ) else pd.Series(DEFAULT_STRATEGY, index=data.index)  # fmt: skip
    order = text.get("order_id")
    for name, values in (("trade_id", text["trade_id"]), ("symbol", text["symbol"]),
                         ("strategy_id", strategy), ("order_id", order)):  # fmt: skip
        if values is not None and (values.str.len() > TEXT_LIMITS[name]).any():
            return None
    try:
        price = _numbers(text["price"], positive=True)
        volume = _numbers(text["volume"], positive=True)
        fee = (
            _numbers(text["commission"].where(text["commission"] != "", "0"))
            if "commission" in text
            else [0.0] * n
        )
        stamps = text["timestamp"]
        digits = stamps.str.fullmatch(r"\d{1,18}")
        ms = stamps.astype(np.int64).to_numpy() if digits.all() else None
        times, times_us = _times(ms, stamps.tolist)
    except ValueError:
        return None
    orders = [o or None for o in order.tolist()] if order is not None else [None] * n
    return _records(account, text["trade_id"].tolist(), strategy.tolist(),
                    text["symbol"].tolist(), side.tolist(), price, volume, times, times_us, fee,
                    orders)  # fmt: skip


def _records(
    account: str, trade_ids: list[str], strategies: list[str], symbols: list[str],
    sides: list[str], prices: list[float], volumes: list[float], times: list[datetime],
    times_us: np.ndarray, fees: list[float], orders: list[str | None],
) -> list[TradeRecord]:  # fmt: skip
    """The records of checked columns in time order, ties in file order (the row reading's).

    Made by checked_record: every check of TradeRecord's was made on the columns (texts
    non-empty and within the table's lengths, side, finite positive price and volume, finite
    commission, UTC time); __post_init__ would make each again, ~15 us a fill."""
    rows = zip(trade_ids, strategies, symbols, sides, prices, volumes, times, fees, orders,
               strict=True)  # fmt: skip
    make = checked_record
    with collector_paused():
        records = [
            make(trade_id, account, strat, symbol, s, p, v, t, f, {}, (), None, None, None,
                 "csv", order_id)
            for trade_id, strat, symbol, s, p, v, t, f, order_id in rows
        ]  # fmt: skip
    if len(times_us) < 2 or (times_us[1:] >= times_us[:-1]).all():
        return records  # in time order already (the stable sort's order)
    ranking = np.argsort(times_us, kind="stable")  # (time, row): the row reading's order
    return [records[k] for k in ranking.tolist()]


def _numbers(texts: pd.Series, *, positive: bool = False) -> list[float]:
    """The texts as Python floats, as :func:`number` (and :func:`positive`) read each one:
    ``float`` on every text in one C loop; ValueError when one is empty, not a number, not
    finite (or not > 0)."""
    values = texts.to_numpy(dtype=object).astype(np.float64)  # float(text) each, or ValueError
    if (texts == "").any() or not np.isfinite(values).all() or (positive and (values <= 0).any()):
        raise ValueError("a cell is not a finite number")
    return values.tolist()


def _times(
    ms: np.ndarray | None, texts: Callable[[], list[str]]
) -> tuple[list[datetime], np.ndarray]:
    """(UTC datetimes, their epoch microseconds: the order key, year 9999 within int64) of
    the epoch milliseconds ``ms``, or when None of ``texts()`` read one by one as
    :func:`timestamp` reads them; ValueError when one is out of range or not a time."""
    if ms is None:
        times = [timestamp(t) for t in texts()]
        return times, np.array([_us(t) for t in times], dtype=np.int64)
    times_us = _epoch_us(ms)
    # EPOCH + timedelta(milliseconds=m) each, made by pandas in C (~2x): equal datetimes, UTC
    utc = pd.DatetimeIndex(ms.astype("datetime64[ms]")).tz_localize("UTC")
    return utc.to_pydatetime().tolist(), times_us


def _epoch_us(ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as epoch microseconds; ValueError when one is out of range."""
    if (ms < MIN_EPOCH_MS).any() or (ms > MAX_EPOCH_MS).any():
        raise ValueError("a time out of range")
    return ms * 1000


def _us(when: datetime) -> int:
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def read_table(
    path: Path, log: ProblemLog, required: tuple[str, ...]
) -> tuple[pd.DataFrame, list[str]]:
    """Every cell as text (the header as the first row) and the header's names lowercased;
    rejects the file when a name repeats or one of ``required`` is missing."""
    table = _read_table(path, log)
    header = [str(name).strip().lower() for name in table.iloc[0]]
    for name in sorted({n for n in header if n and header.count(n) > 1}):
        log.add("header", name, "appears more than once")
    for name in required:
        if name not in header:
            log.add("header", name, f"missing (required: {', '.join(required)})")
    log.raise_if_any()
    return table, header


def data_rows(
    table: pd.DataFrame, header: list[str], skipped: Counter[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """(N, the N-th data row's cells by column name, stripped) for each row that is not
    blank; blank ones are counted in ``skipped``."""
    data = table.iloc[1:].fillna("")
    # plain lists: iterating a frame's (Arrow-backed) string columns costs more than the checks
    wanted = [(name, data.iloc[:, i].tolist()) for i, name in enumerate(header) if name]
    names = [name for name, _ in wanted]
    for number, cells in enumerate(zip(*(values for _, values in wanted), strict=True), start=1):
        row = {name: str(cell).strip() for name, cell in zip(names, cells, strict=True)}
        if not any(row.values()):
            skipped["blank lines"] += 1
            continue
        yield number, row


def _read_table(path: Path, log: ProblemLog) -> pd.DataFrame:
    """Every cell as text, the header as the first row (so repeated names can be named)."""
    if not path.is_file():
        raise log.fail(f"no such file ({path})")
    try:
        table = pd.read_csv(
            path,
            header=None,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise log.fail("empty file: expected a header row and fills") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise log.fail(f"not a readable CSV file: {exc}") from None
    if table.empty:
        raise log.fail("empty file: expected a header row and fills")
    return table


def _fill(check: RowCheck, account: str) -> TradeRecord | None:
    row = check.row
    for name in ("trade_id", "symbol"):
        if not row[name]:
            check.problem(name, "empty")
    side = row["side"].lower()
    if side not in SIDES:
        check.problem("side", f"{row['side']!r} is not buy or sell")
    time = check.get("timestamp", timestamp)
    price = check.get("price", positive)
    volume = check.get("volume", positive)
    commission = check.get("commission", number_or_zero) if "commission" in row else 0.0
    strategy = row.get("strategy_id") or DEFAULT_STRATEGY
    order_id = row.get("order_id") or None
    check.fits(
        trade_id=("trade_id", row["trade_id"]),
        symbol=("symbol", row["symbol"]),
        strategy_id=("strategy_id", strategy),
        order_id=("order_id", order_id),
    )
    given_account = row.get("account_id", "")
    if given_account and given_account != account:
        check.problem(
            "account_id", f"{given_account!r} is not the account being imported ({account!r})"
        )
    if not check.ok or time is None or price is None or volume is None or commission is None:
        return None
    try:
        return TradeRecord(
            trade_id=row["trade_id"],
            account_id=account,
            strategy_id=strategy,
            symbol=row["symbol"],
            side=side,  # type: ignore[arg-type]
            price=price,
            volume=volume,
            execution_time=time,
            commission=commission,
            source="csv",
            order_id=order_id,
        )
    except ValueError as exc:
        check.problem(None, str(exc))
        return None


def number(text: str) -> float:
    """A finite number; ValueError naming the text otherwise."""
    if not text:
        raise ValueError("empty: expected a number")
    return finite(text)


def positive(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise ValueError(f"{text!r} is not > 0")
    return value


def number_or_zero(text: str) -> float:
    return number(text) if text else 0.0


def timestamp(text: str) -> datetime:
    """Epoch milliseconds or ISO 8601 with a zone, as a UTC datetime."""
    if not text:
        raise ValueError("empty: expected epoch milliseconds or ISO 8601 with a zone")
    if _DIGITS.match(text):
        ms = int(text)
        if ms < MIN_EPOCH_MS:
            raise ValueError(
                f"{text!r} is before 1973 as epoch milliseconds: epoch seconds? "
                "(expected milliseconds)"
            )
        if ms > MAX_EPOCH_MS:
            raise ValueError(f"{text!r} is after the year 9999 as epoch milliseconds")
        return EPOCH + timedelta(milliseconds=ms)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: expected epoch milliseconds or ISO 8601 with a zone "
            "like 2024-01-31T09:30:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z (UTC) or an offset like +02:00")
    return parsed.astimezone(UTC)
