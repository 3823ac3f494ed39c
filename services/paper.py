"""Paper trading as the command line and the pages use it: accounts, deployments, the replay.

>>> paper = PaperTrading(sessions)
>>> paper.create_account("demo", cash=10_000)
>>> paper.deploy("ema-sp500", account="demo", strategy="ema_crossover", params={"fast": 12},
...              symbol="SP500", timeframe="1d", settings={"stop_loss_pct": 0.03})
>>> paper.start("ema-sp500")     # the runner (services.trading_runner) picks it up
>>> outcome = paper.replay(ReplayRequest("SP500", "1d", "ema_crossover", {}, "acc-1"))

Every input is checked before anything is stored (:class:`PaperError` names what is wrong).
A replay (``app.py paper replay``) runs the live code path (trading.engine, the paper broker)
over stored bars and stores its orders, fills, positions, signals and executed trades under
its account, committing every ``batch_bars`` bars. Interrupted (even by kill -9), the same
command resumes after the last bar it stored: no order is placed twice, no fill is lost.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.repositories.strategies import StrategyRepository
from database.repositories.trading import DeploymentRow, TradingRepository, TradingStoreError
from database.session import write_session_factory
from market.timeframes import Timeframe
from services.backtests import BatchJob, RunFailed, context_from, load_bars
from services.bar_sessions import BarSessions
from strategies.base import BaseStrategy, StrategyParamError
from strategies.registry import UnknownStrategyError, create
from tracking.annotator import MarketAnnotator
from tracking.tracker import TradeTracker
from trading.config import DeploymentConfigError, DeploymentSettings
from trading.engine import BarOutcome, Deployed, TradingEngine
from trading.replay import new_deployed, trade_frame
from trading.store import TradingStore, account_book
from trading.tape import BarBlock, SignalTape

if TYPE_CHECKING:
    from services.trading_runner import TradingRunner

DEFAULT_BATCH_BARS = 2_000  # bars a replay commits at a time (500: ~0.6 s more CPU on 100,000)


class PaperError(ValueError):
    """A paper-trading request that cannot be carried out (the message says what and where)."""


@dataclass(frozen=True)
class ReplayRequest:
    symbol: str
    timeframe: str
    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    account: str = "replay"
    cash: float = 10_000.0
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    max_drawdown_pct: float | None = None


@dataclass(frozen=True)
class ReplayOutcome:
    trades: pd.DataFrame
    bars: int  # processed by this call (after a resume: the bars left)
    resumed_from: pd.Timestamp | None
    account: str
    orders: int
    fills: int
    equity: float


class PaperTrading:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        batch_bars: int = DEFAULT_BATCH_BARS,
        *,
        runner: TradingRunner | None = None,
        answer_wait_s: float = 5.0,
        tracker: TradeTracker | None = None,
    ) -> None:
        self._sessions = sessions
        # writes read first (the account, order ids) then write, while the feeds write candles
        self._writes = write_session_factory(sessions)
        # cancel and modify go through the runner that holds an order (its broker is live)
        self._runner = runner
        # None: a tracker of its own, whose annotator is told the bars a replay reads
        self._annotator = None if tracker is not None else MarketAnnotator()
        self._store = TradingStore(tracker or TradeTracker(annotator=self._annotator))
        self.batch_bars = batch_bars
        # a cancel or modify asked of a runner in another process: how long to wait for it
        self.answer_wait_s = answer_wait_s
        self.name = f"{socket.gethostname()}:{os.getpid()}"  # who asks, in order_requests

    # -- accounts and deployments -----------------------------------------------------------
    def create_account(self, name: str, cash: float, max_drawdown_pct: float | None = None):
        with self._writes.begin() as session:
            try:
                return TradingRepository(session).create_account(
                    name, cash, datetime.now(UTC), max_drawdown_pct
                )
            except TradingStoreError as exc:
                raise PaperError(str(exc)) from exc

    def deploy(
        self,
        name: str,
        *,
        account: str,
        strategy: str,
        params: Mapping[str, Any] | None,
        symbol: str,
        timeframe: str,
        settings: Mapping[str, Any] | None = None,
    ) -> DeploymentRow:
        built = _strategy(strategy, params)
        checked = _settings(settings)
        tf = _timeframe(timeframe)
        with self._writes.begin() as session:
            repo = TradingRepository(session)
            row = repo.account(account)
            if row is None:
                raise PaperError(
                    f"no paper account {account!r}: create it first (paper account create)"
                )
            _check_series(session, symbol, tf)
            try:
                return repo.create_deployment(
                    name, row.id, built.name, built.config, symbol, tf.label, checked.to_json(),
                    datetime.now(UTC),
                )  # fmt: skip
            except TradingStoreError as exc:
                raise PaperError(str(exc)) from exc

    def set_status(self, name: str, status: str) -> DeploymentRow:
        """Start ("running") or stop ("stopped") a deployment."""
        with self._writes.begin() as session:
            repo = TradingRepository(session)
            row = _deployment(repo, name)
            if status == "running" and row.status == "halted":
                account = repo.account_by_id(row.account_id)
                if account is not None and account.status == "halted":
                    raise PaperError(
                        f"deployment {name!r} cannot start: account {account.name} is halted"
                        f" ({account.halt_reason})"
                    )
            repo.update_deployment(row.id, datetime.now(UTC), status=status, error=None)
            return _deployment(repo, name)

    def remove(self, name: str) -> str:
        with self._writes.begin() as session:
            repo = TradingRepository(session)
            row = _deployment(repo, name)
            if row.status == "running":
                raise PaperError(f"deployment {name!r} is running: stop it first")
            return repo.remove_deployment(row.id, datetime.now(UTC))

    # -- orders --------------------------------------------------------------------------------
    def cancel(self, client_order_id: str) -> str:
        """Cancel an open order: through the running runner that holds it, else in the
        database (no runner trades it now). PaperError names why not."""
        return self._change(client_order_id, "cancel", {})

    def modify(self, client_order_id: str, **changes: float | None) -> str:
        """Change an open order's quantity, limit or stop price (PaperError names why not)."""
        given = {k: v for k, v in changes.items() if v is not None}
        if not given:
            raise PaperError("modify: give a new quantity, limit_price or stop_price")
        return self._change(client_order_id, "modify", given)

    def _change(self, client_order_id: str, action: str, changes: dict[str, float]) -> str:
        """Through this process's running runner (its live broker, or the stored order it
        does not hold); else, while a runner of another process renews the lease, as a
        request it answers (waited for up to ``answer_wait_s``); else on the stored order,
        the lease row locked meanwhile (no runner can start and read it half changed)."""
        from database.repositories.order_requests import OrderRequestRepository
        from services.trading_runner import LEASE_S, change_stored_order
        from trading.orders import OrderError

        runner = self._runner
        try:
            if runner is not None and runner.running:
                order = runner.apply(client_order_id, action, changes)
                return f"order {client_order_id} {order.status}"
            with self._writes.begin() as session:
                found = TradingRepository(session).order(client_order_id)
                if found is None:
                    raise PaperError(f"unknown order {client_order_id!r}")
                requests = OrderRequestRepository(session)
                now = datetime.now(UTC)
                holder = requests.lease_holder(stale_before=now - pd.Timedelta(seconds=LEASE_S))
                if holder is None:
                    order = change_stored_order(session, client_order_id, action, changes)
                    return f"order {client_order_id} {order.status}"
                request_id = requests.add(
                    found[1].id, client_order_id, action, changes, self.name, now
                )
        except OrderError as exc:
            raise PaperError(str(exc)) from exc
        return self._answer(request_id, client_order_id, action, holder)

    def _answer(self, request_id: int, client_order_id: str, action: str, holder: str) -> str:
        """The runner's answer to request ``request_id`` (PaperError when it refused), or
        that it is asked, after ``answer_wait_s`` without one."""
        from database.repositories.order_requests import OrderRequestRepository

        deadline = time.monotonic() + self.answer_wait_s
        while True:
            with self._sessions() as session:
                request = OrderRequestRepository(session).get(request_id)
            assert request is not None
            if request.status == "applied":
                return f"order {client_order_id} {request.answer}"
            if request.status == "refused":
                raise PaperError(request.answer or f"{action} refused by the runner")
            if time.monotonic() >= deadline:
                return (
                    f"{action} of order {client_order_id} asked of the runner ({holder}, request"
                    f" {request_id}): it applies it at its next step"
                )
            time.sleep(0.05)

    def account_view(self, name: str) -> str:
        """The account as text: cash, equity, PnL, positions and open orders."""
        with self._sessions() as session:
            repo = TradingRepository(session)
            row = repo.account(name)
            if row is None:
                raise PaperError(f"no paper account {name!r}")
            positions = [p for p in repo.positions(row.id) if p.quantity != 0]
            orders = repo.orders(row.id, open_only=True)
        marked = sum(p.quantity * (p.last_price or p.average_price) for p in positions)
        lines = [
            f"account {row.name} ({row.status}{': ' + row.halt_reason if row.halt_reason else ''})",
            f"  cash {row.cash:,.2f}  equity {row.cash + marked:,.2f}"
            f"  realised {row.realised_pnl:,.2f}  fees {row.fees:,.2f}",
        ]
        for p in positions:
            lines.append(f"  position {p.symbol} {p.quantity:g} @ {p.average_price:,.4f}")
        for o in orders:
            price = o.limit_price or o.stop_price
            at = f" @ {price:,.4f}" if price else ""
            lines.append(f"  open {o.client_order_id} {o.side} {o.order_type} {o.quantity}{at}")
        return "\n".join(lines)

    def deployments(self) -> list[DeploymentRow]:
        with self._sessions() as session:
            return TradingRepository(session).deployments()

    # -- the replay --------------------------------------------------------------------------
    def replay(self, request: ReplayRequest) -> ReplayOutcome:
        strategy = _strategy(request.strategy, request.params)
        settings = _settings(request.settings)
        tf = _timeframe(request.timeframe)
        name = f"replay:{request.account}"
        job = BatchJob(
            strategy.name, strategy.config, request.symbol, tf.label, request.start, request.end
        )
        try:
            candles, _, _ = load_bars(job, None, context_from(self._sessions, None))
        except RunFailed as exc:
            raise PaperError(str(exc)) from exc
        now = datetime.now(UTC)
        with self._writes.begin() as session:
            repo = TradingRepository(session)
            account = repo.account(request.account)
            row = repo.deployment(name)
            if account is None:
                account = repo.create_account(
                    request.account, request.cash, now, request.max_drawdown_pct
                )
            elif (
                row is None
                or row.status != "running"
                or row.strategy_name != strategy.name
                or row.symbol != request.symbol
            ):
                raise PaperError(
                    f"account {request.account!r} exists and holds no interrupted replay of"
                    f" {strategy.name} on {request.symbol}: choose a new account name"
                )
            else:
                _check_resume(row, strategy, settings, tf)
            if row is None:
                row = repo.create_deployment(
                    name, account.id, strategy.name, strategy.config, request.symbol, tf.label,
                    settings.to_json(), now,
                )  # fmt: skip
                run = StrategyRepository(session).runs.create(
                    strategy.name,
                    strategy.config,
                    request.symbol,
                    tf.label,
                    "paper",
                    started_at=now,
                )
                repo.update_deployment(row.id, now, status="running", run_id=run.id)
                row = repo.deployment(name)
                assert row is not None
            book = account_book(account)
            orders, positions = self._store.load_book(session, account.id)
        done = (
            0
            if row.last_bar_ts is None
            else int((candles.index <= pd.Timestamp(row.last_bar_ts, unit="ms", tz="UTC")).sum())
        )
        d = new_deployed(row.id, name, account.id, request.symbol, tf.label, strategy, settings)
        d.run_id, d.last_bar_ts = row.run_id, row.last_bar_ts
        d.policy.restore(dict(row.state), row.bar_index, row.last_bar_ts)
        engine = TradingEngine()
        broker = engine.add_account(book, {request.symbol})
        broker.restore(orders, positions)
        engine.set_base(request.symbol, d.timeframe)
        # the signals of every bar at once (the strategy's vectorized twin): the engine runs
        # orders, broker and policy on the bars where something happens (on_block)
        d.tape = SignalTape.of(strategy, candles, request.symbol, tf.label)
        engine.add(d, candles.iloc[:0])
        with self._sessions() as session:  # before a resume: kept with their exit orders
            trades = [
                dict(o.extra["round_trip"])
                for o in TradingRepository(session).orders(account.id, deployment_id=row.id)
                if "round_trip" in o.extra
            ]
        pending: list[BarOutcome] = []
        n = len(candles)
        bars = BarBlock.of(candles)
        # SQLite: the batches' commits leave the WAL checkpoints to one at the end (each was
        # two fsyncs, ~1 s of 100,000 bars' replay)
        writes = BarSessions(self._sessions)
        if self._annotator is not None:  # the fills' market context read from these bars
            self._annotator.expect(request.symbol, tf.label, candles)
        try:
            for start in range(done, n, self.batch_bars):  # one transaction a block
                pending = engine.on_block(
                    request.symbol, bars, start, min(n, start + self.batch_bars), last=True
                )
                for outcome in pending:
                    trades.extend(t for _, t in outcome.trades)
                if start + self.batch_bars < n:
                    self._write(writes, pending, d)
                    pending = []
            if n:
                outcome = engine.close_out(request.symbol, bars.candle(n - 1))
                trades.extend(t for _, t in outcome.trades)
                pending.append(outcome)
            self._write(writes, pending, d, finish=True)
        finally:
            writes.close()
            if self._annotator is not None:
                self._annotator.expect(request.symbol, tf.label, None)
        return ReplayOutcome(
            trade_frame(trades),
            len(candles) - done,
            pd.Timestamp(row.last_bar_ts, unit="ms", tz="UTC") if row.last_bar_ts else None,
            request.account,
            len(broker.orders),
            sum(o.fills for o in broker.orders.values()),
            broker.equity(),
        )

    def _write(
        self, writes: BarSessions, outcomes: list[BarOutcome], d: Deployed, finish: bool = False
    ) -> None:
        with writes.factory.begin() as session:
            self._store.write(session, outcomes)
            repo = TradingRepository(session)
            now = datetime.now(UTC)
            if finish:
                repo.update_deployment(d.id, now, status="stopped")
                if d.run_id is not None:
                    StrategyRepository(session).runs.finish(d.run_id, finished_at=now)
        writes.after_commit()


def _check_resume(
    row: DeploymentRow, strategy: BaseStrategy, settings: DeploymentSettings, tf: Timeframe
) -> None:
    """An interrupted replay resumes only with what it started with (else its stored orders
    and positions would be continued by other rules)."""
    stored = {
        "timeframe": (row.timeframe, tf.label),
        "strategy parameters": (dict(row.strategy_params), strategy.config),
        "settings": (dict(row.settings), settings.to_json()),
    }
    for what, (before, now) in stored.items():
        if before != now:
            raise PaperError(
                f"the interrupted replay {row.name!r} was started with {what} {before}, not"
                f" {now}: resume it with the same arguments, or choose a new account name"
            )


def _deployment(repo: TradingRepository, name: str) -> DeploymentRow:
    row = repo.deployment(name)
    if row is None:
        raise PaperError(f"no deployment {name!r}")
    return row


def _strategy(name: str, params: Mapping[str, Any] | None) -> BaseStrategy:
    try:
        return create(name, **dict(params or {}))
    except (UnknownStrategyError, StrategyParamError) as exc:
        raise PaperError(str(exc)) from exc


def _settings(values: Mapping[str, Any] | None) -> DeploymentSettings:
    try:
        return DeploymentSettings.parse(values)
    except DeploymentConfigError as exc:
        raise PaperError(str(exc)) from exc


def _timeframe(label: str) -> Timeframe:
    try:
        return Timeframe.parse(label)
    except ValueError as exc:
        raise PaperError(f"timeframe {label!r}: {exc}") from exc


def _check_series(session: Session, symbol: str, tf: Timeframe) -> None:
    from database.repositories.candles import CandleRepository

    stored = CandleRepository(session).timeframes(symbol)  # no scan of the bars
    if not stored:
        raise PaperError(
            f"symbol {symbol!r} has no stored series and no feed: import or add a feed first"
        )
    if not any(label == tf.label or Timeframe.parse(label).can_resample_to(tf) for label in stored):
        offered = ", ".join(stored)
        raise PaperError(f"{symbol} is stored in {offered}, which cannot make {tf.label} bars")


__all__ = ["PaperError", "PaperTrading", "ReplayOutcome", "ReplayRequest"]
