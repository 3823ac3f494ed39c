"""Registry metadata, parameter validation (messages name the parameter and its range) and
requests (canonical keys and column names)."""

from __future__ import annotations

import pickle

import pytest

import indicators
from indicators import (
    IndicatorParamError,
    IndicatorRequest,
    UnknownIndicatorError,
    all_specs,
    get,
    request,
)
from indicators.base import closest
from market.timeframes import TimeframeError

ALL = ("sma", "ema", "wma", "bbands", "rsi", "macd", "stoch", "atr", "donchian", "obv", "vwap")


def test_every_indicator_is_registered() -> None:
    assert sorted(s.name for s in all_specs()) == sorted(ALL)
    for spec in all_specs():
        assert get(spec.name) is spec
        assert all((spec.title, spec.convention, spec.reference, spec.outputs))
        assert set(spec.inputs) <= {"ts", "open", "high", "low", "close", "volume"}
        for p in spec.params:
            assert spec.validate()[p.name] == p.default


@pytest.mark.parametrize(
    ("name", "overlay", "levels", "outputs"),
    [
        ("sma", True, (), ("sma",)),
        ("bbands", True, (), ("upper", "middle", "lower")),
        ("donchian", True, (), ("upper", "middle", "lower")),
        ("vwap", True, (), ("vwap",)),
        ("rsi", False, (30.0, 70.0), ("rsi",)),
        ("stoch", False, (20.0, 80.0), ("k", "d")),
        ("macd", False, (0.0,), ("macd", "signal", "hist")),
        ("atr", False, (), ("atr",)),
        ("obv", False, (), ("obv",)),
    ],
)
def test_chart_metadata(name: str, overlay: bool, levels: tuple, outputs: tuple) -> None:
    spec = get(name)
    assert (spec.overlay, spec.levels, spec.outputs) == (overlay, levels, outputs)


def test_inputs() -> None:
    assert get("rsi").inputs == ("close",)
    assert get("atr").inputs == ("high", "low", "close")
    assert get("vwap").inputs == ("ts", "high", "low", "close", "volume")


def test_defaults_and_lookbacks() -> None:
    assert get("macd").validate() == {"fast": 12, "slow": 26, "signal": 9}
    assert get("rsi").lookback() == 14
    assert get("macd").lookback({"signal": 1}) == 25
    assert get("stoch").lookback() == 8


def test_unknown_indicator_suggests_the_closest() -> None:
    with pytest.raises(
        UnknownIndicatorError, match=r"unknown indicator 'rsii' \(did you mean 'rsi'\?\)"
    ):
        get("rsii")
    with pytest.raises(UnknownIndicatorError, match="available: atr, bbands"):
        get("zzz")
    assert get("RSI") is get("rsi")


@pytest.mark.parametrize(
    ("word", "suggested"),
    [
        ("smacross", "sma_crossover"),  # an abbreviation, not the nearest spelling (macd_cross)
        ("SMA-Crossover", "sma_crossover"),  # the same name, other case and separators
        ("sma_crossver", "sma_crossover"),  # a typo
        ("macdcross", "macd_cross"),
        ("rsirev", "rsi_reversion"),
        ("xyz", None),
    ],
)
def test_closest_compares_names_without_separators_and_takes_abbreviations(
    word: str, suggested: str | None
) -> None:
    names = ["sma_crossover", "ema_crossover", "rsi_reversion", "macd_cross", "donchian_breakout"]
    expected = f" (did you mean {suggested!r}?)" if suggested else ""
    assert closest(word, names) == expected


def test_unknown_parameter_suggests_the_closest() -> None:
    with pytest.raises(IndicatorParamError, match=r"did you mean 'timeperiod'\?") as info:
        get("rsi").validate({"timeperoid": 14})
    assert info.value.parameter == "timeperoid"
    with pytest.raises(IndicatorParamError, match="parameters fast, slow, signal"):
        get("macd").validate({"period": 3})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("rsi", {"timeperiod": 1}, "rsi: timeperiod=1 is out of range; allowed: int in 2..100000"),
        (
            "rsi",
            {"timeperiod": 14.5},
            "timeperiod=14.5 is not an integer; allowed: int in 2..100000",
        ),
        ("rsi", {"timeperiod": True}, "timeperiod=True is not a number"),
        ("rsi", {"timeperiod": "14"}, "timeperiod='14' is not a number"),
        ("bbands", {"nbdevup": 11}, "nbdevup=11.0 is out of range; allowed: float in 0.0..10.0"),
        ("bbands", {"nbdevup": float("nan")}, "nbdevup=nan is not finite"),
        ("vwap", {"anchor": "M"}, "anchor='M' is invalid; allowed: one of 'D', 'W'"),
        (
            "macd",
            {"fast": 26},
            "macd: fast=26 is not below slow; allowed: fast < slow \\(slow=26\\)",
        ),
        ("atr", {"timeperiod": 0}, "allowed: int in 1..100000"),
    ],
)
def test_invalid_parameters_name_parameter_and_range(name: str, params: dict, message: str) -> None:
    with pytest.raises(IndicatorParamError, match=message):
        get(name).validate(params)


def test_values_are_coerced() -> None:
    assert get("rsi").validate({"timeperiod": 10.0}) == {"timeperiod": 10}
    assert get("bbands").validate({"nbdevup": 1})["nbdevup"] == 1.0
    assert isinstance(get("bbands").validate({"nbdevup": 1})["nbdevup"], float)


def test_request_key_is_canonical() -> None:
    assert request("rsi") == request("rsi", timeperiod=14)
    assert request("rsi").key == "rsi(timeperiod=14)"
    assert request("macd", fast=12).key == "macd(fast=12,signal=9,slow=26)"
    assert request("MACD", timeframe="1h").key == "macd(fast=12,signal=9,slow=26)@1h"
    assert request("bbands", nbdevup=2).key == "bbands(nbdevdn=2.0,nbdevup=2.0,timeperiod=20)"
    assert request("obv").key == "obv()"
    assert request("vwap", anchor="W").key == "vwap(anchor=W)"
    assert request("rsi") != request("rsi", timeframe="4h")
    assert len({request("rsi"), request("rsi", timeperiod=14.0)}) == 1  # hashable


def test_request_columns() -> None:
    req = request("macd", timeframe="1h")
    assert req.column("hist") == "macd(fast=12,signal=9,slow=26)@1h:hist"
    assert req.columns == tuple(f"{req.key}:{o}" for o in ("macd", "signal", "hist"))
    with pytest.raises(KeyError, match="no output 'histogram'"):
        req.column("histogram")


def test_request_validates() -> None:
    with pytest.raises(IndicatorParamError, match="timeperiod"):
        request("rsi", timeperiod=1)
    with pytest.raises(TimeframeError):
        request("rsi", timeframe="7m")
    with pytest.raises(UnknownIndicatorError):
        request("rsx")


def test_request_is_frozen_and_picklable() -> None:
    req = request("stoch", fastk=9)
    assert pickle.loads(pickle.dumps(req)) == req
    assert isinstance(req, IndicatorRequest)
    with pytest.raises(AttributeError):
        req.name = "rsi"  # type: ignore[misc]


def test_package_exports() -> None:
    assert set(indicators.__all__) >= {"get", "all_specs", "request", "IndicatorSpec", "Param"}
