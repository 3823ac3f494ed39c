"""The backtest page's layout: the form beside the result (KPI cards, equity/drawdown/volume,
return distribution, monthly returns, the trade grid, the exports), then the sweep, the saved
runs and the comparison of several, and the page's stores ("bt-load": a form to load, written
by Open and by a sweep's click)."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from components.charts.theme import ChartTheme
from components.panels.performance import trade_table_columns
from dashboard.pages.backtest.form import DEFAULT_STRATEGY, DEFAULT_SYMBOL, form_card, period_bounds
from dashboard.pages.backtest.results import runs_rows
from dashboard.pages.backtest.style import (
    HIDE,
    SHOW,
    SMALL_GRAPH,
    blank_figure,
    resolve_theme,
    runs_grid_style,
    trades_grid_style,
)
from dashboard.pages.backtest.sweep import sweep_card
from dashboard.shell import GRAPH_CONFIG

EXPORT_KINDS = ("trades", "metrics", "equity")
EXPORT_FORMATS = {"csv": "CSV", "json": "JSON", "xlsx": "Excel"}
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


def layout(services: Any, theme: str = "dark") -> html.Div:
    """The page's content for ``services`` (services.runtime.Services): form, result, saved
    runs and comparison, without navbar or frame (the app's shell, or :func:`make_test_app`,
    adds them and sets Bootstrap's colour mode). ``theme`` ("dark" or "light") colours the charts
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
                        form_card(services, symbols, symbol, timeframes, first, last),
                        lg=4,
                        xl=3,
                    ),
                    dbc.Col(_result_card(look), lg=8, xl=9),
                ],
                className="g-3",
            ),
            sweep_card(DEFAULT_STRATEGY, look),
            _runs_card(services, look),
            _compare_card(),
            dcc.Store(id="bt-theme", data=theme),
            dcc.Store(id="bt-load"),
            dcc.Store(id="bt-current"),
            dcc.Store(id="bt-compared"),
            dcc.Download(id="bt-download"),
        ],
        id="bt-page",
    )


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
                figure=blank_figure(look),
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dcc.Graph(
                            id="bt-returns",
                            config=SMALL_GRAPH,
                            style={"height": "320px"},
                            figure=blank_figure(look),
                        ),
                        lg=5,
                    ),
                    dbc.Col(
                        dcc.Graph(id="bt-monthly", config=SMALL_GRAPH, figure=blank_figure(look)),
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
