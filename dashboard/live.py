"""The live chart page: controls, the layered chart, and callbacks that are thin wrappers over
plain functions.

A change of the view (symbol, timeframe, indicators, strategies, filters, theme) builds the
whole figure once, from the layers of :mod:`components.charts.layers`. Each interval tick asks
only for what changed since the last closed bar this browser tab holds (kept in the tab's own
dcc.Store) and answers with a compact delta: new candles (``c``), the forming bar (``f``),
and, per layer trace, the values to append (``e``: indicator points, new signal markers,
trade segments) or to replace (``r``). The browser turns it into a dash Patch of the figure
(assets/chart_view.js). Indicator values and signals come from :class:`ChartTracks`, which
updates each indicator and strategy once per closed candle for every tab. Nothing per tab
lives on the server, so any number of tabs stay correct.

The view lives in the URL (:mod:`dashboard.view_state`), so a view can be bookmarked and
shared; the URL and the controls are kept in step by one callback.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import (
    ClientsideFunction,
    Dash,
    Input,
    Output,
    State,
    ctx,
    dcc,
    html,
    no_update,
)
from dash.exceptions import PreventUpdate

from components.charts.candles import candle_delta, chart_key
from components.charts.layers import (
    CandlesLayer,
    ChartData,
    IndicatorLayer,
    StrategySignalLayer,
    StrategyView,
    TradeLayer,
    compose,
    compose_delta,
)
from components.charts.lod import aggregate_ohlc, lod_timeframe_label
from components.charts.theme import THEMES
from dashboard import live_panels
from dashboard.view_state import SpecError, ViewState, build_strategy, indicator_request
from indicators.registry import all_specs
from market.timeframes import Timeframe, timestamp_ms
from services.chart_layers import ChartTracks, SeriesTrack, TrackView, strategy_key
from services.live import StreamState
from services.market_data import MarketDataService, UnknownSeriesError
from strategies.registry import all_strategies, create
from strategies.signals import SIGNAL_TYPES

GRAPH_CONFIG = {
    "displaylogo": False,
    "scrollZoom": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
}
LOD_BARS = 2000  # candles drawn at most in the level-of-detail view of a whole history
SIGNAL_LABELS = {
    "entry_long": "Long entry",
    "exit_long": "Long exit",
    "entry_short": "Short entry",
    "exit_short": "Short exit",
}
DEFAULT_INDICATORS = ("ema(timeperiod=20)", "ema(timeperiod=50)", "bbands", "rsi", "macd", "stoch")


@dataclass(frozen=True)
class LiveContext:
    """What the live page's callbacks need: market windows, layer tracks, the window size."""

    market: MarketDataService
    tracks: ChartTracks
    bars: int


# -- layout ---------------------------------------------------------------------------------


def strategy_choices(extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One toggle per registered strategy (default parameters, both directions) plus any
    parameter set in the view."""
    specs = [strategy_key(create(cls.name, direction="both")) for cls in all_strategies()]
    specs += [s for s in extra if s not in specs]
    return [{"label": _strategy_label(s), "value": s} for s in specs]


def indicator_choices(extra: tuple[str, ...] = ()) -> list[dict[str, str]]:
    keys = [indicator_request(text).key for text in DEFAULT_INDICATORS]
    keys += [k for k in extra if k not in keys]
    return [{"label": _indicator_label(k), "value": k} for k in keys]


def _strategy_label(spec: str) -> str:
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


def _indicator_label(key: str) -> str:
    name, _, args = key.partition("(")
    values = [part.split("=", 1)[1] for part in args.rstrip(")").split(",") if "=" in part]
    return f"{name.upper()} {','.join(values)}".strip()


def layout(
    market: MarketDataService, refresh_ms: int, default_symbol: str | None = None
) -> html.Div:
    """A toolbar (symbol, timeframe, switches, last price), a sidebar of layers (indicators,
    strategies, signal filter) beside the chart, and the panels below."""
    symbols = market.symbols()
    symbol = default_symbol if default_symbol in symbols else (symbols[0] if symbols else None)
    timeframes = market.timeframes(symbol) if symbol else []
    toolbar = dbc.Row(
        [
            dbc.Col(
                dbc.Select(
                    id="symbol",
                    options=[{"label": s, "value": s} for s in symbols],
                    value=symbol,
                    size="sm",
                    className="sl-symbol",
                ),
                width="auto",
            ),
            dbc.Col(
                dbc.RadioItems(
                    id="timeframe",
                    options=_timeframe_options(timeframes),
                    value=timeframes[0] if timeframes else None,
                    className="btn-group sl-timeframes",
                    inputClassName="btn-check",
                    labelClassName="btn btn-outline-secondary btn-sm",
                    labelCheckedClassName="active",
                ),
                width="auto",
            ),
            dbc.Col(
                dbc.Switch(
                    id="show-forming", label="Forming candle", value=True, className="sl-small mb-0"
                ),
                width="auto",
            ),
            dbc.Col(
                dbc.Switch(
                    id="lod", label="Whole history (LOD)", value=False, className="sl-small mb-0"
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
            html.Div(
                [
                    html.Div("Indicators", className="sl-label"),
                    dcc.Dropdown(
                        id="indicators",
                        options=indicator_choices(),
                        value=[],
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
                        options=strategy_choices(),
                        value=[],
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
                        value=list(SIGNAL_TYPES),
                        className="sl-small sl-types",
                    ),
                    html.Div("Minimum confidence", className="sl-small sl-muted mt-1"),
                    dcc.Slider(
                        id="min-confidence",
                        min=0,
                        max=1,
                        step=0.05,
                        value=0,
                        marks={0: "0", 0.25: "0.25", 0.5: "0.5", 0.75: "0.75", 1: "1"},
                        tooltip={"placement": "bottom"},
                        className="sl-slider",
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
                className="sl-loading show",
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
            live_panels.layout(),
            dcc.Interval(id="tick", interval=refresh_ms),
            dcc.Store(id="chart-state"),
            dcc.Store(id="chart-delta"),  # what the last tick changed, applied in the browser
            dcc.Store(id="chart-view"),  # the output of the browser-side follow-and-fit
            dcc.Store(id="chart-zoom"),  # a trade clicked in the trade table: zoom to it
            dcc.Store(id="chart-closed"),  # [chart key, last closed bar]: panels refresh on it
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


def _spec_adder(kind: str, names: list[dict[str, str]], example: str) -> html.Div:
    """A name picker, a ``name(param=value,...)`` text box prefilled with its defaults, Add."""
    return html.Div(
        [
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
        ]
    )


def _timeframe_options(timeframes: list[str]) -> list[dict[str, str]]:
    return [{"label": tf, "value": tf} for tf in timeframes]


# -- plain callback logic (unit-testable without a browser) ------------------------------


def timeframe_choices(
    market: MarketDataService, symbol: str, current: str | None
) -> tuple[list, str]:
    timeframes = market.timeframes(symbol)
    # keep a valid current value untouched: the URL may have set it in the same moment
    return _timeframe_options(timeframes), no_update if current in timeframes else timeframes[0]


def layer_config(view: ViewState) -> str:
    """Which layers a figure shows: a tick's delta is applied only to a figure built with the
    same (symbol, timeframe, layers, filters, theme)."""
    text = json.dumps(
        [
            view.indicators,
            view.strategies,
            view.signal_types,
            view.min_confidence,
            view.show_forming,
            view.theme,
            view.lod,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def chart_layers(view: ViewState, requests: list, strategies: list) -> list:
    layers: list = [CandlesLayer()]
    if requests:
        layers.append(IndicatorLayer(requests))
    if strategies:
        layers += [StrategySignalLayer(), TradeLayer()]
    return layers


def chart_data(
    track: SeriesTrack,
    tv: TrackView,
    view: ViewState,
    strategies: list,
    *,
    window_start=None,
    quiet: frozenset[str] = frozenset(),
) -> ChartData:
    """The layers' input: the track's slice, and per strategy its signals and the trades of
    its backtest over the whole history that touch the slice. ``quiet`` strategies (no signal
    in a tick's bars, so no new marker or closed trade) carry neither: same traces, no work."""
    views = {}
    for i, strategy in enumerate(strategies):
        key = strategy_key(strategy)
        if key in quiet:
            views[key] = StrategyView(label=_strategy_label(key), color=i)
            continue
        result = tv.results.get(key)
        trades = track.trades(strategy)
        if window_start is None and len(tv.candles):
            # a full build draws the trades that end on the chart; a tick's trade layer
            # takes those that closed after its `since` itself
            trades = trades[(trades["exit_time"] >= tv.candles.index[0]).to_numpy()]
        views[key] = StrategyView(
            label=_strategy_label(key),
            color=i,
            result=result,
            trades=trades,
            signal_types=frozenset(view.signal_types),
            min_confidence=view.min_confidence,
        )
    return ChartData(
        symbol=track.symbol,
        timeframe=track.timeframe,
        candles=tv.candles,
        forming=tv.forming if view.show_forming else None,
        indicators=tv.indicators,
        strategies=views,
        show_forming=view.show_forming,
    )


def build_chart(live: LiveContext, view: ViewState) -> tuple[go.Figure, dict[str, Any]]:
    """The full figure for the view and the tab's chart state."""
    if not view.symbol or not view.timeframe:
        raise PreventUpdate
    requests, strategies = view.requests(), view.strategy_objects()
    track = live.tracks.sync(view.symbol, view.timeframe)
    tv = track.view(requests, strategies, last=live.bars)
    theme = THEMES[view.theme]
    data = chart_data(track, tv, view, strategies)
    composed = compose(data, chart_layers(view, requests, strategies), theme)
    figure = composed.figure
    last = tv.candles.index[-1] if len(tv.candles) else None
    state = _chart_state(view, tv.timeframe, last, len(tv.candles), tv.state)
    state["ti"] = composed.trace_index
    if tv.failures:
        state["err"] = "; ".join(f"{k}: {why}" for k, why in tv.failures.items())
    return figure, state


def build_lod_chart(
    live: LiveContext, view: ViewState, x_range: tuple[Any, Any] | None = None
) -> tuple[go.Figure, dict[str, Any]]:
    """The whole history as at most LOD_BARS candles (OHLC aggregated: each bucket's true high
    and low), re-aggregated over ``x_range`` when the trader zooms. No live ticks patch it."""
    if not view.symbol or not view.timeframe:
        raise PreventUpdate
    track = live.tracks.sync(view.symbol, view.timeframe)
    tv = track.view([], [], last=None)
    start, end = (pd.Timestamp(x, tz="UTC") for x in x_range) if x_range else (None, None)
    lod = aggregate_ohlc(tv.candles, max_bars=LOD_BARS, start=start, end=end)
    per_bar = int(lod["bars"].max()) if len(lod) else 1
    data = ChartData(
        symbol=track.symbol,
        timeframe=track.timeframe,
        candles=lod.drop(columns="bars"),
        forming=None,
        indicators={},
        strategies={},
        show_forming=False,
    )
    composed = compose(data, [CandlesLayer()], THEMES[view.theme], view_bars=max(len(lod), 1))
    figure = composed.figure
    label = lod_timeframe_label(per_bar, track.timeframe)
    figure.update_layout(
        title={
            "text": f"{view.symbol} · {len(tv.candles):,} bars · {label}",
            "x": 0.01,
            "font": {"size": 12},
        },
        uirevision=f"lod:{chart_key(view.symbol, track.timeframe)}",
        showlegend=False,  # one series; the title names it and the bucket size
    )
    last = tv.candles.index[-1] if len(tv.candles) else None
    state = _chart_state(view, track.timeframe, last, len(tv.candles), tv.state)
    state["lod"] = per_bar
    return figure, state


def live_tick(
    live: LiveContext, chart_state: dict[str, Any] | None, view: ViewState
) -> tuple[Any, Any, Any]:
    """What one interval tick sends: (figure, delta, chart state).

    Normally only the delta travels: every bar closed after the last one this tab has applied,
    the forming bar, the layers' new points and the feed status. The browser applies it and
    records what it applied in the chart state (assets/chart_view.js), so a delta lost or
    applied late is made good by the next one. The whole figure is rebuilt only when the
    tab's chart is not the selected one, when a replay started over, or when the chart
    reached its bounded size.
    """
    if not view.symbol or not view.timeframe:
        raise PreventUpdate
    if view.lod:
        raise PreventUpdate  # the whole-history view is not live-patched
    tf = Timeframe.parse(view.timeframe)
    if (
        not chart_state
        or chart_state["k"] != chart_key(view.symbol, tf)
        or chart_state.get("cfg") != layer_config(view)
    ):
        figure, new_state = build_chart(live, view)
        return figure, no_update, new_state
    state = live.market.state(view.symbol)
    if state.version == chart_state["v"]:
        raise PreventUpdate  # the feed has not moved since this tab's last answer
    last_ms = chart_state["last"]
    since = None if last_ms is None else pd.Timestamp(last_ms, unit="ms", tz="UTC")
    track = live.tracks.sync(view.symbol, tf)
    if since is None or (track.last_ts is not None and track.last_ts < since):
        figure, new_state = build_chart(live, view)  # the replay started over
        return figure, no_update, new_state
    with track.lock:  # the history and the forming bar of one moment
        if track.position_after(since) == track.candles.n:
            # only the forming bar moved: the layers change when a candle closes
            forming = track.forming if view.show_forming else None
            changes = candle_delta(
                track.frame(track.candles.n, track.candles.n), forming,
                symbol=view.symbol, timeframe=tf,
            )  # fmt: skip
            changes.update(_status(track.state))  # type: ignore[arg-type]
            return no_update, changes, no_update
    requests, strategies = view.requests(), view.strategy_objects()
    start = track.position_after(since)
    quiet = frozenset(strategy_key(s) for s in strategies if not track.fired(s, start))
    active = [s for s in strategies if strategy_key(s) not in quiet]
    tv = track.view(requests, active, since=since)
    if chart_state["n"] + len(tv.candles) > live.bars + live.bars // 10:
        figure, new_state = build_chart(live, view)
        return figure, no_update, new_state
    forming = tv.forming if view.show_forming else None
    changes = candle_delta(tv.candles, forming, symbol=view.symbol, timeframe=tf)
    data = chart_data(track, tv, view, strategies, window_start=since, quiet=quiet)
    layers = chart_layers(view, requests, strategies)
    extra = compose_delta(data, layers, since, chart_state.get("ti", {}), THEMES[view.theme])
    changes.update({k: v for k, v in extra.items() if v})
    changes.update(_status(tv.state))
    return no_update, changes, no_update


def _chart_state(
    view: ViewState, tf: Timeframe, last: pd.Timestamp | None, held: int, state: StreamState
) -> dict[str, Any]:
    # short keys: the browser renders the status line from this store
    return {
        "k": chart_key(view.symbol or "", tf),
        "cfg": layer_config(view),
        "s": view.symbol,
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


def view_from_controls(
    symbol, timeframe, indicators, strategies, types, confidence, forming, theme_light, lod
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
    )


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
            indicator_choices(view.indicators),
            strategy_choices(view.strategies),
            "; ".join(problems),
            bool(problems),
        )
    query = controls.to_query()
    return (
        query if query != (search or "") else no_update,
        *([no_update] * 13),
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


# -- wiring --------------------------------------------------------------------------------

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
)
CONTROL_PROPS = ("value",) * len(VIEW_CONTROLS)


def _view_inputs() -> list[Input]:
    return [Input(c, "value") for c in VIEW_CONTROLS]


def register_callbacks(app: Dash, live: LiveContext) -> None:
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
        return sync_view(trigger, search, view_from_controls(*controls), market)

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
            if not name:
                raise PreventUpdate
            if kind == "indicator":
                return indicator_request(name).key
            return strategy_key(build_strategy(name))

    @app.callback(
        Output("price-chart", "figure"),
        Output("chart-state", "data"),
        *_view_inputs(),
        Input("price-chart", "relayoutData"),
        running=[(Output("chart-loading", "className"), "sl-loading show", "sl-loading")],
    )
    def _build(*values):
        *controls, relayout = values
        view = view_from_controls(*controls)
        try:
            if view.lod:
                x_range = None
                if ctx.triggered_id == "price-chart":
                    # a zoom or pan re-aggregates over the new range; a reset, over everything
                    x_range = _x_range(relayout)
                    if x_range is None and not (relayout or {}).get("xaxis.autorange"):
                        raise PreventUpdate
                return build_lod_chart(live, view, x_range)
            if ctx.triggered_id == "price-chart":
                raise PreventUpdate  # zooming a live chart is handled in the browser
            return build_chart(live, view)
        except UnknownSeriesError:
            raise PreventUpdate from None  # the timeframe list for the new symbol is on its way

    @app.callback(
        Output("price-chart", "figure", allow_duplicate=True),
        Output("chart-delta", "data"),
        Output("chart-state", "data", allow_duplicate=True),
        Input("tick", "n_intervals"),
        State("chart-state", "data"),
        *(State(c, "value") for c in VIEW_CONTROLS),
        prevent_initial_call=True,
    )
    def _tick(_n: int, chart_state: dict | None, *controls):
        try:
            return live_tick(live, chart_state, view_from_controls(*controls))
        except UnknownSeriesError:
            raise PreventUpdate from None

    app.clientside_callback(
        ClientsideFunction("stratlens", "status"),
        Output("status-line", "children"),
        Output("last-price", "children"),
        Output("feed-badge", "children"),
        Output("feed-badge", "color"),
        Input("chart-state", "data"),
        State("price-chart", "figure"),
    )


def _x_range(relayout: dict | None) -> tuple[Any, Any] | None:
    """The x range of a zoom or pan (None for anything else, e.g. an autoscale)."""
    if not relayout:
        return None
    if "xaxis.range[0]" in relayout:
        return relayout["xaxis.range[0]"], relayout["xaxis.range[1]"]
    if "xaxis.range" in relayout:
        return tuple(relayout["xaxis.range"][:2])  # type: ignore[return-value]
    return None
