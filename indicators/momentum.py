"""Momentum oscillators in their own panel: RSI, MACD, Stochastic, by TA-Lib.

>>> from indicators.registry import get
>>> get("macd").compute(frame, {"fast": 12, "slow": 26, "signal": 9})["hist"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from indicators._talib import period, talib_spec
from indicators.base import IndicatorParamError, IndicatorSpec


def _rsi_lookback(params: Mapping[str, Any]) -> int:
    return int(params["timeperiod"])


def _macd_lookback(params: Mapping[str, Any]) -> int:
    return int(params["slow"]) - 1 + int(params["signal"]) - 1


def _macd_talib(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "fastperiod": params["fast"],
        "slowperiod": params["slow"],
        "signalperiod": params["signal"],
    }


def _check_macd(params: Mapping[str, Any]) -> None:
    # TA-Lib silently swaps fast and slow when fast > slow; a trader meant something else
    if params["fast"] >= params["slow"]:
        raise IndicatorParamError(
            "macd",
            "fast",
            params["fast"],
            f"fast < slow (slow={params['slow']})",
            "is not below slow",
        )


def _stoch_lookback(params: Mapping[str, Any]) -> int:
    return int(params["fastk"]) - 1 + int(params["slowk"]) - 1 + int(params["slowd"]) - 1


def _stoch_talib(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "fastk_period": params["fastk"],
        "slowk_period": params["slowk"],
        "slowk_matype": 0,
        "slowd_period": params["slowd"],
        "slowd_matype": 0,
    }


RSI = talib_spec(
    "rsi",
    "Relative strength index",
    "RSI",
    ("close",),
    (period(14),),
    ("rsi",),
    overlay=False,
    lookback=_rsi_lookback,
    levels=(30.0, 70.0),
    convention=(
        "TA-Lib RSI (Wilder): average gain and loss seeded with the simple mean of the first "
        "timeperiod changes, then smoothed by 1/timeperiod; 100 x gain / (gain + loss), 0 if flat."
    ),
    reference="talib.RSI; a plain Python loop of Wilder's recursion",
)

MACD = talib_spec(
    "macd",
    "MACD",
    "MACD",
    ("close",),
    (
        period(12, name="fast", what="fast EMA period"),
        period(26, name="slow", what="slow EMA period"),
        period(9, low=1, name="signal", what="signal EMA period"),
    ),
    ("macd", "signal", "hist"),
    overlay=False,
    lookback=_macd_lookback,
    to_talib=_macd_talib,
    check_fn=_check_macd,
    levels=(0.0,),
    convention=(
        "TA-Lib MACD: EMA(fast) - EMA(slow), both seeded by an SMA at bar slow-1 (so the fast "
        "EMA differs from talib.EMA early on); signal = EMA(signal) of it; hist = macd - signal."
    ),
    reference="talib.MACD; pandas ewm with TA-Lib's seeds",
)

STOCH = talib_spec(
    "stoch",
    "Stochastic oscillator",
    "STOCH",
    ("high", "low", "close"),
    (
        period(5, low=1, name="fastk", what="%K look-back window"),
        period(3, low=1, name="slowk", what="%K smoothing (SMA)"),
        period(3, low=1, name="slowd", what="%D smoothing (SMA of %K)"),
    ),
    ("k", "d"),
    overlay=False,
    lookback=_stoch_lookback,
    to_talib=_stoch_talib,
    levels=(20.0, 80.0),
    convention=(
        "TA-Lib STOCH (slow, SMA smoothing): raw %K = 100 x (close - lowest low) / (highest "
        "high - lowest low) over fastk bars (0 when flat); k = SMA(slowk) of it; "
        "d = SMA(slowd) of k."
    ),
    reference="talib.STOCH; pandas rolling max/min and means",
)

SPECS: tuple[IndicatorSpec, ...] = (RSI, MACD, STOCH)
