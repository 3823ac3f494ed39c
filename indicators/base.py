"""The indicator contract: a spec (metadata + validation), a full computation, an incremental state.

>>> from indicators.registry import get
>>> spec = get("rsi")
>>> params = spec.validate({"timeperiod": 14})
>>> values = spec.compute(frame, params)              # {"rsi": ndarray}, NaN in the warm-up
>>> state, values = spec.open(frame, params)          # the same values, plus a live state
>>> state.update(candle)                              # (rsi,) for a new closed candle, O(1)
>>> state.peek(forming)                               # (rsi,) for the forming candle, no change

Every indicator is a pure function of its inputs: arrays in, same-length arrays out, NaN during
the warm-up, no I/O. Values follow TA-Lib's definitions (seeding included).
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from market.candles import Candle
from market.timeframes import timestamp_ms, to_epoch_ms, utc_index

ParamValue = int | float | str
Inputs = Mapping[str, np.ndarray]  # "open", "high", "low", "close", "volume", and "ts" (epoch ms)
Values = dict[str, np.ndarray]


class IndicatorParamError(ValueError):
    """A parameter is unknown, of the wrong type or out of its bounds (the message says which).

    >>> IndicatorParamError("rsi", "timeperiod", 1, "int in 2..100000").parameter
    'timeperiod'
    """

    def __init__(self, indicator: str, parameter: str, value: Any, allowed: str, why: str = ""):
        self.indicator = indicator
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        reason = why or "is out of range"
        super().__init__(f"{indicator}: {parameter}={value!r} {reason}; allowed: {allowed}")


class UnknownNameError(LookupError):
    """No entry of that name in a registry (the message suggests the closest)."""

    def __str__(self) -> str:  # LookupError's str() would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownIndicatorError(UnknownNameError):
    """No indicator of that name (the message suggests the closest)."""


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """' did you mean 'x'?' for the closest of `choices`, or '' when none is close.

    >>> closest("timeperoid", ["timeperiod"])
    " (did you mean 'timeperiod'?)"
    >>> closest("smacross", ["macd_cross", "sma_crossover"])
    " (did you mean 'sma_crossover'?)"

    Names are compared without case and separators ("SMA-Crossover" is "smacrossover"): the
    same name so written comes first, then one the word abbreviates or extends by at least
    three letters ("smacross" for "sma_crossover", "rsi14" for "rsi"; the nearest in length),
    else the closest spelling (difflib, ratio 0.5 at least).
    """
    match = _closest(str(word), list(choices))
    return f" (did you mean {match!r}?)" if match else ""


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _closest(word: str, choices: list[str]) -> str | None:
    wanted = _squash(word)
    squashed = {choice: _squash(choice) for choice in choices}
    same = [c for c, s in squashed.items() if s == wanted]
    if wanted and same:
        return same[0]
    prefix = [
        c
        for c, s in squashed.items()
        if min(len(s), len(wanted)) >= 3 and (s.startswith(wanted) or wanted.startswith(s))
    ]
    if prefix:
        return min(prefix, key=lambda c: abs(len(squashed[c]) - len(wanted)))
    spelled = difflib.get_close_matches(wanted, list(squashed.values()), n=1, cutoff=0.5)
    spelled = spelled or difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.5)
    if not spelled:
        return None
    return next((c for c, s in squashed.items() if spelled[0] in (s, c)), None)


V = TypeVar("V")


def lookup(entries: Mapping[str, V], name: str, kind: str, error: type[UnknownNameError]) -> V:
    """The entry called ``name`` (case-insensitive) of a registry of ``kind`` (the indicators',
    the strategies'); else ``error`` naming the closest and every one available."""
    entry = entries.get(str(name).strip().lower())
    if entry is None:
        names = sorted(entries)
        raise error(f"unknown {kind} {name!r}{closest(name, names)}; available: {', '.join(names)}")
    return entry


@dataclass(frozen=True)
class Param:
    """One parameter: ``Param("timeperiod", int, 14, 2, 100_000, "bars in the window")``.

    ``kind`` is int, float or str; a str parameter lists its ``choices`` (low/high unused).
    """

    name: str
    kind: type
    default: ParamValue
    low: int | float | None = None
    high: int | float | None = None
    description: str = ""
    choices: tuple[str, ...] = ()

    @property
    def allowed(self) -> str:
        """The allowed range in words: 'int in 2..100000' or 'one of 'D', 'W''."""
        if self.kind is str:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"{self.kind.__name__} in {self.low}..{self.high}"

    def check(self, indicator: str, value: Any) -> ParamValue:
        """`value` coerced to ``kind`` (an integral float is accepted for an int), or raise."""
        if self.kind is str:
            if value not in self.choices:
                raise IndicatorParamError(indicator, self.name, value, self.allowed, "is invalid")
            return str(value)
        # bool is an int to Python, never a period to a trader
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise IndicatorParamError(indicator, self.name, value, self.allowed, "is not a number")
        if self.kind is int:
            if not float(value).is_integer():
                raise IndicatorParamError(
                    indicator, self.name, value, self.allowed, "is not an integer"
                )
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise IndicatorParamError(
                    indicator, self.name, value, self.allowed, "is not finite"
                )
        if not self.low <= value <= self.high:
            raise IndicatorParamError(indicator, self.name, value, self.allowed)
        return value


class IncrementalIndicator(Protocol):
    def update(self, candle: Candle) -> tuple[float, ...]:
        """Apply one closed candle (O(1)); returns the new values, in the spec's output order."""
        ...

    def peek(self, candle: Candle) -> tuple[float, ...]:
        """Values if `candle` (the forming one) closed now; the state does not change."""
        ...


ComputeFn = Callable[[Inputs, Mapping[str, Any]], Values]
OpenFn = Callable[[Inputs, Mapping[str, Any]], tuple[IncrementalIndicator, Values]]


@dataclass(frozen=True)
class IndicatorSpec:
    """What the chart and the strategies know of an indicator, and how to compute it.

    >>> spec = get("macd")
    >>> spec.outputs, spec.overlay, spec.validate({"fast": 8})
    (('macd', 'signal', 'hist'), False, {'fast': 8, 'slow': 26, 'signal': 9})
    """

    name: str
    title: str
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    overlay: bool  # drawn over the price; False: its own panel
    compute_fn: ComputeFn
    open_fn: OpenFn
    lookback_fn: Callable[[Mapping[str, Any]], int]
    levels: tuple[float, ...] = ()  # reference levels drawn in its panel (RSI 30/70)
    convention: str = ""  # the definition followed, in one line (TA-Lib's, or ours and why)
    reference: str = ""  # what the tests compare it with
    check_fn: Callable[[Mapping[str, Any]], None] | None = None  # cross-parameter rules

    def param(self, name: str, value: Any = None) -> Param:
        return find_param(self.params, self.name, name, value)

    def validate(self, params: Mapping[str, Any] | None = None) -> dict[str, ParamValue]:
        """Defaults filled in, types and bounds checked; errors name the parameter and range.

        >>> get("rsi").validate({"timeperiod": 1})
        Traceback (most recent call last):
        IndicatorParamError: rsi: timeperiod=1 is out of range; allowed: int in 2..100000
        """
        return validate_params(self.params, self.name, params, self.check_fn)

    def compute(
        self, data: pd.DataFrame | Inputs, params: Mapping[str, Any] | None = None
    ) -> Values:
        """``{output: ndarray}`` over the whole input, NaN in the warm-up.

        >>> get("sma").compute({"close": np.arange(1.0, 5.0)}, {"timeperiod": 2})["sma"]
        array([nan, 1.5, 2.5, 3.5])
        """
        checked = self.validate(params)
        return self.compute_fn(candle_inputs(data, self.inputs), checked)

    def open(
        self, data: pd.DataFrame | Inputs, params: Mapping[str, Any] | None = None
    ) -> tuple[IncrementalIndicator, Values]:
        """The full values plus a live state positioned after the last bar (history may be empty).

        >>> state, values = get("ema").open(frame, {"timeperiod": 10})
        >>> state.update(next_candle)
        (101.25,)
        """
        checked = self.validate(params)
        return self.open_fn(candle_inputs(data, self.inputs), checked)

    def lookback(self, params: Mapping[str, Any] | None = None) -> int:
        """Bars before the first defined value (TA-Lib's lookback): 14 for rsi(timeperiod=14)."""
        return self.lookback_fn(self.validate(params))


def candle_inputs(data: pd.DataFrame | Inputs, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named inputs as contiguous float64 arrays ("ts" as int64 epoch ms).

    >>> candle_inputs(frame, ("close",))["close"].dtype
    dtype('float64')
    """
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        if name == "ts":
            arrays[name] = _epoch_ms(data.index if isinstance(data, pd.DataFrame) else data["ts"])
        else:
            try:
                column = data[name]
            except KeyError:
                raise KeyError(f"input {name!r} missing: an indicator needs {names}") from None
            if isinstance(column, pd.Series):
                column = column.to_numpy()
            arrays[name] = np.ascontiguousarray(column, dtype=np.float64)
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"inputs {names} differ in length: {sorted(lengths)}")
    return arrays


def _epoch_ms(values: Any) -> np.ndarray:
    array = np.asarray(values) if not isinstance(values, pd.Index) else None
    if array is not None and array.dtype.kind in "iu":
        return np.ascontiguousarray(array, dtype=np.int64)  # already epoch ms
    return to_epoch_ms(utc_index(values))


def candle_ms(candle: Candle) -> int:
    """The candle's open time in epoch ms (pd.Timestamp.value is always nanoseconds)."""
    return timestamp_ms(candle.ts)


def get(name: str) -> IndicatorSpec:
    """Shortcut for :func:`indicators.registry.get` (kept for the doctests above)."""
    from indicators.registry import get as registry_get

    return registry_get(name)


P = TypeVar("P", bound="Param")


def find_param(
    params: Sequence[P],
    owner: str,
    name: str,
    value: Any = None,
    error: type[IndicatorParamError] = IndicatorParamError,
) -> P:
    """The parameter called ``name`` of an indicator or strategy; an unknown name raises
    ``error`` listing the parameters and suggesting the closest."""
    for p in params:
        if p.name == name:
            return p
    names = [p.name for p in params]
    raise error(
        owner,
        name,
        value,
        "parameters " + (", ".join(names) or "(none)"),
        "is not a parameter" + closest(name, names),
    )


def validate_params(
    params: Sequence[Param],
    owner: str,
    given: Mapping[str, Any] | None,
    check: Callable[[dict[str, ParamValue]], None] | None = None,
    error: type[IndicatorParamError] = IndicatorParamError,
) -> dict[str, ParamValue]:
    """Defaults filled in, every given name known, each value checked, then ``check`` (the
    cross-parameter rules). Shared by indicators and strategies."""
    values = dict(given or {})
    for name, value in values.items():
        find_param(params, owner, name, value, error)
    checked = {p.name: p.check(owner, values.get(p.name, p.default)) for p in params}
    if check is not None:
        check(checked)
    return checked
