"""Hummingbot's database (data/<config>.sqlite): one fill per row of its ``TradeFill`` table.

The schema is Hummingbot's (hummingbot/model/trade_fill.py, created by SQLAlchemy; primary key
(market, order_id, exchange_trade_id)). Its rows are written by
hummingbot/connector/markets_recorder.py (``_did_fill_order``): ``timestamp`` is epoch
milliseconds, ``trade_type`` the TradeType name (BUY or SELL), ``price``, ``amount`` and
``trade_fee_in_quote`` are stored by its ``SqliteDecimal(6)`` type
(hummingbot/model/decimal_type_decorator.py) as integers of 1e-6 units (int(value x 10**6),
truncated), and ``trade_fee`` is the JSON of ``TradeFeeBase.to_json``
(hummingbot/core/data_type/trade_fee.py): {"fee_type", "percent", "percent_token",
"flat_fees": [{"token", "amount"}]} with numbers as strings.

Mapping (docs/tracking.md "Importing trades" has the table):
- trade_id ``hummingbot:{market}:{order_id}:{exchange_trade_id}`` (the primary key: exchange
  trade ids alone repeat across symbols on some exchanges, and a self-trade gives two fills
  one exchange trade id; over 128 characters: ``hummingbot:`` and a digest, see
  result.fill_id); order_id ``order_id``; source "hummingbot"; strategy_id ``strategy``;
  symbol ``symbol`` (Hummingbot's BASE-QUOTE); side ``trade_type`` lowercased;
- commission in the quote currency, as Hummingbot's ``fee_amount_in_token`` computes it:
  ``percent x price x amount`` (whatever ``percent_token`` is: the percentage is of the
  fill's quote value), plus each flat fee in the quote token as is, or in the base token times
  the fill price. A flat fee in a third token needs a market rate we do not have: the
  commission is then ``trade_fee_in_quote`` (Hummingbot's own conversion at fill time); when
  that is empty or 0 the third-token fee is left out, and the notes count those fills.
Skipped, counted: rows whose amount is 0 (below the 1e-6 storage unit).

The orders, for transaction-cost analysis (``executions``; docs/tca.md "Sources"): each order
id of the fills above, with those fills (their trade ids kept). From its row of Hummingbot's
``Order`` table (hummingbot/model/order.py, when the database has it): decision and arrival
time ``creation_timestamp`` (epoch ms; the first fill's time when that is earlier), order_qty
``amount`` (SqliteDecimal(6); the filled quantity when that is more), order_type
``order_type`` lowercased, limit_price ``price`` of a LIMIT or LIMIT_MAKER order, end_time
``last_update_timestamp`` when not before the last fill. Without that row: arrival = the
first fill's time, no decision time, order_qty = the filled quantity, order_type from
TradeFill, no limit price. venue ``market``, strategy_id ``strategy``, no algo; no decision
or arrival price (the arrival price is read from the bars, the shortfall is n/a). Left out,
counted: orders whose fills disagree on market, symbol, side or strategy.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from analytics.tca.conventions import QTY_TOLERANCE
from database.records import TradeRecord
from tracking.importers.executions import ORDER_TEXT_LIMITS, OrderBook, fits, quietly
from tracking.importers.result import (
    ImportedTrades,
    ImportSource,
    ProblemLog,
    RowCheck,
    fill_id,
    ordered,
)
from tracking.importers.sqlite_source import read_only, select_all, table_columns

WHAT = "a Hummingbot"
TABLE = "TradeFill"
COLUMNS = (
    "market", "order_id", "exchange_trade_id", "strategy", "symbol", "base_asset",
    "quote_asset", "timestamp", "trade_type", "price", "amount", "trade_fee",
)  # fmt: skip
# trade_fee_in_quote: added in 2023 (AddTradeFeeInQuote migration); order_type: for the orders
OPTIONAL = ("trade_fee_in_quote", "order_type")
ORDER_TABLE = "Order"
ORDER_COLUMNS = (
    "id", "creation_timestamp", "order_type", "amount", "price", "last_update_timestamp",
)  # fmt: skip
SCALE = Decimal(10**6)  # SqliteDecimal(6)
SIDES = {"BUY": "buy", "SELL": "sell"}
# tokens Hummingbot's TradeFeeBase._are_tokens_interchangeable counts as one
INTERCHANGEABLE = tuple(
    frozenset(pair)
    for pair in (
        ("WETH", "ETH"), ("WBNB", "BNB"), ("WPOL", "POL"), ("WAVAX", "AVAX"), ("WONE", "ONE"),
        ("USDC", "USDC.E"), ("WBTC", "BTC"), ("USOL", "SOL"), ("UETH", "ETH"), ("UBTC", "BTC"),
    )
)  # fmt: skip
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_EPOCH_MS = 10**11  # 1973-03-03: anything smaller is seconds, not milliseconds


def read_hummingbot(path: str | Path, account: str) -> ImportedTrades:
    """The fills of a Hummingbot database, as TradeRecords of ``account`` (no database write).

    Raises TradeImportError listing every problem when any row cannot be read.
    """
    path = Path(path)
    log = ProblemLog(str(path))
    with read_only(path, log) as conn:
        rows = select_all(conn, TABLE, COLUMNS, log, what=WHAT, optional=OPTIONAL, extra=["rowid"])
        has_orders = set(ORDER_COLUMNS) <= (table_columns(conn, ORDER_TABLE) or set())
        picked = ", ".join(f'"{name}"' for name in ORDER_COLUMNS)
        order_rows = (
            conn.execute(f'SELECT {picked} FROM "{ORDER_TABLE}"').fetchall() if has_orders else []
        )
    skipped: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    keyed = []
    fills_of: dict[str, list[tuple[str, TradeRecord, Any]]] = {}
    for row in rows:
        place = (
            f"table {TABLE}, market={row['market']!r}, order_id={row['order_id']!r}, "
            f"exchange_trade_id={row['exchange_trade_id']!r}"
        )
        fill = _fill(RowCheck(log, place, row), account, skipped, notes)
        if fill is not None:
            keyed.append(((fill.execution_time, row["rowid"]), fill))
            fills_of.setdefault(row["order_id"], []).append((place, fill, row))
    log.raise_if_any()
    book = _orders(fills_of, {r["id"]: r for r in order_rows}, has_orders)
    return ordered(
        keyed, ImportSource("hummingbot", str(path)), len(rows), skipped, notes,
        book.batch(account),
    )  # fmt: skip


def _orders(
    fills_of: dict[str, list[tuple[str, TradeRecord, Any]]],
    order_rows: dict[str, Any],
    has_order_table: bool,
) -> OrderBook:
    """The orders behind the fills (module docstring), each with its fills."""
    book = OrderBook("hummingbot")
    if not has_order_table:
        book.notes["orders read without Hummingbot's Order table (arrival = first fill)"] += len(
            fills_of
        )
    for order_id, fills in fills_of.items():
        fills.sort(key=lambda item: item[1].execution_time)
        first, last = fills[0][1], fills[-1][1]
        market = fills[0][2]["market"]
        kinds = {(r["market"], f.symbol, f.side, f.strategy_id) for _, f, r in fills}
        if len(kinds) > 1:
            book.left_out["orders whose fills disagree on market, symbol, side or strategy"] += 1
            continue
        filled = math.fsum(f.volume for _, f, _ in fills)
        row = order_rows.get(order_id)
        created = quietly(epoch_ms, row["creation_timestamp"]) if row is not None else None
        if row is not None and created is None:
            book.notes["Order rows without a readable creation_timestamp"] += 1
        if created is not None and created > first.execution_time:
            book.notes["orders created after their first fill: arrival = the first fill"] += 1
            created = None
        quantity = quietly(scaled, row["amount"]) if row is not None else None
        if quantity is not None and float(quantity) * (1 + QTY_TOLERANCE) < filled:
            book.notes["orders that filled more than their amount: order_qty = filled"] += 1
            quantity = None
        given = (row["order_type"] if row is not None else None) or fills[0][2]["order_type"]
        order_type = str(given or "").strip().lower()
        limit = quietly(scaled, row["price"]) if row is not None and "limit" in order_type else None
        ended = quietly(epoch_ms, row["last_update_timestamp"]) if row is not None else None
        book.order(
            fills[0][0], order_id=order_id, strategy_id=first.strategy_id, symbol=first.symbol,
            side=first.side, order_qty=float(quantity) if quantity else filled,
            order_type=order_type[:ORDER_TEXT_LIMITS["order_type"]] or None,
            limit_price=float(limit) if limit and limit > 0 else None,
            decision_time=created, arrival_time=created or first.execution_time,
            end_time=ended if ended is not None and ended >= last.execution_time else None,
            venue=market if fits(market, "venue") else None,
        )  # fmt: skip
        for _, fill, _ in fills:
            book.fill(
                order_id, fill.execution_time, price=fill.price, qty=fill.volume,
                fee=fill.commission, trade_id=fill.trade_id,
            )  # fmt: skip
    return book


def _fill(
    check: RowCheck, account: str, skipped: Counter[str], notes: Counter[str]
) -> TradeRecord | None:
    row = check.row
    for name in ("market", "order_id", "exchange_trade_id", "strategy", "symbol"):
        if not isinstance(row[name], str) or not row[name].strip():
            check.problem(name, f"{row[name]!r} is empty")
    check.fits(
        symbol=("symbol", row["symbol"]),
        strategy_id=("strategy", row["strategy"]),
        order_id=("order_id", row["order_id"]),
    )
    side = SIDES.get(str(row["trade_type"]).upper())
    if side is None:
        check.problem("trade_type", f"{row['trade_type']!r} is not BUY or SELL")
    time = check.get("timestamp", epoch_ms)
    price = check.get("price", scaled)
    amount = check.get("amount", scaled)
    fee_in_quote = check.get("trade_fee_in_quote", scaled_or_none)
    if price is not None and price <= 0:
        check.problem("price", f"{row['price']!r} (x 1e-6) is not > 0")
    if amount is not None and amount < 0:
        check.problem("amount", f"{row['amount']!r} (x 1e-6) is negative")
    if not check.ok or side is None or time is None or price is None or amount is None:
        return None
    if amount == 0:
        skipped["fills of amount 0 (below Hummingbot's 1e-6 storage unit)"] += 1
        return None
    commission = _commission(check, price, amount, fee_in_quote, notes)
    if commission is None:
        return None
    try:
        return TradeRecord(
            trade_id=fill_id(
                "hummingbot", row["market"], row["order_id"], row["exchange_trade_id"]
            ),
            account_id=account,
            strategy_id=row["strategy"],
            symbol=row["symbol"],
            side=side,
            price=float(price),
            volume=float(amount),
            execution_time=time,
            commission=float(commission),
            source="hummingbot",
            order_id=row["order_id"],
        )
    except ValueError as exc:
        check.problem(None, str(exc))
        return None


def _commission(
    check: RowCheck,
    price: Decimal,
    amount: Decimal,
    fee_in_quote: Decimal | None,
    notes: Counter[str],
) -> Decimal | None:
    """The fill's fee in the quote currency (module docstring); None when ``trade_fee`` is
    not a TradeFeeBase JSON (logged)."""
    fee = check.get("trade_fee", trade_fee)
    if fee is None:
        return None
    percent, flat_fees = fee
    base, quote = str(check.row["base_asset"]), str(check.row["quote_asset"])
    total = percent * price * amount
    third_token = False
    for token, value in flat_fees:
        if same_token(token, quote):
            total += value
        elif same_token(token, base):
            total += value * price
        elif value != 0:
            third_token = True
    if not third_token:
        return total
    if fee_in_quote:
        notes["fills with a flat fee in a third token: commission = trade_fee_in_quote"] += 1
        return fee_in_quote
    notes[
        "fills with a flat fee in a third token and no trade_fee_in_quote: "
        "that fee is left out of the commission"
    ] += 1
    return total


def same_token(first: str, second: str) -> bool:
    return first == second or any({first, second} <= pair for pair in INTERCHANGEABLE)


def trade_fee(value: object) -> tuple[Decimal, list[tuple[str, Decimal]]]:
    """(percent, [(token, amount)]) of a TradeFeeBase JSON; ValueError naming what is wrong."""
    try:
        data = json.loads(value) if isinstance(value, str | bytes) else value
    except json.JSONDecodeError as exc:
        raise ValueError(f"{value!r} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "percent" not in data or "flat_fees" not in data:
        raise ValueError(f"{value!r} is not a Hummingbot fee (expected percent and flat_fees)")
    percent = _decimal(data["percent"], "percent")
    if not isinstance(data["flat_fees"], list):
        raise ValueError(f"flat_fees={data['flat_fees']!r} is not a list")
    flat = []
    for item in data["flat_fees"]:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            raise ValueError(f"flat fee {item!r} is not {{token, amount}}")
        flat.append((item["token"], _decimal(item.get("amount"), f"flat fee {item['token']}")))
    return percent, flat


def _decimal(value: object, name: str) -> Decimal:
    try:
        number = Decimal(str(value)) if isinstance(value, str | int | float) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{name}={value!r} is not a number")
    return number


def scaled(value: object) -> Decimal:
    """A SqliteDecimal(6) value as stored (integer of 1e-6 units) as the Decimal it means."""
    if value is None:
        raise ValueError("empty (NULL)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number stored as an integer of 1e-6 units")
    number = Decimal(value)  # exact, floats included (a migrated FLOAT column)
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number / SCALE


def scaled_or_none(value: object) -> Decimal | None:
    return None if value is None else scaled(value)


def epoch_ms(value: object) -> datetime:
    """Hummingbot's ``timestamp`` (integer epoch milliseconds) as a UTC datetime."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer of epoch milliseconds")
    if value < MIN_EPOCH_MS:
        raise ValueError(f"{value!r} is before 1973 in epoch milliseconds (seconds?)")
    return EPOCH + timedelta(milliseconds=value)
