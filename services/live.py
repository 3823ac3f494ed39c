"""The live loop: feeds -> repository -> the in-memory market state the charts read.

`LiveMarket` holds, per symbol, the cursor (the open time of the last closed candle that is
visible) and the forming candle. `FeedRunner` drives each feed on a background thread: closed
candles are upserted through the CandleRepository (idempotent, so a replay of stored bars is
harmless) before the cursor moves, so a chart never shows a candle the database does not hold.
One failing feed is stopped with its error recorded; the others go on. A feed that reports
its own state (the exchange feed: connecting, backfilling, retrying, live) sends "status"
events: the state holds until its next one, through the candles it stores meanwhile (a
backfill shows BACKFILLING until the last missed bar is stored).

A busy or briefly unreachable database (another process importing, a PostgreSQL restart) does
not stop a feed: the write waits a little (``RetryPolicy.lock_wait_ms``), then the feed goes
"delayed" and holds its closed candles (and rewinds) in order in a bounded backlog while its
clock goes on; it retries with exponential backoff and jitter, and the first write that
succeeds stores the whole backlog in one transaction and moves the cursor through it, so the
charts catch up with no gap and no duplicate. Past ``RetryPolicy.give_up_after_s`` or
``max_backlog`` candles the feed stops with a one-line error. Forming updates that arrive while
delayed are dropped: each is superseded by the close that follows it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.errors import failure_reason, is_transient_failure
from database.repositories import CandleRepository
from database.retry import backoff_wait
from database.session import LOCK_WAIT_OPTION
from market.candles import Candle, candles_from_records
from market.feeds import Feed, FeedEvent, stream
from market.timeframes import Timeframe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamState:
    """What a chart needs to know about one live symbol, at one instant."""

    symbol: str
    timeframe: Timeframe
    feed_kind: str
    # starting | live | delayed | finished | error | static, or what a self-reporting feed
    # (an exchange) last said: connecting | backfilling | retrying | live
    status: str
    cursor: pd.Timestamp | None  # open time of the last visible closed candle
    forming: Candle | None
    closed_count: int = 0  # closed candles received since start
    updated_at: datetime | None = None  # wall-clock time of the last event
    # why the status is error, delayed or retrying, or what a backfill does; one line, never SQL
    error: str | None = None
    version: int = 0  # +1 on every event or status change: "has anything moved?" in one int
    # the last closed candles of this feed, oldest first (stored before they got here): a
    # chart a few bars behind catches up without a query
    recent: tuple[Candle, ...] = ()
    delayed_since: datetime | None = None  # first failed write of the delay (wall clock)
    backlog: int = 0  # closed candles received but not stored yet (while delayed)
    # the last "status" event of a feed that reports its own state: its candles keep it
    feed_status: str | None = None
    feed_note: str | None = None


RECENT_CANDLES = 32


def _undelayed(state: StreamState) -> dict[str, object]:
    """The fields an event resets once the database took its candles again: the status line
    goes back to what the feed itself last reported (nothing, for replays)."""
    return {"error": state.feed_note, "delayed_since": None, "backlog": 0}


@dataclass(frozen=True)
class RetryPolicy:
    """How a feed rides out a busy or unreachable database.

    Each write waits up to ``lock_wait_ms`` for a lock; a write that still fails on a transient
    error (database/errors.py ``is_transient_failure``) is retried after ``first_wait_s``,
    doubling up to ``max_wait_s``, each wait drawn in [w/2, w] (jitter: feeds that failed
    together do not retry together). The feed gives up (status error) once it has been
    delayed ``give_up_after_s`` or holds more than ``max_backlog`` closed candles.
    """

    lock_wait_ms: int = 1_000
    first_wait_s: float = 0.1
    max_wait_s: float = 5.0
    give_up_after_s: float = 600.0
    max_backlog: int = 50_000

    def wait(self, attempt: int, rng: random.Random) -> float:
        """Seconds before retry ``attempt`` (1 = the first retry)."""
        return backoff_wait(attempt, self.first_wait_s, self.max_wait_s, rng)


class FeedDelayError(RuntimeError):
    """A feed delayed past its RetryPolicy's limits; the message is one line."""


@dataclass
class _Backlog:
    """One feed's events held back while the database is busy, oldest first."""

    started: float  # monotonic time of the first failed write
    since: datetime
    reason: str
    retry_at: float
    attempts: int = 1
    closed: int = 0
    events: list[FeedEvent] = field(default_factory=list)


class LiveMarket:
    """Thread-safe registry of StreamState, written by the runner, read by requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, StreamState] = {}
        self._start_cursors: dict[str, pd.Timestamp | None] = {}
        # called (outside the lock) when a feed goes down: (symbol, status, why); the app
        # raises a "feed_down" alert with it
        self.on_down: Callable[[str, str, str | None], object] | None = None
        # called (outside the lock) with each new state, in order per symbol: the feed relay
        # publishes them to the web workers that follow this process's feeds
        self._listeners: tuple[Callable[[StreamState], object], ...] = ()

    def add_listener(self, listener: Callable[[StreamState], object]) -> Callable[[], None]:
        """Call ``listener`` with every state a feed event or a status change makes (on the
        feed's thread: it must be quick; one that raises is logged). Returns its remover."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(f for f in self._listeners if f is not listener)

        return remove

    def replace(self, state: StreamState) -> bool:
        """Take ``state`` as the symbol's (a follower: the state another process's feed made);
        False, and nothing changes, for a symbol not registered here."""
        with self._lock:
            if state.symbol not in self._streams:
                return False
            self._streams[state.symbol] = state
            return True

    def _changed(self, state: StreamState) -> StreamState:
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:  # a listener never stops a feed
                log.exception("feed %s: a state listener failed", state.symbol)
        return state

    def register(self, feed: Feed, feed_kind: str) -> None:
        state = StreamState(
            symbol=feed.symbol,
            timeframe=feed.timeframe,
            feed_kind=feed_kind,
            status="starting",
            cursor=feed.start_cursor(),
            forming=None,
        )
        with self._lock:
            self._streams[feed.symbol] = state
            self._start_cursors[feed.symbol] = state.cursor

    def register_static(self, symbol: str, timeframe: Timeframe, cursor: pd.Timestamp) -> None:
        """A stored series without a feed: fully visible, never updated."""
        with self._lock:
            self._streams.setdefault(
                symbol, StreamState(symbol, timeframe, "none", "static", cursor, None)
            )

    def get(self, symbol: str) -> StreamState | None:
        with self._lock:
            return self._streams.get(symbol)

    def all(self) -> list[StreamState]:
        with self._lock:
            return list(self._streams.values())

    def apply(self, event: FeedEvent, now: datetime | None = None) -> StreamState:
        now = now or datetime.now(UTC)
        with self._lock:
            state = self._streams[event.symbol]
            if event.kind == "closed":
                assert event.candle is not None
                state = replace(
                    state,
                    status=state.feed_status or "live",
                    cursor=event.candle.ts,
                    forming=None,
                    recent=(*state.recent[-(RECENT_CANDLES - 1) :], event.candle),
                    closed_count=state.closed_count + 1,
                    updated_at=now,
                    version=state.version + 1,
                    **_undelayed(state),
                )
            elif event.kind == "forming":
                state = replace(
                    state,
                    status=state.feed_status or "live",
                    forming=event.candle,
                    updated_at=now,
                    version=state.version + 1,
                    **_undelayed(state),
                )
            elif event.kind == "rewind":
                # a looping replay starts over: charts see the cursor go back and rebuild
                cursor = self._start_cursors.get(event.symbol)
                delayed = state.status == "delayed"
                state = replace(
                    state,
                    status=(state.feed_status or "live") if delayed else state.status,
                    cursor=cursor,
                    forming=None,
                    recent=(),
                    updated_at=now,
                    version=state.version + 1,
                    **(_undelayed(state) if delayed else {}),
                )
            elif event.kind == "status":
                state = replace(
                    state,
                    status=event.status or "live",
                    error=event.note,
                    feed_status=event.status,
                    feed_note=event.note,
                    delayed_since=None,
                    backlog=0,
                    updated_at=now,
                    version=state.version + 1,
                )
            self._streams[event.symbol] = state
        return self._changed(state)

    def set_status(self, symbol: str, status: str, error: str | None = None) -> None:
        with self._lock:
            state = self._streams[symbol]
            state = self._streams[symbol] = replace(
                state,
                status=status,
                error=error,
                delayed_since=None,
                backlog=0,
                version=state.version + 1,
            )
        self._changed(state)
        if status == "error":
            self._down(symbol, status, error)

    def _down(self, symbol: str, status: str, why: str | None) -> None:
        if self.on_down is None:
            return
        try:
            self.on_down(symbol, status, why)
        except Exception:  # an alert never stops a feed
            log.exception("feed %s: the feed_down alert failed", symbol)

    def delay(self, symbol: str, since: datetime, backlog: int, reason: str) -> StreamState:
        """The feed's closed candles are waiting for the database: the cursor stays on the last
        stored one, the forming bar goes (it is not the bar after the cursor any more)."""
        if self._streams[symbol].status != "delayed":
            self._down(symbol, "delayed", reason)
        with self._lock:
            state = replace(
                self._streams[symbol],
                status="delayed",
                forming=None,
                error=reason,
                delayed_since=since,
                backlog=backlog,
            )
            state = replace(state, version=state.version + 1)
            self._streams[symbol] = state
        return self._changed(state)


class FeedRunner:
    """Runs each feed on its own background thread (`start`), or steps them all in turn (`step`,
    for tests and benchmarks: use one or the other).

    Feeds the runner paces get one event per `interval` seconds; a self-paced feed (an
    exchange) is read as fast as its source delivers. The on_closed hook is where the trading
    runner plugs in: it sees every closed candle once stored, in order; on_forming sees each
    forming update (resting orders fill as the bar forms), a failure of it logged, never
    stopping the feed. A delayed feed retries when its next event arrives (or, once its events
    end, by waiting).
    """

    def __init__(
        self,
        feeds: list[tuple[Feed, str]],
        market: LiveMarket,
        session_factory: sessionmaker[Session],
        interval: float,
        on_closed: Callable[[FeedEvent], None] | None = None,
        retry: RetryPolicy | None = None,
        on_forming: Callable[[FeedEvent], None] | None = None,
    ) -> None:
        self._feeds = feeds
        self._market = market
        self._sessions = session_factory
        self._interval = interval
        self._on_closed = on_closed
        self._on_forming = on_forming
        self._retry = retry or RetryPolicy()
        self._rng = random.Random()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: dict[str, Iterator[FeedEvent]] | None = None
        self._backlogs: dict[str, _Backlog] = {}  # symbol -> held events, while delayed
        for feed, kind in feeds:
            market.register(feed, kind)

    def start(self) -> None:
        if self._threads or self._streams is not None:
            raise RuntimeError("the feed runner is already running or being stepped")
        for feed, _ in self._feeds:
            thread = threading.Thread(
                target=self._run, args=(feed,), name=f"feed-{feed.symbol}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for feed, _ in self._feeds:  # a self-paced feed may be waiting on its source: wake it
            close = getattr(feed, "close", None)
            if callable(close):
                close()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _run(self, feed: Feed) -> None:
        events = stream(feed, self._interval, self._stop)
        while self._advance(feed.symbol, events):
            pass

    def step(self) -> bool:
        """Advance every active feed by one event, without waiting; False once none is left."""
        if self._threads:
            raise RuntimeError("the feed runner is running on its threads")
        if self._streams is None:
            self._streams = {feed.symbol: iter(feed.events()) for feed, _ in self._feeds}
        for symbol, events in list(self._streams.items()):
            if not self._advance(symbol, events):
                del self._streams[symbol]
        return bool(self._streams)

    def _advance(self, symbol: str, events: Iterator[FeedEvent]) -> bool:
        """Handle the next event of one feed; False when the feed ended, failed or was stopped."""
        try:
            self.handle(next(events))
            return True
        except StopIteration:
            if self._drain(symbol) and not self._stop.is_set():
                self._market.set_status(symbol, "finished")
        except FeedDelayError as exc:
            log.error("feed %s stopped: %s", symbol, exc)
            self._market.set_status(symbol, "error", str(exc))
        except Exception as exc:  # one broken feed must not stop the others
            log.exception("feed %s failed", symbol)
            self._market.set_status(symbol, "error", f"{type(exc).__name__}: {exc}")
        self._backlogs.pop(symbol, None)
        return False

    def handle(self, event: FeedEvent) -> StreamState:
        """Persist a closed candle, then publish the event (exposed for tests and benchmarks).

        While the feed is delayed the event joins its backlog instead, and the backlog is
        written when its retry is due. Raises FeedDelayError past the retry policy's limits."""
        backlog = self._backlogs.get(event.symbol)
        if backlog is None:
            if event.kind == "closed":
                try:
                    self._store([event])
                except Exception as exc:
                    if not is_transient_failure(exc):
                        raise
                    backlog = self._delay(event.symbol, exc)
            if backlog is None:
                return self._publish(event)
        return self._hold(backlog, event)

    def _publish(self, event: FeedEvent) -> StreamState:
        state = self._market.apply(event)
        if event.kind == "closed" and self._on_closed is not None:
            self._on_closed(event)
        elif event.kind == "forming" and self._on_forming is not None:
            try:
                self._on_forming(event)
            except Exception:  # a forming update's work never stops the feed
                log.exception("feed %s: the forming update's hook failed", event.symbol)
        return state

    def _store(self, events: list[FeedEvent]) -> None:
        """Upsert the closed candles of ``events`` (one feed's, in order) in one transaction:
        one bulk upsert per stretch between rewinds, so no statement holds a bar twice."""
        runs: list[list[Candle]] = [[]]
        for event in events:
            if event.kind == "rewind" and runs[-1]:
                runs.append([])
            elif event.kind == "closed":
                assert event.candle is not None
                if runs[-1] and event.candle.ts <= runs[-1][-1].ts:
                    runs.append([])
                runs[-1].append(event.candle)
        first = events[0]
        with self._sessions.begin() as session:
            session.connection(  # take the write lock up front, wait for it only briefly
                execution_options={
                    LOCK_WAIT_OPTION: self._retry.lock_wait_ms,
                    "sqlite_begin": "IMMEDIATE",
                }
            )
            repo = CandleRepository(session)
            for run in runs:
                if run:
                    repo.upsert(first.symbol, first.timeframe.label, candles_from_records(run))

    def _delay(self, symbol: str, exc: BaseException) -> _Backlog:
        reason = failure_reason(exc)
        now = time.monotonic()
        backlog = _Backlog(
            started=now,
            since=datetime.now(UTC),
            reason=reason,
            retry_at=now + self._retry.wait(1, self._rng),
        )
        self._backlogs[symbol] = backlog
        log.warning("feed %s delayed, the database is busy or unreachable: %s", symbol, reason)
        return backlog

    def _hold(self, backlog: _Backlog, event: FeedEvent) -> StreamState:
        if event.kind != "forming":
            backlog.events.append(event)
            backlog.closed += event.kind == "closed"
        self._check_limits(event.symbol, backlog)
        if time.monotonic() >= backlog.retry_at:
            caught_up = self._flush(event.symbol, backlog)
            if caught_up is not None:
                return caught_up
        return self._market.delay(event.symbol, backlog.since, backlog.closed, backlog.reason)

    def _flush(self, symbol: str, backlog: _Backlog) -> StreamState | None:
        """Write the backlog; on success publish its events in order (the state after them),
        on a transient failure schedule the next retry (None)."""
        try:
            self._store(backlog.events)
        except Exception as exc:
            if not is_transient_failure(exc):
                raise
            backlog.reason = failure_reason(exc)
            backlog.attempts += 1
            backlog.retry_at = time.monotonic() + self._retry.wait(backlog.attempts, self._rng)
            return None
        del self._backlogs[symbol]
        log.info(
            "feed %s caught up: %d closed candle(s) stored after %.1f s delayed",
            symbol,
            backlog.closed,
            time.monotonic() - backlog.started,
        )
        state = self._market.get(symbol)
        for event in backlog.events:
            state = self._publish(event)
        if state is not None and state.status == "delayed":  # only rewinds were held
            self._market.set_status(symbol, "live")
            state = self._market.get(symbol)
        assert state is not None
        return state

    def _check_limits(self, symbol: str, backlog: _Backlog) -> None:
        delayed = time.monotonic() - backlog.started
        if delayed > self._retry.give_up_after_s or backlog.closed > self._retry.max_backlog:
            raise FeedDelayError(
                f"the database was busy or unreachable for {delayed:.0f} s"
                f" ({backlog.closed} closed candle(s) not stored; limits"
                f" {self._retry.give_up_after_s:g} s, {self._retry.max_backlog} candles):"
                f" {backlog.reason}"
            )

    def _drain(self, symbol: str) -> bool:
        """After a feed's last event: retry its backlog until written (True), the runner is
        stopped (False) or the limits are reached (FeedDelayError)."""
        while (backlog := self._backlogs.get(symbol)) is not None:
            self._check_limits(symbol, backlog)
            if self._stop.wait(max(0.0, backlog.retry_at - time.monotonic())):
                return False
            self._flush(symbol, backlog)
        return True
