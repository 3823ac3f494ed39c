"""The trading engine: deployments on their series, one paper broker per account, each
indicator computed once per series, a closed bar's whole outcome collected for one write.

>>> engine = TradingEngine()
>>> engine.add_account(AccountBook("demo", cash=10_000.0, id=1), symbols={"SP500"})
>>> engine.add(deployment, strategy, history)          # opens indicator and strategy states
>>> outcome = engine.on_candle("SP500", candle)         # a closed bar of the finest series
>>> outcome.signals, outcome.fills, outcome.trades, outcome.alerts

One closed bar, in order (the backtest's bar loop, :mod:`trading.policy`):

1. each deployment whose bar opens here settles what is due at its open;
2. each account's broker fills what the bar reaches (market orders at its open, then stops and
   limits in its range); fills go to their deployment, a filled entry places its stops;
3. the bar completes the bar of each deployment's timeframe (the same bar, or the last base
   bar of a higher timeframe's bucket: complete bars only, never a forming one);
4. each account is marked at the close; a drawdown past its limit halts it: open orders
   cancelled, positions closed at the next open, its deployments stopped, an alert raised;
5. each distinct indicator of the completed series is updated once and its values go to
   every deployment reading it; their signals become orders.

A deployment that raises is stopped with its error recorded (an alert); the others go on.
Nothing here does I/O: :class:`BarOutcome` is what the runner writes in one transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from market.candles import Candle
from market.timeframes import Timeframe
from strategies.base import BaseStrategy, LiveStrategy
from strategies.signals import StrategySignal
from trading.alerts.events import AlertEvent
from trading.broker import PaperBroker
from trading.buckets import Bucket, next_bucket
from trading.config import DeploymentSettings
from trading.orders import AccountBook, FillEvent, OrderRequest, PaperOrder
from trading.policy import DeploymentPolicy
from trading.tape import BarBlock, SignalTape

log = logging.getLogger(__name__)

_NO_SIGNAL = (False, False, False, False)  # entry_long, exit_long, entry_short, exit_short


@dataclass
class Deployed:
    """One running deployment in the engine."""

    id: int
    name: str
    account_id: int
    symbol: str
    timeframe: Timeframe
    strategy: BaseStrategy
    settings: DeploymentSettings
    policy: DeploymentPolicy
    live: LiveStrategy | None = None
    run_id: int | None = None
    last_bar_ts: int | None = None
    error: str | None = None
    keys: tuple[str, ...] = ()  # its indicator request keys (set by TradingEngine.add)
    tape: SignalTape | None = None  # a replay's signals, computed in advance (on_block)


def _decided_at_close(request: OrderRequest, d: Deployed) -> OrderRequest:
    """``request`` decided when its bar closed (the policy stamps the bar's open, its key)."""
    if request.decision_time is None:
        return request
    closed = request.decision_time + timedelta(milliseconds=d.timeframe.millis)
    if isinstance(closed, pd.Timestamp):
        closed = closed.to_pydatetime()
    return dataclasses.replace(request, decision_time=closed)


@dataclass
class BarOutcome:
    """What one closed bar changed, for one transaction."""

    ts: int
    time: datetime
    signals: list[tuple[Deployed, StrategySignal]] = field(default_factory=list)
    orders: dict[int, list[PaperOrder]] = field(default_factory=dict)  # account id -> orders
    fills: dict[int, list[FillEvent]] = field(default_factory=dict)
    positions: dict[int, list[Any]] = field(default_factory=dict)
    accounts: list[AccountBook] = field(default_factory=list)
    deployments: list[Deployed] = field(default_factory=list)  # states to store
    trades: list[tuple[Deployed, dict[str, Any]]] = field(default_factory=list)
    stopped: list[Deployed] = field(default_factory=list)  # error or halt
    alerts: list[AlertEvent] = field(default_factory=list)  # raised by the runner


class TradingEngine:
    def __init__(self) -> None:
        self.brokers: dict[int, PaperBroker] = {}
        self.deployed: dict[int, Deployed] = {}
        self._states: dict[tuple[str, str, str], Any] = {}  # (symbol, tf, request key) -> state
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._base: dict[str, Timeframe] = {}  # symbol -> the timeframe its candles come in
        self._outcome: BarOutcome | None = None
        self._drawdown_steps: dict[str, int] = {}  # account -> last whole percent noted

    # -- set-up ----------------------------------------------------------------------------
    def add_account(self, account: AccountBook, symbols: Iterable[str] = ()) -> PaperBroker:
        assert account.id is not None, "store the account first"
        broker = self.brokers.get(account.id)
        if broker is None:
            broker = self.brokers[account.id] = PaperBroker(account, set(symbols))
            broker.on_fill = self._on_fill
        else:
            broker.symbols.update(symbols)
        return broker

    def set_base(self, symbol: str, timeframe: Timeframe) -> None:
        """The timeframe ``symbol``'s candles arrive in (the finest stored: the feed's)."""
        self._base[symbol] = timeframe

    def add(self, deployed: Deployed, history: pd.DataFrame) -> None:
        """Start ``deployed`` after ``history`` (its timeframe's bars up to where it resumes):
        opens the indicator states it needs (shared with the deployments already reading
        them on this series) and its strategy's state."""
        broker = self.brokers[deployed.account_id]
        broker.sizers[deployed.id] = deployed.policy.size
        self.deployed[deployed.id] = deployed
        self._base.setdefault(deployed.symbol, deployed.timeframe)
        if deployed.tape is not None:  # its signals are known: no indicator or strategy state
            return
        key = (deployed.symbol, deployed.timeframe.label)
        for request in deployed.strategy.required_indicators():
            state_key = (*key, request.key)
            if state_key not in self._states:
                self._states[state_key] = request.spec.open(history, request.param_dict)[0]
        deployed.live = deployed.strategy.live(history, deployed.symbol, deployed.timeframe.label)
        deployed.keys = tuple(r.key for r in deployed.strategy.required_indicators())

    def remove(self, deployment_id: int) -> None:
        deployed = self.deployed.pop(deployment_id, None)
        if deployed is not None:
            self.brokers[deployed.account_id].sizers.pop(deployment_id, None)

    # -- a closed bar ------------------------------------------------------------------------
    def on_candle(
        self, symbol: str, candle: Candle, now: datetime | None = None, *, last: bool = False
    ) -> BarOutcome:
        """Process one closed bar of ``symbol``'s base series (see the module docstring).
        ``last``: a replay's final bar, whose signals have no next open to fill at."""
        return self._on_bar(symbol, candle, now, last, None)

    def on_block(
        self, symbol: str, block: BarBlock, start: int, stop: int, *, last: bool = False
    ) -> list[BarOutcome]:
        """Bars ``start:stop`` of ``block`` (closed bars of ``symbol``'s base series, the
        series its deployments' tapes index), as :meth:`on_candle` one after another would
        process them. A bar where something can happen (a signal, an order resting or due,
        a paper close due, the drawdown limit reached) goes through the bar's code; a run of
        bars where nothing can happen is taken at once (the policies' bar counts and MAE/MFE
        ranges, the brokers' last prices, each account's peak equity and drawdown notes)
        and gives one outcome. ``last``: the block's final bar ends the replay. Deployments
        without a tape, or of a higher timeframe, make every bar go through the bar's code."""
        outcomes: list[BarOutcome] = []
        final = len(block) - 1 if last else -1
        k = start
        while k < stop:
            quiet = self._quiet_run(symbol, block, k, stop)
            if quiet is not None:
                outcomes.append(quiet[0])
                k = quiet[1]
                continue
            outcomes.append(self._on_bar(symbol, block.candle(k), None, k == final, k))
            k += 1
        return outcomes

    def _on_bar(
        self, symbol: str, candle: Candle, now: datetime | None, last: bool, index: int | None
    ) -> BarOutcome:
        when = now or candle.ts.to_pydatetime()
        ts = int(candle.ts.value // 1_000_000)
        outcome = self._outcome = BarOutcome(ts, when)
        base = self._base.get(symbol)
        # a deployment already past this bar (a restart catching up) skips it
        mine = [d for d in self.deployed.values() if d.symbol == symbol and _takes(d, ts)]
        by_tf: dict[str, list[Deployed]] = {}
        for d in mine:
            by_tf.setdefault(d.timeframe.label, []).append(d)
        completed: dict[str, Candle] = {}
        for label, deps in by_tf.items():
            tf = deps[0].timeframe
            opened, done = self._bucket(symbol, tf, base or tf, candle)
            if opened is not None:
                for d in deps:
                    self._guard(d, lambda d=d, o=opened: d.policy.on_bar_open(o))
            if done is not None:
                completed[label] = done
        for broker in self.brokers.values():
            if symbol in broker.symbols or broker.open_orders(symbol):
                broker.on_bar(symbol, candle, closed=True, now=when)
        for account_id, broker in self.brokers.items():
            self._check_drawdown(account_id, broker, candle)
        for label, bar in completed.items():
            self._decide(symbol, label, bar, by_tf[label], last, index)
        self._collect(symbol, mine)
        self._outcome = None
        return outcome

    def _quiet_run(
        self, symbol: str, block: BarBlock, k: int, stop: int
    ) -> tuple[BarOutcome, int] | None:
        """The run of bars from ``k`` (before ``stop``) where nothing can happen, taken at
        once: (its outcome, the bar after it); None when bar ``k`` needs the bar's code."""
        base = self._base.get(symbol)
        mine = [d for d in self.deployed.values() if d.symbol == symbol]
        if not mine or base is None:
            return None
        first = int(block.ts[k])
        for d in mine:
            if (
                d.tape is None
                or d.timeframe.label != base.label
                or not _takes(d, first)
                or d.policy.paper_close_pending
            ):
                return None
        brokers = list(self.brokers.values())
        for broker in brokers:
            # equity = cash + this symbol's position: each bar's mark is one array operation
            if symbol not in broker.symbols or broker.has_open_orders(other_than=symbol):
                return None
            if any(s != symbol and b.quantity for s, b in broker.positions.items()):
                return None
        end = min([stop, *(d.tape.next_event(k) for d in mine)])  # type: ignore[union-attr]
        for broker in brokers:
            if end <= k:
                return None
            if broker.has_open_orders():
                reach = broker.resting_reach(
                    symbol, block.open[k:end], block.high[k:end], block.low[k:end]
                )
                if reach is None:
                    return None
                end = k + reach
        if end <= k:
            return None
        marks = []
        for broker in brokers:
            account = broker.account
            if account.status == "halted":
                marks.append(None)
                continue
            peak0 = account.peak_equity
            if peak0 is None or not peak0 > 0:
                return None
            book = broker.positions.get(symbol)
            close = block.close[k:end]
            if book is not None and book.quantity:
                equity = account.cash + book.quantity * close
            else:
                equity = np.full(end - k, account.cash)
            peak = np.maximum.accumulate(np.maximum(equity, peak0))
            limit = account.max_drawdown_pct
            if limit is not None:  # the bar reaching the limit halts: through the bar's code
                reached = np.flatnonzero(~(equity > peak * (1 - limit)))
                if len(reached):
                    end = k + int(reached[0])
            marks.append((broker, equity, peak))
        if end <= k:
            return None
        n = end - k
        last_ts = int(block.ts[end - 1])
        outcome = self._outcome = BarOutcome(last_ts, block.index[end - 1].to_pydatetime())
        low, high = float(block.low[k:end].min()), float(block.high[k:end].max())
        for d in mine:
            d.policy.on_quiet_bars(n, last_ts, float(block.open[end - 1]), low, high)
            d.last_bar_ts = last_ts
            outcome.deployments.append(d)
        for broker in brokers:
            broker.on_quiet_bars(
                symbol, last_ts, block.open[k:end], block.high[k:end], block.low[k:end],
                float(block.close[end - 1]),
            )  # fmt: skip
        for mark in marks:
            if mark is not None:
                self._mark_quiet(mark[0].account, mark[1][:n], mark[2][:n])
        self._collect(symbol, mine)
        self._outcome = None
        return outcome, end

    def _mark_quiet(self, account: AccountBook, equity: np.ndarray, peak: np.ndarray) -> None:
        """Bars' closes marked at once (no halt among them): the peak and the drawdown
        notes :meth:`_check_drawdown` would have made bar by bar."""
        account.peak_equity = float(peak[-1])
        drawdown = 1 - equity / peak  # the peaks are > 0 (checked by the caller)
        steps = np.trunc(drawdown * 100).astype(np.int64)
        before = np.empty_like(steps)
        before[0] = self._drawdown_steps.get(account.name, 0)
        before[1:] = steps[:-1]
        outcome = self._outcome
        assert outcome is not None
        for j in np.flatnonzero(steps > before):
            value = float(drawdown[j])
            outcome.alerts.append(
                AlertEvent(
                    "drawdown",
                    f"account {account.name} is {value:.2%} below its peak",
                    account=account.name,
                    value=value,
                )
            )
        self._drawdown_steps[account.name] = int(steps[-1])

    def on_forming(
        self, symbol: str, candle: Candle, now: datetime | None = None
    ) -> BarOutcome | None:
        """A forming update of ``symbol``'s base bar (the bar so far): the orders resting on
        ``symbol`` that it reaches fill now, by the closed bar's rules (its open, then the low
        and high reached so far), and their deployments learn of the fills (a stop-loss fills
        while the bar forms, its take-profit is cancelled). Nothing is decided: signals and new
        orders come when the bar closes; the drawdown is checked then. None when no order
        rests on ``symbol`` or none filled (what moved is stored with the closed bar)."""
        brokers = [b for b in self.brokers.values() if b.open_orders(symbol)]
        if not brokers:
            return None
        when = now or candle.ts.to_pydatetime()
        outcome = self._outcome = BarOutcome(int(candle.ts.value // 1_000_000), when)
        try:
            filled = False
            for broker in brokers:
                before = len(broker.new_fills)
                broker.on_bar(symbol, candle, closed=False, now=when)
                filled = filled or len(broker.new_fills) > before
            if not filled:
                return None
            mine = [d for d in self.deployed.values() if d.symbol == symbol]
            self._collect(symbol, mine)
            # their states after the fills, stored with them: a restart before the bar
            # closes resumes from the fills, not from before them
            outcome.deployments.extend(d for d in mine if d.last_bar_ts is not None)
        finally:
            self._outcome = None
        return outcome

    def waits_until(self, symbol: str, ts: int) -> int | None:
        """When every deployment on ``symbol`` is past the bar opening at ``ts`` (ms; its
        feed went back in time), the first bar time they take again; None when one of them
        takes this bar, or none runs on ``symbol``."""
        mine = [d for d in self.deployed.values() if d.symbol == symbol]
        if not mine or any(_takes(d, ts) for d in mine):
            return None
        return min(d.last_bar_ts + d.timeframe.millis for d in mine)  # type: ignore[operator]

    def close_out(self, symbol: str, candle: Candle, now: datetime | None = None) -> BarOutcome:
        """The end of a replay: open orders cancelled, each position closed at the last
        close (exit reason "end", as the backtest closes its last trade)."""
        when = now or candle.ts.to_pydatetime()  # the backtest's time of its last trade's exit
        outcome = self._outcome = BarOutcome(int(candle.ts.value // 1_000_000), when)
        for broker in self.brokers.values():
            broker.cancel_all(when, "replay ended", symbol)
        for d in [d for d in self.deployed.values() if d.symbol == symbol]:
            request = d.policy.end_request(candle)
            if request is not None:
                self.brokers[d.account_id].fill_now(request, candle.close, when)
            outcome.deployments.append(d)
        self._collect(symbol, [d for d in self.deployed.values() if d.symbol == symbol])
        self._outcome = None
        return outcome

    def _collect(self, symbol: str, mine: list[Deployed]) -> None:
        outcome = self._outcome
        assert outcome is not None
        for account_id, broker in self.brokers.items():
            orders, fills, positions = broker.drain()
            if orders:
                outcome.orders[account_id] = orders
            if fills:
                outcome.fills[account_id] = fills
            if positions:
                outcome.positions[account_id] = positions
            if orders or fills or positions or symbol in broker.symbols:
                outcome.accounts.append(broker.account)
        for d in mine:
            outcome.trades.extend((d, t) for t in d.policy.drain_trades())

    def _bucket(
        self, symbol: str, tf: Timeframe, base: Timeframe, candle: Candle
    ) -> tuple[Candle | None, Candle | None]:
        """(the bar of ``tf`` that opens with this base bar, the bar it completes)."""
        if tf.label == base.label:
            return candle, candle
        return next_bucket(self._buckets, symbol, tf, base, candle)

    def _decide(
        self,
        symbol: str,
        label: str,
        bar: Candle,
        deps: list[Deployed],
        last: bool,
        index: int | None = None,
    ) -> None:
        outcome = self._outcome
        assert outcome is not None
        values: dict[str, tuple[float, ...]] = {}
        states = self._states
        for d in deps:
            for key in d.keys:
                if key not in values:
                    values[key] = states[(symbol, label, key)].update(bar)
        ts = int(bar.ts.value // 1_000_000)
        for d in deps:
            try:
                self._decide_one(d, bar, values, last, index, ts)
            except Exception as exc:  # one failing deployment must not stop the others
                self._failed(d, exc)

    def _decide_one(
        self,
        d: Deployed,
        bar: Candle,
        values: dict[str, tuple[float, ...]],
        last: bool,
        index: int | None,
        ts: int,
    ) -> None:
        outcome = self._outcome
        assert outcome is not None
        if d.tape is not None:
            assert index is not None, "a deployment with a tape takes bars through on_block"
            fired = d.tape.signals(index, bar)
        else:
            assert d.live is not None
            fired = d.live.on_candle(bar, values)
        if fired:
            kinds = {s.signal_type for s in fired}
            outcome.signals.extend((d, s) for s in fired)
            flags = (
                "entry_long" in kinds, "exit_long" in kinds, "entry_short" in kinds,
                "exit_short" in kinds,
            )  # fmt: skip
            broker = self.brokers[d.account_id]
            for request in d.policy.on_bar_close(bar, flags, last=last):
                self._submit(d, broker, _decided_at_close(request, d))
        else:  # the position's range still moves with the bar
            d.policy.on_bar_close(bar, _NO_SIGNAL, last=last)
        d.last_bar_ts = ts
        outcome.deployments.append(d)

    def _submit(self, d: Deployed, broker: PaperBroker, request: OrderRequest) -> PaperOrder:
        outcome = self._outcome
        when = outcome.time if outcome is not None else request.decision_time
        if request.decision_time is not None and when < request.decision_time:
            when = request.decision_time  # a replay's clock reads the bar's open
        order = broker.submit(request, when, request.decision_price)  # type: ignore[arg-type]
        if order.status == "rejected" and outcome is not None:
            outcome.alerts.append(
                AlertEvent(
                    "order_rejected",
                    f"{d.name}: order {order.client_order_id} rejected: {order.reject_reason}",
                    account=broker.account.name,
                    deployment=d.name,
                    symbol=d.symbol,
                )
            )
        return order

    def _on_fill(self, fill: FillEvent) -> None:
        d = self.deployed.get(fill.order.request.deployment_id or -1)
        if self._outcome is not None:
            account = self.brokers[d.account_id].account.name if d else None
            self._outcome.alerts.append(
                AlertEvent(
                    "fill",
                    f"{fill.side} {fill.quantity:g} {fill.symbol} at {fill.price:,.4f}"
                    f" ({fill.order.request.purpose})",
                    severity="info",
                    account=account,
                    deployment=d.name if d else None,
                    symbol=fill.symbol,
                )
            )
        if d is None:
            return
        broker = self.brokers[d.account_id]
        for request in d.policy.on_fill(fill):
            self._submit(d, broker, request)
        if d.policy.position.side == 0:  # closed: its remaining protective orders go
            for order in broker.open_orders(d.symbol):
                if order.request.deployment_id == d.id and order.request.purpose == "protect":
                    broker.cancel(order.client_order_id, fill.time, "position closed")

    def _check_drawdown(self, account_id: int, broker: PaperBroker, candle: Candle) -> None:
        account = broker.account
        if account.status == "halted":
            return
        equity = broker.equity()
        peak = account.peak_equity = max(account.peak_equity or equity, equity)
        drawdown = 1 - equity / peak if peak > 0 else 0.0
        self._note_drawdown(account, drawdown)
        limit = account.max_drawdown_pct
        # the backtest kernel's test, as it writes it (equity <= peak x (1 - limit) halts)
        if limit is None or equity > peak * (1 - limit):
            return
        outcome = self._outcome
        assert outcome is not None
        account.status = "halted"
        account.halt_reason = (
            f"drawdown {drawdown:.2%} passed the limit {limit:.2%} on {candle.ts.isoformat()}"
        )
        broker.cancel_all(outcome.time, "account halted")
        for d in self.deployed.values():
            if d.account_id != account_id:
                continue
            for request in d.policy.halt(candle):  # reduce-only: a halted account takes it
                self._submit(d, broker, _decided_at_close(request, d))
            d.error = account.halt_reason
            outcome.stopped.append(d)
            outcome.deployments.append(d)
        outcome.alerts.append(
            AlertEvent(
                "halt",
                f"account {account.name} halted: {account.halt_reason}",
                severity="critical",
                account=account.name,
                value=drawdown,
            )
        )

    def _note_drawdown(self, account: AccountBook, drawdown: float) -> None:
        """A "drawdown" event each time the account's drawdown reaches a new whole percent
        (the alert rule's threshold decides which ones become alerts)."""
        step = int(drawdown * 100)
        last = self._drawdown_steps.get(account.name, 0)
        self._drawdown_steps[account.name] = step
        if step > last and self._outcome is not None:
            self._outcome.alerts.append(
                AlertEvent(
                    "drawdown",
                    f"account {account.name} is {drawdown:.2%} below its peak",
                    account=account.name,
                    value=drawdown,
                )
            )

    def _guard(self, d: Deployed, action: Any) -> None:
        """Run ``action`` for ``d``; if it raises, ``d`` is stopped with its error."""
        try:
            action()
        except Exception as exc:  # one failing deployment must not stop the others
            self._failed(d, exc)

    def _failed(self, d: Deployed, exc: Exception) -> None:
        """``d`` raised ``exc``: stopped with its error recorded, an alert raised."""
        log.exception("deployment %s failed", d.name, exc_info=exc)
        d.error = f"{type(exc).__name__}: {exc}"
        self.remove(d.id)
        outcome = self._outcome
        if outcome is not None:
            outcome.stopped.append(d)
            outcome.alerts.append(
                AlertEvent(
                    "deployment_error",
                    f"deployment {d.name} stopped: {d.error}",
                    severity="critical",
                    deployment=d.name,
                    symbol=d.symbol,
                )
            )


def _takes(d: Deployed, ts: int) -> bool:
    """Whether ``d`` processes the base bar opening at ``ts`` (ms): it has not passed it."""
    return d.last_bar_ts is None or ts >= d.last_bar_ts + d.timeframe.millis


__all__ = ["BarOutcome", "Deployed", "TradingEngine"]
