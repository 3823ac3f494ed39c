"""The live loop on a real database: feeds -> repository -> LiveMarket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from database.repositories import CandleRepository
from market.candles import iter_candles
from market.feeds import FeedEvent, RandomWalkFeed, ReplayFeed
from market.sample_data import generate_random_walk
from market.timeframes import Timeframe
from services.live import FeedRunner, LiveMarket

M1 = Timeframe.parse("1m")


def stored(session_factory: sessionmaker[Session], symbol: str) -> pd.DataFrame:
    with session_factory() as session:
        return CandleRepository(session).frame(symbol, "1m")


class BrokenFeed:
    """A feed whose source fails after one forming update."""

    symbol = "BROKEN"
    timeframe = M1
    self_paced = False

    def start_cursor(self) -> pd.Timestamp | None:
        return None

    def events(self) -> Iterator[FeedEvent]:
        candle = generate_random_walk("BROKEN", "1m", pd.Timestamp("2024-01-01", tz="UTC"), 1, 1)
        yield FeedEvent("forming", "BROKEN", M1, next(iter_candles(candle)))
        raise ConnectionError("exchange went away")


def test_random_walk_closes_are_stored_before_the_cursor_moves(session_factory):
    market = LiveMarket()
    feed = RandomWalkFeed(
        "WALK", M1, None, seed=3, updates_per_candle=2, start=pd.Timestamp("2024-03-01", tz="UTC")
    )
    runner = FeedRunner([(feed, "random_walk")], market, session_factory, interval=0.01)
    assert market.get("WALK").status == "starting"
    for _ in range(9):  # three bars: two forming updates and a close each
        runner.step()
    state = market.get("WALK")
    rows = stored(session_factory, "WALK")
    assert len(rows) == 3
    assert state.cursor == rows.index[-1]
    assert state.closed_count == 3
    assert state.forming is None  # the last event was a close
    assert state.version == 9
    runner.step()
    forming = market.get("WALK").forming
    assert forming.ts == rows.index[-1] + M1.delta
    assert forming.open == pytest.approx(rows["close"].iloc[-1])


def test_replay_moves_the_cursor_over_stored_bars_and_rewinds(session_factory):
    bars = generate_random_walk("REPLAY", "1m", pd.Timestamp("2024-01-01", tz="UTC"), 10, 5)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("REPLAY", "1m", bars)
    market = LiveMarket()
    feed = ReplayFeed("REPLAY", M1, bars, replay_bars=2, updates_per_candle=1, loop=True)
    runner = FeedRunner([(feed, "replay")], market, session_factory, interval=0.01)
    assert market.get("REPLAY").cursor == bars.index[7]
    for _ in range(4):
        runner.step()
    assert market.get("REPLAY").cursor == bars.index[9]
    pd.testing.assert_frame_equal(stored(session_factory, "REPLAY"), bars)  # nothing changed
    runner.step()  # rewind
    assert market.get("REPLAY").cursor == bars.index[7]


def test_a_failing_feed_is_stopped_with_its_error_and_the_others_go_on(session_factory):
    market = LiveMarket()
    walk = RandomWalkFeed(
        "WALK", M1, None, seed=3, updates_per_candle=0, start=pd.Timestamp("2024-03-01", tz="UTC")
    )
    runner = FeedRunner(
        [(BrokenFeed(), "exchange"), (walk, "random_walk")],
        market,
        session_factory,
        interval=0.01,
    )
    for _ in range(5):
        assert runner.step()
    broken = market.get("BROKEN")
    assert broken.status == "error"
    assert broken.error == "ConnectionError: exchange went away"
    assert market.get("WALK").closed_count == 5
    assert len(stored(session_factory, "WALK")) == 5


def test_the_runner_thread_streams_at_its_pace_and_stops(session_factory):
    market = LiveMarket()
    walk = RandomWalkFeed(
        "WALK", M1, None, seed=3, updates_per_candle=0, start=pd.Timestamp("2024-03-01", tz="UTC")
    )
    runner = FeedRunner([(walk, "random_walk")], market, session_factory, interval=0.02)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while market.get("WALK").closed_count < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert market.get("WALK").closed_count >= 5
    finally:
        runner.stop()
    assert not runner.running
    count = market.get("WALK").closed_count
    time.sleep(0.2)
    assert market.get("WALK").closed_count == count


class WaitingExchangeFeed:
    """A self-paced feed blocked on its source (an exchange with no trade yet)."""

    symbol = "EXCH"
    timeframe = M1
    self_paced = True

    def __init__(self) -> None:
        self.release = threading.Event()

    def start_cursor(self) -> pd.Timestamp | None:
        return None

    def events(self) -> Iterator[FeedEvent]:
        self.release.wait(10)
        bar = generate_random_walk("EXCH", "1m", pd.Timestamp("2024-01-01", tz="UTC"), 1, 2)
        yield FeedEvent("closed", "EXCH", M1, next(iter_candles(bar)))


def wait_until(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_on_threads_a_blocked_or_failing_feed_holds_up_no_other(session_factory):
    market = LiveMarket()
    walk = RandomWalkFeed(
        "WALK", M1, None, seed=3, updates_per_candle=0, start=pd.Timestamp("2024-03-01", tz="UTC")
    )
    exchange = WaitingExchangeFeed()
    runner = FeedRunner(
        [(exchange, "exchange"), (BrokenFeed(), "exchange"), (walk, "random_walk")],
        market,
        session_factory,
        interval=0.01,
    )
    runner.start()
    try:
        assert wait_until(lambda: market.get("WALK").closed_count >= 5)
        assert wait_until(lambda: market.get("BROKEN").status == "error")
        assert market.get("EXCH").status == "starting"  # still waiting on its source
        exchange.release.set()
        assert wait_until(lambda: market.get("EXCH").status == "finished")
        assert market.get("EXCH").closed_count == 1
        with pytest.raises(RuntimeError, match="running on its threads"):
            runner.step()
    finally:
        runner.stop()
    assert not runner.running
    assert len(stored(session_factory, "EXCH")) == 1
