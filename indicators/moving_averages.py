"""Moving averages and Bollinger Bands, on the close, by TA-Lib.

>>> from indicators.registry import get
>>> get("ema").compute(frame, {"timeperiod": 20})["ema"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from indicators._talib import period, talib_spec
from indicators.base import IndicatorParamError, IndicatorSpec, Param


def _window(params: Mapping[str, Any]) -> int:
    return int(params["timeperiod"]) - 1


def _bbands_talib(params: Mapping[str, Any]) -> dict[str, Any]:
    return {**params, "matype": 0}


def _check_bbands(params: Mapping[str, Any]) -> None:
    if params["nbdevup"] == 0 and params["nbdevdn"] == 0:
        raise IndicatorParamError(
            "bbands", "nbdevup", 0.0, "nbdevup or nbdevdn above 0", "makes three equal lines"
        )


SMA = talib_spec(
    "sma",
    "Simple moving average",
    "SMA",
    ("close",),
    (period(30),),
    ("sma",),
    overlay=True,
    lookback=_window,
    convention="TA-Lib SMA: mean of the last timeperiod closes.",
    reference="talib.SMA; pandas rolling(timeperiod).mean()",
)

EMA = talib_spec(
    "ema",
    "Exponential moving average",
    "EMA",
    ("close",),
    (period(30),),
    ("ema",),
    overlay=True,
    lookback=_window,
    convention=(
        "TA-Lib EMA: k = 2/(timeperiod+1), seeded with the SMA of the first timeperiod closes."
    ),
    reference="talib.EMA; pandas ewm(alpha=k, adjust=False) after an SMA seed",
)

WMA = talib_spec(
    "wma",
    "Weighted moving average",
    "WMA",
    ("close",),
    (period(30),),
    ("wma",),
    overlay=True,
    lookback=_window,
    convention="TA-Lib WMA: linear weights 1..timeperiod, newest heaviest, over their sum.",
    reference="talib.WMA; numpy convolution with weights 1..n",
)

BBANDS = talib_spec(
    "bbands",
    "Bollinger Bands",
    "BBANDS",
    ("close",),
    (
        period(20),
        Param("nbdevup", float, 2.0, 0.0, 10.0, "upper band: standard deviations above"),
        Param("nbdevdn", float, 2.0, 0.0, 10.0, "lower band: standard deviations below"),
    ),
    ("upper", "middle", "lower"),
    overlay=True,
    lookback=_window,
    to_talib=_bbands_talib,
    check_fn=_check_bbands,
    convention=(
        "TA-Lib BBANDS (matype SMA): middle = SMA, bands = middle +/- nbdev x population "
        "standard deviation (ddof=0) of the same window."
    ),
    reference="talib.BBANDS; pandas rolling mean and std(ddof=0)",
)

SPECS: tuple[IndicatorSpec, ...] = (SMA, EMA, WMA, BBANDS)
