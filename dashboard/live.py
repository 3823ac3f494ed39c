"""The live chart page: layout, and callbacks that are thin wrappers over plain functions.

A symbol or timeframe change builds the whole figure once. Each interval tick asks the
market data service only for what changed since the last closed bar this browser tab holds
(kept in the tab's own dcc.Store), and answers with a compact delta, which the browser turns
into a dash Patch of the figure (assets/chart_view.js): the new closed bars are appended and
the forming bar replaced. Nothing per tab lives on the server, so any number of
tabs stay correct. The status line, badge and last price are rendered in the browser from
the tab's chart state (assets/chart_view.js): no request of their own per tick.
"""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from components.charts.candles import candle_delta, candle_figure, chart_key
from market.timeframes import Timeframe, timestamp_ms
from services.live import StreamState
from services.market_data import MarketDataService, UnknownSeriesError

GRAPH_CONFIG = {
    "displaylogo": False,
    "scrollZoom": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}


def layout(
    market: MarketDataService, refresh_ms: int, default_symbol: str | None = None
) -> html.Div:
    symbols = market.symbols()
    symbol = default_symbol if default_symbol in symbols else (symbols[0] if symbols else None)
    timeframes = market.timeframes(symbol) if symbol else []
    return html.Div(
        [
            dbc.Navbar(
                dbc.Container(
                    [
                        html.Div(
                            [
                                html.Span("StratLens", className="sl-brand"),
                                html.Span("live strategy charts", className="sl-tagline"),
                            ]
                        ),
                        dbc.Badge(
                            "STARTING", id="feed-badge", color="secondary", className="sl-badge"
                        ),
                    ],
                    fluid=True,
                ),
                className="sl-navbar",
                color="#131722",
                dark=True,
            ),
            dbc.Container(
                [
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    dbc.Label("Symbol", html_for="symbol", className="sl-label"),
                                    dbc.Select(
                                        id="symbol",
                                        options=[{"label": s, "value": s} for s in symbols],
                                        value=symbol,
                                        size="sm",
                                    ),
                                ],
                                width="auto",
                            ),
                            dbc.Col(
                                [
                                    dbc.Label("Timeframe", className="sl-label"),
                                    dbc.RadioItems(
                                        id="timeframe",
                                        options=_timeframe_options(timeframes),
                                        value=timeframes[0] if timeframes else None,
                                        className="btn-group sl-timeframes",
                                        inputClassName="btn-check",
                                        labelClassName="btn btn-outline-secondary btn-sm",
                                        labelCheckedClassName="active",
                                    ),
                                ],
                                width="auto",
                            ),
                            dbc.Col(
                                html.Div(id="last-price", className="sl-last-price"),
                                className="ms-auto text-end",
                            ),
                        ],
                        className="g-3 align-items-end sl-controls",
                    ),
                    dbc.Card(
                        [
                            dcc.Graph(id="price-chart", config=GRAPH_CONFIG, className="sl-graph"),
                            # shown while a whole chart is built, never on live ticks
                            html.Div(
                                dbc.Spinner(color="warning", size="sm", spinner_class_name="me-2"),
                                id="chart-loading",
                                className="sl-loading show",
                            ),
                        ],
                        className="sl-card",
                    ),
                    html.Div(id="status-line", className="sl-status"),
                ],
                fluid=True,
                className="sl-main",
            ),
            dcc.Interval(id="tick", interval=refresh_ms),
            dcc.Store(id="chart-state"),
            dcc.Store(id="chart-delta"),  # what the last tick changed, applied in the browser
            dcc.Store(id="chart-view"),  # the output of the browser-side follow-and-fit
        ],
        className="sl-app",
        **{"data-bs-theme": "dark"},
    )


def _timeframe_options(timeframes: list[str]) -> list[dict[str, str]]:
    return [{"label": tf, "value": tf} for tf in timeframes]


# -- plain callback logic (unit-testable without a browser) ------------------------------


def timeframe_choices(
    market: MarketDataService, symbol: str, current: str | None
) -> tuple[list, str]:
    timeframes = market.timeframes(symbol)
    return _timeframe_options(timeframes), current if current in timeframes else timeframes[0]


def build_chart(
    market: MarketDataService, symbol: str, timeframe: str, bars: int
) -> tuple[go.Figure, dict[str, Any]]:
    """The full figure for (symbol, timeframe) and the tab's chart state."""
    data = market.window(symbol, timeframe, bars)
    figure = candle_figure(data.closed, data.forming, symbol=symbol, timeframe=data.timeframe)
    last = data.closed.index[-1] if len(data.closed) else None
    return figure, _chart_state(symbol, data.timeframe, last, len(data.closed), data.state)


def live_tick(
    market: MarketDataService,
    chart_state: dict[str, Any] | None,
    symbol: str,
    timeframe: str,
    bars: int,
) -> tuple[Any, Any, Any]:
    """What one interval tick sends: (figure, delta, chart state).

    Normally only the delta travels: every bar closed after the last one this tab has applied,
    the forming bar and the feed status. The browser applies it and records what it applied in
    the chart state (assets/chart_view.js), so a delta lost or applied late is made good by
    the next one. The whole figure is rebuilt only when the tab's chart is not the selected
    one, when a replay started over, or when the chart reached its bounded size.
    """
    if not symbol or not timeframe:
        raise PreventUpdate
    tf = Timeframe.parse(timeframe)
    if not chart_state or chart_state["k"] != chart_key(symbol, tf):
        figure, new_state = build_chart(market, symbol, timeframe, bars)
        return figure, no_update, new_state
    state = market.state(symbol)
    if state.version == chart_state["v"]:
        raise PreventUpdate  # the feed has not moved since this tab's last answer
    last_ms = chart_state["last"]
    since = None if last_ms is None else pd.Timestamp(last_ms, unit="ms", tz="UTC")
    delta = market.delta(symbol, tf, since)
    if delta.reset or chart_state["n"] + len(delta.closed) > bars + bars // 10:
        figure, new_state = build_chart(market, symbol, timeframe, bars)
        return figure, no_update, new_state
    changes = candle_delta(delta.closed, delta.forming, symbol=symbol, timeframe=tf)
    changes.update(_status(delta.state))
    return no_update, changes, no_update


def _chart_state(
    symbol: str, tf: Timeframe, last: pd.Timestamp | None, held: int, state: StreamState
) -> dict[str, Any]:
    # short keys: the browser renders the status line from this store
    return {
        "k": chart_key(symbol, tf),
        "s": symbol,
        "tf": tf.label,
        "last": _ms(last),
        "n": held,
        **_status(state),
    }


def _status(state: StreamState) -> dict[str, Any]:
    status = {"v": state.version, "st": state.status, "fk": state.feed_kind}
    if state.error:
        status["err"] = state.error
    return status


def _ms(value: pd.Timestamp | None) -> int | None:
    return None if value is None else timestamp_ms(value)


# -- wiring --------------------------------------------------------------------------------


def register_callbacks(app: Dash, market: MarketDataService, bars: int) -> None:
    app.clientside_callback(  # the delta becomes a dash Patch of the figure, in the browser
        ClientsideFunction("stratlens", "applyDelta"),
        Output("price-chart", "figure", allow_duplicate=True),
        Output("chart-state", "data", allow_duplicate=True),
        Input("chart-delta", "data"),
        State("price-chart", "figure"),
        State("chart-state", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("stratlens", "followAndFit"),
        Output("chart-view", "data"),
        Input("price-chart", "figure"),
    )

    @app.callback(
        Output("timeframe", "options"),
        Output("timeframe", "value"),
        Input("symbol", "value"),
        State("timeframe", "value"),
    )
    def _timeframes(symbol: str | None, current: str | None):
        if not symbol:
            raise PreventUpdate
        return timeframe_choices(market, symbol, current)

    @app.callback(
        Output("price-chart", "figure"),
        Output("chart-state", "data"),
        Input("symbol", "value"),
        Input("timeframe", "value"),
        running=[(Output("chart-loading", "className"), "sl-loading show", "sl-loading")],
    )
    def _build(symbol: str | None, timeframe: str | None):
        if not symbol or not timeframe:
            raise PreventUpdate
        try:
            return build_chart(market, symbol, timeframe, bars)
        except UnknownSeriesError:
            raise PreventUpdate from None  # the timeframe list for the new symbol is on its way

    @app.callback(
        Output("price-chart", "figure", allow_duplicate=True),
        Output("chart-delta", "data"),
        Output("chart-state", "data", allow_duplicate=True),
        Input("tick", "n_intervals"),
        State("chart-state", "data"),
        State("symbol", "value"),
        State("timeframe", "value"),
        prevent_initial_call=True,
    )
    def _tick(_n: int, chart_state: dict | None, symbol: str, timeframe: str):
        return live_tick(market, chart_state, symbol, timeframe, bars)

    app.clientside_callback(
        ClientsideFunction("stratlens", "status"),
        Output("status-line", "children"),
        Output("last-price", "children"),
        Output("feed-badge", "children"),
        Output("feed-badge", "color"),
        Input("chart-state", "data"),
        State("price-chart", "figure"),
    )
