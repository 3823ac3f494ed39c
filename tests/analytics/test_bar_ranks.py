"""analytics.bar_ranks.window_ranks equals rank_pct over each sorted window, to the bit,
and BarFrame.snapshots (ranks counted at once) equals BarFrame.snapshot per bar."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from analytics.bar_ranks import window_ranks
from analytics.label_config import load_label_config
from analytics.market_context import BarFrame, rank_pct


def _bits(x: float) -> str:
    return "nan" if math.isnan(x) else x.hex()


@pytest.mark.parametrize("size", [1, 3, 100])
def test_window_ranks_equal_rank_pct_of_each_sorted_window(size):
    rng = np.random.default_rng(size)
    values = np.round(rng.normal(0, 1, 700), 1)  # ties
    values[[5, 300, 301]] = np.nan
    values[[50, 400]] = [np.inf, -0.0]
    values[410:430] = 0.0
    positions = rng.integers(0, len(values), 300)
    got = window_ranks(values, positions, size)
    for i, rank in zip(positions.tolist(), got.tolist(), strict=True):
        window = values[max(0, i - size + 1) : i + 1]
        want = (
            float("nan")
            if len(window) < size or np.isnan(window).any()
            else rank_pct(sorted(window.tolist()), float(values[i]))
        )
        assert _bits(rank) == _bits(want), i


def test_window_ranks_of_too_few_values_are_nan():
    assert np.isnan(window_ranks(np.array([1.0, 2.0]), np.array([0, 1]), 5)).all()
    assert len(window_ranks(np.array([1.0]), np.array([], dtype=np.int64), 5)) == 0


def test_snapshots_at_once_equal_snapshot_per_bar():
    rng = np.random.default_rng(4)
    n = 900
    close = 100.0 * np.cumprod(1 + rng.normal(0, 0.002, n))
    candles = pd.DataFrame(
        {
            "open": close,
            "high": close * (1 + np.abs(rng.normal(0, 0.002, n))),
            "low": close * (1 - np.abs(rng.normal(0, 0.002, n))),
            "close": close,
            "volume": rng.integers(1, 100, n).astype(float),
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC"),
    )
    config = load_label_config()
    positions = sorted(set(rng.integers(0, n, 200).tolist()) | {0, 99, 100, 113, n - 1})
    one, many = BarFrame(candles, pd.Timedelta(minutes=1), config), None
    many = BarFrame(candles, pd.Timedelta(minutes=1), config)
    many.snapshot(positions[3])  # one made before: kept as it is
    for a, b in zip([one.snapshot(i) for i in positions], many.snapshots(positions), strict=True):
        for f in fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            assert (_bits(x) == _bits(y)) if isinstance(x, float) else x == y, f.name
