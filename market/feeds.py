"""Live candle feeds behind one interface: replayed history, a random walk, later an exchange.

Example::

    feed = ReplayFeed("SP500", "1d", candles, replay_bars=300, updates_per_candle=4)
    stop = threading.Event()
    for event in stream(feed, event_interval(feed_speed=1.0, updates_per_candle=4), stop):
        store(event)

A feed yields, per new candle, ``updates_per_candle`` "forming" events (the bar so far, same
``ts`` as the final bar) and then one "closed" event with the final bar. A looping replay
yields "rewind" when it starts over: consumers drop the candles after ``start_cursor()``.
A feed that reports its own state (an exchange: connecting, backfilling, retrying, live)
yields "status" events; the state holds until its next one.

Pacing: feeds with ``self_paced = False`` (replay, random walk) never sleep; ``events()``
yields as fast as it is iterated, which keeps them testable. The caller paces them with
:func:`paced` (or :func:`stream`, which also passes self-paced feeds straight through).
A self-paced feed (an exchange) blocks on its source instead. A closed bar and the next bar's
first update come together, as from an exchange (the bar that closes is seen as closed when
the next one opens): a chart polled at any moment shows a forming bar, never a gap between
bars. A chart refreshed once per candle would otherwise sample the same phase of every
candle, and could show no forming bar for minutes.

Intra-bar path of forming updates (:func:`forming_updates`): price walks
open -> low -> high -> close when the bar closes at or above its open, and
open -> high -> low -> close when it closes below, at constant speed along that path.
Update ``j`` of ``k`` shows the bar after ``j / (k + 1)`` of the path: high and low are the
extremes reached so far, volume is that share of the final volume. High, low and volume
therefore only grow, never pass the final bar's, and the closed event completes the path.

Random walk (:func:`random_walk_bars`): geometric, so prices stay positive. Each bar's
randomness depends only on (seed, symbol, bar open time), so the walk continues exactly from
any candle: a feed restarted from its last closed candle, or from the last bar of
``generate_random_walk`` in :mod:`market.sample_data`, yields the same bars as if it had
never stopped.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from market.candles import CANDLE_COLUMNS, Candle
from market.timeframes import Timeframe, from_epoch_ms, timestamp_ms

DEFAULT_VOLATILITY = 0.001  # standard deviation of one bar's log return
BASE_VOLUME = 1000.0
_STEPS = 8  # intra-bar steps of the random walk, which give each bar its high and low


@dataclass(frozen=True)
class FeedEvent:
    # rewind: a looping replay starts over; status: a self-paced feed reports its own state
    kind: Literal["forming", "closed", "rewind", "status"]
    symbol: str
    timeframe: Timeframe
    candle: Candle | None  # None only for rewind and status
    # status events only: the state the feed is in until its next status event
    # (connecting, backfilling, live, retrying) and what the status line adds to it
    status: str | None = None
    note: str | None = None


@runtime_checkable
class Feed(Protocol):
    symbol: str
    timeframe: Timeframe
    # False: the caller paces events (replay, random walk); True: blocks on its source
    self_paced: bool

    def start_cursor(self) -> pd.Timestamp | None:
        """Open time of the last closed candle already visible before the stream starts."""
        ...

    def events(self) -> Iterator[FeedEvent]:
        """The event stream; never sleeps when ``self_paced`` is False."""
        ...


class ReplayFeed:
    """Replays the last ``replay_bars`` candles of a stored series, looping by default.

    The candles before them are "already visible": ``start_cursor()`` is the open time of
    the last of those (None when everything is replayed).
    """

    self_paced = False

    def __init__(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        candles: pd.DataFrame,
        *,
        replay_bars: int,
        updates_per_candle: int,
        loop: bool = True,
    ) -> None:
        if candles.empty:
            raise ValueError(f"{symbol}: nothing to replay (no candles)")
        if replay_bars < 1:
            raise ValueError(f"{symbol}: replay_bars must be at least 1, got {replay_bars}")
        if updates_per_candle < 0:
            raise ValueError(f"{symbol}: updates_per_candle must be >= 0")
        if not candles.index.is_monotonic_increasing:
            raise ValueError(f"{symbol}: candle index must be increasing")
        self.symbol = symbol
        self.timeframe = Timeframe.parse(timeframe)
        self.updates_per_candle = updates_per_candle
        self.loop = loop
        self._start = max(len(candles) - replay_bars, 0)
        self._index = candles.index
        self._values = np.column_stack([candles[c].to_numpy(np.float64) for c in CANDLE_COLUMNS])

    def start_cursor(self) -> pd.Timestamp | None:
        return self._index[self._start - 1] if self._start > 0 else None

    @property
    def replayed(self) -> int:
        """How many candles one pass replays."""
        return len(self._index) - self._start

    def events(self) -> Iterator[FeedEvent]:
        while True:
            for i in range(self._start, len(self._index)):
                o, h, low, c, v = self._values[i].tolist()
                candle = Candle(self._index[i], o, h, low, c, v)
                yield from _bar_events(self.symbol, self.timeframe, candle, self.updates_per_candle)
            if not self.loop:
                return
            yield FeedEvent("rewind", self.symbol, self.timeframe, None)


class RandomWalkFeed:
    """An endless geometric random walk continuing from ``last_candle``.

    Each new bar opens at the previous close, one timeframe later. Without ``last_candle`` the
    first bar opens at ``start_price`` at ``start`` (default: the current time, floored to the
    timeframe). Deterministic for a given seed, symbol and last candle (or start).
    """

    self_paced = False

    def __init__(
        self,
        symbol: str,
        timeframe: Timeframe | str,
        last_candle: Candle | None,
        *,
        seed: int,
        updates_per_candle: int,
        start_price: float = 100.0,
        volatility: float = DEFAULT_VOLATILITY,
        start: pd.Timestamp | None = None,
    ) -> None:
        if updates_per_candle < 0:
            raise ValueError(f"{symbol}: updates_per_candle must be >= 0")
        if not start_price > 0 or not volatility > 0:
            raise ValueError(f"{symbol}: start_price and volatility must be positive")
        self.symbol = symbol
        self.timeframe = Timeframe.parse(timeframe)
        self.last_candle = last_candle
        self.seed = seed
        self.updates_per_candle = updates_per_candle
        self.start_price = start_price
        self.volatility = volatility
        self.start = start

    def start_cursor(self) -> pd.Timestamp | None:
        return self.last_candle.ts if self.last_candle is not None else None

    def events(self) -> Iterator[FeedEvent]:
        if self.last_candle is not None:
            ts_ms = timestamp_ms(self.last_candle.ts) + self.timeframe.millis
            price = self.last_candle.close
        else:
            start = pd.Timestamp.now(tz="UTC") if self.start is None else self.start
            ts_ms = int(self.timeframe.bucket_start_ms(timestamp_ms(start)))
            price = self.start_price
        while True:
            bars = random_walk_bars(
                self.symbol, np.array([ts_ms]), price, seed=self.seed, volatility=self.volatility
            )
            o, h, low, c, v = (float(bars[col][0]) for col in CANDLE_COLUMNS)
            candle = Candle(from_epoch_ms(np.array([ts_ms]))[0], o, h, low, c, v)
            yield from _bar_events(self.symbol, self.timeframe, candle, self.updates_per_candle)
            ts_ms += self.timeframe.millis
            price = c


def random_walk_bars(
    symbol: str,
    ts_ms: np.ndarray,
    first_open: float,
    *,
    seed: int,
    volatility: float = DEFAULT_VOLATILITY,
) -> dict[str, np.ndarray]:
    """OHLCV arrays of consecutive random-walk bars opening at ``ts_ms`` (epoch ms).

    The first bar opens at ``first_open``, each later one at the previous close. Bar ``i``
    draws its moves from (seed, symbol, ts_ms[i]) alone, so generating bars in one call or
    one at a time (chaining the close) gives identical numbers.

    >>> bars = random_walk_bars("DEMO", np.array([0, 60_000]), 100.0, seed=1)
    >>> bool(bars["open"][1] == bars["close"][0])
    True
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    uniforms = _uniforms(_symbol_key(seed, symbol), ts, _STEPS + 2)
    normals = _box_muller(uniforms)
    path = np.cumsum(normals[:, :_STEPS] * (volatility / np.sqrt(_STEPS)), axis=1)
    growth = np.exp(path[:, -1])
    up = np.maximum(np.maximum(np.exp(path.max(axis=1)), growth), 1.0)
    down = np.minimum(np.minimum(np.exp(path.min(axis=1)), growth), 1.0)
    # close[i] = close[i-1] * growth[i], multiplied in order, exactly as a one-bar call does
    closes = np.multiply.accumulate(np.r_[float(first_open), growth])
    opens, closes = closes[:-1], closes[1:]
    activity = 1.0 + np.abs(path[:, -1]) / volatility
    volume = BASE_VOLUME * np.exp(0.5 * normals[:, _STEPS]) * activity
    return {
        "open": opens,
        "high": opens * up,
        "low": opens * down,
        "close": closes,
        "volume": volume,
    }


def forming_updates(candle: Candle, updates: int) -> list[Candle]:
    """The ``updates`` intermediate states of ``candle`` (see the module docstring).

    >>> ts = pd.Timestamp("2024-01-02", tz="UTC")
    >>> [c.close for c in forming_updates(Candle(ts, 10, 13, 9, 12, 100), 2)]
    [10.0, 12.0]
    """
    o, h, low, c = (float(x) for x in (candle.open, candle.high, candle.low, candle.close))
    vertices = [o, low, h, c] if c >= o else [o, h, low, c]
    distance = np.r_[0.0, np.cumsum(np.abs(np.diff(vertices)))]
    total = distance[-1]
    states = []
    for j in range(1, updates + 1):
        share = j / (updates + 1)
        walked = share * total
        price = float(np.interp(walked, distance, vertices)) if total > 0 else o
        price = min(max(price, low), h)
        visited = [v for v, d in zip(vertices, distance, strict=True) if d <= walked]
        states.append(
            Candle(
                candle.ts,
                o,
                min(max(*visited, price), h),
                max(min(*visited, price), low),
                price,
                candle.volume * share,
            )
        )
    return states


def event_interval(feed_speed: float, updates_per_candle: int) -> float:
    """Seconds between paced events so that ``feed_speed`` candles close per second: a bar's
    updates are spaced evenly, its close comes with the next bar's first update (:func:`paced`);
    without updates, closes are spaced."""
    return 1.0 / (feed_speed * max(updates_per_candle, 1))


def paced(
    events: Iterable[FeedEvent], interval: float, stop: threading.Event
) -> Iterator[FeedEvent]:
    """Yield ``events`` one per ``interval`` seconds until exhausted or ``stop`` is set.

    The first event comes at once; a rewind costs no time, nor does a closed bar followed by
    the next bar's first update (both come at once: the chart never sits between two bars).
    Waiting is on ``stop``, so setting it ends the stream within one wait. Deadlines are
    absolute, so the time the consumer spends between events does not add up as drift; a
    consumer that falls behind gets the next event at once, but no burst to catch up.
    """
    deadline = time.monotonic()
    source = iter(events)
    upcoming = next(source, None)
    while upcoming is not None:
        if stop.is_set():
            return
        event, upcoming = upcoming, next(source, None)
        yield event
        if event.kind == "rewind":
            continue
        if event.kind == "closed" and upcoming is not None and upcoming.kind == "forming":
            continue
        now = time.monotonic()
        deadline = max(deadline + interval, now)
        if stop.wait(deadline - now):
            return


def stream(feed: Feed, interval: float, stop: threading.Event) -> Iterator[FeedEvent]:
    """Events of ``feed``: paced by ``interval`` unless the feed paces itself."""
    if not feed.self_paced:
        yield from paced(feed.events(), interval, stop)
        return
    for event in feed.events():
        if stop.is_set():
            return
        yield event


def _bar_events(
    symbol: str, timeframe: Timeframe, candle: Candle, updates: int
) -> Iterator[FeedEvent]:
    for state in forming_updates(candle, updates):
        yield FeedEvent("forming", symbol, timeframe, state)
    yield FeedEvent("closed", symbol, timeframe, candle)


def _symbol_key(seed: int, symbol: str) -> np.ndarray:
    digest = hashlib.blake2b(f"{seed}\x00{symbol}".encode(), digest_size=8).digest()
    return np.frombuffer(digest, dtype=np.uint64).copy()


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # a counter-based generator: bar i's numbers are a pure function of its key and counter
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _uniforms(key: np.ndarray, ts_ms: np.ndarray, count: int) -> np.ndarray:
    """(len(ts_ms), count) uniforms in (0, 1), each a function of (key, ts, column) only."""
    base = _splitmix64(ts_ms.view(np.uint64) ^ key)
    counters = base[:, None] + np.arange(1, count + 1, dtype=np.uint64)[None, :] * _GOLDEN
    bits = _splitmix64(counters) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) / 2.0**53


def _box_muller(uniforms: np.ndarray) -> np.ndarray:
    u1, u2 = uniforms[:, 0::2], uniforms[:, 1::2]
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
