"""The live chart: the whole figure of a view (or its level-of-detail view of a whole
history), and what each interval tick sends.

A change of the view (symbol, timeframe, indicators, strategies, filters, theme) builds the
whole figure once, from the layers of :mod:`components.charts.layers`. Each interval tick asks
only for what changed since the last closed bar this browser tab holds (kept in the tab's own
dcc.Store) and answers with a compact delta: new candles (``c``), the forming bar (``f``),
and, per layer trace, the values to append (``e``: indicator points, new signal markers,
trade segments) or to replace (``r``). The browser turns it into a dash Patch of the figure
(assets/chart_view.js). Indicator values and signals come from :class:`ChartTracks`, which
updates each indicator and strategy once per closed candle for every tab. Nothing per tab
lives on the server, so any number of tabs stay correct.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import no_update
from dash.exceptions import PreventUpdate

from components.charts.candles import candle_delta, chart_key, forming_row
from components.charts.layers import (
    CandlesLayer,
    ChartData,
    ExecutionLayer,
    IndicatorLayer,
    StrategySignalLayer,
    StrategyView,
    TradeLayer,
    compose,
    compose_delta,
)
from components.charts.lod import aggregate_ohlc, lod_timeframe_label
from components.charts.theme import THEMES
from dashboard.pages.live.controls import strategy_label
from dashboard.pages.live.view_state import ViewState
from market.timeframes import Timeframe, timestamp_ms
from services.chart_layers import ChartTracks, SeriesTrack, TrackView, strategy_key
from services.live import StreamState
from services.market_data import MarketDataService, UnknownSeriesError

LOD_BARS = 2000  # candles drawn at most in the level-of-detail view of a whole history


@dataclass(frozen=True)
class LiveContext:
    """What the live page's callbacks need: market windows, layer tracks, the window size."""

    market: MarketDataService
    tracks: ChartTracks
    bars: int


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
            view.executions,
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
    if view.executions:
        layers.append(ExecutionLayer())
    return layers


def chart_data(
    track: SeriesTrack,
    tv: TrackView,
    view: ViewState,
    strategies: list,
    *,
    window_start=None,
    quiet: frozenset[str] = frozenset(),
    executions: pd.DataFrame | None = None,
) -> ChartData:
    """The layers' input: the track's slice, and per strategy its signals and the trades of
    its backtest over the whole history that touch the slice. ``quiet`` strategies (no signal
    in a tick's bars, so no new marker or closed trade) carry neither: same traces, no work.
    ``executions``: the fills of the view's account on the tab's bars (the executions layer
    replaces its traces with them on each closed bar)."""
    views = {}
    for i, strategy in enumerate(strategies):
        key = strategy_key(strategy)
        if key in quiet:
            views[key] = StrategyView(label=strategy_label(key), color=i)
            continue
        result = tv.results.get(key)
        trades = track.trades(strategy)
        if window_start is None and len(tv.candles):
            # a full build draws the trades that end on the chart; a tick's trade layer
            # takes those that closed after its `since` itself
            trades = trades[(trades["exit_time"] >= tv.candles.index[0]).to_numpy()]
        views[key] = StrategyView(
            label=strategy_label(key),
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
        executions={} if not view.executions or executions is None
        else {view.executions: executions},
    )  # fmt: skip


def executions_from(
    live: LiveContext, view: ViewState, track: SeriesTrack, first: pd.Timestamp | None
) -> pd.DataFrame | None:
    """The fills of the view's account in its symbol on bars from ``first`` on (None: no
    executions layer)."""
    if not view.executions or not view.symbol:
        return None
    return live.tracks.executions(view.executions, view.symbol, first)


def build_chart(live: LiveContext, view: ViewState) -> tuple[go.Figure, dict[str, Any]]:
    """The full figure for the view and the tab's chart state."""
    if not view.symbol or not view.timeframe:
        raise PreventUpdate
    requests, strategies = view.requests(), view.strategy_objects()
    track = live.tracks.sync(view.symbol, view.timeframe)
    tv = track.view(requests, strategies, last=live.bars)
    theme = THEMES[view.theme]
    first = tv.candles.index[0] if len(tv.candles) else None
    fills = executions_from(live, view, track, first)
    data = chart_data(track, tv, view, strategies, executions=fills)
    composed = compose(data, chart_layers(view, requests, strategies), theme)
    figure = composed.figure
    last = tv.candles.index[-1] if len(tv.candles) else None
    state = _chart_state(view, tv.timeframe, last, len(tv.candles), tv.state)
    state["w"] = live.bars  # the window the browser trims the chart back to
    state["pe"] = track.panel_epoch()
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


def view_chart(
    live: LiveContext, view: ViewState, relayout: dict | None = None, *, zoomed: bool = False
) -> tuple[go.Figure, dict[str, Any]]:
    """The figure and chart state after a view change, or after a zoom or pan (``zoomed``,
    with the chart's ``relayoutData``): the whole figure, or the level-of-detail view
    re-aggregated over the new x range. PreventUpdate where nothing is to be redrawn."""
    try:
        if view.lod:
            x_range = None
            if zoomed:
                # a zoom or pan re-aggregates over the new range; a reset, over everything
                x_range = _x_range(relayout)
                if x_range is None and not (relayout or {}).get("xaxis.autorange"):
                    raise PreventUpdate
            return build_lod_chart(live, view, x_range)
        if zoomed:
            raise PreventUpdate  # zooming a live chart is handled in the browser
        return build_chart(live, view)
    except UnknownSeriesError:
        raise PreventUpdate from None  # the timeframe list for the new symbol is on its way


def _x_range(relayout: dict | None) -> tuple[Any, Any] | None:
    """The x range of a zoom or pan (None for anything else, e.g. an autoscale)."""
    if not relayout:
        return None
    if "xaxis.range[0]" in relayout:
        return relayout["xaxis.range[0]"], relayout["xaxis.range[1]"]
    if "xaxis.range" in relayout:
        return tuple(relayout["xaxis.range"][:2])  # type: ignore[return-value]
    return None


def live_tick(
    live: LiveContext,
    chart_state: dict[str, Any] | None,
    view: ViewState,
    *,
    building: bool = False,
) -> tuple[Any, Any, Any]:
    """What one interval tick sends: (figure, delta, chart state).

    Normally only the delta travels: every bar closed after the last one this tab has applied,
    the forming bar, the layers' new points and the feed status. The browser applies it and
    records what it applied in the chart state (assets/chart_view.js), so a delta lost or
    applied late is made good by the next one. The whole figure is rebuilt only when the
    tab's chart is not the selected one or when a replay started over: never for the chart's
    size (past its window plus a tenth the browser drops the oldest bars itself, the window
    being ``w`` in the chart state: assets/chart_view.js, trimOldest); nothing before the
    tab's first figure arrived (no chart state), nor while the tab's view build is running
    (``building``: that build sends the figure; a tick building it too would send a second
    ~1 MB figure of the same view).
    """
    if not view.symbol or not view.timeframe:
        raise PreventUpdate
    if view.lod:
        raise PreventUpdate  # the whole-history view is not live-patched
    if not chart_state:
        # the tab's first figure is on its way (the view's build, which writes the chart
        # state): built here too, it would be built twice, maybe of a view the URL replaces
        raise PreventUpdate
    tf = Timeframe.parse(view.timeframe)
    if chart_state["k"] != chart_key(view.symbol, tf) or chart_state.get("cfg") != layer_config(
        view
    ):
        if building:
            raise PreventUpdate
        figure, new_state = build_chart(live, view)
        return figure, no_update, new_state
    state = live.market.state(view.symbol)
    if state.version == chart_state["v"]:
        raise PreventUpdate  # the feed has not moved since this tab's last answer
    last_ms = chart_state["last"]
    since = None if last_ms is None else pd.Timestamp(last_ms, unit="ms", tz="UTC")
    track = live.tracks.sync(view.symbol, tf)
    with track.lock:  # one moment of the track: its history, forming bar and version
        if since is None or (track.last_ts is not None and track.last_ts < since):
            figure, new_state = build_chart(live, view)  # the replay started over
            return figure, no_update, new_state
        n, version = track.candles.n, track.version
        # every tab of this track at this feed version gets the same forming bar and status
        tail = track.shared(
            ("tick-tail", view.show_forming, version), lambda: _tail(track, view, tf)
        )
        if track.position_after(since) == n:
            # only the forming bar moved: the layers change when a candle closes
            return (
                no_update,
                {"k": chart_key(view.symbol, tf), "c": [], "last": None, **tail},
                no_update,
            )
        # the bars closed after this tab's last one, with the layers' new points: computed
        # once per (layers, last bar held, history length) for every tab showing them
        # a tab holds at most twice its window (the browser trims it back: past a tenth more
        # while following the newest bar, twice while zoomed away): the executions layer's
        # fills are bounded to those bars
        held = min(n, 2 * live.bars)
        first = track.frame(n - held, n - held + 1).index[0] if held else None
        closed = track.shared(
            ("tick-closed", chart_state.get("cfg"), last_ms, n),
            lambda: _closed_delta(
                track, view, tf, since, chart_state.get("ti", {}),
                executions_from(live, view, track, first),
            ),
        )  # fmt: skip
    return no_update, {**closed, **tail}, no_update


def _tail(track: SeriesTrack, view: ViewState, tf: Timeframe) -> dict[str, Any]:
    """The forming bar (``f``), the feed status and the panel epoch of a tick (under the
    track's lock)."""
    forming = track.forming if view.show_forming else None
    f = forming_row(forming, tf)
    return {"f": f, **_status(track.state), "pe": track.panel_epoch()}  # type: ignore[arg-type]


def _closed_delta(
    track: SeriesTrack,
    view: ViewState,
    tf: Timeframe,
    since: pd.Timestamp,
    ti: dict,
    executions: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The closed bars after ``since`` and the layers' points on them (under the track's lock:
    what every tab holding the same layers and the same last bar is sent)."""
    requests, strategies = view.requests(), view.strategy_objects()
    start = track.position_after(since)
    quiet = frozenset(strategy_key(s) for s in strategies if not track.fired(s, start))
    active = [s for s in strategies if strategy_key(s) not in quiet]
    tv = track.view(requests, active, since=since)
    changes = candle_delta(tv.candles, None, symbol=view.symbol or "", timeframe=tf)
    del changes["f"]  # the tail's, per feed version
    data = chart_data(
        track, tv, view, strategies, window_start=since, quiet=quiet, executions=executions
    )
    layers = chart_layers(view, requests, strategies)
    extra = compose_delta(data, layers, since, ti, THEMES[view.theme])
    changes.update({k: v for k, v in extra.items() if v})
    return changes


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
    status: dict[str, Any] = {"v": state.version, "st": state.status, "fk": state.feed_kind}
    if state.error:
        status["err"] = state.error.splitlines()[0][:300]  # one line, never an SQL statement
    if state.delayed_since is not None:  # since when (ms), how many candles wait to be stored
        status["ds"] = timestamp_ms(pd.Timestamp(state.delayed_since))
        status["bl"] = state.backlog
    return status


def _ms(value: pd.Timestamp | None) -> int | None:
    return None if value is None else timestamp_ms(value)
