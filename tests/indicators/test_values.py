"""Values against TA-Lib (to 1e-9 relative, NaN exactly where it has NaN) and against plain
numpy/pandas references written from the definitions, on the bundled S&P 500 series."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

from indicators import all_specs, get
from tests.indicators import reference
from tests.indicators.cases import CASES, case_id

RTOL = 1e-9


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = RTOL) -> None:
    """NaN in the same places; elsewhere equal to `rtol`, relative to the series' own scale
    (so a MACD histogram crossing 0 is not held to a relative bound on a near-zero value)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    defined = ~np.isnan(expected)
    if defined.any():
        scale = np.abs(expected[defined]).max()
        np.testing.assert_allclose(actual[defined], expected[defined], rtol=rtol, atol=rtol * scale)


def talib_outputs(name: str, frame: pd.DataFrame, p: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """TA-Lib called directly, with its own parameter names (the mapping under test)."""
    o, h, lo, c, v = (frame[col].to_numpy() for col in ("open", "high", "low", "close", "volume"))
    del o
    result: Any
    match name:
        case "sma" | "ema" | "wma" | "rsi":
            result = getattr(talib, name.upper())(c, timeperiod=p["timeperiod"])
        case "bbands":
            result = talib.BBANDS(
                c, timeperiod=p["timeperiod"], nbdevup=p["nbdevup"], nbdevdn=p["nbdevdn"], matype=0
            )
        case "macd":
            result = talib.MACD(
                c, fastperiod=p["fast"], slowperiod=p["slow"], signalperiod=p["signal"]
            )
        case "stoch":
            result = talib.STOCH(
                h,
                lo,
                c,
                fastk_period=p["fastk"],
                slowk_period=p["slowk"],
                slowk_matype=0,
                slowd_period=p["slowd"],
                slowd_matype=0,
            )
        case "atr":
            result = talib.ATR(h, lo, c, timeperiod=p["timeperiod"])
        case "obv":
            result = talib.OBV(c, v)
        case "donchian":
            upper = talib.MAX(h, timeperiod=p["timeperiod"])
            lower = talib.MIN(lo, timeperiod=p["timeperiod"])
            result = (upper, talib.MIDPRICE(h, lo, timeperiod=p["timeperiod"]), lower)
        case _:
            raise KeyError(name)
    return result if isinstance(result, tuple) else (result,)


def reference_outputs(name: str, frame: pd.DataFrame, p: dict[str, Any]) -> tuple[np.ndarray, ...]:
    h, lo, c, v = (frame[col].to_numpy() for col in ("high", "low", "close", "volume"))
    match name:
        case "sma":
            return (reference.sma(c, p["timeperiod"]),)
        case "ema":
            return (reference.ema(c, p["timeperiod"]),)
        case "wma":
            return (reference.wma(c, p["timeperiod"]),)
        case "bbands":
            return reference.bbands(c, p["timeperiod"], p["nbdevup"], p["nbdevdn"])
        case "rsi":
            return (reference.rsi(c, p["timeperiod"]),)
        case "macd":
            return reference.macd(c, p["fast"], p["slow"], p["signal"])
        case "stoch":
            return reference.stoch(h, lo, c, p["fastk"], p["slowk"], p["slowd"])
        case "atr":
            return (reference.atr(h, lo, c, p["timeperiod"]),)
        case "obv":
            return (reference.obv(c, v),)
        case "donchian":
            return reference.donchian(h, lo, p["timeperiod"])
        case "vwap":
            return (reference.vwap(frame, p["anchor"]),)
    raise KeyError(name)


TALIB_CASES = [case for case in CASES if case[0] != "vwap"]


@pytest.mark.parametrize("case", TALIB_CASES, ids=case_id)
def test_matches_talib(case: tuple[str, dict[str, Any]], sp500: pd.DataFrame) -> None:
    name, given = case
    spec = get(name)
    params = spec.validate(given)
    values = spec.compute(sp500, given)
    for output, expected in zip(spec.outputs, talib_outputs(name, sp500, params), strict=True):
        assert_close(values[output], expected)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matches_plain_reference(case: tuple[str, dict[str, Any]], sp500: pd.DataFrame) -> None:
    name, given = case
    spec = get(name)
    values = spec.compute(sp500, given)
    expected = reference_outputs(name, sp500, spec.validate(given))
    for output, want in zip(spec.outputs, expected, strict=True):
        assert_close(values[output], want)


@pytest.mark.parametrize("anchor", ["D", "W"])
def test_vwap_on_minute_bars_matches_pandas(anchor: str, demo_minutes: pd.DataFrame) -> None:
    values = get("vwap").compute(demo_minutes, {"anchor": anchor})["vwap"]
    assert_close(values, reference.vwap(demo_minutes, anchor), rtol=1e-12)
    first_of_day = demo_minutes.index.normalize() == demo_minutes.index
    typical = (demo_minutes["high"] + demo_minutes["low"] + demo_minutes["close"]) / 3
    if anchor == "D":  # a session's first bar: its own typical price
        np.testing.assert_allclose(values[first_of_day], typical[first_of_day], rtol=1e-15)


def test_vwap_week_starts_monday(sp500: pd.DataFrame) -> None:
    values = get("vwap").compute(sp500, {"anchor": "W"})["vwap"]
    typical = ((sp500["high"] + sp500["low"] + sp500["close"]) / 3).to_numpy()
    mondays = (sp500.index.day_of_week == 0) & (sp500["volume"].to_numpy() > 0)
    np.testing.assert_allclose(values[mondays], typical[mondays], rtol=1e-15)


def test_vwap_without_volume_is_nan() -> None:
    ts = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    data = {
        "ts": ts,
        "high": np.full(4, 2.0),
        "low": np.full(4, 1.0),
        "close": np.full(4, 1.5),
        "volume": np.array([0.0, 0.0, 3.0, 0.0]),
    }
    np.testing.assert_array_equal(get("vwap").compute(data)["vwap"], [np.nan, np.nan, 1.5, 1.5])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_warm_up_is_the_lookback(case: tuple[str, dict[str, Any]], sp500: pd.DataFrame) -> None:
    name, given = case
    spec = get(name)
    values = spec.compute(sp500, given)
    for output in spec.outputs:
        defined = np.flatnonzero(~np.isnan(values[output]))
        assert defined[0] == spec.lookback(given), output
        assert defined[-1] == len(sp500) - 1


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_frame_and_mapping_inputs_agree(spec: Any, sp500: pd.DataFrame) -> None:
    frame = sp500.iloc[:300]
    mapping: dict[str, Any] = {c: frame[c].to_numpy() for c in frame.columns}
    mapping["ts"] = frame.index.to_numpy()
    from_frame, from_mapping = spec.compute(frame), spec.compute(mapping)
    for output in spec.outputs:
        np.testing.assert_array_equal(from_frame[output], from_mapping[output])
        assert len(from_frame[output]) == len(frame)


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.name)
def test_short_and_empty_inputs_are_all_nan(spec: Any, sp500: pd.DataFrame) -> None:
    for length in (0, 1, spec.lookback()):
        values = spec.compute(sp500.iloc[:length])
        for output in spec.outputs:
            assert len(values[output]) == length
            if spec.lookback() >= length:
                assert np.isnan(values[output][: spec.lookback()]).all()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_truncation_invariance(case: tuple[str, dict[str, Any]], sp500: pd.DataFrame) -> None:
    """Values up to t do not change when the data after t is removed (no look-ahead)."""
    name, given = case
    spec = get(name)
    full = spec.compute(sp500, given)
    for stop in (1, spec.lookback(given) + 1, 777, 2500, len(sp500) - 1):
        head = spec.compute(sp500.iloc[:stop], given)
        for output in spec.outputs:
            np.testing.assert_array_equal(head[output], full[output][:stop])


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_references_agree(n: int, sp500: pd.DataFrame) -> None:
    """The loop and the ewm twin (the benchmark's pandas RSI) against each other and TA-Lib."""
    close = sp500["close"].to_numpy()
    assert_close(reference.rsi_ewm(close, n), reference.rsi(close, n))
    assert_close(reference.rsi_ewm(close, n), talib.RSI(close, timeperiod=n))
