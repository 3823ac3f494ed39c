"""Paper trading's schema: accounts, deployments, orders, fills and positions (migration 0006).

Kept apart from :mod:`database.models` (which imports this module at its end, so one
``Base.metadata`` holds every table) because it is one aggregate of its own: what the live
runner and the paper broker keep (docs/trading.md).

- ``accounts``: a paper account's books: cash (real cash: a buy pays its cost, a short sale
  receives its proceeds), realised PnL, fees, the equity peak its drawdown limit is measured
  from, and whether it is halted.
- ``deployments``: a strategy config x symbol x timeframe x account with its trading settings
  (sizing, costs, stops, risk limits: a JSON object validated by
  :class:`trading.config.DeploymentSettings`), its status, the last closed bar it processed
  (``last_bar_ts``) and its position state (``state``, written in the same transaction as the
  orders and fills of that bar, so a restart resumes exactly where it stopped).
- ``orders``: every order with what transaction-cost analysis needs: decision time and price
  (the signal bar's close), arrival time and price (when the broker took it), type, time in
  force, status, filled quantity and average price. ``client_order_id`` is unique: a runner
  derives it from (deployment, signal bar, purpose), so a restart never places an order twice.
- ``fills``: immutable executions of an order (ORM events here refuse a change or a delete).
- ``positions``: one row per (account, symbol): signed quantity, average price, realised PnL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Mapper, mapped_column, object_session

from database.errors import TradeImmutableError
from database.models import FINITE_MAX, ID_TYPE, JSON_TYPE, Base, UTCDateTime, _finite, _in

ACCOUNT_STATUSES: tuple[str, ...] = ("active", "halted")
DEPLOYMENT_STATUSES: tuple[str, ...] = ("stopped", "running", "error", "halted", "removed")
ORDER_SIDES: tuple[str, ...] = ("buy", "sell")
ORDER_TYPES: tuple[str, ...] = ("market", "limit", "stop", "stop_limit")
TIME_IN_FORCE: tuple[str, ...] = ("GTC", "IOC")
ORDER_STATUSES: tuple[str, ...] = (
    "new",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "expired",
)
OPEN_ORDER_STATUSES: tuple[str, ...] = ("new", "partially_filled")


class Account(Base):
    """A paper account's books."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("name"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint(_in("status", ACCOUNT_STATUSES), name="status_valid"),
        CheckConstraint(f"starting_cash > 0 AND starting_cash < {FINITE_MAX}", name="cash_valid"),
        CheckConstraint(_finite("cash"), name="cash_finite"),
        CheckConstraint(
            "max_drawdown_pct IS NULL OR (max_drawdown_pct > 0 AND max_drawdown_pct < 1)",
            name="max_drawdown_valid",
        ),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    venue: Mapped[str] = mapped_column(String(32), default="paper")
    starting_cash: Mapped[float] = mapped_column(Double)
    cash: Mapped[float] = mapped_column(Double)
    realised_pnl: Mapped[float] = mapped_column(Double, default=0.0)
    fees: Mapped[float] = mapped_column(Double, default=0.0)
    peak_equity: Mapped[float] = mapped_column(Double)
    max_drawdown_pct: Mapped[float | None] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16), default="active")
    halt_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Deployment(Base):
    """A strategy config deployed on one symbol and timeframe, trading one account."""

    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("name"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint(_in("status", DEPLOYMENT_STATUSES), name="status_valid"),
        Index(None, "account_id"),
        Index(None, "symbol", "timeframe", "status"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("accounts.id"))
    strategy_name: Mapped[str] = mapped_column(String(128))
    strategy_params: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    symbol: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    status: Mapped[str] = mapped_column(String(16), default="stopped")
    error: Mapped[str | None] = mapped_column(Text)
    # the paper strategy run its signals are stored under (one per start)
    run_id: Mapped[int | None] = mapped_column(ID_TYPE, ForeignKey("strategy_runs.id"))
    # open time (epoch ms) of the last closed bar processed: a restart resumes after it
    last_bar_ts: Mapped[int | None] = mapped_column(BigInteger)
    # its bars processed: the index of its last bar (the trades' entry and exit bars count
    # from its start), kept apart from ``state`` so that a bar without news writes no JSON
    bar_index: Mapped[int] = mapped_column(BigInteger, default=-1)
    state: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Order(Base):
    """An order to the paper broker and where it stands."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("client_order_id"),
        CheckConstraint(_in("side", ORDER_SIDES), name="side_valid"),
        CheckConstraint(_in("order_type", ORDER_TYPES), name="order_type_valid"),
        CheckConstraint(_in("time_in_force", TIME_IN_FORCE), name="time_in_force_valid"),
        CheckConstraint(_in("status", ORDER_STATUSES), name="status_valid"),
        CheckConstraint(
            f"quantity IS NULL OR (quantity > 0 AND quantity < {FINITE_MAX})",
            name="quantity_valid",
        ),
        CheckConstraint(
            f"limit_price IS NULL OR (limit_price > 0 AND limit_price < {FINITE_MAX})",
            name="limit_price_valid",
        ),
        CheckConstraint(
            f"stop_price IS NULL OR (stop_price > 0 AND stop_price < {FINITE_MAX})",
            name="stop_price_valid",
        ),
        CheckConstraint("filled_quantity >= 0", name="filled_quantity_valid"),
        Index(None, "account_id", "status"),
        Index(None, "deployment_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(128))
    account_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("accounts.id"))
    deployment_id: Mapped[int | None] = mapped_column(ID_TYPE, ForeignKey("deployments.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    time_in_force: Mapped[str] = mapped_column(String(8))
    # None while a deployment's entry waits for its fill, where its sizing gives the quantity
    quantity: Mapped[float | None] = mapped_column(Double)
    limit_price: Mapped[float | None] = mapped_column(Double)
    stop_price: Mapped[float | None] = mapped_column(Double)
    trail_pct: Mapped[float | None] = mapped_column(Double)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # orders cancelled together when one fills (a stop-loss and its take-profit)
    oco_group: Mapped[str | None] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(32))  # entry, exit, stop_loss, manual, ...
    status: Mapped[str] = mapped_column(String(24))
    filled_quantity: Mapped[float] = mapped_column(Double, default=0.0)
    average_price: Mapped[float | None] = mapped_column(Double)
    fees: Mapped[float] = mapped_column(Double, default=0.0)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    decision_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_price: Mapped[float | None] = mapped_column(Double)
    arrival_time: Mapped[datetime] = mapped_column(UTCDateTime)
    arrival_price: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # anything the order's owner keeps with it (the runner: the kernel's exit reason)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)


class Fill(Base):
    """One execution of an order: immutable once written."""

    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("fill_id"),
        CheckConstraint(_in("side", ORDER_SIDES), name="side_valid"),
        CheckConstraint(f"price > 0 AND price < {FINITE_MAX}", name="price_valid"),
        CheckConstraint(f"quantity > 0 AND quantity < {FINITE_MAX}", name="quantity_valid"),
        CheckConstraint(_finite("fee"), name="fee_finite"),
        Index(None, "order_id"),
        Index(None, "account_id", "time"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    fill_id: Mapped[str] = mapped_column(String(160))
    order_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("orders.id"))
    account_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("accounts.id"))
    deployment_id: Mapped[int | None] = mapped_column(ID_TYPE, ForeignKey("deployments.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[float] = mapped_column(Double)
    quantity: Mapped[float] = mapped_column(Double)
    fee: Mapped[float] = mapped_column(Double)
    # PnL this fill realised on the account's position (fee excluded), 0 when it only adds
    realised_pnl: Mapped[float] = mapped_column(Double, default=0.0)
    venue: Mapped[str] = mapped_column(String(32), default="paper")
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    seq: Mapped[int] = mapped_column(Integer)  # the order's k-th fill
    # open time (epoch ms) of the bar it filled on: the chart draws it there (the runner
    # dates ``time`` by the bar too; a fill made outside a bar, e.g. at a replay's close-out,
    # has its bar here all the same)
    bar_ts: Mapped[int | None] = mapped_column(BigInteger)


class Position(Base):
    """An account's net position in one symbol."""

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint("account_id", "symbol"),
        CheckConstraint(_finite("quantity"), name="quantity_finite"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    account_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("accounts.id"))
    symbol: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[float] = mapped_column(Double)  # signed: < 0 short
    average_price: Mapped[float] = mapped_column(Double)
    realised_pnl: Mapped[float] = mapped_column(Double, default=0.0)
    last_price: Mapped[float | None] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


ORDER_REQUEST_ACTIONS: tuple[str, ...] = ("cancel", "modify")
ORDER_REQUEST_STATUSES: tuple[str, ...] = ("pending", "applied", "refused")
TRADING_LEASE = "trading"  # the one runner_leases row the trading runner holds


class RunnerLease(Base):
    """Which process runs the trading runner: one row, ``trading`` (inserted by migration
    0009), its owner (host:pid) and the heartbeat it renews. A process that does not hold an
    order asks the holder through ``order_requests`` while the heartbeat is fresh; both lock
    this row, so a runner starting and a page editing a stored order take turns."""

    __tablename__ = "runner_leases"
    __table_args__ = (
        CheckConstraint("(owner IS NULL) = (heartbeat_at IS NULL)", name="held_with_heartbeat"),
    )

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(256))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OrderRequest(Base):
    """A cancel or modify asked of the runner that holds the order (from another process):
    pending until the runner applies it through its live broker (``applied``, the order's
    status after) or cannot (``refused``, the reason)."""

    __tablename__ = "order_requests"
    __table_args__ = (
        CheckConstraint(_in("action", ORDER_REQUEST_ACTIONS), name="action_valid"),
        CheckConstraint(_in("status", ORDER_REQUEST_STATUSES), name="status_valid"),
        CheckConstraint(
            f"quantity IS NULL OR (quantity > 0 AND quantity < {FINITE_MAX})",
            name="quantity_valid",
        ),
        CheckConstraint(
            f"limit_price IS NULL OR (limit_price > 0 AND limit_price < {FINITE_MAX})",
            name="limit_price_valid",
        ),
        CheckConstraint(
            f"stop_price IS NULL OR (stop_price > 0 AND stop_price < {FINITE_MAX})",
            name="stop_price_valid",
        ),
        CheckConstraint("(status = 'pending') = (answered_at IS NULL)", name="answered_when_done"),
        Index(None, "status", "id"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    order_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("orders.id"))
    client_order_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[float | None] = mapped_column(Double)
    limit_price: Mapped[float | None] = mapped_column(Double)
    stop_price: Mapped[float | None] = mapped_column(Double)
    status: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(256))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@event.listens_for(Fill, "before_update")
def _refuse_fill_update(_mapper: Mapper[Fill], _connection: Any, target: Fill) -> None:
    session = object_session(target)
    if session is None or session.is_modified(target, include_collections=False):
        raise TradeImmutableError(f"fill {target.fill_id!r} is stored and cannot be changed")


@event.listens_for(Fill, "before_delete")
def _refuse_fill_delete(_mapper: Mapper[Fill], _connection: Any, target: Fill) -> None:
    raise TradeImmutableError(f"fill {target.fill_id!r} is stored and cannot be deleted")


__all__ = [
    "ACCOUNT_STATUSES",
    "DEPLOYMENT_STATUSES",
    "OPEN_ORDER_STATUSES",
    "ORDER_REQUEST_ACTIONS",
    "ORDER_REQUEST_STATUSES",
    "ORDER_STATUSES",
    "ORDER_TYPES",
    "TIME_IN_FORCE",
    "TRADING_LEASE",
    "Account",
    "Deployment",
    "Fill",
    "Order",
    "OrderRequest",
    "Position",
    "RunnerLease",
]
