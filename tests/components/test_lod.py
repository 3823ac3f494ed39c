"""Level of detail: buckets checked bar by bar against the raw candles they cover."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.charts.lod import aggregate_ohlc, lod_line_positions, lod_timeframe_label
from market.candles import CANDLE_COLUMNS, empty_candles
from market.sample_data import load_sample


def random_candles(n: int, seed: int, freq: str = "1min") -> pd.DataFrame:
    """`n` valid candles (low <= open, close <= high) on a regular UTC index."""
    rng = np.random.default_rng(seed)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) + rng.random(n)
    low = np.minimum(open_, close) - rng.random(n)
    volume = rng.integers(0, 1000, n).astype(np.float64)
    index = pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def check_buckets(raw: pd.DataFrame, out: pd.DataFrame, max_bars: int) -> None:
    """Each row against the raw bars from its timestamp up to the next row's (independent of
    how the buckets were sized)."""
    assert len(out) <= max_bars
    assert list(out.columns) == [*CANDLE_COLUMNS, "bars"]
    assert int(out["bars"].sum()) == len(raw)
    starts = raw.index.get_indexer(out.index)
    assert (starts >= 0).all()
    bounds = [*starts.tolist(), len(raw)]
    assert bounds[0] == 0
    columns = {c: raw[c].to_numpy() for c in CANDLE_COLUMNS}
    rows = out.to_dict("records")
    for row, lo, hi in zip(rows, bounds[:-1], bounds[1:], strict=True):
        assert row["bars"] == hi - lo
        assert row["open"] == columns["open"][lo]
        assert row["close"] == columns["close"][hi - 1]
        assert row["high"] == columns["high"][lo:hi].max()  # exact: max/min pick a raw value
        assert row["low"] == columns["low"][lo:hi].min()
        assert row["volume"] == pytest.approx(columns["volume"][lo:hi].sum(), rel=1e-12)
    counts = out["bars"].to_numpy()
    if len(counts) > 1:  # equal bar counts; only the last bucket may hold fewer
        assert (counts[:-1] == counts[0]).all()
        assert counts[-1] <= counts[0]


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 400), max_bars=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_buckets_hold_the_raw_extremes_and_sums(n: int, max_bars: int, seed: int) -> None:
    raw = random_candles(n, seed)
    check_buckets(raw, aggregate_ohlc(raw, max_bars=max_bars), max_bars)


def test_sp500_in_500_buckets() -> None:
    raw = load_sample("SP500")
    out = aggregate_ohlc(raw, max_bars=500)
    check_buckets(raw, out, 500)
    assert len(out) == 458  # 5031 bars: 457 buckets of 11, then one of 4
    assert out["bars"].iloc[0] == 11
    assert out["bars"].iloc[-1] == 4
    assert out["volume"].sum() == pytest.approx(raw["volume"].sum(), rel=1e-12)
    assert out.index.name == "ts"


def test_range_selection_is_inclusive() -> None:
    raw = random_candles(1000, seed=1)
    start, end = raw.index[100], raw.index[299]
    out = aggregate_ohlc(raw, max_bars=1000, start=start, end=end)
    assert out.index[0] == start
    assert out.index[-1] == end
    assert len(out) == 200
    pd.testing.assert_frame_equal(out[list(CANDLE_COLUMNS)], raw.iloc[100:300])
    # between bars, and given as naive (UTC) text
    out = aggregate_ohlc(raw, max_bars=1000, start="2024-01-01 01:40:30", end="2024-01-01 04:59:59")
    assert (out.index[0], out.index[-1]) == (raw.index[101], raw.index[299])
    # aggregated range: the buckets cover exactly the selected bars
    out = aggregate_ohlc(raw, max_bars=30, start=start, end=end)
    check_buckets(raw.iloc[100:300], out, 30)
    # only a start, only an end, a range holding no bar
    assert aggregate_ohlc(raw, start=raw.index[990])["bars"].sum() == 10
    assert aggregate_ohlc(raw, end=raw.index[9])["bars"].sum() == 10
    assert aggregate_ohlc(raw, start=raw.index[10], end=raw.index[5]).empty


def test_boundaries() -> None:
    empty = aggregate_ohlc(empty_candles(), max_bars=10)
    assert empty.empty
    assert list(empty.columns) == [*CANDLE_COLUMNS, "bars"]

    one = random_candles(1, seed=2)
    out = aggregate_ohlc(one, max_bars=1)
    pd.testing.assert_frame_equal(out[list(CANDLE_COLUMNS)], one)
    assert out["bars"].tolist() == [1]

    raw = random_candles(50, seed=3)
    exact = aggregate_ohlc(raw, max_bars=50)  # no aggregation at exactly max_bars
    pd.testing.assert_frame_equal(exact[list(CANDLE_COLUMNS)], raw)
    assert (exact["bars"] == 1).all()
    assert exact["bars"].dtype == np.int64

    over = aggregate_ohlc(raw, max_bars=49)  # one bar more: buckets of 2
    assert len(over) == 25
    assert over["bars"].tolist() == [2] * 25
    check_buckets(raw, over, 49)

    assert aggregate_ohlc(raw, max_bars=1)["bars"].tolist() == [50]
    with pytest.raises(ValueError, match="max_bars"):
        aggregate_ohlc(raw, max_bars=0)


def test_a_million_bars_well_under_50_ms() -> None:
    raw = random_candles(1_000_000, seed=4)
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        out = aggregate_ohlc(raw, max_bars=2000)
        timings.append(time.perf_counter() - began)
    assert min(timings) < 0.05
    assert len(out) == 2000
    assert out["bars"].sum() == 1_000_000
    assert out["high"].max() == raw["high"].max()
    assert out["low"].min() == raw["low"].min()
    window = aggregate_ohlc(raw, 2000, start=raw.index[250_000], end=raw.index[749_999])
    assert window["bars"].sum() == 500_000
    assert window.index[0] == raw.index[250_000]


@pytest.mark.parametrize(
    ("bars", "timeframe", "label"),
    [
        (1, "1h", "1h per bar"),
        (8, "1h", "≈ 8h per bar"),
        (480, "1m", "≈ 8h per bar"),
        (500, "1m", "≈ 8.3h per bar"),
        (60, "1m", "≈ 1h per bar"),
        (3, "5m", "≈ 15m per bar"),
        (36, "1h", "≈ 1.5d per bar"),
        (10, "1d", "≈ 10d per bar"),
        (11, "1d", "≈ 11d per bar"),
        (14, "1d", "≈ 2w per bar"),
        (30, "1d", "≈ 4.3w per bar"),
        (2, "1w", "≈ 2w per bar"),
    ],
)
def test_lod_timeframe_label(bars: int, timeframe: str, label: str) -> None:
    assert lod_timeframe_label(bars, timeframe) == label


def _naive_line_positions(values: np.ndarray, max_points: int) -> list[int]:
    """Hand-rolled: each run of ceil(n / (max_points // 4)) points keeps its first, last,
    first lowest and first highest non-NaN point (its first point when all are NaN)."""
    n = len(values)
    if n <= max_points:
        return list(range(n))
    size = -(-n // (max_points // 4))
    keep: set[int] = set()
    for start in range(0, n, size):
        run = list(range(start, min(start + size, n)))
        real = [i for i in run if not np.isnan(values[i])] or [run[0]]
        low = min(real, key=lambda i: (values[i], i))
        high = max(real, key=lambda i: (values[i], -i))
        keep |= {run[0], run[-1], low, high}
    return sorted(keep)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 300),
    max_points=st.integers(4, 80),
    seed=st.integers(0, 2**16),
    nan_share=st.sampled_from([0.0, 0.0, 0.3, 1.0]),
)
def test_line_positions_keep_each_runs_first_last_low_and_high(
    n: int, max_points: int, seed: int, nan_share: float
) -> None:
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=n).cumsum(), 1)  # rounded: ties happen
    values[rng.random(n) < nan_share] = np.nan
    got = lod_line_positions(values, max_points)
    assert got.dtype == np.int64
    assert got.tolist() == _naive_line_positions(values, max_points)
    assert len(got) <= max(n if n <= max_points else max_points, 0)
    if n:
        assert (got[0], got[-1]) == (0, n - 1)
        if not np.isnan(values).all():
            assert np.nanmin(values[got]) == np.nanmin(values)
            assert np.nanmax(values[got]) == np.nanmax(values)


def test_line_positions_of_a_million_points() -> None:
    values = np.random.default_rng(3).normal(size=1_000_000).cumsum()
    lod_line_positions(values)  # warm
    began = time.perf_counter()
    got = lod_line_positions(values)
    elapsed = time.perf_counter() - began
    assert len(got) <= 4000
    assert values[got].max() == values.max()
    assert elapsed < 0.5, f"{elapsed:.3f} s"  # a few ms; generous for a loaded machine
    with pytest.raises(ValueError, match="max_points=3 is invalid"):
        lod_line_positions(values, 3)
