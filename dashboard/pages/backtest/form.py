"""The backtest page's form: its widgets (strategy and its generated parameter inputs, market,
period, costs, sizing, risk, metrics preset; Run, Cancel, the progress bar) and the plain
functions of its callbacks (timeframes and period of a symbol, a strategy or a saved one
chosen, the form's values checked).

The strategy's inputs are generated from its ``StrategyParam`` declarations (type, bounds,
default). An invalid value shows a message under the form naming the field (strategy
parameters: ``StrategyParamError``'s message), never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import html, no_update
from dash.exceptions import PreventUpdate

from analytics.backtest import SIZINGS
from analytics.metrics import PRESETS
from dashboard.pages.backtest.parse import FormError, parse_form
from dashboard.pages.backtest.style import HIDE
from market.timeframes import Timeframe
from strategies.base import StrategyParam
from strategies.manager import StrategyManager
from strategies.registry import all_strategies
from strategies.registry import get as get_strategy

DEFAULT_STRATEGY = "sma_crossover"
DEFAULT_SYMBOL = "SP500"
PARAM_TYPE = "bt-param"  # pattern-matching id type of the generated parameter inputs
# form field -> component id (every one's "value"); the strategy parameters are PARAM_TYPE
FORM_IDS: dict[str, str] = {
    "strategy": "bt-strategy",
    "symbol": "bt-symbol",
    "timeframe": "bt-timeframe",
    "start": "bt-start",
    "end": "bt-end",
    "cash": "bt-cash",
    "commission": "bt-commission",
    "commission_fixed": "bt-commission-fixed",
    "slippage_bps": "bt-slippage",
    "spread_bps": "bt-spread",
    "fill": "bt-fill",
    "direction": "bt-direction",
    "sizing": "bt-sizing",
    "size": "bt-size",
    "stop_loss": "bt-stop-loss",
    "take_profit": "bt-take-profit",
    "trailing_stop": "bt-trailing-stop",
    "max_drawdown_halt": "bt-drawdown-halt",
    "preset": "bt-preset",
    "compat": "bt-compat",
}


def _label(text: str, for_id: str | None = None, title: str | None = None) -> html.Label:
    extra = {"title": title} if title else {}
    return html.Label(text, htmlFor=for_id, className="sl-label", **extra)


def _field(text: str, component: Any, width: int = 6, title: str | None = None) -> dbc.Col:
    for_id = getattr(component, "id", None)
    return dbc.Col(
        [_label(text, for_id if isinstance(for_id, str) else None, title), component],
        width=width,
    )


def _number(
    id_: str,
    value: Any,
    *,
    step: Any = "any",
    low: Any = None,
    high: Any = None,
    placeholder: str | None = None,
) -> dbc.Input:
    return dbc.Input(
        id=id_,
        type="number",
        value=value,
        step=step,
        min=low,
        max=high,
        placeholder=placeholder,
        size="sm",
        debounce=False,
    )


def _select(id_: str | dict[str, str], options: Sequence[Any], value: Any) -> dbc.Select:
    return dbc.Select(id=id_, options=list(options), value=value, size="sm")


def _section(text: str) -> html.Div:
    return html.Div(text, className="sl-label mt-3 mb-1", style={"color": "var(--sl-accent)"})


def strategy_options() -> list[dict[str, str]]:
    """Every registered strategy: label its title, value its name."""
    return [{"label": cls.title or cls.name, "value": cls.name} for cls in all_strategies()]


def saved_strategy_options(manager: StrategyManager | None) -> list[dict[str, str]]:
    """The user strategies stored by the manager (``python app.py strategy import``), by name;
    none when there is no manager or its folder holds an invalid file."""
    if manager is None:
        return []
    try:
        stored = manager.list()
    except Exception:  # an invalid user file must not break the page
        return []
    return [{"label": f"{s.name} ({s.strategy})", "value": s.name} for s in stored]


def param_inputs(strategy: str, values: Mapping[str, Any] | None = None) -> list[Any]:
    """One input per declared parameter of ``strategy`` (but ``direction``: the form has its
    own), at ``values`` or the default: a number input with the declared bounds (step 1 for
    an int), a switch for a bool, a select for a choice. Ids ``{"type": "bt-param", "name"}``.
    """
    cls = get_strategy(strategy)
    values = dict(values or {})
    cols = []
    for p in cls.params:
        if p.name == "direction":
            continue
        cols.append(_param_field(p, values.get(p.name, p.default)))
    if not cols:
        return [html.Div("no parameters", className="small text-secondary")]
    return [dbc.Row(cols, className="g-2")]


def _param_field(p: StrategyParam, value: Any) -> dbc.Col:
    id_ = {"type": PARAM_TYPE, "name": p.name}
    title = f"{p.description} ({p.allowed})" if p.description else p.allowed
    if p.kind is bool:
        control: Any = dbc.Switch(id=id_, value=bool(value), label=p.name, className="mt-1")
        return dbc.Col(html.Div(control, title=title), width=6)
    if p.kind is str:
        control = _select(id_, _options(p.choices), value)
    else:
        control = dbc.Input(
            id=id_,
            type="number",
            value=value,
            min=p.low,
            max=p.high,
            step=1 if p.kind is int else "any",
            size="sm",
        )
    return dbc.Col([_label(p.name, title=title), control], width=6)


def period_bounds(services: Any, symbol: str) -> tuple[str | None, str | None]:
    """First and last stored day of ``symbol`` (its finest stored series), ISO dates."""
    infos = [s for s in services.market_data.series() if s.symbol == symbol]
    if not infos:
        return None, None
    finest = min(infos, key=lambda s: Timeframe.parse(s.timeframe).seconds)
    return finest.first.strftime("%Y-%m-%d"), finest.last.strftime("%Y-%m-%d")


def form_card(
    services: Any,
    symbols: list[str],
    symbol: str | None,
    timeframes: list[str],
    first: str | None,
    last: str | None,
) -> dbc.Card:
    manager = strategy_manager(services)
    saved = saved_strategy_options(manager)
    strategy_block = [
        _section("Strategy"),
        dbc.Row(
            [
                _field(
                    "Strategy",
                    _select("bt-strategy", strategy_options(), DEFAULT_STRATEGY),
                    width=12,
                ),
                _field(
                    "Start from a saved strategy",
                    dbc.Select(
                        id="bt-saved",
                        options=saved,
                        value=None,
                        placeholder="saved strategies" if saved else "none saved",
                        disabled=not saved,
                        size="sm",
                    ),
                    width=12,
                ),
            ],
            className="g-2",
        ),
        html.Div(param_inputs(DEFAULT_STRATEGY), id="bt-params", className="mt-2"),
    ]
    market_block = [
        _section("Market"),
        dbc.Row(
            [
                _field(
                    "Symbol",
                    _select("bt-symbol", [{"label": s, "value": s} for s in symbols], symbol),
                ),
                _field(
                    "Timeframe",
                    _select(
                        "bt-timeframe", _options(timeframes), timeframes[0] if timeframes else None
                    ),
                ),
                _field(
                    "From",
                    dbc.Input(
                        id="bt-start", type="date", value=first, min=first, max=last, size="sm"
                    ),
                ),
                _field(
                    "To",
                    dbc.Input(id="bt-end", type="date", value=last, min=first, max=last, size="sm"),
                ),
            ],
            className="g-2",
        ),
    ]
    trading_block = [
        _section("Costs and sizing"),
        dbc.Row(
            [
                _field("Cash", _number("bt-cash", 10_000, low=0)),
                _field(
                    "Commission [%]",
                    _number("bt-commission", 0, low=0, high=10),
                    title="per fill, percent of the traded value (0.1 = 0.1 %)",
                ),
                _field(
                    "Fixed fee",
                    _number("bt-commission-fixed", 0, low=0),
                    title="per fill, in cash",
                ),
                _field("Slippage [bps]", _number("bt-slippage", 0, low=0, high=10_000)),
                _field(
                    "Spread [bps]",
                    _number("bt-spread", 0, low=0, high=10_000),
                    title="quoted bid-ask spread; each fill pays half",
                ),
                _field(
                    "Fill",
                    _select(
                        "bt-fill",
                        [
                            {"label": "next open", "value": "next_open"},
                            {"label": "close", "value": "close"},
                        ],
                        "next_open",
                    ),
                ),
                _field(
                    "Direction",
                    _select("bt-direction", _options(("long", "short", "both")), "long"),
                ),
                _field("Sizing", _select("bt-sizing", _options(SIZINGS), "all_in")),
                _field(
                    "Size",
                    _number("bt-size", None, low=0, placeholder="all in"),
                    width=12,
                    title="fraction and half_kelly: percent of equity; quantity: units",
                ),
            ],
            className="g-2",
        ),
        _section("Risk"),
        dbc.Row(
            [
                _field(
                    "Stop-loss [%]",
                    _number("bt-stop-loss", None, low=0, high=100, placeholder="off"),
                ),
                _field(
                    "Take-profit [%]", _number("bt-take-profit", None, low=0, placeholder="off")
                ),
                _field(
                    "Trailing stop [%]",
                    _number("bt-trailing-stop", None, low=0, high=100, placeholder="off"),
                ),
                _field(
                    "DD halt [%]",
                    _number("bt-drawdown-halt", None, low=0, high=100, placeholder="off"),
                ),
            ],
            className="g-2",
        ),
        _section("Metrics"),
        dbc.Row(
            [
                _field(
                    "Preset",
                    _select("bt-preset", _options(sorted(PRESETS)), "backtesting.py"),
                    width=12,
                ),
                dbc.Col(
                    html.Div(
                        dbc.Switch(
                            id="bt-compat",
                            value=False,
                            label="backtesting.py compat",
                            className="mt-1 small",
                        ),
                        title="backtesting.py's fill rules: whole units, spread on entry",
                    ),
                    width=12,
                ),
            ],
            className="g-2",
        ),
    ]
    footer = [
        html.Div(id="bt-form-message", className="small text-danger mb-2"),
        html.Div(
            [
                dbc.Button("Run", id="bt-run", color="warning", size="sm", className="px-4"),
                dbc.Button(
                    "Cancel",
                    id="bt-cancel",
                    color="secondary",
                    outline=True,
                    size="sm",
                    disabled=True,
                ),
            ],
            className="d-flex gap-2",
        ),
        html.Div(
            dbc.Progress(
                id="bt-progress",
                value=0,
                label="",
                striped=True,
                animated=True,
                color="warning",
                style={"height": "1.1rem"},
            ),
            id="bt-progress-wrap",
            className="mt-2",
            style=HIDE,
        ),
        html.Div(id="bt-status", className="sl-status small"),
    ]
    return dbc.Card(
        [
            dbc.CardBody(
                [*strategy_block, *market_block, *trading_block],
                style={
                    "overflowY": "auto",
                    "overflowX": "hidden",
                    "padding": ".25rem .9rem .75rem",
                },
            ),
            dbc.CardFooter(footer, style={"borderColor": "var(--sl-border)"}),
        ],
        id="bt-form",
        className="sl-card",
        style={"height": "calc(100vh - 84px)", "minHeight": "520px"},
    )


def _options(values: Sequence[str]) -> list[dict[str, str]]:
    return [{"label": v, "value": v} for v in values]


def strategy_manager(services: Any) -> StrategyManager | None:
    directory = getattr(getattr(services, "settings", None), "strategies_dir", None)
    return StrategyManager(directory) if directory is not None else None


def symbol_choices(
    services: Any, symbol: str, current: str | None
) -> tuple[list[dict[str, str]], str | None, str | None, str | None]:
    """(timeframe options, timeframe, first day, last day) for ``symbol``: its stored timeframe
    and those resampled from it (the live page's list); the current one kept when offered."""
    timeframes = services.market_data.timeframes(symbol)
    value = current if current in timeframes else (timeframes[0] if timeframes else None)
    first, last = period_bounds(services, symbol)
    return _options(timeframes), value, first, last


def strategy_form(
    strategy: str | None, saved: str | None, triggered: str | None, manager: StrategyManager | None
) -> tuple[str, list[Any], Any]:
    """(strategy, parameter inputs, direction) after the strategy select or the "start from a
    saved strategy" select changed (``triggered`` names which: "bt-saved" or other)."""
    if triggered == "bt-saved" and saved and manager is not None:
        stored = manager.get(saved)
        direction = stored.params.get("direction", no_update)
        return stored.strategy, param_inputs(stored.strategy, stored.params), direction
    if not strategy:
        raise PreventUpdate
    return strategy, param_inputs(strategy), no_update


def form_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    """The form as :func:`.parse.parse_form` takes it, from the callback's values:
    every :data:`FORM_IDS` field plus ``param_ids`` / ``param_values`` (pattern-matching)."""
    form = {name: values.get(name) for name in FORM_IDS}
    ids = values.get("param_ids") or []
    params = values.get("param_values") or []
    form["params"] = {i["name"]: v for i, v in zip(ids, params, strict=False)}
    return form


def form_message(values: Mapping[str, Any]) -> str:
    """ "" for a valid form, else the message naming the first invalid field."""
    try:
        parse_form(form_dict(values))
    except FormError as exc:
        return str(exc)
    return ""
