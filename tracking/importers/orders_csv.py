"""A CSV of orders and their fills (.csv or .csv.gz, ``--format orders-csv``): one row per fill,
the order's fields repeated on each of its rows (issue 16's documented columns).

Columns (names case-insensitive, in any order; other columns are ignored), every one of
:data:`REQUIRED` in the header, the cells of some of them may be empty:
- ``order_id`` (not empty): the order, unique per account once stored;
- ``account_id``: empty, or the account being imported;
- ``strategy_id``: empty = "manual"; ``symbol`` (not empty); ``side``: buy or sell, any case;
- ``order_qty`` (> 0); ``order_type`` (carried through: market, limit, ...; may be empty);
- ``limit_price``, ``decision_price``, ``arrival_price``: > 0 or empty (not known);
- ``decision_time`` (may be empty), ``arrival_time`` (not empty): epoch milliseconds or ISO
  8601 with a zone, as the CSV of fills; the arrival is not before the decision;
- ``fill_time``, ``fill_price`` (> 0), ``fill_qty`` (> 0): the fill; all three empty on the
  one row of an order that never filled;
- ``fee``: the fill's, quote currency (< 0 a rebate), empty = 0;
- ``venue``, ``algo``: may be empty;
- optional columns: ``bid``, ``ask`` (the quote at arrival, > 0, ask >= bid),
  ``expected_return_bps`` (what the decision expected of its round trip), ``end_time`` (when
  the order ended: cancelled, expired or done; empty = its last fill).

Across an order's rows: its fields agree; no fill is before its arrival (or after its
end_time); its fills add up to at most its order_qty (the fill, in time order, that passes it
is named). Every problem is listed, naming the file, the data row and the column, and a file
with any problem is rejected whole. Row N is the N-th data row, as for the CSV of fills.

Each fill is also a trade (the tracking trades): trade_id ``orders-csv:{order_id}:{k}``, the
order's k-th fill in time order (ties in file order), so importing a file twice stores
nothing new; strategy, symbol and side the order's, price and volume the fill's, commission
its fee.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from analytics.tca.conventions import QTY_TOLERANCE
from database.records import TradeRecord
from tracking.importers.csv_fills import (
    DEFAULT_STRATEGY,
    SIDES,
    data_rows,
    number,
    number_or_zero,
    positive,
    read_table,
    timestamp,
)
from tracking.importers.executions import ORDER_TEXT_LIMITS, OrderBook
from tracking.importers.result import (
    ImportedTrades,
    ImportSource,
    ProblemLog,
    RowCheck,
    fill_id,
    ordered,
)

FORMAT = "orders-csv"
REQUIRED = (
    "order_id", "account_id", "strategy_id", "symbol", "side", "order_qty", "order_type",
    "limit_price", "decision_time", "decision_price", "arrival_time", "arrival_price",
    "fill_time", "fill_price", "fill_qty", "fee", "venue", "algo",
)  # fmt: skip
OPTIONAL = ("bid", "ask", "expected_return_bps", "end_time")
FILL_CELLS = ("fill_time", "fill_price", "fill_qty")
# the order's fields, repeated on each of its rows (they must agree)
ORDER_FIELDS = (
    "strategy_id", "symbol", "side", "order_qty", "order_type", "limit_price",
    "decision_time", "decision_price", "arrival_time", "arrival_price", "venue", "algo",
    "bid", "ask", "expected_return_bps", "end_time",
)  # fmt: skip
NO_FILL = "rows without a fill (orders that never filled: no trade, the order kept for TCA)"


@dataclass(slots=True)
class _Row:
    number: int
    order: dict[str, Any]
    fill: tuple[datetime, float, float, float] | None  # time, price, qty, fee


def read_orders_csv(path: str | Path, account: str) -> ImportedTrades:
    """The fills of a CSV of orders and fills, as TradeRecords of ``account``, with the
    orders behind them (``executions``); no database write.

    Raises TradeImportError listing every problem when any cell is wrong.
    """
    path = Path(path)
    log = ProblemLog(str(path))
    table, header = read_table(path, log, REQUIRED)

    skipped: Counter[str] = Counter()
    by_order: dict[str, list[_Row]] = {}
    for number_, cell in data_rows(table, header, skipped):
        check = RowCheck(log, f"row {number_}", cell)
        row = _row(check, number_, account)
        if row is not None:
            by_order.setdefault(row.order["order_id"], []).append(row)
    book = OrderBook(FORMAT)
    keyed = []
    for order_id, rows in by_order.items():
        fills = _order(log, order_id, rows)
        if fills is None:
            continue
        first = rows[0]
        book.order(f"row {first.number}", order_id=order_id, **first.order["fields"])
        if not fills:
            skipped[NO_FILL] += 1
        for k, row in enumerate(fills):
            time, price, qty, fee = row.fill  # type: ignore[misc]
            record = _trade(first.order, order_id, k, account, time, price, qty, fee)
            book.fill(order_id, time, price=price, qty=qty, fee=fee, trade_id=record.trade_id)
            keyed.append(((time, row.number), record))
    log.raise_if_any()
    return ordered(
        keyed,
        ImportSource(FORMAT, str(path)),
        len(table) - 1,
        skipped,
        Counter(),
        book.batch(account),
    )


def _row(check: RowCheck, number_: int, account: str) -> _Row | None:
    """One data row parsed: its order's fields and its fill (None: no fill); None when a
    cell is wrong (each problem logged)."""
    cell = check.row
    for name in ("order_id", "symbol", "arrival_time"):
        if not cell[name]:
            check.problem(name, "empty")
    side = cell["side"].lower()
    if side not in SIDES:
        check.problem("side", f"{cell['side']!r} is not buy or sell")
    given_account = cell["account_id"]
    if given_account and given_account != account:
        check.problem(
            "account_id", f"{given_account!r} is not the account being imported ({account!r})"
        )
    fields: dict[str, Any] = {
        "strategy_id": cell["strategy_id"] or DEFAULT_STRATEGY,
        "symbol": cell["symbol"],
        "side": side,
        "order_type": cell["order_type"] or None,
        "venue": cell["venue"] or None,
        "algo": cell["algo"] or None,
        "order_qty": check.get("order_qty", positive),
    }
    for name in ("limit_price", "decision_price", "arrival_price", "bid", "ask"):
        fields[name] = _optional(check, name, positive)
    fields["expected_return_bps"] = _optional(check, "expected_return_bps", number)
    fields["arrival_time"] = check.get("arrival_time", timestamp) if cell["arrival_time"] else None
    for name in ("decision_time", "end_time"):
        fields[name] = _optional(check, name, timestamp)
    for name in ("order_id", "strategy_id", "symbol", "order_type", "venue", "algo"):
        value = cell["order_id"] if name == "order_id" else fields[name]
        if value is not None and len(value) > ORDER_TEXT_LIMITS[name]:
            check.problem(
                name, f"{value[:40]!r}... is {len(value)} characters: at most "
                f"{ORDER_TEXT_LIMITS[name]}",
            )  # fmt: skip
    _check_times_and_quote(check, fields)
    fill = _fill(check)
    if not check.ok:
        return None
    return _Row(number_, {"order_id": cell["order_id"], "fields": fields}, fill)


def _optional(check: RowCheck, name: str, parse: Any) -> Any:
    """``parse`` of the cell, None when the cell (or the column) is empty."""
    if not check.row.get(name):
        return None
    return check.get(name, parse)


def _check_times_and_quote(check: RowCheck, fields: dict[str, Any]) -> None:
    decision, arrival, end = fields["decision_time"], fields["arrival_time"], fields["end_time"]
    if decision is not None and arrival is not None and arrival < decision:
        check.problem(
            "arrival_time",
            f"{arrival.isoformat()} is before the decision_time {decision.isoformat()}",
        )
    if end is not None and arrival is not None and end < arrival:
        check.problem(
            "end_time", f"{end.isoformat()} is before the arrival_time {arrival.isoformat()}"
        )
    bid, ask = fields["bid"], fields["ask"]
    if bid is not None and ask is not None and ask < bid:
        check.problem("ask", f"{ask!r} is below the bid {bid!r}")


def _fill(check: RowCheck) -> tuple[datetime, float, float, float] | None:
    cell = check.row
    if not any(cell[name] for name in FILL_CELLS):
        if cell["fee"] and _fee_or_none(cell["fee"]) != 0:
            check.problem("fee", f"{cell['fee']!r} on a row without a fill")
        return None
    for name in FILL_CELLS:
        if not cell[name]:
            check.problem(name, "empty, while the row has a fill (fill_time, price and qty)")
    time = check.get("fill_time", timestamp) if cell["fill_time"] else None
    price = check.get("fill_price", positive) if cell["fill_price"] else None
    qty = check.get("fill_qty", positive) if cell["fill_qty"] else None
    fee = check.get("fee", number_or_zero)
    if time is None or price is None or qty is None or fee is None:
        return None
    return time, price, qty, fee


def _fee_or_none(text: str) -> float | None:
    try:
        return number_or_zero(text)
    except ValueError:
        return None  # named as the fee's problem by the row's own check


def _order(log: ProblemLog, order_id: str, rows: list[_Row]) -> list[_Row] | None:
    """The order's rows with a fill, in time order (ties in file order), once its rows agree
    and its fills fit it; None (problems logged, each naming a row) when they do not."""
    before = len(log.problems)
    first = rows[0]
    fields = first.order["fields"]
    for row in rows[1:]:
        for name in ORDER_FIELDS:
            if row.order["fields"][name] != fields[name]:
                log.add(
                    f"row {row.number}", name,
                    f"{_shown(row.order['fields'][name])} differs from row {first.number}'s "
                    f"{_shown(fields[name])} for order {order_id!r} (an order's fields repeat "
                    "on each of its rows)",
                )  # fmt: skip
    filled = sorted((r for r in rows if r.fill is not None), key=lambda r: r.fill[0])  # type: ignore[index]
    empty = [r for r in rows if r.fill is None]
    if empty and (filled or len(empty) > 1):
        other = next(r for r in rows if r is not empty[-1])
        log.add(
            f"row {empty[-1].number}", "fill_time",
            f"no fill, but order {order_id!r} has other rows (row {other.number}): the row "
            "without a fill is an order's only row",
        )  # fmt: skip
    arrival, end = fields["arrival_time"], fields["end_time"]
    total = 0.0
    for row in filled:
        time, _price, qty, _fee = row.fill  # type: ignore[misc]
        if time < arrival:
            log.add(
                f"row {row.number}", "fill_time",
                f"{time.isoformat()} is before its order's arrival_time {arrival.isoformat()}",
            )  # fmt: skip
        if end is not None and time > end:
            log.add(
                f"row {row.number}", "fill_time",
                f"{time.isoformat()} is after its order's end_time {end.isoformat()}",
            )  # fmt: skip
        total += qty
        limit = fields["order_qty"]
        if total > limit * (1 + QTY_TOLERANCE) and total - qty <= limit * (1 + QTY_TOLERANCE):
            log.add(
                f"row {row.number}", "fill_qty",
                f"order {order_id!r} filled {total!r} here and before, above its order_qty "
                f"{limit!r}",
            )  # fmt: skip
    return filled if len(log.problems) == before else None


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if value is not None else "empty"


def _trade(
    order: dict[str, Any], order_id: str, k: int, account: str, time: datetime, price: float,
    qty: float, fee: float,
) -> TradeRecord:  # fmt: skip
    fields = order["fields"]
    return TradeRecord(
        trade_id=fill_id(FORMAT, order_id, k),
        account_id=account,
        strategy_id=fields["strategy_id"],
        symbol=fields["symbol"],
        side=fields["side"],
        price=price,
        volume=qty,
        execution_time=time,
        commission=fee,
        source=FORMAT,
        order_id=order_id,
    )
