"""Live feeds over a busy database (another connection holding the write lock), on a real
SQLite file and a real PostgreSQL server: the feed goes delayed, keeps its candles in order,
and catches up with no gap and no duplicate once the database answers."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import replace

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.repositories import CandleRepository
from market.candles import Candle, candles_from_records
from market.feeds import FeedEvent, RandomWalkFeed, ReplayFeed
from market.sample_data import generate_random_walk
from market.timeframes import Timeframe
from services.live import FeedRunner, LiveMarket, RetryPolicy
from tests.database.locks import write_lock

M1 = Timeframe.parse("1m")
START = pd.Timestamp("2024-03-01", tz="UTC")
FAST_RETRY = RetryPolicy(lock_wait_ms=20, first_wait_s=0.01, max_wait_s=0.1)


def stored(session_factory: sessionmaker[Session], symbol: str) -> pd.DataFrame:
    with session_factory() as session:
        return CandleRepository(session).frame(symbol, "1m")


def walk(updates_per_candle: int = 1) -> RandomWalkFeed:
    return RandomWalkFeed(
        "WALK", M1, None, seed=3, updates_per_candle=updates_per_candle, start=START
    )


def walk_closes(count: int) -> pd.DataFrame:
    """The first ``count`` closed candles of ``walk()``: what must be stored, exactly."""
    closed = (e.candle for e in walk().events() if e.kind == "closed")
    return candles_from_records(list(itertools.islice(closed, count)))


def wait_until(condition, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_feed_waits_out_a_held_write_lock_and_catches_up_in_order(session_factory, database_url):
    market = LiveMarket()
    seen: list[pd.Timestamp] = []  # the on_closed hook: each candle once, in order, once stored
    runner = FeedRunner(
        [(walk(), "random_walk")],
        market,
        session_factory,
        interval=0.005,
        on_closed=lambda event: seen.append(event.candle.ts),
        retry=FAST_RETRY,
    )
    runner.start()
    try:
        assert wait_until(lambda: market.get("WALK").closed_count >= 3)
        with write_lock(database_url):
            assert wait_until(lambda: market.get("WALK").status == "delayed")
            assert wait_until(lambda: market.get("WALK").backlog >= 10)
            delayed = market.get("WALK")
            # nothing after the last stored candle is visible; the forming bar is gone
            assert delayed.forming is None
            assert delayed.delayed_since is not None
            assert "lock" in delayed.error
            assert "\n" not in delayed.error
            assert "INSERT" not in delayed.error
            cursor, count = delayed.cursor, delayed.closed_count
            time.sleep(0.1)  # a fixed pause on purpose: the cursor must not move meanwhile
            assert market.get("WALK").cursor == cursor
            assert market.get("WALK").closed_count == count
        assert wait_until(lambda: market.get("WALK").status == "live")
        caught_up = market.get("WALK")
        assert caught_up.error is None
        assert caught_up.backlog == 0
        assert caught_up.closed_count >= count + 10
    finally:
        runner.stop()
    rows = stored(session_factory, "WALK")
    state = market.get("WALK")
    assert len(rows) == state.closed_count
    assert rows.index[-1] == state.cursor
    # contiguous, in order, no duplicate: exactly the walk's first candles
    pd.testing.assert_frame_equal(rows, walk_closes(len(rows)))
    assert seen == list(rows.index)


def test_a_rewind_held_in_the_backlog_is_replayed_in_order(session_factory, database_url):
    bars = generate_random_walk("REPLAY", "1m", pd.Timestamp("2024-01-01", tz="UTC"), 10, 5)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("REPLAY", "1m", bars)
    market = LiveMarket()
    feed = ReplayFeed("REPLAY", M1, bars, replay_bars=3, updates_per_candle=1, loop=True)
    seen: list[pd.Timestamp] = []
    runner = FeedRunner(
        [(feed, "replay")],
        market,
        session_factory,
        interval=0.01,
        on_closed=lambda event: seen.append(event.candle.ts),
        retry=replace(FAST_RETRY, first_wait_s=0.0, max_wait_s=0.0),
    )
    with write_lock(database_url):
        for _ in range(11):  # three bars, the rewind, two bars: all held
            runner.step()
        held = market.get("REPLAY")
        assert held.status == "delayed"
        assert held.backlog == 5
        assert held.cursor == bars.index[6]  # where the replay started
    runner.step()  # a forming update: the retry is due, the backlog is written
    state = market.get("REPLAY")
    assert state.status == "live"
    assert state.cursor == bars.index[8]
    assert seen == [*bars.index[7:10], *bars.index[7:9]]
    pd.testing.assert_frame_equal(stored(session_factory, "REPLAY"), bars)  # nothing changed


def test_a_feed_delayed_past_its_backlog_limit_stops_with_one_line(session_factory, database_url):
    market = LiveMarket()
    runner = FeedRunner(
        [(walk(updates_per_candle=0), "random_walk")],
        market,
        session_factory,
        interval=0.01,
        retry=replace(FAST_RETRY, max_backlog=3),
    )
    with write_lock(database_url):
        for _ in range(3):
            assert runner.step()
        assert market.get("WALK").status == "delayed"
        assert not runner.step()  # the fourth candle waiting is one too many
    state = market.get("WALK")
    assert state.status == "error"
    assert state.error.startswith("the database was busy or unreachable for ")
    assert "(4 closed candle(s) not stored; limits 600 s, 3 candles)" in state.error
    assert "\n" not in state.error
    assert state.cursor is None
    assert stored(session_factory, "WALK").empty


class BadBarFeed:
    """A feed whose second closed candle has its high below its low: a bug, not a busy
    database."""

    symbol = "BAD"
    timeframe = M1
    self_paced = False

    def start_cursor(self) -> pd.Timestamp | None:
        return None

    def events(self) -> Iterator[FeedEvent]:
        good = Candle(START, 10, 11, 9, 10, 1)
        yield FeedEvent("closed", "BAD", M1, good)
        yield FeedEvent("closed", "BAD", M1, Candle(START + M1.delta, 10, 8, 9, 10, 1))


def test_a_bad_bar_still_stops_its_feed_and_is_not_retried(session_factory):
    market = LiveMarket()
    runner = FeedRunner([(BadBarFeed(), "exchange")], market, session_factory, interval=0.01)
    assert runner.step()
    assert not runner.step()
    state = market.get("BAD")
    assert state.status == "error"
    assert state.error.startswith("ValueError")
    assert state.backlog == 0
    assert len(stored(session_factory, "BAD")) == 1
