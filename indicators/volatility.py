"""Average true range (TA-Lib) and the Donchian channel (TA-Lib MAX/MIN, live on our own state).

>>> from indicators.registry import get
>>> get("donchian").compute(frame, {"timeperiod": 20})["upper"]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import talib

from indicators._talib import period, talib_spec
from indicators.base import IndicatorSpec, Inputs, Values
from market.candles import Candle


def _atr_lookback(params: Mapping[str, Any]) -> int:
    return int(params["timeperiod"])


ATR = talib_spec(
    "atr",
    "Average true range",
    "ATR",
    ("high", "low", "close"),
    (period(14, low=1),),
    ("atr",),
    overlay=False,
    lookback=_atr_lookback,
    convention=(
        "TA-Lib ATR (Wilder): true range from bar 1, seeded with the mean of the first "
        "timeperiod true ranges, then atr = (atr x (n-1) + tr) / n."
    ),
    reference="talib.ATR; a plain Python loop of Wilder's recursion",
)

NAN = float("nan")


class DonchianState:
    """Highest high and lowest low of the last n bars, kept as monotonic deques (amortized O(1)).

    >>> state = DonchianState(2)
    >>> state.update(candle)  # (upper, middle, lower), NaN for the first n-1 bars
    """

    __slots__ = ("_count", "_highs", "_lows", "_n")

    def __init__(self, n: int) -> None:
        self._n = n
        self._count = 0  # bars applied so far; also the index of the next bar
        self._highs: deque[tuple[int, float]] = deque()  # (index, high), highs decreasing
        self._lows: deque[tuple[int, float]] = deque()  # (index, low), lows increasing

    def update(self, candle: Candle) -> tuple[float, float, float]:
        index = self._count
        self._count = index + 1
        oldest = index - self._n + 1
        high, low = candle.high, candle.low
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((index, high))
        if highs[0][0] < oldest:
            highs.popleft()
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((index, low))
        if lows[0][0] < oldest:
            lows.popleft()
        if oldest < 0:
            return (NAN, NAN, NAN)
        upper, lower = highs[0][1], lows[0][1]
        return (upper, (upper + lower) / 2.0, lower)

    def peek(self, candle: Candle) -> tuple[float, float, float]:
        oldest = self._count - self._n + 1
        if oldest < 0:
            return (NAN, NAN, NAN)
        # after update every deque entry is inside the window: only the front can be leaving
        upper = max(candle.high, _first_from(self._highs, oldest, -np.inf))
        lower = min(candle.low, _first_from(self._lows, oldest, np.inf))
        return (upper, (upper + lower) / 2.0, lower)


def _first_from(entries: deque[tuple[int, float]], oldest: int, empty: float) -> float:
    if entries and entries[0][0] >= oldest:
        return entries[0][1]
    return entries[1][1] if len(entries) > 1 else empty


def _donchian_compute(arrays: Inputs, params: Mapping[str, Any]) -> Values:
    n = int(params["timeperiod"])
    upper = talib.MAX(arrays["high"], timeperiod=n)
    lower = talib.MIN(arrays["low"], timeperiod=n)
    return {"upper": upper, "middle": (upper + lower) / 2.0, "lower": lower}


def _donchian_open(arrays: Inputs, params: Mapping[str, Any]) -> tuple[DonchianState, Values]:
    n = int(params["timeperiod"])
    state = DonchianState(n)
    high, low = arrays["high"], arrays["low"]
    # only the last n bars can matter to the deques; the count positions the warm-up
    start = max(0, len(high) - n)
    state._count = start
    for h, lo in zip(high[start:].tolist(), low[start:].tolist(), strict=True):
        state.update(Candle(None, NAN, h, lo, NAN, NAN))  # type: ignore[arg-type]
    return state, _donchian_compute(arrays, params)


def _window(params: Mapping[str, Any]) -> int:
    return int(params["timeperiod"]) - 1


DONCHIAN = IndicatorSpec(
    name="donchian",
    title="Donchian channel",
    inputs=("high", "low"),
    params=(period(20),),
    outputs=("upper", "middle", "lower"),
    overlay=True,
    compute_fn=_donchian_compute,
    open_fn=_donchian_open,
    lookback_fn=_window,
    convention=(
        "upper = TA-Lib MAX(high, n), lower = MIN(low, n), both including the current bar; "
        "middle = (upper + lower) / 2 (= TA-Lib MIDPRICE)."
    ),
    reference="pandas rolling(n).max()/min(); talib.MIDPRICE for the middle",
)

SPECS: tuple[IndicatorSpec, ...] = (ATR, DONCHIAN)
