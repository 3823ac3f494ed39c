from __future__ import annotations

import gzip
import itertools

import numpy as np
import pandas as pd
import pytest

from config.settings import ROOT
from market.candles import CANDLE_COLUMNS, iter_candles
from market.feeds import RandomWalkFeed
from market.sample_data import (
    DEMO_SEED,
    SAMPLE_SERIES,
    generate_random_walk,
    load_sample,
)
from market.timeframes import Timeframe
from market.validation import validate_candles


def test_the_three_series() -> None:
    assert list(SAMPLE_SERIES) == ["SP500", "NASDAQ", "DEMO"]
    assert {s.symbol: s.timeframe.label for s in SAMPLE_SERIES.values()} == {
        "SP500": "1d",
        "NASDAQ": "1d",
        "DEMO": "1m",
    }
    assert all(s.description and s.source for s in SAMPLE_SERIES.values())


@pytest.mark.parametrize(("name", "file"), [("SP500", "sp500"), ("NASDAQ", "nasdaq")])
def test_index_series_load_from_the_bundled_files(name: str, file: str) -> None:
    frame = load_sample(name)
    with gzip.open(ROOT / "data" / "sample" / f"{file}.csv.gz", "rt") as handle:
        data_lines = sum(1 for line in handle if line.strip()) - 1
    assert len(frame) == data_lines == 5031
    assert frame.index[0] == pd.Timestamp("1999-01-04", tz="UTC")
    assert frame.index[-1].year == 2018
    assert validate_candles(frame, name) == []
    assert "arch" in SAMPLE_SERIES[name].source
    assert (ROOT / "data" / "sample" / "LICENSE-arch.md").exists()


def test_demo_is_twenty_days_of_minutes_from_new_year() -> None:
    frame = load_sample("DEMO")
    assert len(frame) == 28_800
    assert frame.index[0] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2024-01-20 23:59", tz="UTC")
    assert (np.diff(frame.index.asi8) == 60 * 10**6).all()  # microsecond index
    assert list(frame.columns) == list(CANDLE_COLUMNS)
    assert validate_candles(frame, "DEMO") == []
    assert (frame[list(CANDLE_COLUMNS)] > 0).all().all()
    pd.testing.assert_frame_equal(frame, load_sample("DEMO"))


def test_load_sample_returns_independent_frames() -> None:
    first = load_sample("DEMO")
    first.iloc[0, 0] = -1.0
    assert load_sample("DEMO").iloc[0, 0] > 0


def test_unknown_sample() -> None:
    with pytest.raises(KeyError, match="unknown sample series 'FTSE'"):
        load_sample("FTSE")


def test_generate_random_walk_depends_on_seed_and_symbol() -> None:
    start = pd.Timestamp("2024-01-01", tz="UTC")
    base = generate_random_walk("A", "1h", start, 50, seed=1)
    pd.testing.assert_frame_equal(base, generate_random_walk("A", "1h", start, 50, seed=1))
    assert not base.equals(generate_random_walk("A", "1h", start, 50, seed=2))
    assert not base.equals(generate_random_walk("B", "1h", start, 50, seed=1))
    assert base.index[1] - base.index[0] == pd.Timedelta(hours=1)
    assert base["open"].iloc[0] == 100.0
    naive = generate_random_walk("A", "1h", "2024-01-01 00:30", 50, seed=1)  # floored, UTC
    pd.testing.assert_frame_equal(naive, base)


def test_volatility_scales_the_moves() -> None:
    start = pd.Timestamp("2024-01-01", tz="UTC")
    calm = generate_random_walk("A", "1m", start, 5000, seed=1, volatility=0.0005)
    wild = generate_random_walk("A", "1m", start, 5000, seed=1, volatility=0.005)
    calm_moves = np.log(calm["close"] / calm["open"]).std()
    wild_moves = np.log(wild["close"] / wild["open"]).std()
    assert calm_moves == pytest.approx(0.0005, rel=0.1)
    assert wild_moves == pytest.approx(0.005, rel=0.1)


def test_the_live_feed_continues_the_generated_series() -> None:
    demo = SAMPLE_SERIES["DEMO"]
    frame = load_sample("DEMO")
    last = next(iter(iter_candles(frame.iloc[[-1]])))
    feed = RandomWalkFeed(
        "DEMO", demo.timeframe, last, seed=DEMO_SEED, updates_per_candle=2, start_price=1.0
    )
    live = [e.candle for e in itertools.islice(feed.events(), 30) if e.kind == "closed"]
    longer = generate_random_walk(
        "DEMO", Timeframe.parse("1m"), frame.index[0], len(frame) + 10, DEMO_SEED
    )
    assert live == list(iter_candles(longer.iloc[-10:]))
