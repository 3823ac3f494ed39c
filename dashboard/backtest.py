"""The Backtest page (/backtest): a form, a background run with a progress bar, the result in
the performance panels, and the saved runs (open one, compare several).

>>> register_callbacks(app, services, dash.DiskcacheManager(diskcache.Cache(cache_dir)))
>>> app.layout = lambda: layout(services, theme="dark")

Left, the form: strategy (every registered one; or a saved user strategy to start from), its
parameter inputs generated from its ``StrategyParam`` declarations (type, bounds, default),
symbol and timeframe (stored and resampled ones, as the live page), period, costs, sizing,
stops, metrics preset and backtesting.py compat. An invalid value shows a message under the
form naming the field (strategy parameters: ``StrategyParamError``'s message), never a
traceback. Right, the result: KPI cards, equity/drawdown/volume, return distribution, monthly
returns, the trade grid (dash-ag-grid, as the panels module builds it) and the exports.
Below, the saved runs: "Open" shows a stored run again (re-run from its stored config:
dashboard/runs.py), "Compare" two or more. Charts and grids take their colours from the
"bt-theme" store ("dark"/"light"); writing it redraws what is shown.

Run and Open go through one dash background callback (``background=True``, the manager passed
in): it runs in a worker process that opens its own database engine from the URL, and reports
each step of :data:`dashboard.runs.STEPS` to the progress bar. Every callback is a thin
wrapper over a plain function of this module (``run_or_open``, ``compare``, ``export``, ...),
tested without dash in tests/dashboard/test_backtest_page.py. Component ids start with "bt-".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from analytics.backtest import SIZINGS
from analytics.exports import export_bytes, export_filename
from analytics.metrics import PRESETS, period_returns
from components.charts.theme import THEMES, ChartTheme
from components.panels.comparison import (
    RunSummary,
    best_per_row,
    comparison_table,
    comparison_table_component,
    correlation_heatmap_figure,
    drawdown_overlay_figure,
    equity_overlay_figure,
    risk_return_scatter_figure,
)
from components.panels.performance import (
    kpi_cards,
    kpi_values,
    monthly_heatmap_figure,
    monthly_returns_table,
    performance_figure,
    price_decimals,
    returns_distribution_figure,
    trade_table_columns,
    trade_table_records,
    trade_table_style,
)
from dashboard.live import GRAPH_CONFIG
from dashboard.runs import (
    STEPS,
    FormError,
    ResultCache,
    RunFailed,
    RunResult,
    context_from,
    list_runs,
    params_text,
    parse_form,
    reopen_run,
    run_request,
)
from market.timeframes import Timeframe
from services.backtests import open_context
from strategies.base import StrategyParam
from strategies.manager import StrategyManager
from strategies.registry import all_strategies
from strategies.registry import get as get_strategy

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_STRATEGY = "sma_crossover"
DEFAULT_SYMBOL = "SP500"
KPI_PREFIX = "bt-kpi"
EXPORT_KINDS = ("trades", "metrics", "equity")
EXPORT_FORMATS = {"csv": "CSV", "json": "JSON", "xlsx": "Excel"}
STEP_NAMES: tuple[str, ...] = STEPS  # what the progress bar shows, in order
SMALL_GRAPH = {**GRAPH_CONFIG, "displayModeBar": False}
SHOW: dict[str, str] = {"display": "block"}
HIDE: dict[str, str] = {"display": "none"}
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
# what showing a result writes, in the order of the callback's outputs
RESULT_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-result-title", "children"),
    ("bt-kpis", "children"),
    ("bt-performance", "figure"),
    ("bt-returns", "figure"),
    ("bt-returns", "style"),
    ("bt-monthly", "figure"),
    ("bt-monthly", "style"),
    ("bt-trades", "rowData"),
    ("bt-trades", "columnDefs"),
    ("bt-current", "data"),
    ("bt-result-body", "style"),
    ("bt-empty", "style"),
    ("bt-status", "children"),
    ("bt-runs", "rowData"),
)
_TEXT = {"cellDataType": "text", "filter": "agTextColumnFilter"}  # no guessed date filters
RUN_COLUMNS: list[dict[str, Any]] = [  # the saved-runs grid's columnDefs
    {
        "field": "id",
        "headerName": "#",
        "width": 90,
        "type": "rightAligned",
        "filter": "agNumberColumnFilter",
        "sort": "desc",
    },
    {"field": "strategy", "headerName": "Strategy", "minWidth": 130, **_TEXT},
    {"field": "params", "headerName": "Parameters", "minWidth": 220, **_TEXT},
    {"field": "symbol", "headerName": "Symbol", "width": 100, **_TEXT},
    {"field": "timeframe", "headerName": "TF", "width": 80, **_TEXT},
    {"field": "period", "headerName": "Period", "minWidth": 190, **_TEXT},
    {"field": "finished", "headerName": "Finished (UTC)", "minWidth": 160, **_TEXT},
]
TRADE_PAGE_ROWS = 15

Progress = Callable[[Sequence[Any]], None]  # dash's set_progress: (value, label)


def resolve_theme(theme: str) -> ChartTheme:
    """``THEMES[theme]``; an unknown name raises ValueError listing the known ones."""
    try:
        return THEMES[theme]
    except KeyError:
        raise ValueError(
            f"theme={theme!r} is invalid: expected one of {', '.join(THEMES)}"
        ) from None


# -- layout --------------------------------------------------------------------------------


def layout(services: Any, theme: str = "dark") -> html.Div:
    """The page's content for ``services`` (app.Services): form, result, saved runs and
    comparison, without navbar or frame (the app's shell, or :func:`make_test_app`, adds
    them and sets Bootstrap's colour mode). ``theme`` ("dark" or "light") colours the charts
    and tables; the "bt-theme" store holds it for the results to come."""
    look = resolve_theme(theme)
    market = services.market_data
    symbols = market.symbols()
    symbol = DEFAULT_SYMBOL if DEFAULT_SYMBOL in symbols else (symbols[0] if symbols else None)
    timeframes = market.timeframes(symbol) if symbol else []
    first, last = period_bounds(services, symbol) if symbol else (None, None)
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(
                        _form_card(services, symbols, symbol, timeframes, first, last),
                        lg=4,
                        xl=3,
                    ),
                    dbc.Col(_result_card(look), lg=8, xl=9),
                ],
                className="g-3",
            ),
            _runs_card(services, look),
            _compare_card(),
            dcc.Store(id="bt-theme", data=theme),
            dcc.Store(id="bt-current"),
            dcc.Store(id="bt-compared"),
            dcc.Download(id="bt-download"),
        ],
        id="bt-page",
    )


def _navbar() -> dbc.Navbar:
    """The standalone app's navbar (:func:`make_test_app`); the app's shell has its own."""
    return dbc.Navbar(
        dbc.Container(
            [
                html.Div(
                    [
                        html.Span("StratLens", className="sl-brand"),
                        html.Span("backtests", className="sl-tagline"),
                    ],
                    className="d-flex align-items-center",
                ),
                dbc.Nav(
                    [
                        dbc.NavLink("Live", href="/", external_link=True, id="bt-nav-live"),
                        dbc.NavLink(
                            "Backtest",
                            href="/backtest",
                            external_link=True,
                            active=True,
                            id="bt-nav-backtest",
                        ),
                    ],
                    className="sl-nav ms-4 me-auto",
                    navbar=True,
                ),
            ],
            fluid=True,
        ),
        className="sl-navbar",
        color="dark",
        dark=True,
    )


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


def _select(id_: str, options: Sequence[Any], value: Any) -> dbc.Select:
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
        control = _select_param(id_, p.choices, value)
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


def _select_param(id_: dict[str, str], choices: Sequence[str], value: Any) -> dbc.Select:
    return dbc.Select(
        id=id_, options=[{"label": c, "value": c} for c in choices], value=value, size="sm"
    )


def period_bounds(services: Any, symbol: str) -> tuple[str | None, str | None]:
    """First and last stored day of ``symbol`` (its finest stored series), ISO dates."""
    infos = [s for s in services.market_data.series() if s.symbol == symbol]
    if not infos:
        return None, None
    finest = min(infos, key=lambda s: Timeframe.parse(s.timeframe).seconds)
    return finest.first.strftime("%Y-%m-%d"), finest.last.strftime("%Y-%m-%d")


def _form_card(
    services: Any,
    symbols: list[str],
    symbol: str | None,
    timeframes: list[str],
    first: str | None,
    last: str | None,
) -> dbc.Card:
    manager = _manager(services)
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


def _manager(services: Any) -> StrategyManager | None:
    directory = getattr(getattr(services, "settings", None), "strategies_dir", None)
    return StrategyManager(directory) if directory is not None else None


def _result_card(look: ChartTheme) -> dbc.Card:
    export_bar = html.Div(
        [
            dbc.Select(
                id="bt-export-format",
                options=[{"label": v, "value": k} for k, v in EXPORT_FORMATS.items()],
                value="csv",
                size="sm",
                style={"width": "6.5rem"},
            ),
            dbc.ButtonGroup(
                [
                    dbc.Button(
                        kind.capitalize(),
                        id=f"bt-export-{kind}",
                        color="secondary",
                        outline=True,
                        size="sm",
                    )
                    for kind in EXPORT_KINDS
                ],
                size="sm",
            ),
        ],
        className="d-flex gap-2 align-items-center",
        title="download the shown run",
    )
    empty = html.Div(
        [
            html.Div("No result yet", className="fs-5 fw-semibold mb-1"),
            html.Div(
                "Choose a strategy, its parameters, a symbol and a period, then press Run. "
                "The result shows here: KPIs, equity and drawdown, return distribution, "
                "monthly returns and every trade. Saved runs below can be opened again or "
                "compared.",
                className="text-secondary",
                style={"maxWidth": "40rem"},
            ),
        ],
        id="bt-empty",
        className="p-4",
        style=SHOW,
    )
    body = html.Div(
        [
            html.Div(id="bt-kpis", className="mb-2"),
            dcc.Graph(
                id="bt-performance",
                config=GRAPH_CONFIG,
                style={"height": "430px"},
                figure=_blank(look),
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dcc.Graph(
                            id="bt-returns",
                            config=SMALL_GRAPH,
                            style={"height": "320px"},
                            figure=_blank(look),
                        ),
                        lg=5,
                    ),
                    dbc.Col(
                        dcc.Graph(id="bt-monthly", config=SMALL_GRAPH, figure=_blank(look)),
                        lg=7,
                    ),
                ],
                className="g-2 mt-1",
            ),
            html.Div("Trades", className="sl-label mt-2 mb-1"),
            dag.AgGrid(
                id="bt-trades",
                columnDefs=trade_table_columns(2, look),
                rowData=[],
                className="sl-grid",
                **trades_grid_style(look),
            ),
        ],
        id="bt-result-body",
        style=HIDE,
    )
    header = html.Div(
        [
            html.Div(id="bt-result-title", className="me-3", style={"minWidth": 0}),
            export_bar,
        ],
        className="d-flex justify-content-between align-items-center mb-2",
    )
    return dbc.Card(
        dbc.CardBody([header, empty, body], className="p-2"),
        id="bt-result",
        className="sl-card",
        style={"minHeight": "calc(100vh - 84px)"},
    )


def trades_grid_style(look: ChartTheme) -> dict[str, Any]:
    """The trade grid's props (components.panels.performance.trade_table_style: sortable,
    filterable, paginated) with :data:`TRADE_PAGE_ROWS` trades a page."""
    style = trade_table_style(look)
    style["dashGridOptions"] = {
        **style["dashGridOptions"],
        "paginationPageSize": TRADE_PAGE_ROWS,
        "paginationPageSizeSelector": [TRADE_PAGE_ROWS, 50, 100],
    }
    return style


def runs_grid_style(look: ChartTheme) -> dict[str, Any]:
    """The saved-runs grid's props: the trade grid's look, several rows selectable by their
    checkboxes (``selectedRows``: the selected rows' dicts), 10 runs a page."""
    style = trade_table_style(look)
    style["getRowId"] = "params.data.row_id"  # a string: AG Grid warns about a number id
    style["dashGridOptions"] = {
        **style["dashGridOptions"],
        "rowSelection": {
            "mode": "multiRow",
            "checkboxes": True,
            "headerCheckbox": False,
            "enableClickSelection": False,
        },
        "paginationPageSize": 10,
        "paginationPageSizeSelector": [10, 25, 50],
    }
    return style


def _blank(look: ChartTheme) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        template="none",
        paper_bgcolor=look.background,
        plot_bgcolor=look.background,
        xaxis={"visible": False},
        yaxis={"visible": False},
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
    )
    return figure


def _runs_card(services: Any, look: ChartTheme) -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Div("Saved runs", className="fw-semibold"),
                        html.Div(
                            [
                                dbc.Button(
                                    "Open", id="bt-open", color="secondary", size="sm", outline=True
                                ),
                                dbc.Button(
                                    "Compare",
                                    id="bt-compare",
                                    color="secondary",
                                    size="sm",
                                    outline=True,
                                ),
                                dbc.Button("Refresh", id="bt-refresh", color="link", size="sm"),
                            ],
                            className="d-flex gap-2",
                        ),
                    ],
                    className="d-flex justify-content-between align-items-center mb-2",
                ),
                dag.AgGrid(
                    id="bt-runs",
                    columnDefs=RUN_COLUMNS,
                    rowData=runs_rows(services.sessions),
                    selectedRows=[],
                    className="sl-grid",
                    **runs_grid_style(look),
                ),
                html.Div(id="bt-runs-message", className="sl-status small"),
            ],
            className="p-2",
        ),
        id="bt-runs-card",
        className="sl-card mt-3",
    )


def _compare_card() -> dbc.Card:
    def graph(id_: str, height: str) -> dcc.Graph:
        return dcc.Graph(id=id_, config=SMALL_GRAPH, style={"height": height})

    return dbc.Card(
        dbc.CardBody(
            [
                html.Div("Comparison", className="fw-semibold mb-2"),
                html.Div(id="bt-compare-table", style={"overflowX": "auto"}),
                dbc.Row(
                    [
                        dbc.Col(graph("bt-compare-equity", "340px"), lg=6),
                        dbc.Col(graph("bt-compare-drawdown", "340px"), lg=6),
                        dbc.Col(graph("bt-compare-correlation", "340px"), lg=6),
                        dbc.Col(graph("bt-compare-scatter", "340px"), lg=6),
                    ],
                    className="g-2 mt-1",
                ),
            ],
            className="p-2",
        ),
        id="bt-compare-card",
        className="sl-card mt-3 mb-3",
        style=HIDE,
    )


# -- plain callback logic (unit-testable without a browser) --------------------------------


def runs_rows(sessions: Any) -> list[dict[str, Any]]:
    """The saved-runs grid's rows (:func:`dashboard.runs.list_runs`), newest first; each
    also carries ``row_id``, its run id as text (the grid's row id)."""
    return [{**run.row(), "row_id": str(run.id)} for run in list_runs(sessions)]


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
    """The form as :func:`dashboard.runs.parse_form` takes it, from the callback's values:
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


def run_or_open(
    trigger: str | None,
    values: Mapping[str, Any],
    selected_ids: Sequence[Any] | None,
    database_url: str,
    cache_url: str | None,
    theme: str,
    *,
    set_progress: Progress | None = None,
    min_step_s: float = 0.0,
) -> dict[str, Any]:
    """What the Run ("bt-run") or Open ("bt-open") button shows: ``"id.prop"`` -> value for
    every one of :data:`RESULT_OUTPUTS`. ``selected_ids``: the saved-runs grid's selected
    rows (or run ids).

    Run: the form's backtest, stored. Open: the first selected saved run, re-run from its
    stored config (nothing stored). Opens its own database context from ``database_url``
    (the background worker is another process). ``set_progress((value, label))`` gets each
    step (:data:`STEP_NAMES`) as it begins; ``min_step_s`` keeps each step on screen at least
    that long (0 in the app; a browser test slows a fast run down to watch the bar move).
    A bad form or a failed run only changes the status line.
    """
    selected = selected_run_ids(selected_ids)

    def progress(step: int, total: int, name: str) -> None:
        if set_progress is not None:
            set_progress((round(100 * step / total), f"{step}/{total} {name}"))
        if min_step_s > 0:
            time.sleep(min_step_s)

    if trigger == "bt-open" and not selected:
        return _status_only("Select a saved run in the table, then press Open.")
    if trigger not in ("bt-run", "bt-open"):
        raise PreventUpdate
    request = None
    if trigger == "bt-run":
        try:
            request = parse_form(form_dict(values))
        except FormError as exc:
            return _status_only(_message(f"Not run: {exc}", "danger"))
    started = time.perf_counter()
    context = open_context(database_url, cache_url)
    try:
        try:
            if request is not None:
                result = run_request(request, context, progress=progress)
            else:
                result = reopen_run(selected[0], context, progress=progress)
        except RunFailed as exc:
            stored = f" (stored as failed run #{exc.run_id})" if exc.run_id else ""
            return _status_only(_message(f"Run failed at {exc}{stored}", "danger"))
        rows = runs_rows(context.reads)
    finally:
        context.close()
    elapsed = time.perf_counter() - started
    if request is not None:
        status = f"Run #{result.run_id} stored in {elapsed:.1f} s."
    else:
        status = f"Opened run #{result.run_id} (re-run from its stored config in {elapsed:.1f} s)."
    outputs = result_outputs(result, theme, status)
    outputs["bt-runs.rowData"] = rows  # the grid keeps the selection (rows keyed by id)
    return outputs


def selected_run_ids(selection: Sequence[Any] | None) -> list[int]:
    """Run ids of a selection: the saved-runs grid's ``selectedRows`` (row dicts) or ids."""
    return [int(r["id"]) if isinstance(r, Mapping) else int(r) for r in (selection or [])]


def _message(text: str, color: str) -> html.Span:
    return html.Span(text, className=f"text-{color}")


def _status_only(status: Any) -> dict[str, Any]:
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in RESULT_OUTPUTS}
    outputs["bt-status.children"] = status
    return outputs


def result_title(result: RunResult) -> tuple[str, str]:
    """(headline, details) of a result: ``("SMA crossover (fast=5, slow=30, direction=long) ·
    SP500 1d", "run #12 · 1999-01-04 → 2018-12-31 · metrics: backtesting.py")``."""
    request = result.request
    cls = get_strategy(request.strategy)
    headline = (
        f"{cls.title or cls.name} ({params_text(request.params)}) · "
        f"{request.symbol} {request.timeframe}"
    )
    run = f"run #{result.run_id}" if result.run_id is not None else "not stored"
    period = f"{_day(request.start)} → {_day(request.end)}"
    return headline, f"{run} · {period} · metrics: {request.preset}"


def _title(headline: str, details: str) -> list[html.Div]:
    return [
        html.Div(headline, className="fw-semibold text-truncate", title=headline),
        html.Div(details, className="small text-secondary text-truncate"),
    ]


def _day(value: pd.Timestamp | None) -> str:
    return "…" if value is None else value.strftime("%Y-%m-%d")


def result_outputs(result: RunResult, theme: str, status: Any = "") -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`RESULT_OUTPUTS` but the saved-runs table, for
    ``result``: title, KPI cards, performance, returns and monthly figures (the two side by
    side at one height), trade rows and columns, the current-run store, the result shown and
    the hint hidden, the status line."""
    look = resolve_theme(theme)
    trades = result.trades
    decimals = price_decimals(trades["entry_price"]) if len(trades) else 2
    returns = period_returns(result.equity, result.request.preset)
    monthly = monthly_returns_table(result.equity)
    height = {"height": f"{min(560, max(300, 70 + 22 * len(monthly)))}px"}
    heatmap = tidy(monthly_heatmap_figure(monthly, theme=look))
    heatmap.update_layout(height=None, autosize=True)
    return {
        "bt-result-title.children": _title(*result_title(result)),
        "bt-kpis.children": kpi_cards(
            kpi_values(result.metrics, result.initial_cash), id_prefix=KPI_PREFIX, theme=look
        ),
        "bt-performance.figure": tidy(
            performance_figure(result.equity, trades, benchmark=result.benchmark, theme=look)
        ),
        "bt-returns.figure": tidy(returns_distribution_figure(returns, theme=look)),
        "bt-returns.style": height,
        "bt-monthly.figure": heatmap,
        "bt-monthly.style": height,
        "bt-trades.rowData": trade_table_records(trades),
        "bt-trades.columnDefs": trade_table_columns(decimals, look),
        "bt-current.data": {"run_id": result.run_id, "label": short_label(result)},
        "bt-result-body.style": SHOW,
        "bt-empty.style": HIDE,
        "bt-status.children": status,
    }


def tidy(figure: go.Figure) -> go.Figure:
    """Axis labels never cut (automargin on every axis) and text never clipped at the plot
    edge: the panels' compact margins leave no room for long category labels."""
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)
    figure.update_traces(cliponaxis=False, selector={"type": "scatter", "mode": "markers+text"})
    return figure


def short_label(result: RunResult, *, series: bool = True) -> str:
    """``"#12 sma_crossover(5, 30, long) SP500 1d"`` (``series=False``: without the symbol and
    timeframe): a legend and column label."""
    request = result.request
    values = ", ".join(
        f"{v:g}" if isinstance(v, float) else str(v) for v in request.params.values()
    )
    head = f"#{result.run_id} " if result.run_id is not None else ""
    tail = f" {request.symbol} {request.timeframe}" if series else ""
    return f"{head}{request.strategy}({values}){tail}"


COMPARE_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-compare-table", "children"),
    ("bt-compare-equity", "figure"),
    ("bt-compare-drawdown", "figure"),
    ("bt-compare-correlation", "figure"),
    ("bt-compare-scatter", "figure"),
    ("bt-compare-card", "style"),
    ("bt-compared", "data"),
    ("bt-runs-message", "children"),
)


def compare(
    run_ids: Sequence[Any] | None, services: Any, cache: ResultCache, theme: str
) -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`COMPARE_OUTPUTS`: the comparison panel of the selected
    runs (2 or more, by run id): metrics table with the best per row marked, equity overlay,
    drawdown overlay, correlation heatmap, risk/return scatter, the panel shown, the ids
    compared, a message. Fewer than two runs: only the message changes."""
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in COMPARE_OUTPUTS}
    ids = sorted(set(selected_run_ids(run_ids)))  # oldest first, whatever the selection order
    if len(ids) < 2:
        outputs["bt-runs-message.children"] = "Select two or more saved runs, then press Compare."
        return outputs
    look = resolve_theme(theme)
    context = context_from(services.sessions, services.integrator)
    try:
        results = [cache.get(run_id, context) for run_id in ids]
    except RunFailed as exc:
        outputs["bt-runs-message.children"] = _message(f"Cannot compare: {exc}", "danger")
        return outputs
    # the symbol and timeframe in the labels only when they differ between the runs
    series = len({(r.request.symbol, r.request.timeframe) for r in results}) > 1
    runs = {}
    for result in results:
        label = short_label(result, series=series)
        runs[label] = RunSummary(label, result.equity, result.trades, result.metrics)
    table = comparison_table(runs)
    outputs.update(
        {
            "bt-compare-table.children": comparison_table_component(
                table, best_per_row(table), theme=look, table_id="bt-compare-metrics"
            ),
            "bt-compare-equity.figure": tidy(equity_overlay_figure(runs, theme=look)),
            "bt-compare-drawdown.figure": tidy(drawdown_overlay_figure(runs, theme=look)),
            "bt-compare-correlation.figure": tidy(correlation_heatmap_figure(runs, theme=look)),
            "bt-compare-scatter.figure": tidy(risk_return_scatter_figure(runs, theme=look)),
            "bt-compare-card.style": SHOW,
            "bt-compared.data": ids,
            "bt-runs-message.children": f"Comparing runs {', '.join(f'#{i}' for i in ids)}.",
        }
    )
    return outputs


THEMED_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("bt-kpis", "children"),
    ("bt-performance", "figure"),
    ("bt-returns", "figure"),
    ("bt-monthly", "figure"),
    ("bt-trades", "dashGridOptions"),
    ("bt-trades", "columnDefs"),
    ("bt-runs", "dashGridOptions"),
    *COMPARE_OUTPUTS[:5],
)


def retheme(
    theme: str,
    current: Mapping[str, Any] | None,
    compared: Sequence[int] | None,
    services: Any,
    cache: ResultCache,
) -> dict[str, Any]:
    """``"id.prop"`` -> value of :data:`THEMED_OUTPUTS` in ``theme``: the tables' colours, and
    the shown run (``current``) and comparison (``compared`` ids) drawn again (from the
    result cache, or reopened); what is not shown stays as it is."""
    look = resolve_theme(theme)
    outputs: dict[str, Any] = {f"{id_}.{prop}": no_update for id_, prop in THEMED_OUTPUTS}
    outputs["bt-trades.dashGridOptions"] = trades_grid_style(look)["dashGridOptions"]
    outputs["bt-trades.columnDefs"] = trade_table_columns(2, look)
    outputs["bt-runs.dashGridOptions"] = runs_grid_style(look)["dashGridOptions"]
    context = context_from(services.sessions, services.integrator)
    if current and current.get("run_id") is not None:
        try:
            shown = result_outputs(cache.get(int(current["run_id"]), context), theme)
        except RunFailed:  # deleted meanwhile: leave the charts as they are
            shown = {}
        for key in (
            "bt-trades.columnDefs",
            "bt-kpis.children",
            "bt-performance.figure",
            "bt-returns.figure",
            "bt-monthly.figure",
        ):
            outputs[key] = shown.get(key, no_update)
    if compared and len(compared) >= 2:
        panel = compare(compared, services, cache, theme)
        for id_, prop in COMPARE_OUTPUTS[:5]:
            outputs[f"{id_}.{prop}"] = panel[f"{id_}.{prop}"]
    return outputs


def export(
    kind: str, fmt: str, current: Mapping[str, Any] | None, services: Any, cache: ResultCache
) -> dict[str, Any]:
    """``dcc.Download`` data of the shown run's ``kind`` ("trades", "metrics", "equity") in
    ``fmt`` ("csv", "json", "xlsx"), via analytics.exports; raises PreventUpdate when no
    stored run is shown."""
    if not current or current.get("run_id") is None:
        raise PreventUpdate
    context = context_from(services.sessions, services.integrator)
    result = cache.get(int(current["run_id"]), context)
    data: Any = {"trades": result.trades, "metrics": result.metrics, "equity": result.equity}[kind]
    extra = {"benchmark": result.benchmark} if kind == "equity" else {}
    payload, _, mime = export_bytes(kind, data, fmt, **extra)  # type: ignore[arg-type]
    name = export_filename(kind, current.get("label") or f"run {current['run_id']}", fmt)  # type: ignore[arg-type]
    return dcc.send_bytes(payload, name, type=mime)


# -- wiring --------------------------------------------------------------------------------


def register_callbacks(app: Dash, services: Any, manager: Any, *, min_step_s: float = 0.0) -> None:
    """The page's callbacks on ``app``; Run/Open run in the background through ``manager``
    (a ``dash.DiskcacheManager``). ``min_step_s``: see :func:`run_or_open` (tests only).

    The "bt-theme" store ("dark" or "light") colours the charts and tables: an app-wide theme
    switch writes it (``Output("bt-theme", "data")``) and the page redraws in that theme."""
    database_url = services.settings.database_url
    cache_url = services.settings.redis_url
    cache = ResultCache()
    strategies = _manager(services)
    form_state = {name: State(id_, "value") for name, id_ in FORM_IDS.items()}
    form_state["param_ids"] = State({"type": PARAM_TYPE, "name": ALL}, "id")
    form_state["param_values"] = State({"type": PARAM_TYPE, "name": ALL}, "value")

    @app.callback(
        Output("bt-strategy", "value"),
        Output("bt-params", "children"),
        Output("bt-direction", "value"),
        Input("bt-strategy", "value"),
        Input("bt-saved", "value"),
        prevent_initial_call=True,
    )
    def _strategy(strategy: str | None, saved: str | None):
        return strategy_form(strategy, saved, ctx.triggered_id, strategies)

    @app.callback(
        Output("bt-timeframe", "options"),
        Output("bt-timeframe", "value"),
        Output("bt-start", "min"),
        Output("bt-start", "max"),
        Output("bt-start", "value"),
        Output("bt-end", "min"),
        Output("bt-end", "max"),
        Output("bt-end", "value"),
        Input("bt-symbol", "value"),
        State("bt-timeframe", "value"),
        prevent_initial_call=True,
    )
    def _symbol(symbol: str | None, current: str | None):
        if not symbol:
            raise PreventUpdate
        options, value, first, last = symbol_choices(services, symbol, current)
        return options, value, first, last, first, first, last, last

    form_inputs = {name: Input(id_, "value") for name, id_ in FORM_IDS.items()}
    form_inputs["param_ids"] = Input({"type": PARAM_TYPE, "name": ALL}, "id")
    form_inputs["param_values"] = Input({"type": PARAM_TYPE, "name": ALL}, "value")

    @app.callback(Output("bt-form-message", "children"), inputs={"values": form_inputs})
    def _validate(values: dict[str, Any]):
        return form_message(values)

    @app.callback(
        output=[Output(id_, prop) for id_, prop in RESULT_OUTPUTS],
        inputs={
            "run_clicks": Input("bt-run", "n_clicks"),
            "open_clicks": Input("bt-open", "n_clicks"),
        },
        state={
            "values": form_state,
            "selected": State("bt-runs", "selectedRows"),
            "theme": State("bt-theme", "data"),
        },
        background=True,
        manager=manager,
        interval=250,
        progress=[Output("bt-progress", "value"), Output("bt-progress", "label")],
        progress_default=[0, ""],
        running=[
            (Output("bt-run", "disabled"), True, False),
            (Output("bt-open", "disabled"), True, False),
            (Output("bt-cancel", "disabled"), False, True),
            (Output("bt-progress-wrap", "style"), SHOW, HIDE),
        ],
        cancel=[Input("bt-cancel", "n_clicks")],
        prevent_initial_call=True,
    )
    def _run(set_progress, run_clicks, open_clicks, values, selected, theme):
        outputs = run_or_open(
            ctx.triggered_id,
            values,
            selected,
            database_url,
            cache_url,
            theme,
            set_progress=set_progress,
            min_step_s=min_step_s,
        )
        return [outputs[f"{id_}.{prop}"] for id_, prop in RESULT_OUTPUTS]

    @app.callback(
        [Output(id_, prop) for id_, prop in COMPARE_OUTPUTS],
        Input("bt-compare", "n_clicks"),
        State("bt-runs", "selectedRows"),
        State("bt-theme", "data"),
        prevent_initial_call=True,
    )
    def _compare(_n: int, selected: list[int] | None, theme: str):
        outputs = compare(selected, services, cache, theme)
        return [outputs[f"{id_}.{prop}"] for id_, prop in COMPARE_OUTPUTS]

    @app.callback(
        [Output(id_, prop, allow_duplicate=True) for id_, prop in THEMED_OUTPUTS],
        Input("bt-theme", "data"),
        State("bt-current", "data"),
        State("bt-compared", "data"),
        prevent_initial_call=True,
    )
    def _retheme(theme: str, current: dict | None, compared: list[int] | None):
        outputs = retheme(theme or "dark", current, compared, services, cache)
        return [outputs[f"{id_}.{prop}"] for id_, prop in THEMED_OUTPUTS]

    @app.callback(
        Output("bt-runs", "rowData", allow_duplicate=True),
        Input("bt-refresh", "n_clicks"),
        prevent_initial_call=True,
    )
    def _refresh(_n: int):
        return runs_rows(services.sessions)

    @app.callback(
        Output("bt-download", "data"),
        *(Input(f"bt-export-{kind}", "n_clicks") for kind in EXPORT_KINDS),
        State("bt-export-format", "value"),
        State("bt-current", "data"),
        prevent_initial_call=True,
    )
    def _export(*args: Any):
        fmt, current = args[-2], args[-1]
        kind = str(ctx.triggered_id).removeprefix("bt-export-")
        return export(kind, fmt or "csv", current, services, cache)


def make_test_app(
    services: Any, manager: Any, *, theme: str = "dark", min_step_s: float = 0.0
) -> Dash:
    """A standalone Dash app serving this page, framed by a navbar, at every path (/backtest
    too): for browser tests and screenshots. app.create_app puts :func:`layout` in its shell."""
    app = Dash(
        __name__,
        title="StratLens · backtest",
        update_title=None,
        assets_folder=str(ASSETS),
        serve_locally=True,
    )
    app.layout = lambda: html.Div(
        [_navbar(), dbc.Container(layout(services, theme), fluid=True, className="sl-main")],
        className="sl-app",
        **{"data-bs-theme": theme},
    )
    register_callbacks(app, services, manager, min_step_s=min_step_s)
    return app


__all__ = [
    "COMPARE_OUTPUTS",
    "FORM_IDS",
    "RESULT_OUTPUTS",
    "STEP_NAMES",
    "THEMED_OUTPUTS",
    "compare",
    "export",
    "form_dict",
    "form_message",
    "layout",
    "make_test_app",
    "param_inputs",
    "period_bounds",
    "register_callbacks",
    "resolve_theme",
    "result_outputs",
    "result_title",
    "retheme",
    "run_or_open",
    "runs_grid_style",
    "runs_rows",
    "saved_strategy_options",
    "selected_run_ids",
    "short_label",
    "strategy_form",
    "strategy_options",
    "symbol_choices",
    "tidy",
    "trades_grid_style",
]
