"""Technical indicators: full (vectorized) and incremental, with a registry the chart reads.

>>> from indicators import get, request
>>> spec = get("rsi")
>>> state, values = spec.open(frame, {"timeperiod": 14})
>>> request("macd", timeframe="1h").key
'macd(fast=12,signal=9,slow=26)@1h'

See docs/indicators.md for the table of indicators, their parameters and conventions.
"""

from indicators.base import (
    IncrementalIndicator,
    IndicatorParamError,
    IndicatorSpec,
    Param,
    UnknownIndicatorError,
)
from indicators.registry import IndicatorRequest, all_specs, get, request

__all__ = [
    "IncrementalIndicator",
    "IndicatorParamError",
    "IndicatorRequest",
    "IndicatorSpec",
    "Param",
    "UnknownIndicatorError",
    "all_specs",
    "get",
    "request",
]
