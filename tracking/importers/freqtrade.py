"""freqtrade's database (tradesv3.sqlite): one fill per order that filled.

The schema is freqtrade's (freqtrade/persistence/trade_model.py, classes Trade -> table
``trades`` and Order -> table ``orders``, created by SQLAlchemy; migrations.py brings older
files to it whenever freqtrade starts). A position is a row of ``trades``; each exchange order
of it is a row of ``orders`` whose ``ft_order_side`` is 'buy', 'sell' or 'stoploss'.

Mapping (docs/tracking.md "Importing trades" has the table):
- trade_id ``freqtrade:{trades.id}:{orders.order_id}`` (orders are unique on (pair, order_id)
  and a trade has one pair, so unique in a file; over 128 characters: ``freqtrade:`` and a
  digest, see result.fill_id); order_id ``orders.order_id``; source "freqtrade";
  strategy_id ``trades.strategy`` ("unknown" when NULL); symbol ``trades.pair``;
- side ``orders.ft_order_side``; a 'stoploss' order is an exit: the trade's exit side (sell
  for a long, buy for a short: ``trades.is_short``);
- price: the first of ``average``, ``price``, ``stop_price``, ``ft_price`` that is > 0
  (freqtrade's own ``Order.safe_price``); volume ``orders.filled``;
- execution_time ``order_filled_date`` (naive, UTC as freqtrade writes it); when NULL (files
  of old versions), ``order_update_date`` then ``order_date``, counted in the notes;
- commission: the trade's fee RATE times the fill's value ``filled x price`` in the stake
  (quote) currency: ``fee_open`` for entries, ``fee_close`` for exits (``fee_open`` when NULL),
  as freqtrade computes its own profit.
Skipped, counted: orders with nothing filled (cancelled, expired, rejected, still open) and
open orders partly filled (their fill may still grow: import again once they close). A trade
still open contributes the fills it has so far (its entry); the notes count such trades.

The orders, for transaction-cost analysis (``executions``; docs/tca.md "Sources"): every
closed order (``ft_is_open`` 0), filled or not, with its one fill (the fill above, whose trade
id it keeps): order_qty ``amount`` (else ``ft_amount``; the filled quantity when that is
more), order_type ``order_type``, limit_price ``price`` of a limit order, decision and arrival
time ``order_date`` (the order's creation; the fill's time when it is later), end_time
``order_update_date`` when not before the arrival and the fill, venue ``trades.exchange``,
algo entry, exit or stoploss. No decision or arrival price (freqtrade keeps none apart from
the order's own prices): the arrival price is read from the bars, and the shortfall is n/a.
Left out, counted: open orders (import again once they close), orders without order_date or
amount, an order_id seen before in the file (on another pair).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

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
from tracking.importers.sqlite_source import flag, naive_utc, number, read_only, select_all

WHAT = "a freqtrade tradesv3.sqlite"
TRADE_COLUMNS = ("id", "pair", "strategy", "is_open", "is_short", "fee_open", "fee_close")
TRADE_OPTIONAL = ("exchange",)
ORDER_COLUMNS = (
    "id", "ft_trade_id", "ft_order_side", "ft_is_open", "order_id", "status", "average",
    "price", "filled", "order_date", "order_filled_date", "order_update_date",
)  # fmt: skip
# added by later freqtrade versions; read as NULL from files that lack them
ORDER_OPTIONAL = ("stop_price", "ft_price", "amount", "ft_amount", "order_type")
PRICE_COLUMNS = ("average", "price", "stop_price", "ft_price")
CANCELLED = ("canceled", "cancelled", "expired", "rejected")  # freqtrade's constants + rejected
UNKNOWN_STRATEGY = "unknown"
OPEN_TRADES = "trades still open: their fills so far are imported, the position stays open"


def read_freqtrade(path: str | Path, account: str) -> ImportedTrades:
    """The fills of a freqtrade database, as TradeRecords of ``account`` (no database write).

    Raises TradeImportError listing every problem when any row cannot be read.
    """
    path = Path(path)
    log = ProblemLog(str(path))
    with read_only(path, log) as conn:
        trade_rows = select_all(
            conn, "trades", TRADE_COLUMNS, log, what=WHAT, optional=TRADE_OPTIONAL
        )
        order_rows = select_all(
            conn, "orders", ORDER_COLUMNS, log, what=WHAT, optional=ORDER_OPTIONAL
        )
    trades = {row["id"]: _Trade.parse(row, log) for row in trade_rows}
    skipped: Counter[str] = Counter()
    notes: Counter[str] = Counter()
    keyed = []
    open_with_fills: set[int] = set()
    book = OrderBook("freqtrade")
    for row in sorted(order_rows, key=lambda r: r["id"]):
        check = RowCheck(log, _place(row), row)
        fill = _fill(check, trades, account, skipped, notes)
        if fill is not None:
            keyed.append(((fill.execution_time, row["id"]), fill))
            if trades[row["ft_trade_id"]].is_open:  # type: ignore[union-attr]
                open_with_fills.add(row["ft_trade_id"])
        if check.ok:
            _order(book, row, trades.get(row["ft_trade_id"]), fill)
    log.raise_if_any()
    if open_with_fills:
        notes[OPEN_TRADES] = len(open_with_fills)
    return ordered(
        keyed, ImportSource("freqtrade", str(path)), len(order_rows), skipped, notes,
        book.batch(account),
    )  # fmt: skip


def _place(order_row) -> str:
    return f"table orders, id={order_row['id']} (order_id={order_row['order_id']!r})"


class _Trade:
    """What one ``trades`` row tells its orders."""

    __slots__ = (
        "exchange", "fee_close", "fee_open", "id", "is_open", "is_short", "pair", "strategy",
    )  # fmt: skip

    def __init__(self, row, check: RowCheck) -> None:
        self.id: int = row["id"]
        self.pair: str = row["pair"]
        self.strategy: str = str(row["strategy"] or "").strip() or UNKNOWN_STRATEGY
        self.fee_open: float = check.get("fee_open", number) or 0.0
        fee_close = check.get("fee_close", number)
        # freqtrade's guess too: the exit pays the entry's rate until the exit's fee is known
        self.fee_close: float = self.fee_open if fee_close is None else fee_close
        self.is_open = bool(check.get("is_open", flag))
        self.is_short = bool(check.get("is_short", flag))
        exchange = row["exchange"]
        self.exchange: str | None = (
            (exchange.strip() or None) if isinstance(exchange, str) else None
        )

    @classmethod
    def parse(cls, row, log: ProblemLog) -> _Trade | None:
        """The trade, or None when a column is wrong (logged, naming ``trades`` and its id)."""
        check = RowCheck(log, f"table trades, id={row['id']}", row)
        if not isinstance(row["pair"], str) or not row["pair"].strip():
            check.problem("pair", f"{row['pair']!r} is not a pair name")
        trade = cls(row, check)
        pair = trade.pair if isinstance(trade.pair, str) else None
        check.fits(symbol=("pair", pair), strategy_id=("strategy", trade.strategy))
        return trade if check.ok else None

    @property
    def entry_side(self) -> str:
        return "sell" if self.is_short else "buy"

    @property
    def exit_side(self) -> str:
        return "buy" if self.is_short else "sell"


def _fill(
    check: RowCheck,
    trades: dict[int, _Trade | None],
    account: str,
    skipped: Counter[str],
    notes: Counter[str],
) -> TradeRecord | None:
    """The fill of one ``orders`` row; None when skipped (counted) or wrong (logged)."""
    row = check.row
    order_id = str(row["order_id"])
    check.fits(order_id=("order_id", order_id))
    if row["ft_trade_id"] not in trades:
        check.problem("ft_trade_id", f"trade {row['ft_trade_id']!r} is not in table trades")
        return None
    filled = check.get("filled", number) or 0.0
    order_open = check.get("ft_is_open", flag)
    if filled < 0:
        check.problem("filled", f"{row['filled']!r} is negative")
    if not check.ok:
        return None
    if filled == 0:
        skipped[_why_no_fill(str(row["status"] or "").lower(), bool(order_open))] += 1
        return None
    if order_open:
        skipped["open orders partly filled (import again once they close)"] += 1
        return None
    trade = trades[row["ft_trade_id"]]
    if trade is None:  # its trades row is wrong: already logged
        return None

    side = _side(check, trade)
    price = _price(check)
    time = _time(check, notes)
    if not check.ok or side is None or price is None or time is None:
        return None
    rate = trade.fee_open if row["ft_order_side"] == trade.entry_side else trade.fee_close
    if trade.strategy == UNKNOWN_STRATEGY:
        notes[f"fills of trades without a strategy name (strategy_id {UNKNOWN_STRATEGY!r})"] += 1
    try:
        return TradeRecord(
            trade_id=fill_id("freqtrade", trade.id, order_id),
            account_id=account,
            strategy_id=trade.strategy,
            symbol=trade.pair,
            side=side,
            price=price,
            volume=filled,
            execution_time=time,
            commission=rate * filled * price,
            source="freqtrade",
            order_id=order_id,
            # an on-exchange stoploss order: the stop_loss label's exit reason
            market_context=(
                {"reason": "stoploss_on_exchange"} if row["ft_order_side"] == "stoploss" else {}
            ),
        )
    except ValueError as exc:
        check.problem(None, str(exc))
        return None


def _order(book: OrderBook, row, trade: _Trade | None, fill: TradeRecord | None) -> None:
    """The order of a row that read without a problem, into ``book``; left out (counted by
    reason) when it is still open or lacks what an order needs."""
    order_id = str(row["order_id"])
    if trade is None:
        return  # its trades row is wrong: the file is refused anyway
    if row["ft_is_open"]:
        book.left_out["open orders (import again once they close)"] += 1
        return
    if order_id in book:
        book.left_out["orders whose order_id repeats an earlier order of the file"] += 1
        return
    side = _side_of(row["ft_order_side"], trade)
    created = quietly(naive_utc, row["order_date"])
    quantity = quietly(number, row["amount"]) or quietly(number, row["ft_amount"])
    filled = fill.volume if fill is not None else 0.0
    if side is None or created is None or not quantity or quantity <= 0:
        book.left_out["orders without a side, order_date or amount"] += 1
        return
    if filled > quantity:
        book.notes["orders that filled more than their amount: order_qty = filled"] += 1
        quantity = filled
    if fill is not None and fill.execution_time < created:
        book.notes["orders filled before their order_date: arrival = the fill's time"] += 1
        created = fill.execution_time
    order_type = str(row["order_type"] or "").strip().lower() or None
    limit = quietly(number, row["price"]) if order_type and "limit" in order_type else None
    ended = quietly(naive_utc, row["order_update_date"])
    last = fill.execution_time if fill is not None else created
    if order_type is not None and not fits(order_type, "order_type"):
        order_type = order_type[: ORDER_TEXT_LIMITS["order_type"]]
    book.order(
        _place(row), order_id=order_id, strategy_id=trade.strategy, symbol=trade.pair,
        side=side, order_qty=quantity, order_type=order_type,
        limit_price=limit if limit and limit > 0 else None,
        decision_time=created, arrival_time=created,
        end_time=ended if ended is not None and ended >= last else None,
        venue=trade.exchange if fits(trade.exchange, "venue") else None,
        algo=_algo(row["ft_order_side"], trade),
    )  # fmt: skip
    if fill is not None:
        book.fill(
            order_id, fill.execution_time, price=fill.price, qty=fill.volume,
            fee=fill.commission, trade_id=fill.trade_id,
        )  # fmt: skip


def _side_of(ft_order_side: object, trade: _Trade) -> str | None:
    if ft_order_side in ("buy", "sell"):
        return str(ft_order_side)
    return trade.exit_side if ft_order_side == "stoploss" else None


def _algo(ft_order_side: object, trade: _Trade) -> str:
    if ft_order_side == "stoploss":
        return "stoploss"
    return "entry" if ft_order_side == trade.entry_side else "exit"


def _why_no_fill(status: str, order_open: bool) -> str:
    if status in CANCELLED:
        return "cancelled, expired or rejected orders without fill"
    if order_open:
        return "open orders, nothing filled yet"
    return "closed orders without fill"


def _side(check: RowCheck, trade: _Trade) -> str | None:
    ft_order_side = check.row["ft_order_side"]
    if ft_order_side in ("buy", "sell"):
        return str(ft_order_side)
    if ft_order_side == "stoploss":
        return trade.exit_side
    check.problem("ft_order_side", f"{ft_order_side!r} is not buy, sell or stoploss")
    return None


def _price(check: RowCheck) -> float | None:
    for name in PRICE_COLUMNS:
        try:
            value = number(check.row[name])
        except ValueError as exc:
            check.problem(name, str(exc))
            return None
        if value is not None and value > 0:
            return value
    check.problem("average", "no price: average, price, stop_price and ft_price are all empty")
    return None


def _time(check: RowCheck, notes: Counter[str]) -> datetime | None:
    for name in ("order_filled_date", "order_update_date", "order_date"):
        try:
            value = naive_utc(check.row[name])
        except ValueError as exc:
            check.problem(name, str(exc))
            return None
        if value is not None:
            if name != "order_filled_date":
                notes[f"fills timed by {name} (order_filled_date empty)"] += 1
            return value
    check.problem("order_filled_date", "no time: order_filled_date and order_date are empty")
    return None
