"""What the Trading page shows of a paper account, read in one query set per refresh.

>>> views = TradingViews(sessions)
>>> snapshot = views.snapshot("demo")          # None: no such account
>>> snapshot.account.equity, snapshot.account.drawdown_pct, snapshot.account.max_drawdown_pct
(10234.5, 0.012, 0.05)
>>> snapshot.positions, snapshot.open_orders, snapshot.fills, snapshot.deployments

The numbers are the broker's (trading/broker.py, trading/engine.py) recomputed from the stored
rows: equity is cash plus every position marked at its last price (its average price until a
bar has marked it), unrealised PnL is each position's ``quantity x (last - average)``,
exposure the gross value held (``|quantity| x last``) and its share of equity, drawdown how
far equity stands below the account's peak now, beside the limit that halts the account. The
page refreshes on an interval, so reading is cheap: one session, five small queries, the fills
bounded to the newest ``fills_limit``. Everything is a frozen dataclass of plain values; the
page turns them into cards and grid rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from database.repositories.trading import (
    AccountRow,
    DeploymentRow,
    FillRow,
    OrderRow,
    PositionRow,
    TradingRepository,
)

DEFAULT_FILLS = 200  # the fills grid shows the newest this many


@dataclass(frozen=True)
class AccountSummary:
    """An account's KPIs now. ``drawdown_pct``: ``1 - equity / peak`` (0 at a new peak), a
    fraction as ``max_drawdown_pct`` (the halt limit, None: no limit) is; ``exposure_pct``:
    gross value held / equity (NaN when equity is not positive)."""

    name: str
    status: str
    halt_reason: str | None
    starting_cash: float
    cash: float
    equity: float
    realised_pnl: float
    unrealised_pnl: float
    fees: float
    exposure: float
    exposure_pct: float
    peak_equity: float
    drawdown_pct: float
    max_drawdown_pct: float | None

    @property
    def return_pct(self) -> float:
        """Equity against the starting cash, a fraction."""
        return self.equity / self.starting_cash - 1.0


@dataclass(frozen=True)
class PositionView:
    symbol: str
    quantity: float
    average_price: float
    last_price: float
    market_value: float
    unrealised_pnl: float
    realised_pnl: float


@dataclass(frozen=True)
class OrderView:
    client_order_id: str
    deployment: str | None
    symbol: str
    side: str
    order_type: str
    purpose: str
    status: str
    quantity: float | None
    filled_quantity: float
    limit_price: float | None
    stop_price: float | None
    time_in_force: str
    arrival_time: datetime


@dataclass(frozen=True)
class FillView:
    fill_id: str
    time: datetime
    client_order_id: str
    deployment: str | None
    symbol: str
    side: str
    price: float
    quantity: float
    fee: float
    realised_pnl: float


@dataclass(frozen=True)
class DeploymentView:
    name: str
    strategy: str
    params: str
    symbol: str
    timeframe: str
    status: str
    error: str | None


@dataclass(frozen=True)
class TradingSnapshot:
    """One account as the page shows it (see the module docstring)."""

    account: AccountSummary
    positions: tuple[PositionView, ...]
    open_orders: tuple[OrderView, ...]
    fills: tuple[FillView, ...]  # newest first, at most ``fills_limit``
    deployments: tuple[DeploymentView, ...]  # of this account, removed ones left out

    @property
    def alerts(self) -> tuple[str, ...]:
        """What needs the trader's eye: the account's halt, the deployments' errors."""
        notes = []
        if self.account.status == "halted":
            notes.append(f"account {self.account.name} halted: {self.account.halt_reason or '?'}")
        notes += [
            f"deployment {d.name} {d.status}: {d.error}"
            for d in self.deployments
            if d.error and d.status in ("error", "halted", "stopped")
        ]
        return tuple(notes)


class TradingViews:
    """Read models of the paper accounts (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], *, fills_limit: int = DEFAULT_FILLS):
        if fills_limit < 1:
            raise ValueError(f"fills_limit={fills_limit!r} is invalid: expected >= 1")
        self._sessions = sessions
        self.fills_limit = fills_limit

    def account_names(self) -> list[str]:
        with self._sessions() as session:
            return [a.name for a in TradingRepository(session).accounts()]

    def snapshot(self, account: str) -> TradingSnapshot | None:
        """The account named ``account`` now, or None when there is none."""
        with self._sessions() as session:
            repo = TradingRepository(session)
            row = repo.account(account)
            if row is None:
                return None
            positions = [p for p in repo.positions(row.id) if p.quantity != 0]
            orders = repo.orders(row.id, open_only=True)
            fills = repo.fills(row.id, last=self.fills_limit)
            deployments = repo.deployments(account_id=row.id)
        names = {d.id: d.name for d in deployments}
        return TradingSnapshot(
            account_summary(row, positions),
            tuple(position_view(p) for p in positions),
            tuple(order_view(o, names) for o in orders),
            tuple(fill_view(f, names) for f in reversed(fills)),
            tuple(deployment_view(d) for d in deployments),
        )


def _mark(p: PositionRow) -> float:
    return p.last_price if p.last_price is not None else p.average_price


def account_summary(row: AccountRow, positions: list[PositionRow]) -> AccountSummary:
    """The KPIs of ``row`` with its open ``positions`` marked at their last prices."""
    marked = sum(p.quantity * _mark(p) for p in positions)
    unrealised = sum(p.quantity * (_mark(p) - p.average_price) for p in positions)
    exposure = sum(abs(p.quantity) * _mark(p) for p in positions)
    equity = row.cash + marked
    peak = max(row.peak_equity, equity)
    return AccountSummary(
        name=row.name,
        status=row.status,
        halt_reason=row.halt_reason,
        starting_cash=row.starting_cash,
        cash=row.cash,
        equity=equity,
        realised_pnl=row.realised_pnl,
        unrealised_pnl=unrealised,
        fees=row.fees,
        exposure=exposure,
        exposure_pct=exposure / equity if equity > 0 else float("nan"),
        peak_equity=peak,
        drawdown_pct=1.0 - equity / peak if peak > 0 else float("nan"),
        max_drawdown_pct=row.max_drawdown_pct,
    )


def position_view(p: PositionRow) -> PositionView:
    mark = _mark(p)
    return PositionView(
        p.symbol, p.quantity, p.average_price, mark, p.quantity * mark,
        p.quantity * (mark - p.average_price), p.realised_pnl,
    )  # fmt: skip


def order_view(o: OrderRow, deployments: dict[int, str]) -> OrderView:
    return OrderView(
        o.client_order_id, deployments.get(o.deployment_id) if o.deployment_id else None,
        o.symbol, o.side, o.order_type, o.purpose, o.status, o.quantity, o.filled_quantity,
        o.limit_price, o.stop_price, o.time_in_force, o.arrival_time,
    )  # fmt: skip


def fill_view(f: FillRow, deployments: dict[int, str]) -> FillView:
    deployment = deployments.get(f.deployment_id) if f.deployment_id else None
    return FillView(
        f.fill_id, f.time, f.client_order_id, deployment, f.symbol, f.side, f.price,
        f.quantity, f.fee, f.realised_pnl,
    )  # fmt: skip


def deployment_view(d: DeploymentRow) -> DeploymentView:
    params = ", ".join(f"{k}={v}" for k, v in sorted(d.strategy_params.items()))
    return DeploymentView(d.name, d.strategy_name, params, d.symbol, d.timeframe, d.status, d.error)


__all__ = [
    "DEFAULT_FILLS",
    "AccountSummary",
    "DeploymentView",
    "FillView",
    "OrderView",
    "PositionView",
    "TradingSnapshot",
    "TradingViews",
    "account_summary",
]
