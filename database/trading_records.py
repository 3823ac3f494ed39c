"""The rows paper trading stores and reads back, as frozen records (no ORM object leaves
database/): :mod:`database.repositories.trading` takes and returns them; trading/store.py maps
them to the broker's live objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AccountRow:
    id: int
    name: str
    starting_cash: float
    cash: float
    realised_pnl: float
    fees: float
    peak_equity: float
    max_drawdown_pct: float | None
    status: str
    halt_reason: str | None
    venue: str = "paper"


@dataclass(frozen=True)
class DeploymentRow:
    id: int
    name: str
    account_id: int
    strategy_name: str
    strategy_params: Mapping[str, Any] = field(hash=False)
    symbol: str = ""
    timeframe: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    status: str = "stopped"
    error: str | None = None
    run_id: int | None = None
    last_bar_ts: int | None = None
    state: Mapping[str, Any] = field(default_factory=dict, hash=False)
    bar_index: int = -1


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    status: str
    purpose: str
    arrival_time: datetime
    updated_at: datetime
    deployment_id: int | None = None
    quantity: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_pct: float | None = None
    reduce_only: bool = False
    oco_group: str | None = None
    filled_quantity: float = 0.0
    average_price: float | None = None
    fees: float = 0.0
    reject_reason: str | None = None
    decision_time: datetime | None = None
    decision_price: float | None = None
    arrival_price: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)
    id: int | None = None


@dataclass(frozen=True)
class FillRow:
    fill_id: str
    client_order_id: str
    symbol: str
    side: str
    price: float
    quantity: float
    fee: float
    realised_pnl: float
    time: datetime
    seq: int
    deployment_id: int | None = None
    venue: str = "paper"
    bar_ts: int | None = None  # open time (epoch ms) of the bar it filled on
    purpose: str | None = None  # the order's (entry, exit, protect, ...); read, not stored


@dataclass(frozen=True)
class PositionRow:
    symbol: str
    quantity: float
    average_price: float
    realised_pnl: float
    last_price: float | None
    updated_at: datetime


__all__ = ["AccountRow", "DeploymentRow", "FillRow", "OrderRow", "PositionRow"]
