"""The live loop: feeds -> repository -> the in-memory market state the charts read.

`LiveMarket` holds, per symbol, the cursor (the open time of the last closed candle that is
visible) and the forming candle. `FeedRunner` drives each feed on a background thread: closed
candles are upserted through the CandleRepository (idempotent, so a replay of stored bars is
harmless) before the cursor moves, so a chart never shows a candle the database does not hold.
One failing feed is stopped with its error recorded; the others go on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.repositories import CandleRepository
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
    status: str  # starting | live | finished | error | static
    cursor: pd.Timestamp | None  # open time of the last visible closed candle
    forming: Candle | None
    closed_count: int = 0  # closed candles received since start
    updated_at: datetime | None = None  # wall-clock time of the last event
    error: str | None = None
    version: int = 0  # +1 on every event or status change: "has anything moved?" in one int
    # the last closed candles of this feed, oldest first (stored before they got here): a
    # chart a few bars behind catches up without a query
    recent: tuple[Candle, ...] = ()


RECENT_CANDLES = 32


class LiveMarket:
    """Thread-safe registry of StreamState, written by the runner, read by requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, StreamState] = {}
        self._start_cursors: dict[str, pd.Timestamp | None] = {}

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
                    status="live",
                    cursor=event.candle.ts,
                    forming=None,
                    recent=(*state.recent[-(RECENT_CANDLES - 1) :], event.candle),
                    closed_count=state.closed_count + 1,
                    updated_at=now,
                    version=state.version + 1,
                )
            elif event.kind == "forming":
                state = replace(
                    state,
                    status="live",
                    forming=event.candle,
                    updated_at=now,
                    version=state.version + 1,
                )
            elif event.kind == "rewind":
                # a looping replay starts over: charts see the cursor go back and rebuild
                cursor = self._start_cursors.get(event.symbol)
                state = replace(
                    state,
                    cursor=cursor,
                    forming=None,
                    recent=(),
                    updated_at=now,
                    version=state.version + 1,
                )
            self._streams[event.symbol] = state
            return state

    def set_status(self, symbol: str, status: str, error: str | None = None) -> None:
        with self._lock:
            state = self._streams[symbol]
            self._streams[symbol] = replace(
                state, status=status, error=error, version=state.version + 1
            )


class FeedRunner:
    """Runs each feed on its own background thread (`start`), or steps them all in turn (`step`,
    for tests and benchmarks: use one or the other).

    Feeds the runner paces get one event per `interval` seconds; a self-paced feed (an
    exchange) is read as fast as its source delivers. The on_closed hook is where a live
    strategy runner will plug in.
    """

    def __init__(
        self,
        feeds: list[tuple[Feed, str]],
        market: LiveMarket,
        session_factory: sessionmaker[Session],
        interval: float,
        on_closed: Callable[[FeedEvent], None] | None = None,
    ) -> None:
        self._feeds = feeds
        self._market = market
        self._sessions = session_factory
        self._interval = interval
        self._on_closed = on_closed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: dict[str, Iterator[FeedEvent]] | None = None
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
            if not self._stop.is_set():
                self._market.set_status(symbol, "finished")
        except Exception as exc:  # one broken feed must not stop the others
            log.exception("feed %s failed", symbol)
            self._market.set_status(symbol, "error", f"{type(exc).__name__}: {exc}")
        return False

    def handle(self, event: FeedEvent) -> StreamState:
        """Persist a closed candle, then publish the event (exposed for tests and benchmarks)."""
        if event.kind == "closed":
            assert event.candle is not None
            with self._sessions.begin() as session:
                CandleRepository(session).upsert(
                    event.symbol, event.timeframe.label, candles_from_records([event.candle])
                )
        state = self._market.apply(event)
        if event.kind == "closed" and self._on_closed is not None:
            self._on_closed(event)
        return state
