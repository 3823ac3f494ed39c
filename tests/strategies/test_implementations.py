"""Each strategy: the live path equals the vectorized one, and signals match hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.sample_data import load_sample
from strategies.base import replay_live
from strategies.registry import all_strategies, create

CONFIGS = [
    ("sma_crossover", {}),
    ("sma_crossover", {"fast": 5, "slow": 20, "direction": "both"}),
    ("ema_crossover", {"direction": "short"}),
    ("ema_crossover", {"fast": 8, "slow": 21, "direction": "both"}),
    ("rsi_reversion", {}),
    ("rsi_reversion", {"period": 5, "trend_filter": True, "trend_period": 50, "direction": "both"}),
    ("rsi_reversion", {"period": 5, "oversold": 20, "overbought": 80, "direction": "short"}),
    ("macd_cross", {}),
    ("macd_cross", {"zero_line_filter": True, "direction": "both"}),
    ("bollinger_reversion", {"direction": "both"}),
    ("bollinger_reversion", {"period": 10, "nbdev": 1.5}),
    ("donchian_breakout", {}),
    ("donchian_breakout", {"entry_period": 55, "exit_period": 20, "direction": "both"}),
    ("donchian_breakout", {"entry_period": 10, "exit_period": 10, "direction": "short"}),
]
SMALL = [
    ("sma_crossover", {"fast": 2, "slow": 5, "direction": "both"}),
    ("ema_crossover", {"fast": 2, "slow": 4, "direction": "both"}),
    ("rsi_reversion", {"period": 3, "trend_filter": True, "trend_period": 8, "direction": "both"}),
    ("macd_cross", {"fast": 2, "slow": 5, "signal": 2, "direction": "both"}),
    ("macd_cross", {"fast": 2, "slow": 5, "signal": 1, "zero_line_filter": True}),
    ("bollinger_reversion", {"period": 4, "nbdev": 1.0, "direction": "both"}),
    ("donchian_breakout", {"entry_period": 4, "exit_period": 2, "direction": "both"}),
]


def _ids(configs: list[tuple[str, dict]]) -> list[str]:
    return [
        f"{name}-{'-'.join(f'{k}={v}' for k, v in p.items()) or 'default'}" for name, p in configs
    ]


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    return load_sample("SP500")


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return load_sample("DEMO")


def _vectorized_from(strategy, frame: pd.DataFrame, start: int) -> list:
    signals = strategy.generate(frame, symbol="X", timeframe="1d").signals
    return [s for s in signals if s.timestamp >= frame.index[start]] if start < len(frame) else []


def test_every_strategy_is_covered() -> None:
    assert {name for name, _ in CONFIGS} == {cls.name for cls in all_strategies()}
    assert {name for name, _ in SMALL} == {cls.name for cls in all_strategies()}


@pytest.mark.parametrize(("name", "params"), CONFIGS, ids=_ids(CONFIGS))
@pytest.mark.parametrize("start", [0, 25, 400])
def test_live_equals_vectorized_on_sp500(sp500, name, params, start) -> None:
    strategy = create(name, **params)
    expected = _vectorized_from(strategy, sp500, start)
    live = replay_live(strategy, sp500, start, symbol="X", timeframe="1d")
    assert len(expected) > 10
    assert live == expected


@pytest.mark.parametrize(("name", "params"), CONFIGS[1::2], ids=_ids(CONFIGS[1::2]))
def test_live_equals_vectorized_on_demo(demo, name, params) -> None:
    strategy = create(name, **params)
    frame = demo.iloc[:12_000]
    expected = _vectorized_from(strategy, frame, 3_000)
    assert len(expected) > 20
    assert replay_live(strategy, frame, 3_000, symbol="X", timeframe="1d") == expected


def _random_frame(returns: list[float], spreads: list[float]) -> pd.DataFrame:
    close = 100.0 * np.cumprod(1.0 + np.asarray(returns))
    spread = np.asarray(spreads) * close
    index = pd.date_range("2024-01-01", periods=len(close), freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": np.r_[close[:1], close[:-1]],
            "high": close + spread,
            "low": close - spread,
            "close": close,
            "volume": np.ones(len(close)),
        },
        index=index,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=st.sampled_from(SMALL),
    data=st.data(),
    n=st.integers(min_value=0, max_value=120),
)
def test_live_equals_vectorized_on_random_series(config, data, n) -> None:
    # a small return alphabet repeats values and makes flat stretches: ties are where paths differ
    returns = data.draw(
        st.lists(st.sampled_from([-0.02, -0.01, 0.0, 0.01, 0.03]), min_size=n, max_size=n)
    )
    spreads = data.draw(st.lists(st.sampled_from([0.0, 0.005, 0.02]), min_size=n, max_size=n))
    start = data.draw(st.integers(min_value=0, max_value=n))
    frame = _random_frame(returns, spreads)
    strategy = create(config[0], **config[1])
    assert replay_live(strategy, frame, start, symbol="X", timeframe="1d") == _vectorized_from(
        strategy, frame, start
    )


def _alternate(up: np.ndarray, down: np.ndarray) -> tuple[list[int], list[int]]:
    """Entry on `up` when flat, exit on `down` when open: the rule, one bar at a time."""
    entries, exits, is_open = [], [], False
    for i in range(len(up)):
        if is_open and down[i]:
            is_open = False
            exits.append(i)
        elif not is_open and up[i] and not down[i]:
            is_open = True
            entries.append(i)
    return entries, exits


def _positions(result, column: str) -> list[int]:
    return np.flatnonzero(result.frame[column].to_numpy()).tolist()


def test_sma_crossover_matches_pandas_crossings(sp500) -> None:
    close = sp500["close"]
    fast, slow = close.rolling(10).mean().to_numpy(), close.rolling(30).mean().to_numpy()
    spread = fast - slow
    before = np.r_[np.nan, spread[:-1]]
    ok = np.arange(len(close)) >= 30  # slow SMA and ATR(14) defined here and on the bar before
    entries, exits = _alternate(
        ok & (spread > 0) & (before <= 0), ok & (spread < 0) & (before >= 0)
    )
    result = create("sma_crossover").generate(sp500)
    assert _positions(result, "entry_long") == entries
    assert _positions(result, "exit_long") == exits
    # pinned from the run above; 1999-02-25: SMA10 1246.83 crossed SMA30 1246.00
    assert str(sp500.index[entries[0]].date()) == "1999-02-25"
    assert (len(entries), len(exits)) == (88, 88)
    first = result.signals[0]
    assert first.metadata["fast_sma"] == pytest.approx(
        close.iloc[entries[0] - 9 : entries[0] + 1].mean()
    )
    assert first.price == close.iloc[entries[0]]


def test_donchian_breakout_matches_rolling_channels(sp500) -> None:
    upper = sp500["high"].rolling(20).max().shift(1).to_numpy()
    exit_lower = sp500["low"].rolling(10).min().shift(1).to_numpy()
    close = sp500["close"].to_numpy()
    ok = np.arange(len(close)) >= 20
    with np.errstate(invalid="ignore"):
        entries, exits = _alternate(ok & (close > upper), ok & (close < exit_lower))
    result = create("donchian_breakout").generate(sp500)
    assert _positions(result, "entry_long") == entries
    assert _positions(result, "exit_long") == exits
    signal = result.signals[0]
    atr = talib.ATR(sp500["high"], sp500["low"], sp500["close"], 14).to_numpy()[entries[0]]
    assert signal.confidence == pytest.approx(
        min(1.0, 0.5 + 0.5 * (close[entries[0]] - upper[entries[0]]) / atr)
    )


def test_rsi_reversion_matches_talib_levels(sp500) -> None:
    rsi = talib.RSI(sp500["close"].to_numpy(), 14)
    ok = np.arange(len(rsi)) >= 15
    with np.errstate(invalid="ignore"):
        entries, exits = _alternate(ok & (rsi < 30), ok & (rsi >= 50))
    result = create("rsi_reversion").generate(sp500)
    assert _positions(result, "entry_long") == entries
    assert _positions(result, "exit_long") == exits
    depth = 30 - rsi[entries[0]]
    assert result.signals[0].confidence == pytest.approx(min(1.0, 0.5 + 0.05 * depth))


def test_direction_both_reverses_on_one_bar(sp500) -> None:
    result = create("sma_crossover", direction="both").generate(sp500)
    frame = result.frame
    # every cross after the first closes one side and opens the other on the same bar
    assert (frame.exit_long == frame.entry_short)[frame.index > result.signals[1].timestamp].all()
    types = [s.signal_type for s in result.signals if s.timestamp == result.signals[1].timestamp]
    assert types == ["exit_long", "entry_short"] or types == ["exit_short", "entry_long"]


def test_filters_only_remove_entries(sp500) -> None:
    plain = create("macd_cross").generate(sp500).frame
    filtered = create("macd_cross", zero_line_filter=True).generate(sp500).frame
    assert 0 < filtered.entry_long.sum() < plain.entry_long.sum()
    macd = talib.MACD(sp500["close"].to_numpy(), 12, 26, 9)[0]
    assert (macd[filtered.entry_long.to_numpy()] < 0).all()
    trend = create("rsi_reversion", trend_filter=True).generate(sp500).frame
    sma = sp500["close"].rolling(200).mean()
    assert (sp500["close"][trend.entry_long] > sma[trend.entry_long]).all()


@pytest.mark.parametrize("cls", all_strategies(), ids=lambda c: c.name)
def test_confidence_in_unit_interval_and_varies(sp500, cls) -> None:
    result = cls(direction="both").generate(sp500)
    confidence = np.array([s.confidence for s in result.signals if s.is_entry])
    assert ((confidence >= 0) & (confidence <= 1)).all()
    assert len(np.unique(confidence)) > 5  # a formula, not a constant
