from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import ROOT
from market.candles import CANDLE_COLUMNS, empty_candles
from market.importer import read_candle_file
from market.resample import (
    ResampleError,
    bucket_complete_mask,
    last_close_time,
    resample,
)
from market.timeframes import Timeframe

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")  # a Monday


def minute_bars(
    n: int, *, seed: int = 0, start: pd.Timestamp = T0, drop: float = 0.0
) -> pd.DataFrame:
    """Random but valid 1m bars; ``drop`` is the share of bars left out (gaps)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.random(n) / 100),
            "low": np.minimum(open_, close) * (1 - rng.random(n) / 100),
            "close": close,
            "volume": rng.integers(1, 1000, n).astype(float),
        },
        index=pd.date_range(start, periods=n, freq="min", name="ts"),
    )
    if drop:
        frame = frame[rng.random(n) >= drop]
    return frame


def reference(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Plain pandas: epoch-anchored buckets, empty buckets dropped."""
    grouped = frame.resample(rule, origin="epoch", label="left", closed="left")
    out = grouped.agg(AGG)[grouped.size() > 0]
    out.index.freq = None
    return out


@pytest.mark.parametrize(
    ("target", "rule"),
    [
        ("5m", "5min"),
        ("15m", "15min"),
        ("30m", "30min"),
        ("1h", "h"),
        ("4h", "4h"),
        ("1d", "1440min"),
    ],
)
def test_matches_pandas_resample_with_gaps(target: str, rule: str) -> None:
    frame = minute_bars(5000, seed=1, drop=0.3)
    result = resample(frame, "1m", target, include_forming=True)
    pd.testing.assert_frame_equal(result, reference(frame, rule), check_freq=False)


def test_hours_to_four_hours() -> None:
    hourly = resample(minute_bars(3000, seed=2, drop=0.1), "1m", "1h", include_forming=True)
    result = resample(hourly, "1h", "4h", include_forming=True)
    pd.testing.assert_frame_equal(result, reference(hourly, "4h"), check_freq=False)


def sp500() -> pd.DataFrame:
    return read_candle_file(ROOT / "data" / "sample" / "sp500.csv.gz").candles


def test_weekly_bars_from_daily_sp500_start_on_monday() -> None:
    daily = sp500()
    weekly = resample(daily, "1d", "1w", include_forming=True)
    assert (weekly.index.day_of_week == 0).all()
    assert (weekly.index == weekly.index.normalize()).all()
    # independent grouping: each day's Monday is its date minus its weekday
    monday = daily.index.normalize() - pd.to_timedelta(daily.index.day_of_week, unit="D")
    expected = daily.groupby(monday).agg(AGG)
    expected.index.name = "ts"
    pd.testing.assert_frame_equal(weekly, expected, check_freq=False, check_index_type=False)
    # a holiday Monday: 2018-01-15 (Martin Luther King day) week opens on Tuesday's open
    week = weekly.loc[pd.Timestamp("2018-01-15", tz="UTC")]
    assert week["open"] == daily.loc[pd.Timestamp("2018-01-16", tz="UTC"), "open"]


def test_last_sp500_week_is_forming_until_the_next_monday() -> None:
    daily = sp500()
    last_day = daily.index[-1]  # Monday 2018-12-31
    assert last_day.day_of_week == 0
    weekly = resample(daily, "1d", "1w")
    assert weekly.index[-1] == last_day - pd.Timedelta(days=7)
    forming = resample(daily, "1d", "1w", include_forming=True)
    assert forming.index[-1] == last_day
    done = resample(daily, "1d", "1w", as_of=pd.Timestamp("2019-01-07", tz="UTC"))
    assert done.index[-1] == last_day


def test_only_complete_bars_by_default() -> None:
    frame = minute_bars(119)  # 00:00 .. 01:58: the 01:00 hour lacks its last minute
    assert resample(frame, "1m", "1h").index.tolist() == [T0]
    assert len(resample(frame, "1m", "1h", include_forming=True)) == 2
    full = minute_bars(120)
    assert resample(full, "1m", "1h").index.tolist() == [T0, T0 + pd.Timedelta(hours=1)]


def test_missing_bars_do_not_make_a_bucket_incomplete() -> None:
    frame = minute_bars(150)
    holey = frame.drop(frame.index[50:60]).drop(frame.index[119])  # 01:59 missing
    hours = resample(holey, "1m", "1h")
    assert hours.index.tolist() == [T0, T0 + pd.Timedelta(hours=1)]
    assert hours["close"].iloc[1] == frame["close"].iloc[118]


def test_as_of_decides_completeness() -> None:
    frame = minute_bars(90)
    at = T0 + pd.Timedelta(minutes=60)
    assert resample(frame, "1m", "1h", as_of=at).index.tolist() == [T0]
    assert resample(frame, "1m", "1h", as_of=at - pd.Timedelta(seconds=1)).empty
    later = resample(frame, "1m", "1h", as_of=T0 + pd.Timedelta(hours=2))
    assert later.index.tolist() == [T0, T0 + pd.Timedelta(hours=1)]
    with pytest.raises(ResampleError, match="timezone"):
        resample(frame, "1m", "1h", as_of=pd.Timestamp("2024-01-01 02:00"))


def test_bucket_complete_mask_flags_the_forming_bar() -> None:
    frame = minute_bars(150)
    live = resample(frame, "1m", "1h", include_forming=True)
    mask = bucket_complete_mask(live.index, "1h", last_close_time(frame, "1m"))
    assert mask.tolist() == [True, True, False]


def test_same_timeframe_is_a_copy_of_closed_bars() -> None:
    frame = minute_bars(10)
    same = resample(frame, "1m", "1m")
    pd.testing.assert_frame_equal(same, frame, check_freq=False)
    assert same is not frame
    assert len(resample(frame, "1m", "1m", as_of=T0 + pd.Timedelta(minutes=5))) == 5


def test_empty_frame() -> None:
    result = resample(empty_candles(), "1m", "1h")
    assert result.empty
    assert list(result.columns) == list(CANDLE_COLUMNS)
    assert str(result.index.dtype) == "datetime64[us, UTC]"  # like every non-empty result


@pytest.mark.parametrize(
    ("source", "target", "fragment"),
    [
        ("1h", "1m", "shorter"),
        ("1h", Timeframe("90m", 5400), "not a whole number"),
        (Timeframe("7h", 7 * 3600), "1w", "Monday"),
        ("1h", "2h", "unknown timeframe"),
    ],
)
def test_impossible_pairs_are_refused(
    source: str | Timeframe, target: str | Timeframe, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        resample(minute_bars(5), source, target)


def test_million_minutes_resample_quickly() -> None:
    frame = minute_bars(1_000_000, seed=3)
    started = time.perf_counter()
    for target in ("5m", "1h", "1d", "1w"):
        resample(frame, "1m", target)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0  # four targets; each well under a second


@st.composite
def minute_frames(draw: st.DrawFn) -> pd.DataFrame:
    offsets = draw(
        st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=120, unique=True)
    )
    n = len(offsets)
    prices = st.floats(min_value=1.0, max_value=1000.0, allow_nan=False)
    opens = np.array(draw(st.lists(prices, min_size=n, max_size=n)))
    closes = np.array(draw(st.lists(prices, min_size=n, max_size=n)))
    spread = np.array(draw(st.lists(st.floats(0.0, 5.0), min_size=n, max_size=n)))
    volume = np.array(draw(st.lists(st.floats(0.0, 1e6), min_size=n, max_size=n)))
    start = T0 + pd.Timedelta(minutes=draw(st.integers(0, 10_000)))
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) + spread,
            "low": np.minimum(opens, closes) - spread / 2,
            "close": closes,
            "volume": volume,
        },
        index=pd.DatetimeIndex(start + pd.to_timedelta(sorted(offsets), unit="min"), name="ts"),
    )


@settings(max_examples=80, deadline=None)
@given(minute_frames(), st.booleans())
def test_resampling_in_steps_equals_resampling_at_once(frame: pd.DataFrame, forming: bool) -> None:
    as_of = last_close_time(frame, "1m")
    direct = resample(frame, "1m", "1h", include_forming=forming, as_of=as_of)
    five = resample(frame, "1m", "5m", include_forming=forming, as_of=as_of)
    stepped = resample(five, "5m", "1h", include_forming=forming, as_of=as_of)
    pd.testing.assert_frame_equal(stepped, direct, rtol=1e-12)

    every = resample(frame, "1m", "1h", include_forming=True)
    assert (every["high"] >= np.maximum(every["open"], every["close"])).all()
    assert (every["low"] <= np.minimum(every["open"], every["close"])).all()
    assert every["high"].max() == frame["high"].max()
    assert every["low"].min() == frame["low"].min()
    assert every["volume"].sum() == pytest.approx(frame["volume"].sum())
    ends = every.index + pd.Timedelta(hours=1)
    assert ((ends <= as_of) == bucket_complete_mask(every.index, "1h", as_of)).all()
