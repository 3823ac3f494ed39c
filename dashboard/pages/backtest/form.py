"""The backtest page's form: its widgets (strategy and its generated parameter inputs, market,
period, costs, sizing, risk, metrics preset; Run, Cancel, the progress bar) and the plain
functions of its callbacks (timeframes and period of a symbol, a strategy or a saved one
chosen, the form's values checked).

The strategy's inputs are generated from its ``StrategyParam`` declarations (type, bounds,
default). Every value is checked where it is typed: a number field is a text input (what was
typed reaches the check as typed: a browser's number input turns "-5000" under its minimum into
an empty value) that reports its value when the trader leaves it or presses Enter (never per
keystroke); an invalid one is flagged red with a feedback line naming the reason and the
allowed range (``StrategyParamError``'s message for a strategy parameter), the list of every
problem shows under the form and Run is disabled until the form is valid. Nothing is replaced
by a default: an emptied field is a problem unless empty means "off" (the stops).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import html, no_update
from dash.exceptions import PreventUpdate

from analytics.backtest import SIZINGS
from analytics.metrics import PRESETS
from dashboard.pages.backtest.parse import form_problems
from dashboard.pages.backtest.style import HIDE
from strategies.base import StrategyParam
from strategies.manager import StrategyManager
from strategies.registry import all_strategies
from strategies.registry import get as get_strategy

DEFAULT_STRATEGY = "sma_crossover"
DEFAULT_SYMBOL = "SP500"
PARAM_TYPE = "bt-param"  # pattern-matching id type of the generated parameter inputs
PARAM_FEEDBACK = "bt-param-feedback"  # and of their feedback lines
# a parameter input's id: {"type": PARAM_TYPE, "name": ..., "control": "input" or "switch"}
# (a switch cannot be flagged invalid: the flags go to the "input" ones only)
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
# the fields flagged where they are typed (a switch cannot be invalid: compat's problems, and
# those of the settings as a whole, show in the list under the form only)
CHECKED: dict[str, str] = {name: id_ for name, id_ in FORM_IDS.items() if name != "compat"}


def _label(text: str, for_id: str | None = None, title: str | None = None) -> html.Label:
    extra = {"title": title} if title else {}
    return html.Label(text, htmlFor=for_id, className="sl-label", **extra)


def _field(text: str, component: Any, width: int = 6, title: str | None = None) -> dbc.Col:
    """A labelled form field; a checked one (:data:`CHECKED`) with its feedback line, shown
    (Bootstrap) while the field is flagged invalid."""
    for_id = getattr(component, "id", None)
    children = [_label(text, for_id if isinstance(for_id, str) else None, title), component]
    if for_id in CHECKED.values():
        children.append(dbc.FormFeedback(id=f"{for_id}-feedback", type="invalid"))
    return dbc.Col(children, width=width)


def _number(id_: Any, value: Any, *, placeholder: str | None = None, integer: bool = False):
    """A number field: a text input (see the module docstring) with the number keyboard on
    touch screens, reporting its value on leaving the field or Enter (``debounce=True``)."""
    return dbc.Input(
        id=id_,
        type="text",
        inputmode="numeric" if integer else "decimal",
        value=value,
        placeholder=placeholder,
        size="sm",
        debounce=True,
        autocomplete="off",
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


def param_inputs(
    strategy: str,
    values: Mapping[str, Any] | None = None,
    *,
    kind: str = PARAM_TYPE,
    feedback: str = PARAM_FEEDBACK,
) -> list[Any]:
    """One input per declared parameter of ``strategy`` (but ``direction``: the form has its
    own), at ``values`` or the default: a number field (:func:`_number`; the declared range
    in its placeholder and tooltip) with its feedback line, a switch for a bool, a select for
    a choice. Ids ``{"type": kind, "name", "control"}`` (see :data:`PARAM_TYPE`), feedback
    lines ``{"type": feedback, "name"}``: another page's form passes its own types."""
    cls = get_strategy(strategy)
    values = dict(values or {})
    cols = []
    for p in cls.params:
        if p.name == "direction":
            continue
        cols.append(_param_field(p, values.get(p.name, p.default), kind, feedback))
    if not cols:
        return [html.Div("no parameters", className="small text-secondary")]
    return [dbc.Row(cols, className="g-2")]


def _param_field(p: StrategyParam, value: Any, kind: str, feedback_type: str) -> dbc.Col:
    title = f"{p.description} ({p.allowed})" if p.description else p.allowed
    if p.kind is bool:
        id_ = {"type": kind, "name": p.name, "control": "switch"}
        control: Any = dbc.Switch(id=id_, value=bool(value), label=p.name, className="mt-1")
        return dbc.Col(html.Div(control, title=title), width=6)
    id_ = {"type": kind, "name": p.name, "control": "input"}
    if p.kind is str:
        control = _select(id_, _options(p.choices), value)
    else:
        control = _number(id_, value, placeholder=f"{p.low}..{p.high}", integer=p.kind is int)
    feedback = dbc.FormFeedback(id={"type": feedback_type, "name": p.name}, type="invalid")
    return dbc.Col([_label(p.name, title=title), control, feedback], width=6)


def period_bounds(services: Any, symbol: str) -> tuple[str | None, str | None]:
    """First and last stored day of ``symbol`` (its finest stored series), ISO dates."""
    span = services.market_data.span(symbol)
    if span is None:
        return None, None
    return span[0].strftime("%Y-%m-%d"), span[1].strftime("%Y-%m-%d")


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
                _field("Cash", _number("bt-cash", 10_000), title="> 0"),
                _field(
                    "Commission [%]",
                    _number("bt-commission", 0),
                    title="per fill, percent of the traded value (0.1 = 0.1 %), 0..10",
                ),
                _field(
                    "Fixed fee",
                    _number("bt-commission-fixed", 0),
                    title="per fill, in cash, >= 0",
                ),
                _field("Slippage [bps]", _number("bt-slippage", 0), title="0..10000"),
                _field(
                    "Spread [bps]",
                    _number("bt-spread", 0),
                    title="quoted bid-ask spread; each fill pays half; 0..10000",
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
                    _number("bt-size", None, placeholder="all in"),
                    width=12,
                    title="fraction, half_kelly: % of equity in (0, 100]; quantity: units > 0",
                ),
            ],
            className="g-2",
        ),
        _section("Risk"),
        dbc.Row(
            [
                _field(
                    "Stop-loss [%]",
                    _number("bt-stop-loss", None, placeholder="off"),
                ),
                _field("Take-profit [%]", _number("bt-take-profit", None, placeholder="off")),
                _field(
                    "Trailing stop [%]",
                    _number("bt-trailing-stop", None, placeholder="off"),
                ),
                _field(
                    "DD halt [%]",
                    _number("bt-drawdown-halt", None, placeholder="off"),
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
        run_buttons("Run", "bt-run", "bt-cancel"),
        progress_bars("bt-progress", "bt-outcome"),
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


def run_buttons(label: str, run: str, cancel: str, classes: str = "") -> html.Div:
    """The button that starts a background run and its Cancel (disabled until it runs)."""
    return html.Div(
        [
            dbc.Button(label, id=run, color="warning", size="sm", className="px-4"),
            dbc.Button(
                "Cancel", id=cancel, color="secondary", outline=True, size="sm", disabled=True
            ),
        ],
        className=f"d-flex gap-2 {classes}".strip(),
    )


def progress_bars(live: str, outcome: str) -> html.Div:
    """A run's two bars: ``live`` while it runs (its value, percentage label and
    ``{live}-step`` line "2/5 computing signals" come from the worker), ``outcome`` once it
    ended (done, failed, cancelled or not run: written by the run's callbacks); the running
    callback shows one and hides the other."""
    bar = {"style": {"height": "1.1rem"}, "className": "sl-progress"}
    return html.Div(
        [
            html.Div(
                [
                    dbc.Progress(
                        id=live,
                        value=0,
                        label="",
                        striped=True,
                        animated=True,
                        color="warning",
                        **bar,
                    ),
                    html.Div(id=f"{live}-step", className="sl-status small"),
                ],
                id=f"{live}-wrap",
                style=HIDE,
            ),
            html.Div(
                [
                    dbc.Progress(id=f"{outcome}-bar", value=0, label="", **bar),
                    html.Div(id=f"{outcome}-step", className="sl-status small"),
                ],
                id=outcome,
                style=HIDE,
            ),
        ],
        className="mt-2",
    )


def form_feedback(values: Mapping[str, Any], param_ids: Sequence[Mapping[str, Any]]):
    """What the checks show for the form's ``values`` (the callback's: see :func:`form_dict`):
    ``(flags, params, message, problems)``. ``flags``: every :data:`CHECKED` field -> (invalid,
    feedback text); ``params``: each of ``param_ids`` (the "input" parameter controls) ->
    (invalid, feedback text), in their order; ``message``: the list of every problem under the
    form ("" when valid); ``problems``: field -> message."""
    problems = form_problems(form_dict(values))
    flags = {name: (name in problems, problems.get(name, "")) for name in CHECKED}
    names = [i["name"] for i in param_ids]
    params = [(name in problems, problems.get(name, "")) for name in names]
    return flags, params, problems_message(problems), problems


def problems_message(problems: Mapping[str, str]) -> Any:
    """The list of every problem of the form, or "" for none."""
    if not problems:
        return ""
    head = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    return html.Div(
        [
            html.Div(f"{head}: fix to run", className="fw-semibold"),
            html.Ul([html.Li(m) for m in problems.values()], className="mb-0 ps-3"),
        ],
        id="bt-problems",
    )


# what the form callback writes: the parameter inputs, the timeframes and the period's bounds
# of the symbol, and every field's value
FORM_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-params", "children"),
    ("bt-timeframe", "options"),
    ("bt-start", "min"),
    ("bt-start", "max"),
    ("bt-end", "min"),
    ("bt-end", "max"),
    *((id_, "value") for id_ in FORM_IDS.values()),
)


def form_update(
    trigger: str | None,
    strategy: str | None,
    saved: str | None,
    symbol: str | None,
    load: Mapping[str, Any] | None,
    timeframe: str | None,
    services: Any,
    manager: StrategyManager | None,
) -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`FORM_OUTPUTS` (``no_update`` where nothing changes)
    after ``trigger`` changed: "bt-strategy" (its parameters at their defaults), "bt-saved"
    (a saved strategy's parameters and direction), "bt-symbol" (its timeframes and period:
    :func:`symbol_choices`) or "bt-load" (``load``, a form as
    :func:`~dashboard.pages.backtest.parse.request_form` gives it: a saved run opened or a
    sweep's combination, every field set; an empty period is the symbol's whole one)."""
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in FORM_OUTPUTS}
    if trigger == "bt-load":
        if not load:
            raise PreventUpdate
        return _loaded(load, services, outputs)
    if trigger == "bt-symbol":
        if not symbol:
            raise PreventUpdate
        options, value, first, last = symbol_choices(services, symbol, timeframe)
        outputs.update(_period(options, first, last))
        outputs.update({"bt-timeframe.value": value, "bt-start.value": first, "bt-end.value": last})
        return outputs
    name, params, direction = strategy_form(strategy, saved, trigger, manager)
    outputs.update(
        {"bt-strategy.value": name, "bt-params.children": params, "bt-direction.value": direction}
    )
    return outputs


def _period(options: Any, first: str | None, last: str | None) -> dict[str, Any]:
    return {
        "bt-timeframe.options": options,
        "bt-start.min": first,
        "bt-start.max": last,
        "bt-end.min": first,
        "bt-end.max": last,
    }


def _loaded(load: Mapping[str, Any], services: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    options, _, first, last = symbol_choices(services, load["symbol"], load["timeframe"])
    outputs.update(_period(options, first, last))
    for name, id_ in FORM_IDS.items():
        outputs[f"{id_}.value"] = load.get(name)
    outputs["bt-start.value"] = load.get("start") or first
    outputs["bt-end.value"] = load.get("end") or last
    outputs["bt-params.children"] = param_inputs(load["strategy"], load.get("params"))
    return outputs
