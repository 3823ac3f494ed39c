"""The live page's layout: a toolbar (symbol, timeframe, switches, last price), a sidebar of
layers (indicators, strategies, signal filter) beside the chart, and the panels below."""

from __future__ import annotations

from dataclasses import replace

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.charts.theme import THEMES
from dashboard.pages.live import panels
from dashboard.pages.live.controls import (
    VIEW_CONTROLS,
    execution_choices,
    indicator_choices,
    lod_note,
    strategy_choices,
    sync_view,
    timeframe_options,
    view_from_controls,
)
from dashboard.pages.live.view_state import ViewState
from dashboard.shell import GRAPH_CONFIG
from indicators.registry import all_specs
from services.market_data import MarketDataService
from strategies.registry import all_strategies
from strategies.signals import SIGNAL_TYPES

# the chart-loading class while a whole figure is built (and until the first one arrives);
# a live tick reads it to leave that build alone
BUILDING = "sl-loading show"
N_CONTROLS = 1 + len(VIEW_CONTROLS)  # sync_view's answer: the search, then every control

SIGNAL_LABELS = {
    "entry_long": "Long entry",
    "exit_long": "Long exit",
    "entry_short": "Short entry",
    "exit_short": "Short exit",
}


def default_view(
    market: MarketDataService, default_symbol: str | None = None
) -> tuple[str | None, str | None]:
    """(symbol, timeframe) the page shows without a URL query: ``default_symbol`` when stored
    (else the first stored symbol) in its first timeframe; None where nothing is stored."""
    symbols = market.symbols()
    symbol = default_symbol if default_symbol in symbols else (symbols[0] if symbols else None)
    timeframes = market.timeframes(symbol) if symbol else []
    return symbol, timeframes[0] if timeframes else None


def layout(
    market: MarketDataService,
    refresh_ms: int,
    default_symbol: str | None = None,
    search: str | None = None,
    accounts: list[str] | None = None,
) -> html.Div:
    """A toolbar (symbol, timeframe, switches, last price), a sidebar of layers (indicators,
    strategies, signal filter) beside the chart, and the panels below.

    ``search``: the page's URL query, when known: the controls start as the URL sets them
    (:func:`~dashboard.pages.live.controls.sync_view`, the theme apart: the shell's), so the
    page's first chart is the one asked for, built at once (no round trip of the URL
    callback first). ``accounts``: the paper accounts the executions select offers."""
    symbol, timeframe = default_view(market, default_symbol)
    view = ViewState(symbol=symbol, timeframe=timeframe)
    if search:
        view = replace(view_from_controls(*sync_view("url", search, view, market)[1:N_CONTROLS]),
                       theme=view.theme)  # fmt: skip
    symbols = market.symbols()
    timeframes = market.timeframes(view.symbol) if view.symbol else []
    toolbar = dbc.Row(
        [
            dbc.Col(
                dbc.Select(
                    id="symbol",
                    options=[{"label": s, "value": s} for s in symbols],
                    value=view.symbol,
                    size="sm",
                    className="sl-symbol",
                ),
                width="auto",
            ),
            dbc.Col(
                dbc.RadioItems(
                    id="timeframe",
                    options=timeframe_options(timeframes),
                    value=view.timeframe,
                    className="btn-group sl-timeframes",
                    inputClassName="btn-check",
                    labelClassName="btn btn-outline-secondary btn-sm",
                    labelCheckedClassName="active",
                ),
                width="auto",
            ),
            dbc.Col(
                dbc.Switch(
                    id="show-forming",
                    label="Forming candle",
                    value=view.show_forming,
                    className="sl-small mb-0",
                ),
                width="auto",
            ),
            dbc.Col(
                dbc.Switch(
                    id="lod",
                    label="Whole history (LOD)",
                    value=view.lod,
                    className="sl-small mb-0",
                ),
                width="auto",
            ),
            dbc.Col(
                html.Div(id="last-price", className="sl-last-price"),
                className="ms-auto text-end",
            ),
        ],
        className="g-3 align-items-center sl-controls",
    )
    sidebar = html.Div(
        [
            # what the whole-history view leaves out of the layers below (empty: hidden)
            html.Div(
                lod_note(view.lod, list(view.indicators), list(view.strategies)),
                id="lod-note",
                className="sl-lod-note",
            ),
            html.Div(
                [
                    html.Div("Indicators", className="sl-label"),
                    dcc.Dropdown(
                        id="indicators",
                        options=indicator_choices(view.indicators),
                        value=list(view.indicators),
                        multi=True,
                        placeholder="add indicators…",
                        className="sl-dropdown",
                    ),
                    _spec_adder(
                        "indicator",
                        [{"label": s.title, "value": s.name} for s in all_specs()],
                        "bbands(timeperiod=20,nbdevup=2.5)",
                    ),
                ],
                className="sl-side-section",
            ),
            html.Div(
                [
                    html.Div("Strategies", className="sl-label"),
                    dbc.Checklist(
                        id="strategies",
                        options=strategy_choices(view.strategies),
                        value=list(view.strategies),
                        switch=True,
                        className="sl-strategies",
                    ),
                    _spec_adder(
                        "strategy",
                        [{"label": c.name, "value": c.name} for c in all_strategies()],
                        "ema_crossover(fast=9,slow=21,direction=both)",
                    ),
                ],
                className="sl-side-section",
            ),
            html.Div(
                [
                    html.Div("Signal filter", className="sl-label"),
                    dbc.Checklist(
                        id="signal-types",
                        options=[{"label": SIGNAL_LABELS[t], "value": t} for t in SIGNAL_TYPES],
                        value=list(view.signal_types),
                        className="sl-small sl-types",
                    ),
                    html.Div("Minimum confidence", className="sl-small sl-muted mt-1"),
                    dcc.Slider(
                        id="min-confidence",
                        min=0,
                        max=1,
                        step=0.05,
                        value=view.min_confidence,
                        marks={0: "0", 0.25: "0.25", 0.5: "0.5", 0.75: "0.75", 1: "1"},
                        tooltip={"placement": "bottom"},
                        className="sl-slider",
                    ),
                ],
                className="sl-side-section",
            ),
            html.Div(
                [
                    html.Div("Executions", className="sl-label"),
                    dbc.Select(
                        id="executions",
                        options=execution_choices(list(accounts or ()), view.executions),
                        value=view.executions or "",
                        size="sm",
                        className="sl-small",
                    ),
                    html.Div(
                        "an account's real fills: ▲ buy ▼ sell, at their price",
                        className="sl-small sl-muted mt-1",
                    ),
                ],
                className="sl-side-section",
            ),
        ],
        className="sl-sidebar",
    )
    chart = dbc.Card(
        [
            dcc.Graph(
                id="price-chart", config=GRAPH_CONFIG, className="sl-graph", figure=placeholder()
            ),
            # shown while a whole chart is built, never on live ticks
            html.Div(
                dbc.Spinner(color="warning", size="sm", spinner_class_name="me-2"),
                id="chart-loading",
                className=BUILDING,
            ),
        ],
        className="sl-card sl-chart-card",
    )
    return html.Div(
        [
            toolbar,
            dbc.Alert(
                id="view-problems",
                color="warning",
                is_open=False,
                dismissable=True,
                className="sl-alert",
            ),
            html.Div(
                [
                    sidebar,
                    html.Div(
                        [chart, html.Div(id="status-line", className="sl-status")],
                        className="sl-chart-col",
                    ),
                ],
                className="sl-workspace",
            ),
            panels.layout(),
            dcc.Interval(id="tick", interval=refresh_ms),
            # the tick sent to the server: one in flight per tab (assets/chart_view.js, gateTick)
            dcc.Store(id="tick-go"),
            dcc.Store(id="tick-busy", data=False),  # a tick request is in flight ("running")
            dcc.Store(id="lod-zoom"),  # a zoom of the level-of-detail chart: re-aggregate
            dcc.Store(id="chart-state"),
            dcc.Store(id="chart-delta"),  # what the last tick changed, applied in the browser
            dcc.Store(id="chart-view"),  # the output of the browser-side follow-and-fit
            dcc.Store(id="chart-zoom"),  # a trade clicked in the trade table: zoom to it
            # [chart key, panel epoch] of the performance and comparison panels: set while the
            # panel is visible (panels-visible, from the browser), each refreshes on its own;
            # the performance figures' while they are in view (perf-figures-visible)
            dcc.Store(id="perf-closed"),
            dcc.Store(id="perf-figures-closed"),
            dcc.Store(id="cmp-closed"),
            dcc.Store(id="panels-visible", data=False),
            dcc.Store(id="perf-figures-visible", data=False),
        ],
    )


def placeholder(theme: str = "dark") -> dict:
    """An empty chart in the theme's colours, shown until the first figure arrives (instead
    of plotly's white default)."""
    t = THEMES[theme]
    axis = {"visible": False}
    return {
        "data": [],
        "layout": {
            "paper_bgcolor": t.background,
            "plot_bgcolor": t.background,
            "xaxis": axis,
            "yaxis": axis,
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "annotations": [
                {
                    "text": "loading chart…",
                    "showarrow": False,
                    "font": {"color": t.text},
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                }
            ],
        },
    }


def _spec_adder(kind: str, names: list[dict[str, str]], example: str) -> html.Details:
    """A name picker, a ``name(param=value,...)`` text box prefilled with its defaults, Add;
    folded under "other parameters…" (the sidebar keeps the signal filter in view)."""
    return html.Details(
        [
            html.Summary(f"+ {kind} with other parameters…", className="sl-small sl-muted"),
            dbc.InputGroup(
                [
                    dbc.Select(
                        id=f"{kind}-name",
                        options=names,
                        placeholder=kind,
                        size="sm",
                        className="sl-adder-name",
                    ),
                    dbc.Input(id=f"{kind}-spec", placeholder=example, size="sm", debounce=True),
                    dbc.Button("Add", id=f"{kind}-add", size="sm", color="secondary", n_clicks=0),
                ],
                size="sm",
                className="sl-adder",
            ),
            html.Div(id=f"{kind}-error", className="sl-error"),
        ],
        className="sl-more",
    )
