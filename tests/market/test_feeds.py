from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from market.candles import Candle, candles_from_records, iter_candles
from market.feeds import (
    Feed,
    FeedEvent,
    RandomWalkFeed,
    ReplayFeed,
    event_interval,
    forming_updates,
    paced,
    stream,
)
from market.timeframes import Timeframe
from market.validation import validate_candles

DAY = Timeframe.parse("1d")
MINUTE = Timeframe.parse("1m")
TS = pd.Timestamp("2024-01-02", tz="UTC")


def daily(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[50.0, close[:-1]]
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.98,
            "close": close,
            "volume": rng.integers(100, 1000, n).astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC", name="ts"),
    )


def take(events: Iterator[FeedEvent], n: int) -> list[FeedEvent]:
    return list(itertools.islice(events, n))


# replay


def test_replay_closes_exactly_the_stored_candles_in_order() -> None:
    frame = daily(30)
    feed = ReplayFeed("X", DAY, frame, replay_bars=10, updates_per_candle=3, loop=False)
    events = list(feed.events())
    closed = [e.candle for e in events if e.kind == "closed"]
    assert closed == list(iter_candles(frame.iloc[-10:]))
    assert len(events) == 10 * 4
    assert all(e.symbol == "X" and e.timeframe == DAY for e in events)
    assert [e.kind for e in events[:4]] == ["forming", "forming", "forming", "closed"]


def test_replay_start_cursor_is_the_last_visible_candle() -> None:
    frame = daily(30)
    feed = ReplayFeed("X", DAY, frame, replay_bars=10, updates_per_candle=0)
    assert feed.start_cursor() == frame.index[19]
    first = next(feed.events())
    assert first.candle is not None
    assert first.candle.ts == frame.index[20]


def test_replay_bars_beyond_the_series_replay_everything() -> None:
    frame = daily(5)
    feed = ReplayFeed("X", DAY, frame, replay_bars=500, updates_per_candle=0, loop=False)
    assert feed.start_cursor() is None
    assert [e.candle for e in feed.events()] == list(iter_candles(frame))


def test_forming_updates_stay_within_the_final_bar_and_only_grow() -> None:
    frame = daily(40)
    feed = ReplayFeed("X", DAY, frame, replay_bars=40, updates_per_candle=5, loop=False)
    events = list(feed.events())
    for start in range(0, len(events), 6):
        forming = [e.candle for e in events[start : start + 5]]
        final = events[start + 5].candle
        assert final is not None
        assert all(e.kind == "forming" for e in events[start : start + 5])
        for previous, bar in itertools.pairwise([None, *forming]):
            assert bar is not None
            assert bar.ts == final.ts
            assert bar.open == final.open
            assert final.low <= bar.low <= min(bar.open, bar.close)
            assert max(bar.open, bar.close) <= bar.high <= final.high
            assert 0 < bar.volume < final.volume
            if previous is not None:
                assert bar.high >= previous.high
                assert bar.low <= previous.low
                assert bar.volume > previous.volume


def test_looping_replay_rewinds_and_repeats() -> None:
    frame = daily(10)
    feed = ReplayFeed("X", DAY, frame, replay_bars=3, updates_per_candle=1)
    events = take(feed.events(), 2 * (3 * 2 + 1))
    kinds = [e.kind for e in events]
    assert kinds == ["forming", "closed"] * 3 + ["rewind"] + ["forming", "closed"] * 3 + ["rewind"]
    assert events[6].candle is None
    assert events[:6] == events[7:13]


def test_replay_refuses_nothing_to_replay() -> None:
    with pytest.raises(ValueError, match="replay_bars"):
        ReplayFeed("X", DAY, daily(3), replay_bars=0, updates_per_candle=0)
    with pytest.raises(ValueError, match="no candles"):
        ReplayFeed("X", DAY, daily(0), replay_bars=5, updates_per_candle=0)


# the intra-bar path


def test_up_bar_visits_low_then_high() -> None:
    # path 10 -> 9 -> 13 -> 12 is 6 long; thirds are at 2 (price 10) and 4 (price 12)
    states = forming_updates(Candle(TS, 10, 13, 9, 12, 90), 2)
    assert [(s.high, s.low, s.close, s.volume) for s in states] == [
        (10.0, 9.0, 10.0, 30.0),
        (12.0, 9.0, 12.0, 60.0),
    ]


def test_down_bar_visits_high_then_low() -> None:
    # path 10 -> 11 -> 7 -> 8 is 6 long; updates at 1.5, 3, 4.5 -> 10.5, 9, 7.5;
    # the high of 11 is reached at 1 and stays
    states = forming_updates(Candle(TS, 10, 11, 7, 8, 40), 3)
    assert [(s.high, s.low, s.close) for s in states] == [
        (11.0, 10.0, 10.5),
        (11.0, 9.0, 9.0),
        (11.0, 7.5, 7.5),
    ]


def test_flat_bar_and_no_updates() -> None:
    assert [s.close for s in forming_updates(Candle(TS, 5, 5, 5, 5, 0), 2)] == [5.0, 5.0]
    assert forming_updates(Candle(TS, 10, 13, 9, 12, 90), 0) == []


# random walk


def walk(last: Candle | None = None, seed: int = 7, updates: int = 2) -> RandomWalkFeed:
    return RandomWalkFeed(
        "DEMO", MINUTE, last, seed=seed, updates_per_candle=updates, start=TS, volatility=0.01
    )


def closed_bars(feed: Feed, n: int) -> list[Candle]:
    out: list[Candle] = []
    for event in feed.events():
        if event.kind == "closed" and event.candle is not None:
            out.append(event.candle)
            if len(out) == n:
                return out
    return out


def test_random_walk_is_deterministic_per_seed() -> None:
    assert closed_bars(walk(), 50) == closed_bars(walk(), 50)
    assert closed_bars(walk(seed=8), 5) != closed_bars(walk(), 5)


def test_random_walk_bars_are_valid_contiguous_and_positive() -> None:
    bars = closed_bars(walk(), 2000)
    frame = candles_from_records(bars)
    assert validate_candles(frame, "walk") == []
    assert (frame[["open", "high", "low", "close", "volume"]] > 0).all().all()
    assert (np.diff(frame.index.asi8) == np.diff(frame.index.asi8)[0]).all()
    assert frame.index[1] - frame.index[0] == pd.Timedelta(minutes=1)
    assert frame.index[0] == TS
    assert frame["open"].iloc[0] == 100.0
    assert (frame["open"].to_numpy()[1:] == frame["close"].to_numpy()[:-1]).all()
    assert frame["close"].std() > 0


def test_random_walk_continues_from_the_last_candle() -> None:
    last = Candle(pd.Timestamp("2024-03-01 12:00", tz="UTC"), 20.0, 21.0, 19.0, 20.5, 5.0)
    feed = walk(last)
    assert feed.start_cursor() == last.ts
    first = closed_bars(feed, 1)[0]
    assert first.ts == last.ts + pd.Timedelta(minutes=1)
    assert first.open == 20.5


def test_a_restarted_random_walk_continues_identically() -> None:
    uninterrupted = closed_bars(walk(), 30)
    restarted = closed_bars(walk(uninterrupted[9]), 20)
    assert restarted == uninterrupted[10:]


def test_random_walk_forming_updates_are_bounded() -> None:
    events = take(walk(updates=4).events(), 50)
    for i in range(0, 50, 5):
        final = events[i + 4].candle
        assert final is not None
        for event in events[i : i + 4]:
            bar = event.candle
            assert bar is not None
            assert event.kind == "forming"
            assert final.low <= bar.low
            assert bar.high <= final.high
            assert bar.volume <= final.volume


def test_feeds_satisfy_the_protocol() -> None:
    assert isinstance(walk(), Feed)
    assert isinstance(ReplayFeed("X", DAY, daily(3), replay_bars=1, updates_per_candle=0), Feed)
    assert walk().self_paced is False


# pacing


def test_event_interval() -> None:
    # four updates per candle, the close comes with the next bar's first: four waits a candle
    assert event_interval(feed_speed=2.0, updates_per_candle=4) == pytest.approx(0.125)
    assert event_interval(feed_speed=2.0, updates_per_candle=0) == pytest.approx(0.5)


class _Clock(threading.Event):
    """A stop event whose waits are recorded after the event they follow, and return at once."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.log.append("wait")
        return False


def test_a_closed_bar_comes_with_the_next_bars_first_update() -> None:
    """A chart polled at any moment holds a forming bar: the close costs no time. A chart
    refreshed once per candle would otherwise sample one phase of every candle (the close,
    maybe) and show no forming bar for minutes."""
    clock = _Clock()
    for event in itertools.islice(paced(walk(updates=2).events(), 0.05, clock), 7):
        clock.log.append(event.kind)
    assert clock.log == [
        "forming", "wait", "forming", "wait", "closed",  # no wait after a close ...
        "forming", "wait", "forming", "wait", "closed",  # ... the next bar opens with it
        "forming",
    ]  # fmt: skip

    clock = _Clock()  # without updates, closes are what is spaced
    for event in itertools.islice(paced(walk(updates=0).events(), 0.05, clock), 3):
        clock.log.append(event.kind)
    assert clock.log == ["closed", "wait", "closed", "wait", "closed"]


def test_paced_spaces_events_and_stops() -> None:
    stop = threading.Event()
    started = time.monotonic()
    got = take(paced(walk(updates=0).events(), 0.02, stop), 6)
    elapsed = time.monotonic() - started
    assert len(got) == 6
    assert elapsed >= 0.08  # five waits between six events

    stop.set()
    assert list(paced(walk().events(), 10.0, stop)) == []


def test_setting_stop_ends_a_wait_early() -> None:
    stop = threading.Event()
    events = paced(walk().events(), 30.0, stop)
    next(events)
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert list(events) == []
    assert time.monotonic() - started < 5.0


def test_rewind_costs_no_time() -> None:
    frame = daily(3)
    feed = ReplayFeed("X", DAY, frame, replay_bars=1, updates_per_candle=0)
    stop = threading.Event()
    started = time.monotonic()
    kinds = [e.kind for e in take(paced(feed.events(), 0.05, stop), 3)]
    assert kinds == ["closed", "rewind", "closed"]
    assert time.monotonic() - started < 0.09  # one wait, not two


class _SelfPaced:
    symbol = "EX"
    timeframe = MINUTE
    self_paced = True

    def start_cursor(self) -> pd.Timestamp | None:
        return None

    def events(self) -> Iterator[FeedEvent]:
        for i in range(3):
            yield FeedEvent("closed", "EX", MINUTE, Candle(TS + MINUTE.delta * i, 1, 1, 1, 1, 1))


def test_stream_passes_self_paced_feeds_through() -> None:
    started = time.monotonic()
    events = list(stream(_SelfPaced(), 10.0, threading.Event()))
    assert len(events) == 3
    assert time.monotonic() - started < 1.0
