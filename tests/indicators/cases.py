"""The parameter sets every indicator is tested with: its defaults and a non-default set."""

from __future__ import annotations

from typing import Any

PARAM_SETS: dict[str, list[dict[str, Any]]] = {
    "sma": [{}, {"timeperiod": 7}],
    "ema": [{}, {"timeperiod": 9}],
    "wma": [{}, {"timeperiod": 5}],
    "bbands": [{}, {"timeperiod": 10, "nbdevup": 1.5, "nbdevdn": 2.5}],
    "rsi": [{}, {"timeperiod": 5}],
    "macd": [{}, {"fast": 5, "slow": 35, "signal": 5}],
    "stoch": [{}, {"fastk": 14, "slowk": 1, "slowd": 4}],
    "atr": [{}, {"timeperiod": 1}, {"timeperiod": 21}],
    "obv": [{}],
    "donchian": [{}, {"timeperiod": 55}],
    "vwap": [{}, {"anchor": "W"}],
}

CASES = [(name, params) for name, sets in PARAM_SETS.items() for params in sets]


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, params = case
    return name + "(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")"
