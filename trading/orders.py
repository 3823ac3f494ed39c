"""Orders, fills, positions and the account as the paper broker keeps them, and the rules
that reject an order (:func:`rejection`: each reason named, as the broker stores it).

A request the broker takes comes back ``new``; one it cannot take comes back ``rejected`` with
its reason (the account halted, an unknown symbol, a price or quantity not positive, below the
minimum, a risk limit, insufficient cash) and is stored like any other order. :class:`OrderError`
is for what is refused outright and stored nowhere: an unknown order, a cancel of a filled one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from trading.config import CostModel

OPEN = ("new", "partially_filled")
DEFAULT_MIN_QUANTITY = 1e-9


class OrderError(ValueError):
    """A request or action the broker refuses outright (nothing is stored): the message says
    which order and why."""


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: str  # buy | sell
    order_type: str = "market"  # market | limit | stop | stop_limit
    quantity: float | None = None  # None: sized at the fill by the owner's sizer
    limit_price: float | None = None
    stop_price: float | None = None
    trail_pct: float | None = None
    time_in_force: str = "GTC"
    reduce_only: bool = False
    oco_group: str | None = None
    purpose: str = "manual"
    deployment_id: int | None = None
    decision_time: datetime | None = None
    decision_price: float | None = None
    costs: CostModel = field(default_factory=CostModel)
    volume_cap: float | None = None
    max_position: float | None = None
    max_orders_per_minute: int | None = None


@dataclass
class PaperOrder:
    request: OrderRequest
    status: str
    arrival_time: datetime
    arrival_price: float | None
    quantity: float | None
    limit_price: float | None
    stop_price: float | None
    anchor: float | None = None  # trailing stop: best price seen up to the bar's open
    triggered: bool = False  # a stop-limit whose stop fired (now a limit)
    filled_quantity: float = 0.0
    average_price: float | None = None
    fees: float = 0.0
    fills: int = 0
    reject_reason: str | None = None
    updated_at: datetime | None = None
    placed_bar: int | None = None  # the bar (open ms) it arrived in: fills start after it
    id: int | None = None  # the database's, once stored
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def client_order_id(self) -> str:
        return self.request.client_order_id

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def side(self) -> str:
        return self.request.side

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def remaining(self) -> float | None:
        return None if self.quantity is None else self.quantity - self.filled_quantity


@dataclass(frozen=True)
class FillEvent:
    order: PaperOrder
    fill_id: str
    symbol: str
    side: str
    base: float  # the market price the fill happened at, before costs
    price: float  # what was paid or received per unit, costs included
    quantity: float
    fee: float
    realised_pnl: float  # on the account's position, fee excluded
    time: datetime
    trigger: str  # market, stop, trailing_stop, limit, end
    bar_ts: int
    seq: int = 1  # the order's k-th fill (the order's count moves on with later fills)


@dataclass
class PositionBook:
    symbol: str
    quantity: float = 0.0
    average_price: float = 0.0
    realised_pnl: float = 0.0
    last_price: float | None = None
    updated_at: datetime | None = None


@dataclass
class AccountBook:
    name: str
    cash: float
    starting_cash: float | None = None
    realised_pnl: float = 0.0
    fees: float = 0.0
    peak_equity: float | None = None
    max_drawdown_pct: float | None = None
    status: str = "active"
    halt_reason: str | None = None
    id: int | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.starting_cash is None:
            self.starting_cash = self.cash
        if self.peak_equity is None:
            self.peak_equity = self.cash


Sizer = Callable[[PaperOrder, float, float], float]  # (order, fill price, equity) -> units


def positive(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def rejection(
    request: OrderRequest,
    *,
    account: AccountBook,
    symbols: set[str],
    min_quantity: float,
    held: float,
    price: float | None,
    recent_orders: int,
    sized: bool,
) -> str | None:
    """Why the broker would reject ``request`` now (None: it takes it)."""
    if account.status == "halted" and not request.reduce_only:
        return f"account {account.name} is halted: {account.halt_reason or 'risk limit'}"
    if symbols and request.symbol not in symbols:
        return f"unknown symbol {request.symbol!r}: no feed or stored series"
    if request.side not in ("buy", "sell"):
        return f"side={request.side!r}: expected buy or sell"
    if request.order_type not in ("market", "limit", "stop", "stop_limit"):
        return f"order type {request.order_type!r}: expected market, limit, stop or stop_limit"
    if request.time_in_force not in ("GTC", "IOC"):
        return f"time in force {request.time_in_force!r}: expected GTC or IOC"
    for name in ("limit_price", "stop_price"):
        value = getattr(request, name)
        if value is not None and not positive(value):
            return f"price not positive: {name}={value!r}"
    needs = {"limit": ("limit_price",), "stop": (), "stop_limit": ("limit_price", "stop_price")}
    for name in needs.get(request.order_type, ()):
        if getattr(request, name) is None:
            return f"a {request.order_type} order needs {name}"
    if request.order_type == "stop" and request.stop_price is None and request.trail_pct is None:
        return "a stop order needs stop_price or trail_pct"
    if request.quantity is not None:
        if not positive(request.quantity):
            return f"quantity not positive: {request.quantity!r}"
        if request.quantity < min_quantity:
            return f"quantity {request.quantity!r} is below the minimum {min_quantity!r}"
    elif not sized:
        return "quantity missing: only a deployment's orders are sized at the fill"
    signed = (request.quantity or 0.0) * (1 if request.side == "buy" else -1)
    if request.reduce_only and (held == 0 or ((held > 0) == (signed > 0) and signed != 0)):
        wanted = "short" if request.side == "buy" else "long"
        return f"reduce-only order but no {wanted} position to reduce"
    if (
        request.max_position is not None
        and not request.reduce_only
        and request.quantity is not None
    ) and abs(held + signed) > request.max_position * (1 + 1e-12):
        return (
            f"risk limit: position would be {held + signed:g} units, above max_position"
            f" {request.max_position:g}"
        )
    per_minute = request.max_orders_per_minute
    if per_minute is not None and recent_orders >= per_minute:
        return (
            f"risk limit: {recent_orders} orders in the last minute, max_orders_per_minute"
            f" {per_minute}"
        )
    if (
        request.side == "buy"
        and not request.reduce_only
        and request.quantity is not None
        and held >= 0
    ):
        estimate = request.limit_price or request.stop_price or price
        if estimate is not None:
            buy_price = request.costs.fill_price(estimate, True)
            cost = request.quantity * buy_price + request.costs.fee(
                request.quantity, buy_price, True
            )
            if cost > account.cash * (1 + 1e-12):
                return f"insufficient cash: needs {cost:,.2f}, has {account.cash:,.2f}"
    return None


__all__ = [
    "DEFAULT_MIN_QUANTITY",
    "OPEN",
    "AccountBook",
    "FillEvent",
    "OrderError",
    "OrderRequest",
    "PaperOrder",
    "PositionBook",
    "Sizer",
    "rejection",
]
