"""Chart windows and deltas on a real database, resampled timeframes, and the shared cache
(in-process and on a real Redis)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from caching import SharedCache
from database.repositories import CandleRepository
from market.feeds import ReplayFeed
from market.resample import resample
from market.sample_data import load_sample
from market.timeframes import Timeframe
from services.live import FeedRunner, LiveMarket
from services.market_data import MarketDataService, UnknownSeriesError

D1, W1 = Timeframe.parse("1d"), Timeframe.parse("1w")
HELD_BACK = 30


@pytest.fixture
def sp500() -> pd.DataFrame:
    return load_sample("SP500")


def live_sp500(
    session_factory: sessionmaker[Session], sp500: pd.DataFrame, cache: SharedCache
) -> tuple[MarketDataService, FeedRunner]:
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", sp500)
    market = LiveMarket()
    feed = ReplayFeed("SP500", D1, sp500, replay_bars=HELD_BACK, updates_per_candle=1)
    runner = FeedRunner([(feed, "replay")], market, session_factory, interval=0.01)
    return MarketDataService(session_factory, market, cache), runner


def test_a_window_shows_bars_up_to_the_cursor_only(session_factory, sp500):
    market, runner = live_sp500(session_factory, sp500, SharedCache.from_url(None))
    data = market.window("SP500", "1d", 100)
    visible = sp500.iloc[: len(sp500) - HELD_BACK]
    pd.testing.assert_frame_equal(data.closed, visible.iloc[-100:])
    assert data.forming is None
    runner.step()  # a forming update of the first held-back bar
    data = market.window("SP500", "1d", 100)
    assert data.closed.index[-1] == visible.index[-1]
    assert data.forming.ts == sp500.index[len(visible)]


def test_weekly_bars_are_resampled_and_the_week_in_progress_is_forming(session_factory, sp500):
    market, runner = live_sp500(session_factory, sp500, SharedCache.from_url(None))
    for _ in range(7):  # 3 closes and a forming update
        runner.step()
    cursor = market.state("SP500").cursor
    data = market.window("SP500", "1w", 50)
    upto = sp500.loc[:cursor]
    live = market.state("SP500").forming
    expected = resample(upto, D1, W1, include_forming=True, as_of=live.ts)
    if expected.index[-1] == data.forming.ts:  # the live day's week is already in progress
        expected_closed, partial = expected.iloc[:-1], expected.iloc[-1]
        assert data.forming.open == partial["open"]
        assert data.forming.high == max(partial["high"], live.high)
        assert data.forming.low == min(partial["low"], live.low)
        assert data.forming.volume == pytest.approx(partial["volume"] + live.volume)
    else:  # the live day opens a new week
        expected_closed = expected
        assert (data.forming.open, data.forming.close) == (live.open, live.close)
    assert data.forming.close == live.close
    pd.testing.assert_frame_equal(data.closed, expected_closed.iloc[-50:])
    assert (data.closed.index.day_of_week == 0).all()  # weeks start on Monday


def test_a_delta_holds_only_bars_closed_after_the_last_one_held(session_factory, sp500):
    market, runner = live_sp500(session_factory, sp500, SharedCache.from_url(None))
    last_held = market.window("SP500", "1d", 10).closed.index[-1]
    for _ in range(6):  # 3 closes
        runner.step()
    delta = market.delta("SP500", "1d", last_held)
    assert not delta.reset
    start = sp500.index.get_loc(last_held) + 1
    pd.testing.assert_frame_equal(delta.closed, sp500.iloc[start : start + 3])
    assert market.delta("SP500", "1d", None).reset
    assert market.delta("SP500", "1d", sp500.index[-1]).reset  # the client is ahead: rewound


def test_unknown_symbols_and_timeframes_are_named(session_factory, sp500):
    market, _ = live_sp500(session_factory, sp500, SharedCache.from_url(None))
    with pytest.raises(UnknownSeriesError, match="unknown symbol 'SPX': known symbols are SP500"):
        market.window("SPX", "1d", 10)
    with pytest.raises(UnknownSeriesError, match=r"stored in 1d .* choose one of 1d, 1w"):
        market.window("SP500", "1h", 10)


def test_windows_are_cached_under_the_data_version(session_factory, sp500):
    cache = SharedCache.from_url(None)
    market, runner = live_sp500(session_factory, sp500, cache)
    first = market.window("SP500", "1w", 100)
    assert (cache.stats().hits, cache.stats().misses) == (0, 1)
    runner.step()  # a forming update: same cursor, the cached closed bars still hold
    second = market.window("SP500", "1w", 100)
    assert (cache.stats().hits, cache.stats().misses) == (1, 1)
    pd.testing.assert_frame_equal(first.closed, second.closed)
    runner.step()  # a close moves the cursor: a new key, never a stale value
    market.window("SP500", "1w", 100)
    market.window("SP500", "1w", 50)  # another window is another key
    assert (cache.stats().hits, cache.stats().misses) == (1, 3)


@pytest.mark.redis
def test_the_redis_cache_is_shared_between_processes(
    session_factory, sp500, redis_url, cache_prefix
):
    one = SharedCache.from_url(redis_url, key_prefix=cache_prefix)
    two = SharedCache.from_url(redis_url, key_prefix=cache_prefix)  # another worker's
    try:
        market_one, runner = live_sp500(session_factory, sp500, one)
        market_two = MarketDataService(session_factory, market_one._market, two)
        computed = market_one.window("SP500", "1w", 200)
        served = market_two.window("SP500", "1w", 200)
        assert (one.stats().misses, two.stats().hits) == (1, 1)
        pd.testing.assert_frame_equal(computed.closed, served.closed)
        runner.step()
        runner.step()  # a close: the other worker must not be served the old window
        fresh = market_two.window("SP500", "1d", 5)
        assert fresh.closed.index[-1] == market_one.state("SP500").cursor
        assert two.stats().misses == 1
    finally:
        one.clear()
        one.close()
        two.close()


def test_the_symbols_are_those_with_stored_bars(session_factory, sp500):
    """symbols() reads the series tokens, not the bars: the same answer as the catalogue's
    scan of every bar, after a series is stored, another added and one deleted."""
    market = MarketDataService(session_factory, LiveMarket(), SharedCache.from_url(None))
    assert market.symbols() == []
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", sp500)
        CandleRepository(session).upsert("NASDAQ", "1d", sp500.iloc[:50])
        CandleRepository(session).upsert("NASDAQ", "1w", resample(sp500.iloc[:50], D1, W1))
    assert market.symbols() == ["NASDAQ", "SP500"]
    with session_factory.begin() as session:
        CandleRepository(session).delete_series("NASDAQ", "1d")
    assert market.symbols() == ["NASDAQ", "SP500"]  # its weekly bars are still stored
    with session_factory.begin() as session:
        CandleRepository(session).delete_series("NASDAQ", "1w")
    assert market.symbols() == ["SP500"]
    assert market.symbols() == sorted({s.symbol for s in market.series()})


def test_a_symbols_span_is_that_of_its_finest_stored_series(session_factory, sp500):
    market = MarketDataService(session_factory, LiveMarket(), SharedCache.from_url(None))
    assert market.span("SP500") is None
    weekly = resample(sp500, D1, W1)
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1w", weekly)
    assert market.span("SP500") == (weekly.index[0], weekly.index[-1])
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", sp500.iloc[10:20])
    assert market.span("SP500") == (sp500.index[10], sp500.index[19])  # the daily bars
