"""The live panels' callbacks: thin wrappers over :mod:`~dashboard.pages.live.panels`
(performance, comparison, exports, a trade clicked zooms the chart), refreshed when the chart's
newest closed candle changes."""

from __future__ import annotations

from dash import ALL, Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from components.charts.theme import THEMES
from components.panels.performance import trade_table_columns, trade_table_style
from dashboard.pages.live.panels import (
    comparison_panel,
    export_payload,
    hint,
    performance_panel,
    strategy_picker,
    trade_zoom,
)
from services.chart_layers import ChartTracks


def register_callbacks(app: Dash, tracks: ChartTracks) -> None:
    app.clientside_callback(  # a new closed candle (not every forming update) refreshes panels
        """function (state, held) {
            // a new chart at once; on the same chart at most every 5 s, so that a fast replay
            // does not queue panel refreshes faster than they are computed
            const skip = window.dash_clientside.no_update;
            const last = state ? [state.k, state.last] : null;
            if (JSON.stringify(last) === JSON.stringify(held)) return skip;
            const now = Date.now();
            const sameChart = held && last && held[0] === last[0];
            if (sameChart && now - (window._slPanelsAt || 0) < 5000) return skip;
            window._slPanelsAt = now;
            return last;
        }""",
        Output("chart-closed", "data"),
        Input("chart-state", "data"),
        State("chart-closed", "data"),
    )

    @app.callback(
        Output("perf-strategy", "options"),
        Output("perf-strategy", "value"),
        Input("strategies", "value"),
        State("strategies", "options"),
        State("perf-strategy", "value"),
    )
    def _choices(specs, options, current):
        return strategy_picker(specs, options, current)

    @app.callback(
        Output("perf-kpis", "children"),
        Output("perf-figure", "figure"),
        Output("perf-distribution", "figure"),
        Output("perf-monthly", "figure"),
        Output("perf-trades", "rowData"),
        Output("perf-trades", "columnDefs"),
        Output("perf-trades", "dashGridOptions"),
        Input("perf-strategy", "value"),
        Input("perf-preset", "value"),
        Input("chart-closed", "data"),
        Input("theme-switch", "value"),
        State("symbol", "value"),
        State("timeframe", "value"),
    )
    def _performance(spec, preset, _closed, light, symbol, timeframe):
        if not spec or not symbol or not timeframe:
            raise PreventUpdate
        theme = THEMES["light" if light else "dark"]
        cards, figure, distribution, monthly, rows, decimals = performance_panel(
            tracks, symbol, timeframe, spec, preset, theme
        )
        return (
            cards,
            figure,
            distribution,
            monthly,
            rows,
            trade_table_columns(decimals, theme),
            trade_table_style(theme)["dashGridOptions"],
        )

    @app.callback(
        Output("cmp-table", "children"),
        Output("cmp-equity", "figure"),
        Output("cmp-drawdown", "figure"),
        Output("cmp-correlation", "figure"),
        Output("cmp-scatter", "figure"),
        Input("strategies", "value"),
        Input("perf-preset", "value"),
        Input("chart-closed", "data"),
        Input("panel-tabs", "active_tab"),
        Input("theme-switch", "value"),
        State("strategies", "options"),
        State("symbol", "value"),
        State("timeframe", "value"),
    )
    def _comparison(specs, preset, _closed, tab, light, options, symbol, timeframe):
        if tab != "comparison" or not symbol or not timeframe:
            raise PreventUpdate  # computed when shown
        if not specs or len(specs) < 2:
            empty = hint("Switch two or more strategies on to compare them.")
            return empty, *([{}] * 4)
        labels = {o["value"]: o["label"] for o in options or []}
        theme = THEMES["light" if light else "dark"]
        return comparison_panel(tracks, symbol, timeframe, specs, preset, theme, labels)

    @app.callback(
        Output("chart-zoom", "data"),
        Input("perf-trades", "cellClicked"),
        State("perf-trades", "rowData"),
        prevent_initial_call=True,
    )
    def _zoom(cell, rows):
        return trade_zoom(cell, rows)

    @app.callback(
        Output("download", "data"),
        Input({"type": "export", "kind": ALL, "fmt": ALL}, "n_clicks"),
        State("perf-strategy", "value"),
        State("perf-preset", "value"),
        State("symbol", "value"),
        State("timeframe", "value"),
        prevent_initial_call=True,
    )
    def _export(clicks, spec, preset, symbol, timeframe):
        trigger = ctx.triggered_id
        if not trigger or not any(clicks or []) or not spec:
            raise PreventUpdate
        return export_payload(
            tracks, symbol, timeframe, spec, preset, trigger["kind"], trigger["fmt"]
        )
