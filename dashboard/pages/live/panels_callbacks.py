"""The live panels' callbacks: thin wrappers over :mod:`~dashboard.pages.live.panels`
(performance, comparison, exports, a trade clicked zooms the chart; and the sidebar's note
of what the whole-history view does not draw). The panel on show is
refreshed while it is visible, when the track's panel epoch moves (assets/chart_view.js,
panelRefresh); a hidden one sends nothing and catches up when shown. The performance panel's
cards refresh while the panel is in view, its figures and trades only while they are (below
the chart, the panel's top is often in view alone, and its figures are most of the work)."""

from __future__ import annotations

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from components.charts.theme import THEMES
from components.panels.performance import trade_table_columns, trade_table_style
from dashboard.pages.live.controls import lod_note
from dashboard.pages.live.panels import (
    comparison_panel,
    export_payload,
    hint,
    label_filter,
    panel_epoch,
    performance_figures,
    performance_kpis,
    strategy_picker,
)
from services.chart_layers import ChartTracks


def _performance_inputs(closed: str) -> list:
    """The performance panel's inputs: its strategy and convention, the ``closed`` store
    ([chart key, panel epoch] of its refresh), the theme; the chart's series."""
    return [
        Input("perf-strategy", "value"),
        Input("perf-preset", "value"),
        Input(closed, "data"),
        Input("theme-switch", "value"),
        State("symbol", "value"),
        State("timeframe", "value"),
    ]


def register_callbacks(app: Dash, tracks: ChartTracks) -> None:
    app.clientside_callback(  # the visible panel refreshes when the panel epoch moves
        ClientsideFunction("stratlens", "panelRefresh"),
        Output("perf-closed", "data"),
        Output("perf-figures-closed", "data"),
        Output("cmp-closed", "data"),
        Input("chart-state", "data"),
        Input("panel-tabs", "active_tab"),
        Input("panels-visible", "data"),
        Input("perf-figures-visible", "data"),
        State("perf-closed", "data"),
        State("perf-figures-closed", "data"),
        State("cmp-closed", "data"),
        State("strategies", "value"),
        State("perf-preset", "value"),
        State("theme-switch", "value"),
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
        *_performance_inputs("perf-closed"),
    )
    def _performance_kpis(spec, preset, closed, light, symbol, timeframe):
        if not spec or not symbol or not timeframe:
            raise PreventUpdate
        theme = THEMES["light" if light else "dark"]
        epoch = panel_epoch(closed, symbol, timeframe)
        return performance_kpis(tracks, symbol, timeframe, spec, preset, theme, epoch=epoch)

    @app.callback(  # the figures and trades: refreshed only while they are in view
        Output("perf-figure", "figure"),
        Output("perf-distribution", "figure"),
        Output("perf-monthly", "figure"),
        Output("perf-trades", "rowData"),
        Output("perf-trades", "columnDefs"),
        Output("perf-trades", "dashGridOptions"),
        Output("perf-labels", "options"),
        Output("perf-label-summary", "children"),
        *_performance_inputs("perf-figures-closed"),
        Input("perf-labels", "value"),
    )
    def _performance_figures(spec, preset, closed, light, symbol, timeframe, wanted):
        if not spec or not symbol or not timeframe or closed is None:
            # closed is None until the figures have been in view once: not built before
            raise PreventUpdate
        theme = THEMES["light" if light else "dark"]
        figure, distribution, monthly, rows, decimals = performance_figures(
            tracks,
            symbol,
            timeframe,
            spec,
            preset,
            theme,
            epoch=panel_epoch(closed, symbol, timeframe),
        )
        rows, options, summary = label_filter(rows, wanted)
        return (
            figure,
            distribution,
            monthly,
            rows,
            trade_table_columns(decimals, theme, labels=True),
            trade_table_style(theme)["dashGridOptions"],
            options,
            summary,
        )

    @app.callback(
        Output("cmp-table", "children"),
        Output("cmp-equity", "figure"),
        Output("cmp-drawdown", "figure"),
        Output("cmp-correlation", "figure"),
        Output("cmp-scatter", "figure"),
        Input("strategies", "value"),
        Input("perf-preset", "value"),
        Input("cmp-closed", "data"),
        Input("theme-switch", "value"),
        State("panel-tabs", "active_tab"),
        State("strategies", "options"),
        State("symbol", "value"),
        State("timeframe", "value"),
    )
    def _comparison(specs, preset, closed, light, tab, options, symbol, timeframe):
        if tab != "comparison" or not closed or not symbol or not timeframe:
            raise PreventUpdate  # computed when shown (cmp-closed is set once it is)
        if not specs or len(specs) < 2:
            empty = hint("Switch two or more strategies on to compare them.")
            return empty, *([{}] * 4)
        labels = {o["value"]: o["label"] for o in options or []}
        theme = THEMES["light" if light else "dark"]
        return comparison_panel(
            tracks,
            symbol,
            timeframe,
            specs,
            preset,
            theme,
            labels,
            epoch=panel_epoch(closed, symbol, timeframe),
        )

    @app.callback(  # the layers the candles-only LOD view leaves out, noted in the sidebar
        Output("lod-note", "children"),
        Input("lod", "value"),
        Input("indicators", "value"),
        Input("strategies", "value"),
    )
    def _lod_note(lod, indicators, strategies):
        return lod_note(lod, indicators, strategies)

    app.clientside_callback(  # in the browser: a click zooms at once, whatever the server does
        ClientsideFunction("stratlens", "tradeZoom"),
        Output("chart-zoom", "data"),
        Input("perf-trades", "cellClicked"),
        State("perf-trades", "rowData"),
        prevent_initial_call=True,
    )

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
