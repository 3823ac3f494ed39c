"""The live page's callbacks: thin wrappers over the plain functions of
:mod:`~dashboard.pages.live.controls` (URL and controls, pickers, timeframes) and
:mod:`~dashboard.pages.live.chart` (whole figure, tick deltas), the browser-side ones of
assets/chart_view.js, and the panels' (:mod:`~dashboard.pages.live.panels_callbacks`)."""

from __future__ import annotations

from dash import ClientsideFunction, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard.pages.live import panels_callbacks
from dashboard.pages.live.chart import LiveContext, live_tick, view_chart
from dashboard.pages.live.controls import (
    CONTROL_PROPS,
    VIEW_CONTROLS,
    add_spec,
    execution_choices,
    spec_prefill,
    sync_view,
    timeframe_choices,
    view_from_controls,
)
from dashboard.pages.live.layout import BUILDING
from services.market_data import UnknownSeriesError


def _view_inputs() -> list[Input]:
    return [Input(c, "value") for c in VIEW_CONTROLS]


def url_changes(trigger: str, search: str | None, controls: list, market) -> tuple:
    """:func:`sync_view`'s answer, each control the URL leaves as it is ``no_update``: a
    control written triggers the chart's build, and the layout already set them from the URL
    (when the page's URL reached it), so a page load builds its chart once."""
    out = list(sync_view(trigger, search, view_from_controls(*controls), market))
    if trigger == "url":
        for i, current in enumerate(controls, start=1):
            if out[i] is not no_update and out[i] == current:
                out[i] = no_update
    return tuple(out)


def first_build_follows(
    trigger: str | None, pathname: str | None, search: str | None, controls: list, market
) -> bool:
    """True for the chart's initial call on the live page itself when the URL changes a
    control: the URL callback (``_sync``) sets it on the same load, which builds the figure of
    the view asked for; built now, from the controls as they are, it would be built twice.
    When the URL changes nothing (the layout started the controls from it), the initial call
    builds it. Another page builds it at once (the live page is opened later, same URL)."""
    if trigger is not None or (pathname or "/").strip("/"):
        return False
    return any(
        v is not no_update
        for v in url_changes("url", search, controls, market)[1 : 1 + len(VIEW_CONTROLS)]
    )


def register_callbacks(app: Dash, live: LiveContext) -> None:
    """The live page's callbacks on ``app``: the chart's, then the panels' below it."""
    market = live.market
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
    app.clientside_callback(  # one tick request in flight per tab, none while hidden
        ClientsideFunction("stratlens", "gateTick"),
        Output("tick-go", "data"),
        Input("tick", "n_intervals"),
        State("tick-busy", "data"),
        State("url", "pathname"),
        prevent_initial_call=True,
    )
    app.clientside_callback(  # only a level-of-detail chart's zoom goes to the server
        ClientsideFunction("stratlens", "lodZoom"),
        Output("lod-zoom", "data"),
        Input("price-chart", "relayoutData"),
        State("chart-state", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("stratlens", "zoomTo"),
        Output("chart-view", "data", allow_duplicate=True),
        Input("chart-zoom", "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("url", "search"),
        *(
            Output(c, p, allow_duplicate=True)
            for c, p in zip(VIEW_CONTROLS, CONTROL_PROPS, strict=True)
        ),
        Output("indicators", "options"),
        Output("strategies", "options"),
        Output("view-problems", "children"),
        Output("view-problems", "is_open"),
        Input("url", "search"),
        *_view_inputs(),
        State("url", "pathname"),
        prevent_initial_call="initial_duplicate",
    )
    def _sync(search, *values):
        *controls, pathname = values
        if (pathname or "/").strip("/"):
            raise PreventUpdate  # another page: its URL is not the live view's
        trigger = ctx.triggered_id if ctx.triggered_id else "url"
        return url_changes(trigger, search, controls, market)

    @app.callback(
        Output("timeframe", "options"),
        Output("timeframe", "value", allow_duplicate=True),
        Input("symbol", "value"),
        State("timeframe", "value"),
        prevent_initial_call="initial_duplicate",
    )
    def _timeframes(symbol: str | None, current: str | None):
        if not symbol:
            raise PreventUpdate
        return timeframe_choices(market, symbol, current)

    @app.callback(
        Output("executions", "options"),
        Input("url", "pathname"),
        State("executions", "value"),
    )
    def _accounts(pathname: str | None, current: str | None):
        if (pathname or "/").strip("/"):
            raise PreventUpdate  # refreshed on coming back: accounts are made on other pages
        return execution_choices(live.tracks.accounts(), current)

    for kind in ("indicator", "strategy"):
        target = "indicators" if kind == "indicator" else "strategies"

        @app.callback(
            Output(target, "value", allow_duplicate=True),
            Output(target, "options", allow_duplicate=True),
            Output(f"{kind}-error", "children"),
            Input(f"{kind}-add", "n_clicks"),
            Input(f"{kind}-spec", "n_submit"),
            State(f"{kind}-name", "value"),
            State(f"{kind}-spec", "value"),
            State(target, "value"),
            prevent_initial_call=True,
        )
        def _add(_clicks, _submit, name, text, current, kind=kind):
            return add_spec(kind, name, text, current)

        @app.callback(
            Output(f"{kind}-spec", "value"),
            Input(f"{kind}-name", "value"),
            prevent_initial_call=True,
        )
        def _prefill(name, kind=kind):
            return spec_prefill(kind, name)

    @app.callback(
        Output("price-chart", "figure"),
        Output("chart-state", "data"),
        *_view_inputs(),
        Input("lod-zoom", "data"),
        State("url", "pathname"),
        State("url", "search"),
        running=[(Output("chart-loading", "className"), BUILDING, "sl-loading")],
    )
    def _build(*values):
        *controls, relayout, pathname, search = values
        if first_build_follows(ctx.triggered_id, pathname, search, controls, market):
            raise PreventUpdate
        zoomed = ctx.triggered_id == "lod-zoom"
        return view_chart(live, view_from_controls(*controls), relayout, zoomed=zoomed)

    @app.callback(
        Output("price-chart", "figure", allow_duplicate=True),
        Output("chart-delta", "data"),
        Output("chart-state", "data", allow_duplicate=True),
        Input("tick-go", "data"),
        State("chart-state", "data"),
        State("chart-loading", "className"),
        *(State(c, "value") for c in VIEW_CONTROLS),
        prevent_initial_call=True,
        running=[(Output("tick-busy", "data"), True, False)],
    )
    def _tick(_n: int, chart_state: dict | None, loading: str | None, *controls):
        try:
            return live_tick(
                live, chart_state, view_from_controls(*controls), building=loading == BUILDING
            )
        except UnknownSeriesError:
            raise PreventUpdate from None

    app.clientside_callback(
        ClientsideFunction("stratlens", "status"),
        Output("status-line", "children"),
        Output("last-price", "children"),
        Output("feed-badge", "children"),
        Output("feed-badge", "color"),
        Input("chart-state", "data"),
        Input("tick-busy", "data"),
        Input("tick", "n_intervals"),
        State("tick", "interval"),
        State("price-chart", "figure"),
    )
    panels_callbacks.register_callbacks(app, live.tracks)
