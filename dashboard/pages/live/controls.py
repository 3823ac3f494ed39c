"""The live page's controls as plain functions: their choices and labels, the view they make,
the URL kept in step with them, the pickers' Add button and the timeframe list of a symbol.

The view lives in the URL (:mod:`dashboard.pages.live.view_state`), so a view can be
bookmarked and shared; :func:`sync_view` keeps the URL and the controls in step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dash import no_update
from dash.exceptions import PreventUpdate

from components.charts.layers import indicator_label as chart_indicator_label
from dashboard.pages.live.view_state import SpecError, ViewState, build_strategy, indicator_request
from services.chart_layers import strategy_key
from services.market_data import MarketDataService
from strategies.registry import all_strategies, create
from strategies.signals import SIGNAL_TYPES

DEFAULT_INDICATORS = ("ema(timeperiod=20)", "ema(timeperiod=50)", "bbands", "rsi", "macd", "stoch")
# the controls that make the view, in the order the callbacks take their values
VIEW_CONTROLS = (
    "symbol",
    "timeframe",
    "indicators",
    "strategies",
    "signal-types",
    "min-confidence",
    "show-forming",
    "theme-switch",
    "lod",
    "executions",
)
CONTROL_PROPS = ("value",) * len(VIEW_CONTROLS)


def strategy_choices(extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One toggle per registered strategy (default parameters, both directions) plus any
    parameter set in the view."""
    specs = [strategy_key(create(cls.name, direction="both")) for cls in all_strategies()]
    specs += [s for s in extra if s not in specs]
    return [{"label": strategy_label(s), "value": s} for s in specs]


def indicator_choices(extra: tuple[str, ...] = ()) -> list[dict[str, str]]:
    keys = [indicator_request(text).key for text in DEFAULT_INDICATORS]
    keys += [k for k in extra if k not in keys]
    return [{"label": indicator_label(k), "value": k} for k in keys]


def strategy_label(spec: str) -> str:
    """``ema_crossover(direction=both,fast=12,slow=26)`` -> ``ema_crossover 12/26 · both``:
    the numeric parameters in their declared order, then the direction."""
    try:
        config = build_strategy(spec).config
    except SpecError:
        return spec
    shown = [
        f"{v:g}" if isinstance(v, float) else str(v)
        for k, v in config.items()
        if k != "direction" and not isinstance(v, bool) and isinstance(v, int | float)
    ]
    name = spec.partition("(")[0]
    return f"{name} {'/'.join(shown)} · {config.get('direction', '')}".strip(" ·")


def indicator_label(key: str) -> str:
    """``macd(fast=12,signal=9,slow=26)`` -> ``MACD 12,26,9``: the chart legend's name, the
    parameters in their declared order (not the key's alphabetical one)."""
    try:
        return chart_indicator_label(indicator_request(key))
    except SpecError:
        return key


def lod_note(lod: bool | None, indicators: list | None, strategies: list | None) -> str:
    """What the whole-history (LOD) view leaves out, said above the layers in the sidebar: it
    draws candles only, so the layers switched on are not on the chart. Empty when nothing is
    left out.

    >>> lod_note(True, ["rsi(timeperiod=14)", "macd(fast=12,signal=9,slow=26)"], [])
    'Whole history (LOD): candles only; 2 indicators not drawn'
    """
    if not lod:
        return ""
    parts = []
    if n := len(strategies or ()):
        parts.append("1 strategy (its" if n == 1 else f"{n} strategies (their")
        parts[-1] += " markers and trades)"
    if n := len(indicators or ()):
        parts.append(f"{n} {'indicator' if n == 1 else 'indicators'}")
    return f"Whole history (LOD): candles only; {' and '.join(parts)} not drawn" if parts else ""


def timeframe_options(timeframes: list[str]) -> list[dict[str, str]]:
    return [{"label": tf, "value": tf} for tf in timeframes]


def timeframe_choices(
    market: MarketDataService, symbol: str, current: str | None
) -> tuple[list, str]:
    timeframes = market.timeframes(symbol)
    # keep a valid current value untouched: the URL may have set it in the same moment
    return timeframe_options(timeframes), no_update if current in timeframes else timeframes[0]


def view_from_controls(
    symbol,
    timeframe,
    indicators,
    strategies,
    types,
    confidence,
    forming,
    theme_light,
    lod,
    executions=None,
) -> ViewState:
    return ViewState(
        symbol=symbol,
        timeframe=timeframe,
        indicators=tuple(indicators or ()),
        strategies=tuple(strategies or ()),
        signal_types=tuple(t for t in SIGNAL_TYPES if t in (types or ())),
        min_confidence=float(confidence or 0.0),
        show_forming=bool(forming),
        theme="light" if theme_light else "dark",
        lod=bool(lod),
        executions=executions or None,
    )


def execution_choices(accounts: list[str], current: str | None) -> list[dict[str, str]]:
    """The executions select: off, then every paper account (and the view's, if unknown)."""
    names = [*accounts, *([current] if current and current not in accounts else [])]
    return [{"label": "off", "value": ""}, *({"label": n, "value": n} for n in names)]


def sync_view(
    trigger: str | None,
    search: str | None,
    controls: ViewState,
    market: MarketDataService,
) -> tuple[Any, ...]:
    """Keep the URL and the controls in step: a URL (page load, back/forward, a shared link)
    sets the controls; a control sets the URL. Returns (search, *control values, indicator
    options, strategy options, problems text, problems open)."""
    if trigger == "url":
        view, problems = ViewState.from_query(search)
        symbols = market.symbols()
        if view.symbol not in symbols:
            if view.symbol is not None:
                problems.append(f"symbol {view.symbol!r} ignored: known are {', '.join(symbols)}")
            view = replace(view, symbol=controls.symbol)
        timeframes = market.timeframes(view.symbol) if view.symbol else []
        if view.timeframe not in timeframes:
            if view.timeframe is not None:
                problems.append(
                    f"timeframe {view.timeframe!r} ignored: {view.symbol} has "
                    f"{', '.join(timeframes)}"
                )
            view = replace(view, timeframe=controls.timeframe)
        return (
            no_update,
            view.symbol,
            view.timeframe,
            list(view.indicators),
            list(view.strategies),
            list(view.signal_types),
            view.min_confidence,
            view.show_forming,
            view.theme == "light",
            view.lod,
            view.executions or "",
            indicator_choices(view.indicators),
            strategy_choices(view.strategies),
            "; ".join(problems),
            bool(problems),
        )
    query = controls.to_query()
    return (
        query if query != (search or "") else no_update,
        *([no_update] * 14),
    )


def add_spec(kind: str, name: str | None, text: str | None, current: list[str] | None):
    """The Add button of the indicator or strategy picker: (new value, options, error text)."""
    current = list(current or [])
    raw = (text or "").strip() or (name or "")
    if not raw:
        return no_update, no_update, f"choose an {kind} or type name(param=value,...)"
    if name and raw and "(" not in raw and raw != name:
        raw = f"{name}({raw})"  # only the parameters were typed
    try:
        if kind == "indicator":
            key = indicator_request(raw).key
        else:
            key = strategy_key(build_strategy(raw))
    except SpecError as exc:
        return no_update, no_update, str(exc)
    if key not in current:
        current.append(key)
    options = (
        indicator_choices(tuple(current))
        if kind == "indicator"
        else strategy_choices(tuple(current))
    )
    return current, options, ""


def spec_prefill(kind: str, name: str | None) -> str:
    """The indicator or strategy picker's text box once a name is picked: its spec with every
    parameter at its default, to edit."""
    if not name:
        raise PreventUpdate
    if kind == "indicator":
        return indicator_request(name).key
    return strategy_key(build_strategy(name))
