"""Chart tracks on a real database and a live replay: after every feed event, what a track
holds (candles, indicator values, strategy signals, backtest) equals a computation from
scratch on the same closed history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from analytics.backtest import BacktestSettings, run_backtest
from caching import SharedCache
from database.repositories import CandleRepository
from indicators.registry import request
from market.feeds import ReplayFeed
from market.sample_data import load_sample
from market.timeframes import Timeframe
from services.chart_layers import ChartTracks, strategy_key
from services.live import FeedRunner, LiveMarket
from services.market_data import MarketDataService
from strategies.registry import create
from strategies.signals import SIGNAL_COLUMNS

D1 = Timeframe.parse("1d")
HELD_BACK = 40
REQUESTS = [request("ema", timeperiod=20), request("rsi"), request("macd"), request("bbands")]


def strategies():
    return [
        create("ema_crossover", fast=5, slow=12, direction="both"),
        create("rsi_reversion", direction="both"),
        create("macd_cross", direction="long"),
    ]


@pytest.fixture
def live(session_factory):
    sp500 = load_sample("SP500").iloc[-1500:]
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", sp500)
    market = LiveMarket()
    feed = ReplayFeed("SP500", D1, sp500, replay_bars=HELD_BACK, updates_per_candle=2)
    runner = FeedRunner([(feed, "replay")], market, session_factory, interval=0.01)
    service = MarketDataService(session_factory, market, SharedCache.from_url(None))
    return service, runner


def check_equals_scratch(tracks: ChartTracks, service: MarketDataService, timeframe: str):
    track = tracks.sync("SP500", timeframe)
    view = track.view(REQUESTS, strategies())
    expected = service.window("SP500", timeframe, 10**9)
    pd.testing.assert_frame_equal(view.candles, expected.closed, check_freq=False)
    assert view.forming == expected.forming
    close = expected.closed["close"].to_numpy()
    np.testing.assert_allclose(
        view.indicators["ema(timeperiod=20)"]["ema"], talib.EMA(close, 20), rtol=1e-12
    )
    np.testing.assert_allclose(
        view.indicators["rsi(timeperiod=14)"]["rsi"], talib.RSI(close, 14), rtol=1e-12
    )
    for strategy in strategies():
        scratch = strategy.generate(expected.closed, symbol="SP500", timeframe=timeframe)
        got = view.results[strategy_key(strategy)]
        for column in SIGNAL_COLUMNS:
            np.testing.assert_array_equal(got.frame[column], scratch.frame[column], column)
        np.testing.assert_allclose(got.frame["confidence"], scratch.frame["confidence"])
        assert [(s.timestamp, s.signal_type) for s in got.signals] == [
            (s.timestamp, s.signal_type) for s in scratch.signals
        ]
        backtest = track.backtest(strategy)
        again = run_backtest(
            expected.closed,
            scratch,
            BacktestSettings(direction=strategy.direction, close_at_end=False),
        )
        pd.testing.assert_frame_equal(backtest.trades, again.trades)
    return view


@pytest.mark.parametrize("timeframe", ["1d", "1w"])
def test_tracks_equal_a_computation_from_scratch_after_every_feed_event(live, timeframe):
    service, runner = live
    tracks = ChartTracks(service)
    before = check_equals_scratch(tracks, service, timeframe)
    signals_before = sum(len(r.signals) for r in before.results.values())
    for _ in range(2 * HELD_BACK - 4):  # every close and forming update but the last bars
        runner.step()
        check_equals_scratch(tracks, service, timeframe)
    after = tracks.sync("SP500", timeframe).view(REQUESTS, strategies())
    assert len(after.candles) > len(before.candles)
    assert sum(len(r.signals) for r in after.results.values()) >= signals_before


def test_rows_after_since_are_the_new_bars_only(live):
    service, runner = live
    tracks = ChartTracks(service)
    held = tracks.sync("SP500", "1d").view(REQUESTS, strategies(), last=200)
    for _ in range(10):
        runner.step()
    tail = tracks.sync("SP500", "1d").view(REQUESTS, strategies(), since=held.candles.index[-1])
    full = tracks.sync("SP500", "1d").view(REQUESTS, strategies())
    new = (full.candles.index > held.candles.index[-1]).sum()
    assert new >= 3
    assert len(tail.candles) == new
    pd.testing.assert_frame_equal(tail.candles, full.candles.iloc[-new:])
    pd.testing.assert_frame_equal(
        tail.indicators["macd(fast=12,signal=9,slow=26)"],
        full.indicators["macd(fast=12,signal=9,slow=26)"].iloc[-new:],
    )


def test_a_replay_restart_rebuilds_the_track(session_factory):
    sp500 = load_sample("SP500").iloc[-300:]
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", sp500)
    market = LiveMarket()
    feed = ReplayFeed("SP500", D1, sp500, replay_bars=5, updates_per_candle=1)
    runner = FeedRunner([(feed, "replay")], market, session_factory, interval=0.01)
    service = MarketDataService(session_factory, market, SharedCache.from_url(None))
    tracks = ChartTracks(service)
    for _ in range(12):  # past the end: the replay rewinds
        runner.step()
        track = tracks.sync("SP500", "1d")
        expected = service.window("SP500", "1d", 10**9).closed
        pd.testing.assert_frame_equal(track.view([], []).candles, expected, check_freq=False)


def test_an_indicator_longer_than_the_history_is_nan_and_the_rest_computed(live):
    service, _ = live
    track = ChartTracks(service).sync("SP500", "1w")
    # 1,500 daily bars are ~300 weeks: a 1,000-week SMA has no value yet
    view = track.view([request("sma", timeperiod=1000), request("ema", timeperiod=10)], [])
    assert np.isnan(view.indicators["sma(timeperiod=1000)"]["sma"]).all()
    assert not np.isnan(view.indicators["ema(timeperiod=10)"]["ema"]).all()


def test_a_live_delta_hands_the_track_the_feed_s_records(live):
    """Bars that came through the feed since the oldest one held in memory reach the track
    as records (no frame in between), equal to the stored bars; the track then equals a
    computation from scratch (above, after every feed event)."""
    service, runner = live
    tracks = ChartTracks(service)
    for _ in range(4):  # the feed's first bars: those held in memory begin there
        runner.step()
    since = tracks.sync("SP500", "1d").last_ts
    for _ in range(6):
        runner.step()
    delta = service.delta("SP500", "1d", since)
    assert delta.records, "three closed bars came through the feed"
    assert delta.frame is None  # no frame made until one is asked for
    stored = service.window("SP500", "1d", 10**9).closed
    pd.testing.assert_frame_equal(delta.closed, stored[stored.index > since], check_freq=False)
    check_equals_scratch(tracks, service, "1d")
