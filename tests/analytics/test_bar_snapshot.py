"""A bar's snapshot as analytics.market_context makes it: its context's keys in CONTEXT_KEYS'
order with JSON null for numbers that are not finite, a frozen BarSnapshot, and the same
snapshots whether a frame's bars are read one at a time or many at once."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from analytics.label_config import load_label_config
from analytics.market_context import CONTEXT_KEYS, BarFrame, BarSnapshot, BarStream, bar_snapshot
from market.sample_data import generate_random_walk

CONFIG = load_label_config()
BAR = pd.Timedelta(minutes=1)


def _fields(snapshot: BarSnapshot) -> dict:
    return {f.name: getattr(snapshot, f.name) for f in dataclasses.fields(BarSnapshot)}


def _same(a: dict, b: dict, *, types: bool = True) -> bool:
    return all(
        (x != x and y != y) or (x == y and (not types or type(x) is type(y)))  # NaN: NaN
        for x, y in ((a[k], b[k]) for k in a)
    )


def test_the_context_lists_every_key_in_order_with_null_for_numbers_not_finite():
    made = bar_snapshot(
        CONFIG, open_ns=60_000_000_000, close=100.0, volume=5.0, atr=2.0,
        atr_rank=float("nan"), sma=99.0, sma_before=float("nan"), close_before=98.0,
        volumes_before=[1.0] * CONFIG.volume.window, rsi=55.0, bollinger=(101.0, 97.0),
        donchian=(float("inf"), 95.0),
    )  # fmt: skip
    assert type(made) is BarSnapshot
    assert tuple(made.context) == CONTEXT_KEYS
    context = made.context
    assert context["bar_open"] == "1970-01-01T00:01:00+00:00"
    assert context["atr_pct_rank"] is None
    assert made.volatility_regime is None
    assert context["sma_slope_pct"] is None
    assert made.trend is None
    assert context["donchian_high"] is None
    assert math.isinf(made.donchian_high)
    assert context["volume_z"] is None
    assert made.volume_z == math.inf  # the volumes before all equal
    assert context["momentum_atr"] == made.momentum_atr == 1.0
    assert context["atr_pct"] == made.atr_pct == 2.0
    assert all(context[k] is None for k in ("market_session", "price_level", "to_high_atr",
                                             "to_low_atr"))  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.close = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("bars", [30, 400])
def test_a_frames_snapshots_read_at_once_equal_those_read_one_at_a_time(bars):
    candles = generate_random_walk("RW", "1m", pd.Timestamp("2024-01-01", tz="UTC"), bars, seed=3)
    wanted = sorted({0, 1, bars // 3, bars // 2, bars - 1, *range(0, bars, 7)})
    together = BarFrame(candles, BAR, CONFIG).snapshots(wanted)
    alone = BarFrame(candles, BAR, CONFIG)
    for i, snapshot in zip(wanted, together, strict=True):
        one = alone.snapshot(i)
        assert _same(_fields(one), _fields(snapshot))
        assert list(one.context) == list(snapshot.context) == list(CONTEXT_KEYS)
    # the incremental form, fed the same bars, says the same of the last one (its warm-up
    # may hold a numpy float where the frame holds Python's: the same value)
    stream = BarStream(CONFIG, BAR, history=candles.iloc[:-1])
    row = candles.iloc[-1]
    from market.candles import Candle

    last = stream.update(
        Candle(None, row["open"], row["high"], row["low"], row["close"], row["volume"]),  # type: ignore[arg-type]
        int(candles.index[-1].value),
    )
    assert _same(_fields(last), _fields(together[-1]), types=False)
