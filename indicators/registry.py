"""The indicator registry, and requests: an indicator with canonical parameters and a timeframe.

>>> get("rsi").levels
(30.0, 70.0)
>>> request("macd", fast=12).key
'macd(fast=12,signal=9,slow=26)'
>>> request("rsi", timeframe="1h").column("rsi")
'rsi(timeperiod=14)@1h:rsi'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from indicators import momentum, moving_averages, volatility, volume
from indicators.base import IndicatorSpec, ParamValue, UnknownIndicatorError, lookup
from market.timeframes import Timeframe

_SPECS: dict[str, IndicatorSpec] = {
    spec.name: spec
    for spec in (*moving_averages.SPECS, *momentum.SPECS, *volatility.SPECS, *volume.SPECS)
}


def get(name: str) -> IndicatorSpec:
    """The spec called `name` (case-insensitive): ``get("RSI").outputs == ("rsi",)``."""
    return lookup(_SPECS, name, "indicator", UnknownIndicatorError)


def all_specs() -> list[IndicatorSpec]:
    """Every indicator, in registry order (moving averages, momentum, volatility, volume)."""
    return list(_SPECS.values())


def _format(value: ParamValue) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class IndicatorRequest:
    """An indicator, its parameters (canonical: all of them, sorted) and its timeframe.

    >>> request("rsi") == request("rsi", timeperiod=14)
    True
    >>> request("bbands", nbdevup=2.5).columns
    ('bbands(nbdevdn=2.0,nbdevup=2.5,timeperiod=20):upper', ...)

    Build it with :func:`request`, which validates; ``timeframe=None`` means the chart's own.
    Output columns are named ``f"{key}:{output}"`` (see :meth:`column`).
    """

    name: str
    params: tuple[tuple[str, ParamValue], ...]
    timeframe: str | None = None

    @property
    def spec(self) -> IndicatorSpec:
        return get(self.name)

    @property
    def param_dict(self) -> dict[str, ParamValue]:
        return dict(self.params)

    @cached_property  # a frozen dataclass keeps it in its __dict__: read on every live bar
    def key(self) -> str:
        """``macd(fast=12,signal=9,slow=26)``, plus ``@1h`` when the timeframe is set."""
        args = ",".join(f"{k}={_format(v)}" for k, v in self.params)
        return f"{self.name}({args})" + (f"@{self.timeframe}" if self.timeframe else "")

    def column(self, output: str) -> str:
        """The column holding `output`: ``rsi(timeperiod=14):rsi``."""
        if output not in self.spec.outputs:
            raise KeyError(f"{self.name} has no output {output!r}; outputs: {self.spec.outputs}")
        return f"{self.key}:{output}"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f"{self.key}:{output}" for output in self.spec.outputs)

    def __str__(self) -> str:
        return self.key


def request(name: str, timeframe: str | None = None, **params: Any) -> IndicatorRequest:
    """A validated, canonical request: ``request("macd", timeframe="1h", fast=8)``."""
    spec = get(name)
    checked = spec.validate(params)
    label = Timeframe.parse(timeframe).label if timeframe is not None else None
    return IndicatorRequest(spec.name, tuple(sorted(checked.items())), label)
