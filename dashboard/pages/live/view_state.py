"""The live page's view as a URL query, so a view can be bookmarked and shared.

>>> view, problems = ViewState.from_query("?symbol=SP500&tf=1d&ind=ema(timeperiod=50)&ind=rsi"
...                                       "&strat=ema_crossover(fast=9,slow=21)&conf=0.4")
>>> view.indicators, view.strategies[0]
(('ema(timeperiod=50)', 'rsi(timeperiod=14)'), 'ema_crossover(direction=long,fast=9,slow=21)')
>>> view.to_query()
'?symbol=SP500&tf=1d&ind=ema%28timeperiod%3D50%29&ind=rsi%28timeperiod%3D14%29&...'

Indicators and strategies are written as ``name(param=value,...)`` (any parameter left out
takes its default) and stored in canonical form: every parameter, sorted. A value that does
not parse or validate is dropped and reported in ``problems`` with what was wrong, so a stale
or hand-edited link still opens a page and says what it ignored.

Query keys: ``symbol``, ``tf``, ``ind`` (repeatable), ``strat`` (repeatable), ``types``
(comma-separated signal types; when none of them is valid, every type), ``conf`` (minimum
confidence 0..1), ``forming`` (1/0), ``theme`` (dark/light), ``lod`` (1/0: level of detail
over the whole history), ``exec`` (a paper account whose fills the executions layer shows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

from indicators.base import IndicatorParamError, UnknownIndicatorError
from indicators.registry import IndicatorRequest, request
from services.chart_layers import strategy_key
from services.indicator_table import parse_param
from strategies.base import BaseStrategy, StrategyParamError
from strategies.registry import UnknownStrategyError, create
from strategies.signals import SIGNAL_TYPES

THEMES = ("dark", "light")
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")


class SpecError(ValueError):
    """A ``name(param=value,...)`` text that does not parse or validate."""


def parse_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``"ema(timeperiod=20)"`` -> ``("ema", {"timeperiod": 20})``; ``"rsi"`` -> ``("rsi", {})``."""
    match = _SPEC.match(text)
    if not match:
        raise SpecError(f"{text!r} is not name(param=value,...)")
    name, args = match.group(1), (match.group(2) or "").strip()
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in args.split(","))):
        try:
            key, value = parse_param(part)
        except ValueError:
            raise SpecError(f"{text!r}: {part!r} is not param=value") from None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        params[key] = value
    return name, params


def indicator_request(text: str) -> IndicatorRequest:
    """A validated request from its text; SpecError names what is wrong."""
    name, params = parse_spec(text)
    try:
        return request(name, **params)
    except (UnknownIndicatorError, IndicatorParamError, ValueError) as exc:
        raise SpecError(str(exc)) from None


def build_strategy(text: str) -> BaseStrategy:
    name, params = parse_spec(text)
    try:
        return create(name, **params)
    except (UnknownStrategyError, StrategyParamError, ValueError) as exc:
        raise SpecError(str(exc)) from None


@dataclass(frozen=True)
class ViewState:
    symbol: str | None = None
    timeframe: str | None = None
    indicators: tuple[str, ...] = ()
    strategies: tuple[str, ...] = ()
    signal_types: tuple[str, ...] = SIGNAL_TYPES
    min_confidence: float = 0.0
    show_forming: bool = True
    theme: str = "dark"
    lod: bool = False
    executions: str | None = None  # the account whose fills are drawn (None: no layer)
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, search: str | None) -> tuple[ViewState, list[str]]:
        """The view a query describes, and what in it was ignored (never raises)."""
        query = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
        problems: list[str] = []

        def one(key: str) -> str | None:
            values = query.get(key)
            return values[-1] if values else None

        indicators: list[str] = []
        for text in query.get("ind", []):
            try:
                key = indicator_request(text).key
            except SpecError as exc:
                problems.append(f"indicator {text!r} ignored: {exc}")
                continue
            if key not in indicators:
                indicators.append(key)
        strategies: list[str] = []
        for text in query.get("strat", []):
            try:
                spec = strategy_key(build_strategy(text))
            except SpecError as exc:
                problems.append(f"strategy {text!r} ignored: {exc}")
                continue
            if spec not in strategies:
                strategies.append(spec)
        types: tuple[str, ...] = SIGNAL_TYPES
        if (raw := one("types")) is not None:
            wanted = [t.strip() for t in raw.split(",") if t.strip()]
            bad = [t for t in wanted if t not in SIGNAL_TYPES]
            good = tuple(t for t in SIGNAL_TYPES if t in wanted)
            if bad:
                fallback = "" if good else "; showing every type"
                problems.append(
                    f"signal types {bad} ignored: expected any of {', '.join(SIGNAL_TYPES)}"
                    + fallback
                )
            # nothing valid left (e.g. types=bogus): the default, not a chart without markers
            types = good or SIGNAL_TYPES
        confidence = 0.0
        if (raw := one("conf")) is not None:
            try:
                confidence = float(raw)
                if not 0.0 <= confidence <= 1.0:
                    raise ValueError
            except ValueError:
                problems.append(f"conf={raw!r} ignored: expected a number from 0 to 1")
                confidence = 0.0
        theme = one("theme") or "dark"
        if theme not in THEMES:
            problems.append(f"theme={theme!r} ignored: expected dark or light")
            theme = "dark"
        view = cls(
            symbol=one("symbol"),
            timeframe=one("tf"),
            indicators=tuple(indicators),
            strategies=tuple(strategies),
            signal_types=types,
            min_confidence=confidence,
            show_forming=_flag(one("forming"), True, "forming", problems),
            theme=theme,
            lod=_flag(one("lod"), False, "lod", problems),
            executions=(one("exec") or "").strip() or None,
        )
        return replace(view, problems=tuple(problems)), problems

    def to_query(self) -> str:
        """The query string (with ``?``); defaults are left out to keep links short."""
        pairs: list[tuple[str, str]] = []
        if self.symbol:
            pairs.append(("symbol", self.symbol))
        if self.timeframe:
            pairs.append(("tf", self.timeframe))
        pairs += [("ind", key) for key in self.indicators]
        pairs += [("strat", spec) for spec in self.strategies]
        if tuple(self.signal_types) != SIGNAL_TYPES:
            pairs.append(("types", ",".join(self.signal_types)))
        if self.min_confidence:
            pairs.append(("conf", f"{self.min_confidence:g}"))
        if not self.show_forming:
            pairs.append(("forming", "0"))
        if self.theme != "dark":
            pairs.append(("theme", self.theme))
        if self.lod:
            pairs.append(("lod", "1"))
        if self.executions:
            pairs.append(("exec", self.executions))
        return "?" + urlencode(pairs) if pairs else ""

    def requests(self) -> list[IndicatorRequest]:
        return [indicator_request(key) for key in self.indicators]

    def strategy_objects(self) -> list[BaseStrategy]:
        return [build_strategy(spec) for spec in self.strategies]


def _flag(raw: str | None, default: bool, name: str, problems: list[str]) -> bool:
    if raw is None:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    problems.append(f"{name}={raw!r} ignored: expected 1 or 0")
    return default
