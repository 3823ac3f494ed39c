"""Imported orders and their fills, for transaction-cost analysis (migration 0012).

The paper broker keeps its own orders and fills (:mod:`database.trading_models`); these two
tables hold the orders of the other sources of an account's trades (a freqtrade database, a
Hummingbot database, a CSV of orders and fills: docs/tca.md "Sources"), keyed like the trades
of tracking: the account's name (``trades.account_id``) and the source's own order id, unique
per account.

- ``execution_orders``: one row per order with what :mod:`analytics.tca` reads of it (decision
  time and price, arrival time and price, quantity, type, limit, venue, algo, the quote at
  arrival, the decision's expected return) and its ``source``.
- ``execution_fills``: its fills, the order's k-th in ``seq``; ``trade_id`` is the trade the
  fill was also recorded as (the trades table).

Both are immutable like ``trades``: ORM events here and database triggers refuse an update or
a delete; an order is stored once, with all of its fills.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import (
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    mapped_column,
    object_session,
)

from database.errors import TradeImmutableError
from database.models import FINITE_MAX, ID_TYPE, Base, UTCDateTime, _finite, _in
from database.records import TRADE_SIDES


def _positive_or_null(column: str) -> str:
    return f"{column} IS NULL OR ({column} > 0 AND {column} < {FINITE_MAX})"


class ExecutionOrder(Base):
    """An order of an imported source, as transaction-cost analysis reads it."""

    __tablename__ = "execution_orders"
    __table_args__ = (
        UniqueConstraint("account_id", "order_id"),
        CheckConstraint("length(account_id) > 0", name="account_id_not_empty"),
        CheckConstraint("length(order_id) > 0", name="order_id_not_empty"),
        CheckConstraint(_in("side", TRADE_SIDES), name="side_valid"),
        CheckConstraint(f"order_qty > 0 AND order_qty < {FINITE_MAX}", name="order_qty_valid"),
        CheckConstraint(_positive_or_null("limit_price"), name="limit_price_valid"),
        CheckConstraint(_positive_or_null("decision_price"), name="decision_price_valid"),
        CheckConstraint(_positive_or_null("arrival_price"), name="arrival_price_valid"),
        CheckConstraint(_positive_or_null("bid"), name="bid_valid"),
        CheckConstraint(_positive_or_null("ask"), name="ask_valid"),
        CheckConstraint("bid IS NULL OR ask IS NULL OR ask >= bid", name="ask_not_below_bid"),
        CheckConstraint(
            f"expected_return_bps IS NULL OR ({_finite('expected_return_bps')})",
            name="expected_return_finite",
        ),
        CheckConstraint(
            "decision_time IS NULL OR arrival_time >= decision_time",
            name="arrival_not_before_decision",
        ),
        CheckConstraint(
            "end_time IS NULL OR end_time >= arrival_time", name="end_not_before_arrival"
        ),
        Index(None, "account_id", "arrival_time"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(160))
    source: Mapped[str] = mapped_column(String(32))  # freqtrade, hummingbot, orders-csv
    strategy_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    order_qty: Mapped[float] = mapped_column(Double)
    order_type: Mapped[str | None] = mapped_column(String(64))
    limit_price: Mapped[float | None] = mapped_column(Double)
    decision_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_price: Mapped[float | None] = mapped_column(Double)
    arrival_time: Mapped[datetime] = mapped_column(UTCDateTime)
    arrival_price: Mapped[float | None] = mapped_column(Double)
    # when the order ended (cancelled, expired, done); NULL: its last fill
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    venue: Mapped[str | None] = mapped_column(String(64))
    algo: Mapped[str | None] = mapped_column(String(64))
    bid: Mapped[float | None] = mapped_column(Double)  # the quote at arrival
    ask: Mapped[float | None] = mapped_column(Double)
    expected_return_bps: Mapped[float | None] = mapped_column(Double)


class ExecutionFill(Base):
    """One fill of an imported order."""

    __tablename__ = "execution_fills"
    __table_args__ = (
        UniqueConstraint("account_id", "order_id", "seq"),
        ForeignKeyConstraint(
            ["account_id", "order_id"],
            ["execution_orders.account_id", "execution_orders.order_id"],
        ),
        CheckConstraint("seq >= 0", name="seq_valid"),
        CheckConstraint(f"fill_price > 0 AND fill_price < {FINITE_MAX}", name="price_valid"),
        CheckConstraint(f"fill_qty > 0 AND fill_qty < {FINITE_MAX}", name="qty_valid"),
        CheckConstraint(_finite("fee"), name="fee_finite"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(160))
    seq: Mapped[int] = mapped_column(Integer)  # the order's k-th fill, from 0
    fill_time: Mapped[datetime] = mapped_column(UTCDateTime)
    fill_price: Mapped[float] = mapped_column(Double)
    fill_qty: Mapped[float] = mapped_column(Double)
    fee: Mapped[float] = mapped_column(Double)  # quote currency; < 0 a rebate
    trade_id: Mapped[str | None] = mapped_column(String(128))  # the trade it was recorded as


EXECUTION_TABLES = (ExecutionOrder.__tablename__, ExecutionFill.__tablename__)


@event.listens_for(ExecutionOrder, "before_update")
@event.listens_for(ExecutionFill, "before_update")
def _refuse_update(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    session = object_session(target)
    # the ORM calls this for every dirty instance, even one without a net change
    if session is not None and not session.is_modified(target, include_collections=False):
        return
    raise TradeImmutableError(f"{type(target).__tablename__} rows are immutable: not updated")


@event.listens_for(ExecutionOrder, "before_delete")
@event.listens_for(ExecutionFill, "before_delete")
def _refuse_delete(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    raise TradeImmutableError(f"{type(target).__tablename__} rows are immutable: not deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    """Refuse ``session.execute(update(...))`` / ``delete(...)`` of these tables, which skip
    the mapper events above."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in EXECUTION_TABLES:
        action = "updated" if state.is_update else "deleted"
        raise TradeImmutableError(f"{table.name} rows are immutable: they cannot be {action}")


__all__ = ["EXECUTION_TABLES", "ExecutionFill", "ExecutionOrder"]
