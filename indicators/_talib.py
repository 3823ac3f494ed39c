"""TA-Lib as the engine: ``talib.X`` for the full series, ``talib.stream.X`` for live bars.

>>> spec = talib_spec("ema", "EMA", "EMA", ("close",), (period(30),), ("ema",), True,
...                   lookback=lambda p: p["timeperiod"] - 1)

A stream handle gives bit-identical values to the function API in O(1) per bar (about 0.1 µs).
It needs ``lookback + 1`` bars to open, so a state opened on a shorter history buffers the bars
in lists and opens the handle on the bar that completes the warm-up; until then it answers NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import talib
from talib import stream

from indicators.base import IndicatorSpec, Inputs, Param, Values
from market.candles import Candle

MAX_PERIOD = 100_000  # TA-Lib's own upper bound on every period


def period(default: int, low: int = 2, name: str = "timeperiod", what: str = "") -> Param:
    """An int period parameter with TA-Lib's bounds: ``period(14)``."""
    return Param(name, int, default, low, MAX_PERIOD, what or "bars in the window")


class TalibState:
    """A live ``talib.stream`` handle, or the bars buffered until it can be opened.

    >>> state = TalibState(stream.EMA, {"timeperiod": 3}, need=3, history=[[1.0]], n_out=1)
    >>> state.update_values(2.0), state.update_values(3.0)
    ((nan,), (2.0,))
    """

    __slots__ = ("_history", "_kwargs", "_nan", "_need", "_single", "_stream", "_stream_cls")

    def __init__(
        self,
        stream_cls: Any,
        kwargs: Mapping[str, Any],
        need: int,
        history: list[list[float]],
        n_out: int,
        handle: Any = None,
    ) -> None:
        self._stream_cls = stream_cls
        self._kwargs = dict(kwargs)
        self._need = need  # bars of history the handle needs to open: lookback + 1
        self._history: list[list[float]] | None = None if handle is not None else history
        self._stream = handle
        self._single = n_out == 1
        self._nan = (float("nan"),) * n_out

    def _out(self, value: Any) -> tuple[float, ...]:
        return (value,) if self._single else value

    def update_values(self, *values: float) -> tuple[float, ...]:
        """Apply one closed bar given as the input doubles (in the spec's input order)."""
        handle = self._stream
        if handle is not None:
            return self._out(handle.update(*values))
        history = self._history
        for column, value in zip(history, values, strict=True):
            column.append(float(value))
        if len(history[0]) < self._need:
            return self._nan
        self._stream = self._stream_cls(*map(np.array, history), **self._kwargs)
        self._history = None
        return self._out(self._stream.value)

    def peek_values(self, *values: float) -> tuple[float, ...]:
        """Values if this bar closed now; nothing changes."""
        handle = self._stream
        if handle is not None:
            return self._out(handle.peek(*values))
        history = self._history
        if len(history[0]) + 1 < self._need:
            return self._nan
        # the bar that completes the warm-up: open a throwaway handle (once per peek, warm-up only)
        arrays = [np.array([*column, value]) for column, value in zip(history, values, strict=True)]
        return self._out(self._stream_cls(*arrays, **self._kwargs).value)

    # the candle methods below are specialised per input shape: they are the live hot path
    def update(self, candle: Candle) -> tuple[float, ...]:
        raise NotImplementedError

    def peek(self, candle: Candle) -> tuple[float, ...]:
        raise NotImplementedError


class CloseState(TalibState):
    """A single-output indicator of the close (SMA, EMA, WMA, RSI)."""

    __slots__ = ()

    def update(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.update_values(candle.close)
        return (handle.update(candle.close),)

    def peek(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.peek_values(candle.close)
        return (handle.peek(candle.close),)


class CloseMultiState(TalibState):
    """A multi-output indicator of the close (MACD, Bollinger Bands)."""

    __slots__ = ()

    def update(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.update_values(candle.close)
        return handle.update(candle.close)

    def peek(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.peek_values(candle.close)
        return handle.peek(candle.close)


class HighLowCloseState(TalibState):
    """An indicator of high, low and close (ATR, Stochastic)."""

    __slots__ = ()

    def update(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.update_values(candle.high, candle.low, candle.close)
        return self._out(handle.update(candle.high, candle.low, candle.close))

    def peek(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.peek_values(candle.high, candle.low, candle.close)
        return self._out(handle.peek(candle.high, candle.low, candle.close))


class CloseVolumeState(TalibState):
    """An indicator of close and volume (OBV)."""

    __slots__ = ()

    def update(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.update_values(candle.close, candle.volume)
        return (handle.update(candle.close, candle.volume),)

    def peek(self, candle: Candle) -> tuple[float, ...]:
        handle = self._stream
        if handle is None:
            return self.peek_values(candle.close, candle.volume)
        return (handle.peek(candle.close, candle.volume),)


STATE_FOR_INPUTS: dict[tuple[tuple[str, ...], bool], type[TalibState]] = {
    (("close",), True): CloseState,
    (("close",), False): CloseMultiState,
    (("high", "low", "close"), True): HighLowCloseState,
    (("high", "low", "close"), False): HighLowCloseState,
    (("close", "volume"), True): CloseVolumeState,
}


def open_stream(
    stream_cls: Any,
    state_cls: type[TalibState],
    arrays: list[np.ndarray],
    kwargs: Mapping[str, Any],
    lookback: int,
    n_out: int,
) -> tuple[TalibState, tuple[np.ndarray, ...]]:
    """A state after the last bar of `arrays`, and the full outputs over them (one pass)."""
    length = len(arrays[0])
    if length > lookback:
        handle, full = stream_cls.open_and_fill(*arrays, **kwargs)
        outputs = (full,) if n_out == 1 else tuple(full)
        return state_cls(stream_cls, kwargs, lookback + 1, [], n_out, handle), outputs
    history = [a.tolist() for a in arrays]
    nan = tuple(np.full(length, np.nan) for _ in range(n_out))
    return state_cls(stream_cls, kwargs, lookback + 1, history, n_out), nan


def talib_spec(
    name: str,
    title: str,
    function: str,
    inputs: tuple[str, ...],
    params: tuple[Param, ...],
    outputs: tuple[str, ...],
    overlay: bool,
    lookback: Callable[[Mapping[str, Any]], int],
    to_talib: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    **metadata: Any,
) -> IndicatorSpec:
    """A spec computed by ``talib.<function>`` with live states on ``talib.stream.<function>``.

    ``to_talib`` maps our parameter names to TA-Lib's keyword arguments (default: the same).
    """
    batch = getattr(talib, function)
    stream_cls = getattr(stream, function)
    state_cls = STATE_FOR_INPUTS[(inputs, len(outputs) == 1)]
    mapping = to_talib or dict
    n_out = len(outputs)

    def compute(arrays: Inputs, params: Mapping[str, Any]) -> Values:
        result = batch(*(arrays[i] for i in inputs), **mapping(params))
        return dict(zip(outputs, (result,) if n_out == 1 else result, strict=True))

    def open_(arrays: Inputs, params: Mapping[str, Any]) -> tuple[TalibState, Values]:
        columns = [arrays[i] for i in inputs]
        state, full = open_stream(
            stream_cls, state_cls, columns, mapping(params), lookback(params), n_out
        )
        return state, dict(zip(outputs, full, strict=True))

    return IndicatorSpec(
        name=name,
        title=title,
        inputs=inputs,
        params=params,
        outputs=outputs,
        overlay=overlay,
        compute_fn=compute,
        open_fn=open_,
        lookback_fn=lookback,
        **metadata,
    )
