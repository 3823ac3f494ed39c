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

Cancel and modify go through the runner that runs: in its process by :meth:`apply` (under
the runner's lock: through the live broker when it holds the order, else on the stored
order), from another process as a row of ``order_requests`` that the runner answers within
``request_poll_s`` (:meth:`serve_requests`). Which process runs the runner is the database's
``runner_leases`` row: :meth:`start` takes it (refused while another runner renews it), the
runner renews it every ``sync_s`` and releases it at :meth:`stop`; a process that finds no
fresh holder edits the stored order itself (:func:`change_stored_order`), the lease row
locked, so a runner starting meanwhile reads the order after the change (docs/trading.md).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from database.repositories.candles import CandleRepository
from database.repositories.order_requests import OrderRequestRepository
from database.repositories.strategies import StrategyRepository
from database.repositories.trading import DeploymentRow, TradingRepository
from database.repositories.trading_batch import stale_trades
from database.session import write_session_factory
from market.candles import Candle, iter_candles
from market.feeds import FeedEvent
from market.resample import resample
from market.timeframes import Timeframe
from services.bar_sessions import BarSessions
from services.runner_process import run_forever  # app.py runner's (moved there)
from strategies.registry import create
from tracking.annotator import MarketAnnotator
from tracking.tracker import TradeTracker
from tracking.trade_records import collector_paused
from trading.alerts.events import AlertEvent
from trading.broker import PaperBroker
from trading.config import DeploymentSettings
from trading.engine import BarOutcome, TradingEngine
from trading.orders import OrderError, PaperOrder
from trading.replay import new_deployed
from trading.store import TradingStore, account_book, order_row, paper_order

log = logging.getLogger("stratlens.runner")

DEFAULT_HISTORY_BARS = 1000  # a new deployment's indicators open on this many past bars
LEASE_S = 10.0  # a runner whose heartbeat is older runs no more (it renews every sync_s)


class RunnerBusyError(RuntimeError):
    """Another trading runner holds this database's lease (two would trade twice)."""


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
        request_poll_s: float = 0.5,
        lease_s: float = LEASE_S,
        tracker: TradeTracker | None = None,
    ) -> None:
        self._sessions = sessions
        # writes read first (the account, order ids) then write, while the feeds write candles
        self._writes = write_session_factory(sessions)
        # the closed candles' transactions (SQLite: WAL checkpoints off their path)
        self._bar_sessions = BarSessions(sessions)
        # the open time of a symbol's last closed candle its feed has published: a replay
        # feed streams bars that are stored already, so "now" is the feed's, not the table's
        self._cursor = cursor
        self._notify = notify
        self._sync_s = sync_s
        self._history_bars = history_bars
        self._clock = clock
        # the process's trade tracker (services.runtime): its listeners (the live view, the
        # push) hear this runner's fills; None: one of its own (on these sessions, as the
        # process's: it reads an account's stored trades when its first deployment starts)
        self._store = TradingStore(tracker or TradeTracker(sessions, annotator=MarketAnnotator()))
        self.engine = TradingEngine()
        self.lock = threading.RLock()
        self._last_sync = -float("inf")
        self._bars = 0
        self._errors = 0
        self._last_bar: pd.Timestamp | None = None
        self._symbols: set[str] = set()
        self._waiting: set[str] = set()  # symbols whose feed went back in time (a replay)
        # called with each closed candle once handled (services.metrics: the runner's lag)
        self.after_closed: Callable[[FeedEvent], object] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False  # started: a process without it (TRADING_RUNNER=external) skips
        self._request_poll_s = request_poll_s
        self.lease_s = max(lease_s, 3 * sync_s)
        # who runs it, as the lease row says: host, process and this runner
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Take the lease, sync now, then every ``sync_s`` on a background thread (the
        embedded default), answering order requests every ``request_poll_s``.
        RunnerBusyError when another runner renews the lease."""
        now = datetime.now(UTC)
        stale = now - pd.Timedelta(seconds=self.lease_s)
        with self._writes.begin() as session:
            holder = OrderRequestRepository(session).take_lease(self.owner, now, stale_before=stale)
        if holder is not None and _dead_here(holder):  # killed on this host: no need to wait
            log.warning("trading runner: taking over the lease of %s (not running)", holder)
            with self._writes.begin() as session:
                holder = OrderRequestRepository(session).take_lease(
                    self.owner, now, stale_before=stale, replacing=holder
                )
        if holder is not None:
            raise RunnerBusyError(
                f"another trading runner ({holder}) runs on this database: stop it first, or"
                f" wait {self.lease_s:g} s after it died"
            )
        self.sync()
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="trading-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        started = self._running
        self._running = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._bar_sessions.close()
        if started:
            try:
                with self._writes.begin() as session:
                    OrderRequestRepository(session).release(self.owner)
            except Exception:  # the lease goes stale by itself
                log.exception("trading runner: the lease could not be released")

    def _loop(self) -> None:
        next_sync = self._clock() + self._sync_s
        while not self._stop.wait(self._request_poll_s):
            try:
                self._bar_sessions.checkpoint()
                self.serve_requests()
                if self._clock() >= next_sync:
                    next_sync = self._clock() + self._sync_s
                    self._renew()
                    self.sync()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("trading runner: sync failed")

    def _renew(self) -> None:
        with self._writes.begin() as session:
            held = OrderRequestRepository(session).renew(self.owner, datetime.now(UTC))
        if not held:  # another runner took a lease this one let go stale: stop trading
            log.error("trading runner: its lease was taken by another runner; stopping")
            self._alert_lost_lease()
            self._running = False
            self._stop.set()

    def _alert_lost_lease(self) -> None:
        self._send(
            AlertEvent(
                kind="deployment_error",
                message="the trading runner lost its lease to another runner and stopped",
                severity="critical",
                key=f"lease-{self.owner}",
            )
        )

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
            self._store.warm(account.name)
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
            self._bar(symbol, candle, base.label)

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
        # the cyclic GC waits until the candle is committed (a full collection walks every
        # object of the process: up to ~100 ms in the middle of a candle otherwise)
        with self.lock, collector_paused():
            self._closed(event.symbol, event.candle, event.timeframe.label)
        if self.after_closed is not None:
            self.after_closed(event)

    def _closed(self, symbol: str, candle: Candle, timeframe: str | None = None) -> None:
        if self._clock() - self._last_sync >= self._sync_s:
            self.sync()
        watched = any(d.symbol == symbol for d in self.engine.deployed.values())
        if not watched and not any(b.open_orders(symbol) for b in self.engine.brokers.values()):
            return
        if self._behind(symbol, candle.ts):
            return
        self._bar(symbol, candle, timeframe)

    def on_forming(self, event: FeedEvent) -> None:
        """FeedRunner's hook: a forming update of a feed's bar. The orders resting on its
        symbol that it reaches fill at once (TradingEngine.on_forming), stored in one
        transaction; nothing is decided before the bar closes."""
        if not self._running or event.kind != "forming" or event.candle is None:
            return
        with self.lock:
            if not any(b.open_orders(event.symbol) for b in self.engine.brokers.values()):
                return
            ts = int(event.candle.ts.value // 1_000_000)
            if self.engine.waits_until(event.symbol, ts) is not None:
                return  # a bar its deployments are past (a replay starting over)
            outcome = self.engine.on_forming(event.symbol, event.candle)
            if outcome is not None:
                self._commit(outcome)

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

    def _bar(self, symbol: str, candle, timeframe: str | None = None) -> None:
        if timeframe is not None:  # the trade tracker's labels take the stored bar now
            self._store.bar_closed(symbol, timeframe, candle)
        # market time: a fill is dated by the bar whose prices made it (a replay feed too)
        outcome = self.engine.on_candle(symbol, candle)
        self._commit(outcome)
        self._bars += 1
        self._last_bar = candle.ts

    def _commit(self, outcome: BarOutcome) -> None:
        try:
            try:
                self._write(outcome)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    # the connection was dead (the server restarted; bars' connections are
                    # not pinged): nothing was stored, the bar is written again on a new one
                    log.warning("trading runner: the database connection was lost; writing again")
                elif stale_trades(exc):
                    # another writer stored trades of an account of these fills: nothing was
                    # stored; written again, the trade tracker reading those accounts first
                    log.info(
                        "trading runner: an account's trades were stored elsewhere; writing again"
                    )
                else:
                    raise
                self._store.forget_written()
                self._write(outcome, trades_in_batch=False)
            self._bar_sessions.after_commit()
        except Exception:
            self._errors += 1
            log.exception("trading runner: storing the bar %s failed", outcome.ts)
            raise
        for d in outcome.stopped:
            if d.policy.position.side == 0:
                self.engine.remove(d.id)
        for note in outcome.alerts:
            self._send(note)

    def _write(self, outcome: BarOutcome, *, trades_in_batch: bool = True) -> None:
        with self._bar_sessions.transaction() as session:
            # a bar's commit does not wait for the WAL flush (PostgreSQL): the bar is
            # processed again after a database crash, as after the runner's own; its
            # executed trades join the one statement text of its rows (PostgreSQL)
            self._store.write(
                session, [outcome], no_flush_wait=True, trades_in_batch=trades_in_batch
            )

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

    def apply(self, client_order_id: str, action: str, changes: dict[str, float]) -> PaperOrder:
        """Cancel or modify an order from this runner's process: through the live broker
        when this runner holds it, else on the stored order (under the runner's lock, so a
        deployment starting does not read the order half changed). OrderError says why not."""
        with self.lock:
            if self.holds(client_order_id):
                if action == "cancel":
                    return self.cancel(client_order_id)
                return self.modify(client_order_id, **changes)
            with self._writes.begin() as session:
                return change_stored_order(session, client_order_id, action, changes)

    def serve_requests(self) -> int:
        """Answer the pending order requests of other processes, oldest first; how many."""
        with self._sessions() as session:
            pending = OrderRequestRepository(session).pending()
        for request in pending:
            try:
                order = self.apply(request.client_order_id, request.action, request.changes)
                status, answer = "applied", order.status
            except OrderError as exc:
                status, answer = "refused", str(exc)
            with self._writes.begin() as session:
                OrderRequestRepository(session).answer(
                    request.id, status, answer, datetime.now(UTC)
                )
        return len(pending)

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


def _dead_here(owner: str) -> bool:
    """Whether the lease's ``owner`` (host:pid:token) was a process of this host that is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process: another runner of it is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def change_stored_order(
    session: Session, client_order_id: str, action: str, changes: dict[str, float]
) -> PaperOrder:
    """Cancel or modify a stored order that no running broker holds, by the paper broker's
    own rules (a filled order cannot be cancelled...), in the caller's transaction: OrderError
    says why not."""
    repo = TradingRepository(session)
    found = repo.order(client_order_id)
    if found is None:
        raise OrderError(f"unknown order {client_order_id!r}")
    account_id, row = found
    account = repo.account_by_id(account_id)
    assert account is not None
    broker = PaperBroker(account_book(account))
    broker.restore([paper_order(row)], [])
    now = datetime.now(UTC)
    if action == "cancel":
        order = broker.cancel(client_order_id, now, "cancelled by the user")
    else:
        order = broker.modify(client_order_id, now, **changes)
    orders, _, _ = broker.drain()
    repo.save_orders(account_id, [order_row(o) for o in orders])
    return order


__all__ = [
    "RunnerBusyError",
    "RunnerStatus",
    "TradingRunner",
    "change_stored_order",
    "run_forever",
]
