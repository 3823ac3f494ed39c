"""Volume indicators: on-balance volume (TA-Lib) and VWAP anchored per UTC day or week (ours).

>>> from indicators.registry import get
>>> get("vwap").compute(frame, {"anchor": "D"})["vwap"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from indicators._talib import talib_spec
from indicators.base import IndicatorSpec, Inputs, Param, Values, candle_ms
from market.candles import Candle
from market.timeframes import Timeframe

OBV = talib_spec(
    "obv",
    "On-balance volume",
    "OBV",
    ("close", "volume"),
    (),
    ("obv",),
    overlay=False,
    lookback=lambda params: 0,
    convention=(
        "TA-Lib OBV: starts at the first bar's volume, then adds the volume on an up close, "
        "subtracts it on a down close, keeps it on an unchanged one."
    ),
    reference="talib.OBV; numpy cumsum of sign(diff(close)) x volume",
)

# session anchors: the bucket whose start resets the sums (weeks start Monday 00:00 UTC)
ANCHORS = {"D": Timeframe.parse("1d"), "W": Timeframe.parse("1w")}
NAN = float("nan")


class VwapState:
    """Running sums of typical price x volume and of volume since the session start.

    >>> state = VwapState(ANCHORS["D"])
    >>> state.update(candle)  # (vwap,)
    """

    __slots__ = ("_origin", "_period", "_session", "_sum_pv", "_sum_v")

    def __init__(self, anchor: Timeframe) -> None:
        self._period = anchor.millis
        self._origin = anchor.origin_ms
        self._session: int | None = None
        self._sum_pv = 0.0
        self._sum_v = 0.0

    def _sums(self, candle: Candle) -> tuple[int, float, float]:
        origin, size = self._origin, self._period
        session = (candle_ms(candle) - origin) // size * size + origin
        volume = candle.volume
        pv = (candle.high + candle.low + candle.close) / 3.0 * volume
        if session != self._session:
            return session, pv, volume
        return session, self._sum_pv + pv, self._sum_v + volume

    def update(self, candle: Candle) -> tuple[float]:
        self._session, self._sum_pv, self._sum_v = sums = self._sums(candle)
        return (sums[1] / sums[2] if sums[2] else NAN,)

    def peek(self, candle: Candle) -> tuple[float]:
        _, sum_pv, sum_v = self._sums(candle)
        return (sum_pv / sum_v if sum_v else NAN,)


def session_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running sums restarting at each index in `starts` (sorted, starts[0] == 0).

    >>> session_cumsum(np.array([1.0, 2, 3, 4]), np.array([0, 2]))
    array([1., 3., 3., 7.])

    Sums left to right as the live state does, so both agree to the last bit; the loop runs
    over sessions or over positions within a session, whichever is fewer.
    """
    out = values.copy()
    if len(values) == 0:
        return out
    lengths = np.diff(np.append(starts, len(values)))
    if len(starts) <= lengths.max():
        for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            np.cumsum(values[start : start + length], out=out[start : start + length])
        return out
    position = np.arange(len(values)) - np.repeat(starts, lengths)
    by_position = np.argsort(position, kind="stable")
    bounds = np.cumsum(np.bincount(position))
    for k in range(1, len(bounds)):
        index = by_position[bounds[k - 1] : bounds[k]]
        out[index] = out[index - 1] + values[index]
    return out


def _session_starts(ts_ms: np.ndarray, anchor: Timeframe) -> np.ndarray:
    sessions = anchor.bucket_start_ms(ts_ms)
    return np.flatnonzero(np.diff(sessions, prepend=sessions[:1] - 1) != 0)


def _vwap_sums(arrays: Inputs, anchor: Timeframe) -> tuple[np.ndarray, np.ndarray]:
    high, low, close, volume = (arrays[c] for c in ("high", "low", "close", "volume"))
    starts = _session_starts(arrays["ts"], anchor)
    return session_cumsum((high + low + close) / 3.0 * volume, starts), session_cumsum(
        volume, starts
    )


def _vwap(sum_pv: np.ndarray, sum_v: np.ndarray) -> Values:
    return {"vwap": np.divide(sum_pv, sum_v, out=np.full(len(sum_v), np.nan), where=sum_v != 0)}


def _vwap_compute(arrays: Inputs, params: Mapping[str, Any]) -> Values:
    return _vwap(*_vwap_sums(arrays, ANCHORS[params["anchor"]]))


def _vwap_open(arrays: Inputs, params: Mapping[str, Any]) -> tuple[VwapState, Values]:
    anchor = ANCHORS[params["anchor"]]
    sum_pv, sum_v = _vwap_sums(arrays, anchor)
    state = VwapState(anchor)
    if len(sum_v):
        state._session = int(anchor.bucket_start_ms(int(arrays["ts"][-1])))
        state._sum_pv, state._sum_v = float(sum_pv[-1]), float(sum_v[-1])
    return state, _vwap(sum_pv, sum_v)


VWAP = IndicatorSpec(
    name="vwap",
    title="VWAP (session)",
    inputs=("ts", "high", "low", "close", "volume"),
    params=(
        Param(
            "anchor",
            str,
            "D",
            description="session reset: D = UTC day, W = UTC week (Mon)",
            choices=("D", "W"),
        ),
    ),
    outputs=("vwap",),
    overlay=True,
    compute_fn=_vwap_compute,
    open_fn=_vwap_open,
    lookback_fn=lambda params: 0,
    convention=(
        "sum((high+low+close)/3 x volume) / sum(volume) since the session start (UTC day, or "
        "UTC week from Monday); NaN while the session's volume is 0."
    ),
    reference="pandas groupby(session).cumsum() of typical price x volume over volume",
)

SPECS: tuple[IndicatorSpec, ...] = (OBV, VWAP)
