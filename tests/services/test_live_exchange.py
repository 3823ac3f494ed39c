"""The ccxt exchange feed in the live loop, on a real database (SQLite and PostgreSQL) and a
local Binance stand-in (tests/market/fake_binance.py): what the status line shows, a restart
that stores the missed bars with no gap and no duplicate, and a failing exchange that stops
only its own feed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from config.settings import FeedSpec, Settings
from database.repositories import CandleRepository
from market.exchange_feed import ExchangeFeed, ExchangeRetry
from market.feeds import RandomWalkFeed
from market.timeframes import Timeframe
from services.live import FeedRunner, LiveMarket, StreamState
from services.runtime import _make_feeds
from tests.market.fake_binance import (
    BAD_GATEWAY,
    FakeBinance,
    FakeClock,
    bar,
    bar_open,
    market_at_bar_9,
    serve_bars,
)

SYMBOL = "BTC/USDT"


@pytest.fixture
def clock() -> FakeClock:
    return market_at_bar_9()


@pytest.fixture
def binance(clock: FakeClock) -> Iterator[FakeBinance]:
    yield from serve_bars(clock)


def step_until(
    runner: FeedRunner, market: LiveMarket, done: Callable[[StreamState], bool], limit: int = 500
) -> list[StreamState]:
    """Step the runner until ``done(state of SYMBOL)``; the states seen after each step."""
    seen = []
    for _ in range(limit):
        runner.step()
        state = market.get(SYMBOL)
        assert state is not None
        seen.append(state)
        if done(state):
            return seen
    raise AssertionError(f"not reached in {limit} steps; last state {seen[-1]}")


def test_restart_stores_the_missed_bars_with_no_gap_and_no_duplicate(
    session_factory: sessionmaker[Session], binance: FakeBinance, clock: FakeClock
) -> None:
    options = binance.feed_options()
    first = ExchangeFeed(SYMBOL, "1m", "binance", None, lookback_bars=5, **options)
    market = LiveMarket()
    runner = FeedRunner([(first, "ccxt binance")], market, session_factory, interval=0.01)
    step_until(runner, market, lambda s: s.forming is not None)
    runner.stop()  # the process stops at 00:09:30 ...

    clock.now_s += 48 * 60  # ... and starts again 48 minutes later
    with session_factory() as session:
        cursor = CandleRepository(session).last_ts(SYMBOL, "1m")
    assert cursor == bar_open(8)
    again = ExchangeFeed(SYMBOL, "1m", "binance", cursor, page_limit=7, **options)
    market = LiveMarket()
    runner = FeedRunner([(again, "ccxt binance")], market, session_factory, interval=0.01)
    seen = step_until(runner, market, lambda s: s.forming is not None)

    with session_factory() as session:
        rows = CandleRepository(session).frame(SYMBOL, "1m")
    assert list(rows.index) == [bar_open(i) for i in range(4, 57)]  # consecutive, each once
    expected = np.array([bar(i) for i in range(4, 57)])
    assert np.array_equal(rows[["open", "high", "low", "close", "volume"]].to_numpy(), expected)
    # the status line said what happened: backfilling (with the count) while the missed bars
    # were stored, then live with the forming bar
    backfilling = [s for s in seen if s.status == "backfilling"]
    assert backfilling[0].error == "backfilling 48 bars from binance"
    assert any(s.closed_count > 0 for s in backfilling)  # stored bars keep the status
    first_live = next(s for s in seen if s.status == "live")
    assert first_live.cursor == bar_open(56)  # live only once every missed bar is stored
    final = seen[-1]
    assert final.status == "live"
    assert final.error is None
    assert final.cursor == bar_open(56)
    assert final.forming is not None
    assert final.forming.ts == bar_open(57)


def test_a_failing_exchange_stops_only_its_own_feed(
    session_factory: sessionmaker[Session], binance: FakeBinance
) -> None:
    binance.always_fail = BAD_GATEWAY
    retry = ExchangeRetry(first_wait_s=1.0, max_wait_s=4.0, give_up_after_s=20.0)
    failing = ExchangeFeed(
        SYMBOL, "1m", "binance", bar_open(7), retry=retry, **binance.feed_options()
    )
    walk = RandomWalkFeed(
        "WALK", "1m", None, seed=1, updates_per_candle=0, start=pd.Timestamp("2024-01-01", tz="UTC")
    )
    market = LiveMarket()
    runner = FeedRunner(
        [(failing, "ccxt binance"), (walk, "random_walk")], market, session_factory, interval=0.01
    )
    seen = step_until(runner, market, lambda s: s.status == "error")

    retrying = [s for s in seen if s.status == "retrying"]
    assert retrying, [s.status for s in seen]
    assert retrying[0].error is not None
    assert retrying[0].error.startswith("fetching candles: attempt 1 failed, next in ")
    assert "ExchangeNotAvailable" in retrying[0].error
    error = seen[-1].error
    assert error is not None
    assert error.startswith("ExchangeFeedError: binance BTC/USDT 1m: fetching candles failed ")
    assert "giving up" in error

    walked = market.get("WALK")
    assert walked is not None
    before = walked.closed_count
    for _ in range(3):
        assert runner.step()  # the random walk goes on
    after = market.get("WALK")
    assert after is not None
    assert after.status == "live"
    assert after.closed_count == before + 3


def test_runtime_builds_an_exchange_feed_for_a_symbol_not_stored_yet(
    session_factory: sessionmaker[Session],
) -> None:
    settings = Settings(
        database_url="sqlite://",
        feeds=(FeedSpec(SYMBOL, "ccxt", exchange="binance", timeframe="5m"),),
    )
    with session_factory.begin() as session:
        frame = pd.DataFrame(
            {c: [1.0] for c in ("open", "high", "low", "close", "volume")},
            index=pd.DatetimeIndex([bar_open(10)], name="ts"),
        )
        CandleRepository(session).upsert("ETH/USDT", "5m", frame)
    feeds = _make_feeds(settings, session_factory, LiveMarket())

    feed, kind = feeds[0]
    assert isinstance(feed, ExchangeFeed)
    assert kind == "ccxt binance"
    assert (feed.symbol, feed.timeframe, feed.exchange_id) == (
        SYMBOL,
        Timeframe.parse("5m"),
        "binance",
    )
    assert feed.start_cursor() is None  # nothing stored: the feed backfills its lookback

    stored = Settings(
        database_url="sqlite://",
        feeds=(FeedSpec("ETH/USDT", "ccxt", exchange="binance", timeframe="5m"),),
    )
    feed, _ = _make_feeds(stored, session_factory, LiveMarket())[0]
    assert feed.start_cursor() == bar_open(10)  # stored: it goes on from the last stored bar
