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

import dataclasses
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
from strategies.base import BaseStrategy, ParamValue, StrategyParamError

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
    """An invalid form: ``field`` is the first form field (or strategy parameter) it names,
    ``problems`` every invalid field -> its message (form fields by their :data:`FIELD_LABELS`
    key, strategy parameters by name), in the form's order.

    >>> str(FormError("cash", "Cash: -5 is invalid: expected an amount > 0"))
    'Cash: -5 is invalid: expected an amount > 0'
    """

    def __init__(self, field: str, message: str, problems: Mapping[str, str] | None = None):
        super().__init__(message)
        self.field = field
        self.problems: dict[str, str] = dict(problems) if problems else {field: message}


def _collected(problems: Mapping[str, str]) -> FormError:
    """One FormError for every problem: the first's message alone, or all of them listed."""
    field, first = next(iter(problems.items()))
    if len(problems) == 1:
        return FormError(field, first, problems)
    listed = "; ".join(problems.values())
    return FormError(field, f"{len(problems)} problems: {listed}", problems)


# -- the form ------------------------------------------------------------------------------


def parse_form(form: Mapping[str, Any]) -> BacktestRequest:
    """The request a form describes, every value checked; an invalid form raises
    :class:`FormError` naming each invalid field (``problems``; strategy parameters:
    StrategyParamError's message). Nothing is replaced: a field present but empty is a
    problem unless empty means "off" (the stops, ``size`` for "all_in" and "half_kelly",
    the period: the first / last stored bar).

    Keys: ``strategy``, ``params`` (name -> value, numbers or their text; ``direction`` is
    taken from the form's ``direction`` when the strategy declares one), ``symbol``,
    ``timeframe``, ``start`` / ``end`` (ISO dates; ``end`` includes its whole day), ``cash``,
    ``commission`` (percent per fill), ``commission_fixed``, ``slippage_bps``, ``spread_bps``,
    ``fill``, ``direction``, ``sizing``, ``size`` (percent of equity for "fraction" and
    "half_kelly", units for "quantity"), ``stop_loss``, ``take_profit``, ``trailing_stop``,
    ``max_drawdown_halt`` (percents, empty: off), ``preset``, ``compat`` (true:
    backtesting.py's fill rules). Missing keys take the command line's defaults.
    """
    problems: dict[str, str] = {}

    def check(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FormError as exc:
            for field, message in exc.problems.items():
                problems.setdefault(field, message)
            return None

    cls = check(_strategy, form)
    direction = check(_choice, form, "direction", DIRECTIONS, "long") or "long"
    params = check(_params, cls, form.get("params"), direction) if cls is not None else None
    symbol = check(_text, form, "symbol")
    timeframe = check(_timeframe, form)
    start = check(_date, form, "start")
    end = check(_date, form, "end")
    if end is not None:
        end = end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)  # the whole day
    if start is not None and end is not None and start > end:
        problems.setdefault("end", f"To: {form['end']} is before From: {form['start']}")
    sizing = check(_choice, form, "sizing", SIZINGS, "all_in")
    size = check(_size, form, sizing) if sizing is not None else None
    values: dict[str, Any] = {
        "cash": check(_number, form, "cash", low=0, strict=True, default=10_000.0),
        "commission_fixed": check(_number, form, "commission_fixed", low=0, default=0.0),
        "slippage_bps": check(_number, form, "slippage_bps", low=0, high=10_000, default=0.0),
        "spread_bps": check(_number, form, "spread_bps", low=0, high=10_000, default=0.0),
    }
    commission = check(_number, form, "commission", low=0, high=10, default=0.0)
    values["commission_pct"] = None if commission is None else commission / 100
    for field in ("stop_loss", "take_profit", "trailing_stop", "max_drawdown_halt"):
        high = None if field == "take_profit" else 100
        value = check(_number, form, field, low=0, high=high, strict=True, optional=True)
        values[PERCENT_FIELDS[field][1]] = None if value is None else value / 100
    fill = check(_choice, form, "fill", FILLS, "next_open")
    preset = check(_choice, form, "preset", tuple(PRESETS), DEFAULT_PRESET)
    if problems:
        raise _collected(problems)
    compat = bool(form.get("compat"))
    try:
        settings = BacktestSettings(
            fill=fill,
            direction=direction,  # as the command line: the strategy's own direction
            sizing=sizing,
            size=size,
            compat="backtesting.py" if compat else None,
            **values,
        )
    except BacktestInputError as exc:
        raise FormError("compat" if compat else "settings", _settings_message(str(exc))) from None
    return BacktestRequest(cls.name, params, symbol, timeframe, start, end, settings, preset)


def form_problems(form: Mapping[str, Any]) -> dict[str, str]:
    """Every invalid field of ``form`` -> its message (:attr:`FormError.problems`); {} for a
    valid form."""
    try:
        parse_form(form)
    except FormError as exc:
        return exc.problems
    return {}


def strategy_params(
    strategy: str | None, params: Mapping[str, Any] | None, direction: str | None
) -> tuple[str, dict[str, ParamValue]]:
    """(strategy name, its validated params) from a form's strategy, parameter values (numbers
    or their text) and direction, as :func:`parse_form` checks them: FormError names every
    invalid parameter (another page's strategy form checks its parameters the same way)."""
    cls = _strategy({"strategy": strategy})
    chosen = _choice({"direction": direction}, "direction", DIRECTIONS, "long")
    return cls.name, _params(cls, params, chosen)


def _strategy(form: Mapping[str, Any]) -> type[BaseStrategy]:
    name = _text(form, "strategy")
    try:
        return registry.get(name)
    except registry.UnknownStrategyError as exc:
        raise FormError("strategy", str(exc)) from None


def _params(
    cls: type[BaseStrategy], given: Mapping[str, Any] | None, direction: str
) -> dict[str, ParamValue]:
    """The strategy's validated params: each value checked on its own (the text of a number
    input read as a number), every invalid one a problem; then the cross-parameter rules."""
    params = {name: _param_number(cls, name, value) for name, value in (given or {}).items()}
    problems: dict[str, str] = {}
    declared = {p.name: p for p in cls.params}
    for name, value in params.items():
        p = declared.get(name)
        if p is None:
            continue  # cls.validate names it, with the closest declared one
        if value is None or (isinstance(value, str) and not value.strip()):
            problems[name] = f"{cls.name}: {name} is empty; allowed: {p.allowed}"
            continue
        try:
            p.check(cls.name, value)
        except StrategyParamError as exc:
            problems[name] = str(exc)
    if problems:
        raise _collected(problems)
    if "direction" in declared:
        params["direction"] = direction
    try:
        return cls.validate(params)
    except StrategyParamError as exc:
        raise FormError(exc.parameter, str(exc)) from None


def _param_number(cls: type[BaseStrategy], name: str, value: Any) -> Any:
    """A number parameter's text as a number ("12" -> 12.0: the check makes it an int); any
    other value as it is (the check refuses what is not a number, quoting it)."""
    kinds = {p.name: p.kind for p in cls.params}
    if kinds.get(name) in (int, float) and isinstance(value, str) and value.strip():
        try:
            return _text_number(value)
        except ValueError:
            return value
    return value


def _text_number(text: str) -> int | float:
    """ "12" -> 12, "7.5" -> 7.5 (so that a message quotes the number as typed); ValueError
    for text that is no number."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _timeframe(form: Mapping[str, Any]) -> str:
    timeframe = _text(form, "timeframe")
    if timeframe not in SUPPORTED:
        raise FormError(
            "timeframe", f"Timeframe: {timeframe!r} is not one of {', '.join(SUPPORTED)}"
        )
    return timeframe


def _size(form: Mapping[str, Any], sizing: str) -> float | None:
    """``size`` for ``sizing``: a fraction of the percent typed ("fraction", "half_kelly"),
    units ("quantity"), None for "all_in" (the field is then ignored)."""
    if sizing == "all_in":
        return None
    size = _number(form, "size", low=0, strict=True, optional=sizing == "half_kelly", required=True)
    if size is not None and sizing in ("fraction", "half_kelly"):
        if size > 100:
            raise FormError("size", f"Size: {size:g} is invalid: expected a percent in (0, 100]")
        size /= 100
    return size


def request_form(request: BacktestRequest) -> dict[str, Any]:
    """The form that describes ``request`` (what :func:`parse_form` reads back into it): a
    saved run opened, or a sweep's combination, loaded into the form.

    >>> request_form(parse_form({**form, "commission": 0.1}))["commission"]
    0.1
    """
    s = request.settings
    params = {k: v for k, v in request.params.items() if k != "direction"}
    size = s.size
    if size is not None and s.sizing in ("fraction", "half_kelly"):
        size = _percent(size)
    form: dict[str, Any] = {
        "strategy": request.strategy,
        "params": params,
        "symbol": request.symbol,
        "timeframe": request.timeframe,
        "start": None if request.start is None else request.start.strftime("%Y-%m-%d"),
        "end": None if request.end is None else request.end.strftime("%Y-%m-%d"),
        "cash": s.cash,
        "commission_fixed": s.commission_fixed,
        "slippage_bps": s.slippage_bps,
        "spread_bps": s.spread_bps,
        "fill": s.fill,
        "direction": str(request.params.get("direction", s.direction)),
        "sizing": s.sizing,
        "size": None if s.sizing == "all_in" else size,
        "preset": request.preset,
        "compat": s.compat == "backtesting.py",
    }
    for name, (_, field) in PERCENT_FIELDS.items():
        value = getattr(s, field)
        form[name] = None if value is None else _percent(value)
    return form


def unshown_settings(request: BacktestRequest) -> list[str]:
    """The settings of ``request`` the form cannot hold (``["kelly_window=20"]``): what a Run
    of :func:`request_form`'s form would trade differently (a run of the command line or of
    a sweep: its settings' own direction, Kelly window, ...). Empty when the form holds all."""
    try:
        held = parse_form(request_form(request)).settings
    except FormError as exc:  # a stored value out of the form's ranges
        return [str(exc)]
    return [
        f"{field.name}={getattr(request.settings, field.name)!r}"
        for field in dataclasses.fields(request.settings)
        if getattr(request.settings, field.name) != getattr(held, field.name)
    ]


def _percent(fraction: float) -> float:
    """0.001 -> 0.1: a fraction as the percent the form shows (no float noise: 0.07 * 100 is
    7.000000000000001)."""
    return round(fraction * 100, 10)


# -- sweeps --------------------------------------------------------------------------------

MAX_COMBINATIONS = 400
"""The most combinations a sweep of the page runs (each is a stored run)."""
SWEEP_FIELDS = ("sweep_x", "sweep_y")  # the sweep's two value fields, for FormError.field


def sweep_values(cls: type[BaseStrategy], name: str, text: str, field: str) -> list[ParamValue]:
    """The values ``text`` lists for parameter ``name`` of ``cls``: ``"5, 10, 20"`` or a range
    ``"5:50:5"`` (start:stop:step, the stop included when the steps reach it), each checked
    against the parameter's declaration; a problem raises FormError naming ``field``.

    >>> sweep_values(SmaCrossover, "fast", "5:20:5", "sweep_x")
    [5, 10, 15, 20]
    """
    declared = {p.name: p for p in cls.params}
    p = declared.get(name)
    if p is None or p.kind not in (int, float):
        numeric = ", ".join(q.name for q in cls.params if q.kind in (int, float))
        raise FormError(field, f"Sweep: {name!r} is not a number parameter of {cls.name} "
                        f"(its number parameters: {numeric})")  # fmt: skip
    text = (text or "").strip()
    if not text:
        raise FormError(field, f"Sweep {name}: empty; enter values (5, 10, 20) or a range (5:50:5)")
    if ":" in text:
        numbers = _range_values(name, text, field)
    else:
        numbers = [_sweep_number(name, item, field) for item in text.split(",") if item.strip()]
    values: list[ParamValue] = []
    for number in numbers:
        try:
            value = p.check(cls.name, number)
        except StrategyParamError as exc:
            raise FormError(field, f"Sweep {name}: {exc}") from None
        if value not in values:
            values.append(value)
    return values


def _sweep_number(name: str, text: str, field: str) -> int | float:
    try:
        number = _text_number(text)
    except ValueError:
        raise FormError(field, f"Sweep {name}: {text.strip()!r} is not a number") from None
    if not math.isfinite(number):
        raise FormError(field, f"Sweep {name}: {text.strip()!r} is not a finite number")
    return number


def _range_values(name: str, text: str, field: str) -> list[int | float]:
    parts = text.split(":")
    if len(parts) != 3:
        raise FormError(field, f"Sweep {name}: {text!r}: a range is start:stop:step (5:50:5)")
    start, stop, step = (_sweep_number(name, part, field) for part in parts)
    if step <= 0 or stop < start:
        raise FormError(
            field, f"Sweep {name}: {text!r}: expected start <= stop and a step > 0 (5:50:5)"
        )
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_COMBINATIONS:
        raise FormError(
            field,
            f"Sweep {name}: {text!r} gives {count:,} values; at most {MAX_COMBINATIONS} "
            "combinations run: take a larger step or a narrower range",
        )
    if all(isinstance(v, int) for v in (start, step)):
        return [start + i * step for i in range(count)]
    return [round(start + i * step, 10) for i in range(count)]


def sweep_grid(
    cls: type[BaseStrategy], axes: Sequence[tuple[str | None, str | None]]
) -> dict[str, list[ParamValue]]:
    """The grid of one or two swept parameters: ``axes`` is ``[(name, values text), ...]``
    (an axis without a name is left out); every problem raises FormError (``problems`` per
    axis: ``sweep_x``, ``sweep_y``), and so does a grid of more than
    :data:`MAX_COMBINATIONS` combinations."""
    grid: dict[str, list[ParamValue]] = {}
    problems: dict[str, str] = {}
    for field, (name, text) in zip(SWEEP_FIELDS, axes, strict=False):
        if not name:
            continue
        if name in grid:
            problems[field] = f"Sweep: {name} is swept twice; choose two different parameters"
            continue
        try:
            grid[name] = sweep_values(cls, name, text or "", field)
        except FormError as exc:
            problems[field] = str(exc)
    if not grid and not problems:
        problems["sweep_x"] = "Sweep: choose a parameter to sweep"
    if problems:
        raise _collected(problems)
    combinations = math.prod(len(values) for values in grid.values())
    if combinations > MAX_COMBINATIONS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in grid.items())
        raise FormError(
            "sweep_y" if len(grid) > 1 else "sweep_x",
            f"Sweep: {sizes} = {combinations:,} combinations; at most {MAX_COMBINATIONS} run: "
            "take a larger step or fewer values",
        )
    return grid


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
    optional: bool = False,
    required: bool = False,
    default: float | None = None,
) -> float | None:
    """The number in ``form[name]`` (a number or its text), checked against its range.

    Missing key: ``default`` (raises when ``required``). Present but empty: None when
    ``optional`` (empty means "off"), else a problem: an emptied field is never replaced.
    """
    label = FIELD_LABELS[name]
    if name not in form and not required:
        return default
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise FormError(name, f"{label}: empty; enter {_range(low, high, strict)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FormError(name, f"{label}: {value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise FormError(name, f"{label}: {value!r} is not a finite number")
    too_low = low is not None and (number <= low if strict else number < low)
    if too_low or (high is not None and number > high):
        shown = value.strip() if isinstance(value, str) else repr(value)
        raise FormError(name, f"{label}: {shown} is invalid: expected {_range(low, high, strict)}")
    return number


def _range(low: float | None, high: float | None, strict: bool) -> str:
    """ "a number > 0", "a number >= 0 and <= 10": the allowed range in words."""
    lower = "" if low is None else (f" > {low:g}" if strict else f" >= {low:g}")
    upper = "" if high is None else f"{' and' if lower else ''} <= {high:g}"
    return f"a number{lower}{upper}"


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
    "MAX_COMBINATIONS",
    "PERCENT_FIELDS",
    "SWEEP_FIELDS",
    "FormError",
    "form_problems",
    "parse_form",
    "request_form",
    "strategy_params",
    "sweep_grid",
    "sweep_values",
    "unshown_settings",
]
