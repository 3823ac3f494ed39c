"""The live runner: every running deployment evaluated on each closed candle, independent of
any browser. By default it runs inside the app's process (the feed threads call it as each
closed candle is stored); ``python app.py runner`` runs it as its own process.

>>> runner = TradingRunner(sessions, notify=alert_center.emit)
>>> runner.sync()                      # picks up deployments started or stopped in the database
>>> runner.on_closed(event)            # FeedRunner's hook: a closed candle, once stored

What it does per closed candle (one transaction): the engine's bar (trading.engine), then its
orders, fills, positions, account, deployment states, signals and executed trades written
(trading.store), then the alerts. Deployments started while it runs are picked up within
``sync_s`` seconds (or at the next candle); a restart reads everything back from the
database (accounts, open orders, positions, each deployment's state and last bar) and first
processes, in order, the stored candles that closed while it was down. Client order ids are
deterministic, so a bar processed again never places an order twice.

Cancel and modify from the pages go through :meth:`cancel` / :meth:`modify` (under the
runner's lock, written at once); with the runner in another process, a page changes a
stored order only when no runner holds it (see docs/trading.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.repositories.candles import CandleRepository
from database.repositories.strategies import StrategyRepository
from database.repositories.trading import DeploymentRow, TradingRepository
from database.session import write_session_factory
from market.candles import iter_candles
from market.feeds import FeedEvent
from market.resample import resample
from market.timeframes import Timeframe
from strategies.registry import create
from trading.alerts.events import AlertEvent
from trading.config import DeploymentSettings
from trading.engine import BarOutcome, TradingEngine
from trading.orders import OrderError, PaperOrder
from trading.replay import new_deployed
from trading.store import TradingStore, account_book

log = logging.getLogger("stratlens.runner")

DEFAULT_HISTORY_BARS = 1000  # a new deployment's indicators open on this many past bars


@dataclass(frozen=True)
class RunnerStatus:
    deployments: int
    accounts: int
    bars: int
    last_bar: pd.Timestamp | None
    errors: int


class TradingRunner:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        notify: Callable[[AlertEvent], object] | None = None,
        sync_s: float = 2.0,
        history_bars: int = DEFAULT_HISTORY_BARS,
        clock: Callable[[], float] = time.monotonic,
        cursor: Callable[[str], pd.Timestamp | None] | None = None,
    ) -> None:
        self._sessions = sessions
        # writes read first (the account, order ids) then write, while the feeds write candles
        self._writes = write_session_factory(sessions)
        # the open time of a symbol's last closed candle its feed has published: a replay
        # feed streams bars that are stored already, so "now" is the feed's, not the table's
        self._cursor = cursor
        self._notify = notify
        self._sync_s = sync_s
        self._history_bars = history_bars
        self._clock = clock
        self._store = TradingStore()
        self.engine = TradingEngine()
        self.lock = threading.RLock()
        self._last_sync = -float("inf")
        self._bars = 0
        self._errors = 0
        self._last_bar: pd.Timestamp | None = None
        self._symbols: set[str] = set()
        self._waiting: set[str] = set()  # symbols whose feed went back in time (a replay)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False  # started: a process without it (TRADING_RUNNER=external) skips

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Sync now, then every ``sync_s`` on a background thread (the embedded default)."""
        self.sync()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="trading-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._running = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._sync_s):
            try:
                self.sync()
            except Exception:  # a database hiccup: the next sync tries again
                log.exception("trading runner: sync failed")

    def status(self) -> RunnerStatus:
        with self.lock:
            return RunnerStatus(
                len(self.engine.deployed), len(self.engine.brokers), self._bars, self._last_bar,
                self._errors,
            )  # fmt: skip

    # -- deployments -------------------------------------------------------------------------
    def sync(self) -> None:
        """Start the deployments marked running that the engine does not run yet (catching up
        on the stored candles they missed), drop those no longer running."""
        with self.lock:
            self._last_sync = self._clock()
            with self._sessions() as session:
                rows = TradingRepository(session).deployments(status="running")
                if not self._symbols:
                    self._symbols = {s.symbol for s in CandleRepository(session).series()}
            wanted = {row.id: row for row in rows}
            for deployment_id in [d for d in self.engine.deployed if d not in wanted]:
                self.engine.remove(deployment_id)
            for row in rows:
                if row.id not in self.engine.deployed:
                    try:
                        self._start(row)
                    except Exception as exc:  # a bad config stops only this deployment
                        log.exception("deployment %s cannot start", row.name)
                        self._fail(row, f"{type(exc).__name__}: {exc}")

    def _start(self, row: DeploymentRow) -> None:
        strategy = create(row.strategy_name, **dict(row.strategy_params))
        settings = DeploymentSettings.parse(row.settings)
        tf = Timeframe.parse(row.timeframe)
        with self._writes.begin() as session:
            repo = TradingRepository(session)
            account = repo.account_by_id(row.account_id)
            assert account is not None
            until = row.last_bar_ts
            if until is None and self._cursor is not None:
                cursor = self._cursor(row.symbol)
                until = None if cursor is None else int(cursor.value // 1_000_000)
            history, base = self._history(session, row.symbol, tf, until)
            now = datetime.now(UTC)
            run_id = row.run_id
            if run_id is None:
                run = StrategyRepository(session).runs.create(
                    strategy.name, strategy.config, row.symbol, tf.label, "paper", started_at=now
                )
                run_id = run.id
                repo.update_deployment(row.id, now, run_id=run_id)
            last_bar_ts = row.last_bar_ts
            if last_bar_ts is None and len(history):
                last_bar_ts = int(history.index[-1].value // 1_000_000)
                repo.update_deployment(row.id, now, last_bar_ts=last_bar_ts)
            fresh = account.id not in self.engine.brokers
            if fresh:
                orders, positions = self._store.load_book(session, account.id)
        if fresh:
            broker = self.engine.add_account(account_book(account), self._symbols)
            broker.restore(orders, positions)
        d = new_deployed(row.id, row.name, row.account_id, row.symbol, tf.label, strategy, settings)
        d.run_id, d.last_bar_ts = run_id, last_bar_ts
        d.policy.restore(dict(row.state), row.bar_index, row.last_bar_ts)
        self.engine.set_base(row.symbol, base)
        self.engine.add(d, history)
        log.info("deployment %s running on %s %s", row.name, row.symbol, tf.label)
        self._catch_up(row.symbol, base, None if last_bar_ts is None else last_bar_ts + tf.millis)

    def _history(
        self, session: Session, symbol: str, tf: Timeframe, until_ms: int | None
    ) -> tuple[pd.DataFrame, Timeframe]:
        """The deployment's timeframe's complete bars up to ``until_ms`` (or the last stored)
        and the base timeframe its candles arrive in."""
        repo = CandleRepository(session)
        stored = sorted(
            (Timeframe.parse(s.timeframe) for s in repo.series() if s.symbol == symbol),
            key=lambda t: t.seconds,
        )
        if not stored:
            raise ValueError(f"{symbol} has no stored candles")
        base = stored[0]
        end = None if until_ms is None else pd.Timestamp(until_ms, unit="ms", tz="UTC")
        if tf.label == base.label:
            frame = repo.frame(symbol, tf.label, end=end, last=self._history_bars)
            return frame, base
        if not base.can_resample_to(tf):
            raise ValueError(
                f"{symbol} is stored in {base.label}, which cannot make {tf.label} bars"
            )
        ratio = max(1, tf.millis // base.millis)
        raw = repo.frame(symbol, base.label, end=end, last=self._history_bars * ratio)
        bars = resample(raw, base, tf)
        if (
            len(bars)
            and raw.index[-1].value // 1_000_000 + base.millis
            < bars.index[-1].value // 1_000_000 + tf.millis
        ):
            bars = bars.iloc[:-1]  # the bucket still forming
        return bars, base

    def _catch_up(self, symbol: str, base: Timeframe, from_ms: int | None) -> None:
        """Process the stored candles of ``symbol`` from ``from_ms`` on (those that closed
        after the deployment's last processed bar)."""
        if from_ms is None:
            return
        start = pd.Timestamp(from_ms, unit="ms", tz="UTC")
        end = self._cursor(symbol) if self._cursor is not None else None
        if end is not None and end < start:
            return
        with self._sessions() as session:
            missed = CandleRepository(session).frame(symbol, base.label, start=start, end=end)
        if len(missed):
            log.info("catching up %d %s %s candles", len(missed), symbol, base.label)
        for candle in iter_candles(missed):
            self._bar(symbol, candle)

    def _fail(self, row: DeploymentRow, error: str) -> None:
        with self._writes.begin() as session:
            TradingRepository(session).update_deployment(
                row.id, datetime.now(UTC), status="error", error=error
            )
        note = AlertEvent(
            "deployment_error", f"deployment {row.name} stopped: {error}",
            severity="critical", deployment=row.name, symbol=row.symbol,
        )  # fmt: skip
        self._send(note)

    # -- candles -----------------------------------------------------------------------------
    def on_closed(self, event: FeedEvent) -> None:
        """FeedRunner's hook: a closed candle of a feed, already stored."""
        if not self._running or event.kind != "closed" or event.candle is None:
            return
        with self.lock:
            if self._clock() - self._last_sync >= self._sync_s:
                self.sync()
            watched = any(d.symbol == event.symbol for d in self.engine.deployed.values())
            if not watched and not any(
                b.open_orders(event.symbol) for b in self.engine.brokers.values()
            ):
                return
            if self._behind(event.symbol, event.candle.ts):
                return
            self._bar(event.symbol, event.candle)

    def _behind(self, symbol: str, ts: pd.Timestamp) -> bool:
        """Whether every deployment on ``symbol`` is past this bar: its feed went back in
        time (a looping replay started over). Nothing trades the past again, so they wait for
        the feed to pass their last bar; the first such bar raises one info alert saying so."""
        until = self.engine.waits_until(symbol, int(ts.value // 1_000_000))
        if until is None:
            self._waiting.discard(symbol)
            return False
        if symbol not in self._waiting:
            self._waiting.add(symbol)
            after = pd.Timestamp(until, unit="ms", tz="UTC")
            self._send(
                AlertEvent(
                    "feed_rewound",
                    f"{symbol}'s feed went back to {ts.isoformat()} (a replay starting over): "
                    f"its deployments wait for the bars from {after.isoformat()} on",
                    severity="info",
                    symbol=symbol,
                )
            )
        return True

    def _bar(self, symbol: str, candle) -> None:
        # market time: a fill is dated by the bar whose prices made it (a replay feed too)
        outcome = self.engine.on_candle(symbol, candle)
        self._commit(outcome)
        self._bars += 1
        self._last_bar = candle.ts

    def _commit(self, outcome: BarOutcome) -> None:
        try:
            with self._writes.begin() as session:
                self._store.write(session, [outcome])
        except Exception:
            self._errors += 1
            log.exception("trading runner: storing the bar %s failed", outcome.ts)
            raise
        for d in outcome.stopped:
            if d.policy.position.side == 0:
                self.engine.remove(d.id)
        for note in outcome.alerts:
            self._send(note)

    def _send(self, event: AlertEvent) -> object:
        """``notify(event)``'s answer (the alerts stored), None when it was only logged."""
        if self._notify is None:
            log.info("alert %s: %s", event.kind, event.message)
            return None
        try:
            return self._notify(event)
        except Exception:  # an alert channel never stops trading
            log.exception("alert %s could not be raised", event.kind)
            return None

    # -- orders from the pages ---------------------------------------------------------------
    def holds(self, client_order_id: str) -> bool:
        """Whether this runner trades the account of that order now."""
        with self.lock:
            return any(client_order_id in b.orders for b in self.engine.brokers.values())

    def cancel(self, client_order_id: str) -> PaperOrder:
        return self._change(
            client_order_id, lambda b, now: b.cancel(client_order_id, now, "cancelled by the user")
        )

    def modify(self, client_order_id: str, **changes: float | None) -> PaperOrder:
        return self._change(
            client_order_id, lambda b, now: b.modify(client_order_id, now, **changes)
        )

    def _change(self, client_order_id: str, action) -> PaperOrder:
        with self.lock:
            for account_id, broker in self.engine.brokers.items():
                if client_order_id in broker.orders:
                    now = datetime.now(UTC)
                    order = action(broker, now)
                    outcome = BarOutcome(0, now)
                    orders, _fills, _positions = broker.drain()
                    outcome.orders[account_id] = orders
                    outcome.accounts.append(broker.account)
                    self._commit(outcome)
                    return order
        raise OrderError(f"order {client_order_id!r} is not held by the running runner")


def run_forever(settings) -> int:
    """``app.py runner``: the feeds and the trading runner in this process, until stopped."""
    import signal

    from services.runtime import build_services

    services = build_services(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    services.trading.start()
    services.runner.start()
    log.info("runner: %d deployments running", services.trading.status().deployments)
    try:
        stop.wait()
    finally:
        services.close()
    return 0


__all__ = ["RunnerStatus", "TradingRunner", "run_forever"]
