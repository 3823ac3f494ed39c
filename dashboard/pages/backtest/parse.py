"""The Backtest page's form: the request a form describes, every field checked (FormError).

>>> request = parse_form({"strategy": "sma_crossover", "params": {"fast": 5},
...                       "symbol": "SP500", "timeframe": "1d", "cash": 10_000})
>>> request.settings.cash, request.params
(10000.0, {'fast': 5, 'slow': 30, 'direction': 'long'})
>>> parse_form({"strategy": "sma_crossover", "symbol": "SP500", "timeframe": "1d", "cash": -5})
FormError: Cash: -5 is invalid: expected a number > 0

Running the request and the saved runs (list, reopen, compare) are services:
services/backtests.py (``run_request``, the run pipeline the command line shares) and
services/saved_runs.py.

Nothing here imports dash: the page's callbacks (callbacks.py, results.py) wrap these functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analytics.backtest import SIZINGS, BacktestInputError, BacktestSettings
from analytics.metrics import PRESETS
from market.timeframes import SUPPORTED, as_utc
from services.backtests import (
    DEFAULT_PRESET,
    BacktestRequest,
)
from strategies import registry
from strategies.base import StrategyParamError

FILLS: tuple[str, ...] = ("next_open", "close")
DIRECTIONS: tuple[str, ...] = ("long", "short", "both")

# form fields -> (label shown on the page, BacktestSettings field); percents become fractions
PERCENT_FIELDS: dict[str, tuple[str, str]] = {
    "commission": ("Commission [%]", "commission_pct"),
    "stop_loss": ("Stop-loss [%]", "stop_loss_pct"),
    "take_profit": ("Take-profit [%]", "take_profit_pct"),
    "trailing_stop": ("Trailing stop [%]", "trailing_stop_pct"),
    "max_drawdown_halt": ("Drawdown halt [%]", "max_drawdown_halt_pct"),
}
FIELD_LABELS: dict[str, str] = {
    "strategy": "Strategy",
    "symbol": "Symbol",
    "timeframe": "Timeframe",
    "start": "From",
    "end": "To",
    "cash": "Cash",
    "commission_fixed": "Fixed commission",
    "slippage_bps": "Slippage [bps]",
    "spread_bps": "Spread [bps]",
    "fill": "Fill",
    "direction": "Direction",
    "sizing": "Sizing",
    "size": "Size",
    "preset": "Metrics preset",
    "compat": "backtesting.py compat",
    **{name: label for name, (label, _) in PERCENT_FIELDS.items()},
}


class FormError(ValueError):
    """An invalid form value: ``field`` is the form field (or strategy parameter) it names.

    >>> str(FormError("cash", "Cash: -5 is invalid: expected an amount > 0"))
    'Cash: -5 is invalid: expected an amount > 0'
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# -- the form ------------------------------------------------------------------------------


def parse_form(form: Mapping[str, Any]) -> BacktestRequest:
    """The request a form describes, every value checked; the first invalid one raises
    :class:`FormError` naming its field (strategy parameters: StrategyParamError's message).

    Keys: ``strategy``, ``params`` (name -> value; ``direction`` is taken from the form's
    ``direction`` when the strategy declares one), ``symbol``, ``timeframe``, ``start`` /
    ``end`` (ISO dates, empty: the first / last stored bar; ``end`` includes its whole day),
    ``cash``, ``commission`` (percent per fill), ``commission_fixed``, ``slippage_bps``,
    ``spread_bps``, ``fill``, ``direction``, ``sizing``, ``size`` (percent of equity for
    "fraction" and "half_kelly", units for "quantity"), ``stop_loss``, ``take_profit``,
    ``trailing_stop``, ``max_drawdown_halt`` (percents, empty: off), ``preset``, ``compat``
    (true: backtesting.py's fill rules). Missing keys take the command line's defaults.
    """
    name = _text(form, "strategy")
    try:
        cls = registry.get(name)
    except registry.UnknownStrategyError as exc:
        raise FormError("strategy", str(exc)) from None
    direction = _choice(form, "direction", DIRECTIONS, "long")
    params = dict(form.get("params") or {})
    for p in cls.params:  # an emptied input: say so, not "None is not a number"
        if p.name in params and params[p.name] in (None, ""):
            raise FormError(p.name, f"{cls.name}: {p.name} is empty; allowed: {p.allowed}")
    if any(p.name == "direction" for p in cls.params):
        params["direction"] = direction
    try:
        params = cls.validate(params)
    except StrategyParamError as exc:
        raise FormError(exc.parameter, str(exc)) from None
    symbol = _text(form, "symbol")
    timeframe = _text(form, "timeframe")
    if timeframe not in SUPPORTED:
        raise FormError(
            "timeframe", f"Timeframe: {timeframe!r} is not one of {', '.join(SUPPORTED)}"
        )
    start = _date(form, "start")
    end = _date(form, "end")
    if end is not None:
        end = end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)  # the whole day
    if start is not None and end is not None and start > end:
        raise FormError("end", f"To: {form['end']} is before From: {form['start']}")
    sizing = _choice(form, "sizing", SIZINGS, "all_in")
    size = _number(form, "size", low=0, strict=True, required=sizing in ("fraction", "quantity"))
    if size is not None and sizing in ("fraction", "half_kelly"):
        if size > 100:
            raise FormError("size", f"Size: {size:g} is invalid: expected a percent in (0, 100]")
        size /= 100
    if sizing == "all_in":
        size = None
    values: dict[str, Any] = {
        "cash": _number(form, "cash", low=0, strict=True, default=10_000.0),
        "commission_fixed": _number(form, "commission_fixed", low=0, default=0.0),
        "slippage_bps": _number(form, "slippage_bps", low=0, high=10_000, default=0.0),
        "spread_bps": _number(form, "spread_bps", low=0, high=10_000, default=0.0),
    }
    commission = _number(form, "commission", low=0, high=10, default=0.0)
    values["commission_pct"] = commission / 100  # type: ignore[operator]
    for field in ("stop_loss", "take_profit", "trailing_stop", "max_drawdown_halt"):
        high = None if field == "take_profit" else 100
        value = _number(form, field, low=0, high=high, strict=True)
        values[PERCENT_FIELDS[field][1]] = None if value is None else value / 100
    compat = bool(form.get("compat"))
    try:
        settings = BacktestSettings(
            fill=_choice(form, "fill", FILLS, "next_open"),
            direction=direction,  # as the command line: the strategy's own direction
            sizing=sizing,  # type: ignore[arg-type]
            size=size,
            compat="backtesting.py" if compat else None,
            **values,
        )
    except BacktestInputError as exc:
        raise FormError("compat" if compat else "settings", _settings_message(str(exc))) from None
    preset = _choice(form, "preset", tuple(PRESETS), DEFAULT_PRESET)
    return BacktestRequest(name, params, symbol, timeframe, start, end, settings, preset)


def _settings_message(text: str) -> str:
    """BacktestInputError's text with the form's labels for the settings' field names."""
    text = text.replace("compat='backtesting.py'", FIELD_LABELS["compat"])
    names = {field: label for label, field in PERCENT_FIELDS.values()}
    names.update((k, v) for k, v in FIELD_LABELS.items() if k not in PERCENT_FIELDS)
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(f"BacktestSettings.{name}", names[name])
        text = text.replace(f"{name}=", f"{names[name]}=").replace(f"{name},", f"{names[name]},")
        text = text.replace(f"{name}:", f"{names[name]}:")
    return text


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise FormError(name, f"{FIELD_LABELS[name]}: choose one")
    return value.strip()


def _choice(form: Mapping[str, Any], name: str, allowed: Sequence[str], default: str) -> str:
    value = form.get(name)
    if value in (None, ""):
        return default
    if value not in allowed:
        raise FormError(
            name, f"{FIELD_LABELS[name]}: {value!r} is not one of {', '.join(map(str, allowed))}"
        )
    return str(value)


def _number(
    form: Mapping[str, Any],
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    strict: bool = False,
    required: bool = False,
    default: float | None = None,
) -> float | None:
    label = FIELD_LABELS[name]
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FormError(name, f"{label}: enter a number")
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FormError(name, f"{label}: {value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise FormError(name, f"{label}: {value!r} is not a finite number")
    too_low = low is not None and (number <= low if strict else number < low)
    if too_low or (high is not None and number > high):
        lower = f"> {low:g}" if strict else f">= {low:g}"
        expected = f"a number {lower}" + ("" if high is None else f" and <= {high:g}")
        raise FormError(name, f"{label}: {value!r} is invalid: expected {expected}")
    return number


def _date(form: Mapping[str, Any], name: str) -> pd.Timestamp | None:
    value = form.get(name)
    if value in (None, ""):
        return None
    try:
        stamp = pd.Timestamp(str(value))
    except ValueError:
        raise FormError(
            name, f"{FIELD_LABELS[name]}: {value!r} is not a date (YYYY-MM-DD)"
        ) from None
    return as_utc(stamp)


__all__ = [
    "DIRECTIONS",
    "FIELD_LABELS",
    "FILLS",
    "PERCENT_FIELDS",
    "FormError",
    "parse_form",
]
