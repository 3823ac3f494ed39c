"""BaseStrategy parameters, registry, signal dataclasses and the IntegratedData path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from database.records import SignalRecord
from market.candles import iter_candles
from market.sample_data import load_sample
from market.timeframes import Timeframe
from strategies.base import StrategyParamError
from strategies.data_integration import IntegratedData
from strategies.indicator_series import DataVersion
from strategies.registry import UnknownStrategyError, all_strategies, create, get
from strategies.signals import StrategySignal, config_hash


@pytest.fixture(scope="module")
def sp500() -> pd.DataFrame:
    return load_sample("SP500")


def test_registry_names_and_suggestion() -> None:
    assert [c.name for c in all_strategies()] == [
        "sma_crossover", "ema_crossover", "rsi_reversion",
        "macd_cross", "bollinger_reversion", "donchian_breakout",
    ]  # fmt: skip
    assert get("RSI_Reversion").name == "rsi_reversion"
    with pytest.raises(UnknownStrategyError, match="did you mean 'sma_crossover'"):
        get("sma_crossver")


def test_defaults() -> None:
    assert create("sma_crossover").config == {"fast": 10, "slow": 30, "direction": "long"}
    assert create("rsi_reversion").config == {
        "period": 14, "oversold": 30.0, "overbought": 70.0,
        "trend_filter": False, "trend_period": 200, "direction": "long",
    }  # fmt: skip
    assert create("macd_cross").config["zero_line_filter"] is False
    assert create("bollinger_reversion").config == {"period": 20, "nbdev": 2.0, "direction": "long"}
    assert create("donchian_breakout").config["exit_period"] == 10


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sma_crossover", {"slwo": 20}, "slwo=20 is not a parameter (did you mean 'slow'?)"),
        ("sma_crossover", {"fast": 1}, "fast=1 is out of range; allowed: int in 2..1000"),
        ("sma_crossover", {"fast": 30, "slow": 10}, "fast=30 is not below slow"),
        ("ema_crossover", {"fast": 2.5}, "fast=2.5 is not an integer"),
        ("sma_crossover", {"direction": "sideways"}, "one of 'long', 'short', 'both'"),
        ("rsi_reversion", {"oversold": 80}, "oversold=80.0 is not below overbought"),
        ("rsi_reversion", {"trend_filter": 1}, "trend_filter=1 is not a boolean"),
        ("rsi_reversion", {"overbought": 100}, "float in 1.0..99.0"),
        ("macd_cross", {"fast": 26}, "fast=26 is not below slow"),
        ("bollinger_reversion", {"nbdev": 0.1}, "nbdev=0.1 is out of range"),
        ("donchian_breakout", {"exit_period": 30}, "exit_period=30 is above entry_period"),
    ],
)
def test_parameter_errors_name_the_parameter(name, params, message) -> None:
    with pytest.raises(StrategyParamError) as info:
        create(name, **params)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{name}: ")
    assert info.value.parameter == next(iter(params)) or "not below" in message


def test_integral_float_is_canonical_int() -> None:
    strategy = create("sma_crossover", fast=10.0)
    assert strategy.config["fast"] == 10
    assert isinstance(strategy.config["fast"], int)
    assert strategy == create("sma_crossover")
    assert strategy.config_hash == create("sma_crossover").config_hash


def test_config_hash_is_stable_and_distinguishes() -> None:
    hashes = {create("sma_crossover", fast=f).config_hash for f in (5, 6, 7)}
    assert len(hashes) == 3
    # pinned: a hash that changed would orphan stored signals
    assert create("sma_crossover").config_hash == "953105f78505"
    assert config_hash("x", {"b": 1, "a": 2}) == config_hash("x", {"a": 2, "b": 1})
    assert (
        create("sma_crossover").config_hash != create("ema_crossover", fast=10, slow=30).config_hash
    )


def test_params_schema() -> None:
    schema = get("rsi_reversion").params_schema()
    props = schema["properties"]
    assert schema["additionalProperties"] is False
    assert props["trend_filter"] == {
        "description": "only trade with the SMA(trend_period) trend",
        "default": False,
        "type": "boolean",
    }
    assert props["period"]["type"] == "integer"
    assert props["period"]["minimum"] == 2
    assert props["direction"]["enum"] == ["long", "short", "both"]
    for cls in all_strategies():
        assert all(p.description for p in cls.params), cls.name


def test_required_indicators_are_distinct_requests() -> None:
    keys = [
        r.key
        for r in create("donchian_breakout", entry_period=10, exit_period=10).required_indicators()
    ]
    assert keys == ["donchian(timeperiod=10)", "atr(timeperiod=14)"]
    assert [r.key for r in create("rsi_reversion").required_indicators()] == ["rsi(timeperiod=14)"]
    assert [r.key for r in create("rsi_reversion", trend_filter=True).required_indicators()] == [
        "rsi(timeperiod=14)", "sma(timeperiod=200)",
    ]  # fmt: skip
    assert create("sma_crossover").warmup == 30
    assert create("macd_cross").warmup == 34


def _integrated(frame: pd.DataFrame, strategy) -> IntegratedData:
    values = {
        key: pd.DataFrame(columns, index=frame.index)
        for key, columns in strategy.indicator_values(frame).items()
    }
    version = DataVersion(frame.index[-1], len(frame))
    return IntegratedData("SP500", Timeframe.parse("1d"), frame, values, {}, version)


@pytest.mark.parametrize("cls", all_strategies(), ids=lambda c: c.name)
def test_integrated_data_gives_the_same_signals(sp500, cls) -> None:
    strategy = cls(direction="both")
    from_frame = strategy.generate(sp500, symbol="SP500", timeframe="1d")
    from_data = strategy.generate(_integrated(sp500, strategy))
    assert from_data.signals == from_frame.signals
    assert from_data.symbol == "SP500"
    assert from_data.timeframe == "1d"


def test_missing_indicator_is_named(sp500) -> None:
    strategy = create("sma_crossover")
    data = _integrated(sp500, create("rsi_reversion"))
    with pytest.raises(ValueError, match=r"sma\(timeperiod=10\): not requested"):
        strategy.generate(data)


def test_result_frame_and_records(sp500) -> None:
    result = create("rsi_reversion", direction="both").generate(
        sp500, symbol="SP500", timeframe="1d"
    )
    frame = result.frame
    assert list(frame.columns) == [
        "entry_long",
        "exit_long",
        "entry_short",
        "exit_short",
        "confidence",
    ]
    assert frame.index.equals(sp500.index)
    signal_bars = frame[["entry_long", "exit_long", "entry_short", "exit_short"]].any(axis=1)
    assert frame.confidence.notna().equals(signal_bars)
    assert len(result.signals) == int(
        frame[["entry_long", "exit_long", "entry_short", "exit_short"]].sum().sum()
    )
    records = result.to_records(run_id=3)
    assert all(isinstance(r, SignalRecord) for r in records)
    first = records[0]
    assert first.strategy_config == result.config
    assert first.run_id == 3
    assert set(first.metadata) == {"rsi"}
    assert first.timestamp == result.signals[0].timestamp
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.signals[0].price = 1.0  # type: ignore[misc]


def test_signal_rejects_bad_values() -> None:
    ts = pd.Timestamp("2024-01-02", tz="UTC")
    with pytest.raises(ValueError, match="signal_type"):
        StrategySignal(ts, "S", "1d", "x", "h", "buy", 1.0, 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        StrategySignal(ts, "S", "1d", "x", "h", "entry_long", 1.0, 1.5)


def test_live_on_empty_history_then_candles(sp500) -> None:
    strategy = create("sma_crossover", fast=2, slow=3)
    live = strategy.live(sp500.iloc[:0], symbol="X", timeframe="1d")
    assert not live.long_open
    states = {
        r.key: r.spec.open(sp500.iloc[:0], r.param_dict)[0] for r in strategy.required_indicators()
    }
    out = []
    for candle in iter_candles(sp500.iloc[:200]):
        out.extend(live.on_candle(candle, {k: s.update(candle) for k, s in states.items()}))
    expected = strategy.generate(sp500.iloc[:200], symbol="X", timeframe="1d").signals
    assert len(out) > 5
    assert tuple(out) == expected
    assert np.isclose(out[0].metadata["atr"], expected[0].metadata["atr"])
