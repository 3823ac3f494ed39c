"""Layered charts: each layer turns chart data into traces; :func:`compose` stacks them.

>>> data = ChartData("SP500", Timeframe.parse("1d"), candles, None,
...                  indicators={}, strategies={"ema": StrategyView("ema(12,26)", 0, result)})
>>> chart = compose(data, [CandlesLayer(), IndicatorLayer([request("rsi")]), StrategySignalLayer()])
>>> chart.panels, chart.trace_index["candles:closed"]
(('price', 'volume', 'rsi(timeperiod=14)'), 0)
>>> compose_delta(data_now, layers, since=last_bar_ts, trace_index=chart.trace_index)
{'e': [[5, {'x': ['2018-12-31'], 'y': [50.31]}], ...], 'r': [...]}

A layer has a ``kind``, the ``panels`` it needs, its ``traces`` (each with a stable id), and for
a live tick what to ``extend`` (rows after the last one a tab holds) and to ``replace`` (e.g.
the forming bar's value). The candles layer always comes first, so traces 0-4 keep the meaning
:mod:`components.charts.candles` gives them (its ``candle_delta`` patches those). A new layer
type is one module with a ``@register_layer`` class, imported in ``layers/__init__.py``; one
drawing a few traces per strategy (signals, trades) subclasses :class:`StrategyLayer`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.charts import candles as candle_chart
from components.charts.candles import compact, x_labels
from components.charts.style import axis_style
from components.charts.theme import DARK, ChartTheme
from market.candles import Candle
from market.timeframes import Timeframe
from strategies.signals import SIGNAL_TYPES, StrategyResult

PRICE = "price"
VOLUME = "volume"
SUB_PANEL_HEIGHT = 0.18  # each sub-panel's share of the chart
SUB_PANELS_MAX = 0.55  # all sub-panels together, at most: the price keeps the rest with volume
VERTICAL_SPACING = 0.015
# between the rows of a chart with sub-panels: room for the tick labels at the edges of two
# neighbouring y axes (volume's "0", a fitted panel's top label), which would touch at 0.015
SUB_PANEL_SPACING = 0.035

Columns = dict[str, list]  # plotly attribute path ("x", "y", "marker.color") -> values


@dataclass(frozen=True)
class StrategyView:
    """One strategy as the chart shows it: its signals and trades, and the trader's filters.

    >>> StrategyView("ema_crossover(fast=12, slow=26)", 0, result, trades,
    ...              signal_types=frozenset({"entry_long"}), min_confidence=0.5)

    ``color``: an index into the theme's ``strategy_palette`` (which also picks the marker
    symbols) or a colour string. ``label`` is unique on a chart: trace ids use it.
    """

    label: str
    color: int | str = 0
    result: StrategyResult | None = field(default=None, compare=False)
    trades: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    signal_types: frozenset[str] = frozenset(SIGNAL_TYPES)
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        types = frozenset(self.signal_types)
        unknown = sorted(types - set(SIGNAL_TYPES))
        if unknown:
            raise ValueError(
                f"signal_types {unknown} are invalid: expected some of {', '.join(SIGNAL_TYPES)}"
            )
        object.__setattr__(self, "signal_types", types)
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence={self.min_confidence!r} is invalid: expected 0 to 1")

    def style(self, theme: ChartTheme, position: int) -> tuple[str, tuple[str, str]]:
        """(colour, (entry stem, exit symbol)) on `theme`; `position` is its place on the chart.

        >>> StrategyView("a", 1).style(DARK, 0)
        ('#ffa726', ('arrow', 'cross'))
        """
        index = self.color if isinstance(self.color, int) else position
        color = (
            theme.strategy_palette[index % len(theme.strategy_palette)]
            if isinstance(self.color, int)
            else self.color
        )
        return color, theme.marker_symbols[index % len(theme.marker_symbols)]


@dataclass(frozen=True)
class ChartData:
    """Everything a chart shows; layers only read it.

    ``timeframe``: a Timeframe (or its label). ``candles``: the closed candles (a candle
    frame). ``indicators``: IndicatorRequest.key -> a frame of its outputs (columns named by
    output) on ``candles.index``, NaN in the warm-up. ``strategies``: any key ->
    :class:`StrategyView`. ``forming_indicators`` (optional): IndicatorRequest.key ->
    {output: value} for the forming bar (an incremental state's ``peek``), drawn as a dot.
    ``executions`` (optional): account name -> its fills (the executions layer's frame).

    For :func:`compose_delta` the frames need only hold the rows after ``since``: every
    trace's values depend on their own row alone (an indicator missing from ``indicators`` is
    computed from ``candles``, which then must be the whole history).
    """

    symbol: str
    timeframe: Timeframe
    candles: pd.DataFrame = field(compare=False, repr=False)
    forming: Candle | None = None
    indicators: Mapping[str, pd.DataFrame] = field(default_factory=dict, compare=False)
    strategies: Mapping[str, StrategyView] = field(default_factory=dict)
    show_forming: bool = True
    forming_indicators: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    executions: Mapping[str, pd.DataFrame] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timeframe", Timeframe.parse(self.timeframe))

    @property
    def shown_forming(self) -> Candle | None:
        """The forming candle if the chart shows it, else None."""
        return self.forming if self.show_forming else None

    def after(self, since: pd.Timestamp | None) -> int:
        """Position of the first closed candle strictly after `since` (0 when None)."""
        return 0 if since is None else int(self.candles.index.searchsorted(since, side="right"))

    def x(self, index: pd.DatetimeIndex) -> list[str]:
        """The chart's x values for `index` (see :func:`components.charts.candles.x_labels`)."""
        return x_labels(pd.DatetimeIndex(index), self.timeframe)


@dataclass(frozen=True)
class Panel:
    """One row of the chart.

    >>> Panel("rsi(timeperiod=14)", title="RSI 14", levels=(30.0, 70.0), range=(0.0, 100.0))

    ``height``: for ``price`` and ``volume`` their weights in the space the sub-panels leave;
    for a sub-panel, its share of the whole chart. ``title`` is drawn small at its top left.
    """

    name: str
    height: float = SUB_PANEL_HEIGHT
    title: str = ""
    levels: tuple[float, ...] = ()
    range: tuple[float, float] | None = None
    tickformat: str = ""


@dataclass(frozen=True)
class LayerTrace:
    """A trace, its stable id and its panel.

    >>> LayerTrace("ind:rsi(timeperiod=14):rsi", "rsi(timeperiod=14)", go.Scatter(x=[], y=[]))
    """

    id: str
    panel: str
    # a plotly trace (go.Scatter, go.Bar, go.Candlestick); the layers build theirs with
    # _validate=False, as compose validates every trace when it adds it (twice costs 2x)
    trace: Any


@runtime_checkable
class Layer(Protocol):
    kind: ClassVar[str]

    def panels(self, data: ChartData) -> list[Panel]:
        """The panels it adds: price and volume for the candles layer, else sub-panels (one per
        oscillator); a layer drawing over the price adds none."""
        ...

    def traces(self, data: ChartData, theme: ChartTheme) -> list[LayerTrace]:
        """Every trace, each with a stable id, in a fixed order (present even when empty)."""
        ...

    def extend(
        self, data: ChartData, since: pd.Timestamp | None, theme: ChartTheme
    ) -> dict[str, Columns]:
        """Per trace id, the values to append for rows strictly after `since` (None: all)."""
        ...

    def replace(self, data: ChartData, theme: ChartTheme) -> dict[str, Columns]:
        """Per trace id, the values that replace the trace's own on every tick."""
        ...


class StrategyLayer(ABC):
    """A layer drawing a fixed set of traces per strategy over the price: one per strategy in
    ``data.strategies`` and entry of ``kinds``, in that order, empty ones included (a live
    extend always has a target); no panel of its own, nothing replaced on a tick.

    Subclasses set ``kinds`` and give ``trace_id(view, kind)``, ``columns(data, view, kind,
    since)`` (the values after ``since``; None: all) and ``trace(view, position, kind, columns,
    theme)`` (the plotly trace of those values; ``position``: the strategy's place on the chart).
    """

    kinds: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def trace_id(self, view: StrategyView, kind: str) -> str:
        """See the class docstring."""

    @abstractmethod
    def columns(
        self, data: ChartData, view: StrategyView, kind: str, since: pd.Timestamp | None
    ) -> Columns:
        """See the class docstring."""

    @abstractmethod
    def trace(
        self, view: StrategyView, position: int, kind: str, columns: Columns, theme: ChartTheme
    ) -> Any:
        """See the class docstring."""

    def panels(self, data: ChartData) -> list[Panel]:
        return []

    def traces(self, data: ChartData, theme: ChartTheme) -> list[LayerTrace]:
        return [
            LayerTrace(
                self.trace_id(view, kind),
                PRICE,
                self.trace(view, position, kind, self.columns(data, view, kind, None), theme),
            )
            for position, view in enumerate(data.strategies.values())
            for kind in self.kinds
        ]

    def extend(
        self, data: ChartData, since: pd.Timestamp | None, theme: ChartTheme
    ) -> dict[str, Columns]:
        return {
            self.trace_id(view, kind): self.columns(data, view, kind, since)
            for view in data.strategies.values()
            for kind in self.kinds
        }

    def replace(self, data: ChartData, theme: ChartTheme) -> dict[str, Columns]:
        return {}


LAYER_TYPES: dict[str, type] = {}
L = TypeVar("L", bound=type)


def register_layer(cls: L) -> L:
    """Class decorator: ``LAYER_TYPES[cls.kind] = cls`` (a kind names one class only)."""
    kind = cls.kind
    if LAYER_TYPES.get(kind, cls) is not cls:
        raise ValueError(f"layer kind {kind!r} is already registered by {LAYER_TYPES[kind]}")
    LAYER_TYPES[kind] = cls
    return cls


def make_layer(kind: str, /, **options: Any) -> Layer:
    """A layer by kind: ``make_layer("indicators", requests=[request("rsi")])``."""
    try:
        cls = LAYER_TYPES[kind]
    except KeyError:
        known = ", ".join(sorted(LAYER_TYPES))
        raise KeyError(f"unknown layer kind {kind!r}; known: {known}") from None
    return cls(**options)


@dataclass(frozen=True)
class ComposedChart:
    """The figure, where each trace id sits in ``figure.data``, and the panels in row order."""

    figure: go.Figure
    trace_index: dict[str, int]
    panels: tuple[str, ...]


def ordered_layers(layers: Sequence[Layer]) -> list[Layer]:
    """The layers with the candles layer first (one is added when missing)."""
    candles = [layer for layer in layers if layer.kind == "candles"]
    if len(candles) > 1:
        raise ValueError("a chart has one candles layer")
    rest = [layer for layer in layers if layer.kind != "candles"]
    return [candles[0] if candles else LAYER_TYPES["candles"](), *rest]


def row_heights(panels: Sequence[Panel]) -> list[float]:
    """Row heights summing to 1: sub-panels their ``height`` each (together at most
    ``SUB_PANELS_MAX``), price and volume the rest by their weights.

    >>> row_heights([Panel("price", 0.78), Panel("volume", 0.22)])
    [0.78, 0.22]
    """
    main, subs = panels[:2], panels[2:]
    wanted = sum(p.height for p in subs)
    scale = min(1.0, SUB_PANELS_MAX / wanted) if wanted > 0 else 1.0
    sub_heights = [p.height * scale for p in subs]
    rest = 1.0 - sum(sub_heights)
    weight = sum(p.height for p in main)
    return [rest * p.height / weight for p in main] + sub_heights


def _axis_names(row: int) -> tuple[str, str]:
    suffix = "" if row == 1 else str(row)
    return f"x{suffix}", f"y{suffix}"


def compose(
    data: ChartData,
    layers: Sequence[Layer],
    theme: ChartTheme = DARK,
    *,
    view_bars: int = 150,
) -> ComposedChart:
    """The layered figure: price, volume, then one row per sub-panel in layer order.

    >>> chart = compose(data, [CandlesLayer(), IndicatorLayer([request("macd")])], LIGHT)
    >>> chart.figure.data[chart.trace_index["ind:macd(fast=12,signal=9,slow=26):hist"]].type
    'bar'

    With the candles layer alone it is exactly :func:`components.charts.candles.candle_figure`.
    The view opens on the last `view_bars` bars; sub-panels without a fixed range are fitted to
    the values in view.
    """
    layers = ordered_layers(layers)
    panels: dict[str, Panel] = {}
    for layer in layers:
        for panel in layer.panels(data):
            panels.setdefault(panel.name, panel)
    names = list(panels)
    if names[:2] != [PRICE, VOLUME]:
        raise ValueError(f"the candles layer must give the price and volume panels, not {names}")
    row = {name: i + 1 for i, name in enumerate(names)}
    fig = make_subplots(
        rows=len(names),
        cols=1,
        shared_xaxes=True,
        row_heights=row_heights(list(panels.values())),
        vertical_spacing=VERTICAL_SPACING if len(names) == 2 else SUB_PANEL_SPACING,
    )
    traces: list[LayerTrace] = [t for layer in layers for t in layer.traces(data, theme)]
    trace_index: dict[str, int] = {}
    for i, layer_trace in enumerate(traces):
        if layer_trace.id in trace_index:
            raise ValueError(f"two traces have the id {layer_trace.id!r}")
        if layer_trace.panel not in row:
            raise ValueError(f"trace {layer_trace.id!r} is in no panel: {layer_trace.panel!r}")
        trace_index[layer_trace.id] = i
    fig.add_traces(
        [t.trace for t in traces], rows=[row[t.panel] for t in traces], cols=[1] * len(traces)
    )
    # the candle chart's own styling and view fit: alone, the candles layer is candle_figure
    candle_chart._style(
        fig, data.candles, data.shown_forming, data.symbol, data.timeframe, view_bars, theme
    )
    axis = axis_style(theme, spikes=True)
    first_x = _first_view_x(data, view_bars)
    _fit_price_overlays(fig, data, view_bars, [t for t in traces if t.panel == PRICE], first_x)
    fitted = []
    for name in names[2:]:
        _style_sub_panel(fig, panels[name], row[name], traces, first_x, axis, theme)
        if not panels[name].range:
            # the browser fits these to the bars in view as the chart moves (chart_view.js)
            bars = any(t.trace.type == "bar" for t in traces if t.panel == name)
            levels = [*panels[name].levels, *([0.0] if bars else [])]
            fitted.append({"axis": f"yaxis{row[name]}", "levels": levels})
    if fitted:
        fig.update_layout(meta={"fit": fitted})
    return ComposedChart(fig, trace_index, tuple(names))


def _fit_price_overlays(
    fig: go.Figure,
    data: ChartData,
    view_bars: int,
    traces: Sequence[LayerTrace],
    first_x: str | None,
) -> None:
    """Fit the price range to the bars in view and the overlays over them (bands, averages,
    markers, trade segments): the browser fits the same way as the chart moves (chart_view.js,
    priceExtent), so a new figure is drawn once, not drawn and refitted."""
    span = candle_chart.price_span(data.candles, data.shown_forming, view_bars)
    overlays = [
        t for t in traces if t.trace.type != "candlestick" and t.trace.visible != "legendonly"
    ]
    values = _values_in_view(overlays, first_x)
    if span is None or not values:
        return
    low, high = min(span[0], min(values)), max(span[1], max(values))
    fig.update_yaxes(range=candle_chart.padded(low, high), row=1, col=1)


def _values_in_view(traces: Sequence[LayerTrace], first_x: str | None) -> list[float]:
    """The finite y values of ``traces`` at x >= ``first_x`` (all when None). x is ascending
    except in trade segments (entry, exit, None groups), which are scanned whole."""
    values: list[float] = []
    for layer_trace in traces:
        trace = layer_trace.trace
        xs, ys = trace.x or (), trace.y or ()
        ascending = not str(trace.legendgroup or "").startswith("trade:")
        start = 0 if first_x is None or not ascending else bisect_left(xs, first_x)
        values.extend(
            y for x, y in zip(xs[start:], ys[start:], strict=False)
            if y is not None and x is not None and (first_x is None or x >= first_x)
            and np.isfinite(y)
        )  # fmt: skip
    return values


def _first_view_x(data: ChartData, view_bars: int) -> str | None:
    view = data.candles.index[-view_bars:]
    if len(view):
        return data.x(view[:1])[0]
    forming = data.shown_forming
    return data.x(pd.DatetimeIndex([forming.ts]))[0] if forming is not None else None


def _style_sub_panel(
    fig: go.Figure,
    panel: Panel,
    row: int,
    traces: Sequence[LayerTrace],
    first_x: str | None,
    axis: dict[str, Any],
    theme: ChartTheme,
) -> None:
    xref, yref = _axis_names(row)
    style = {**axis, "side": "right", "nticks": 4}
    if panel.tickformat:
        style["tickformat"] = panel.tickformat
    if panel.range and panel.levels:
        # a fixed range (RSI 0-100) is labelled at its levels, not at its edges, where the
        # labels would run into the neighbouring panels'
        style["tickvals"] = list(panel.levels)
    span = panel.range or _fit(panel, [t for t in traces if t.panel == panel.name], first_x)
    if span is not None:
        style["range"] = list(span)
    fig.update_yaxes(**style, row=row, col=1)
    line = {"color": theme.level, "width": 1, "dash": "dot"}
    for level in panel.levels:
        fig.add_shape(
            type="line",
            xref=f"{xref} domain",
            x0=0,
            x1=1,
            yref=yref,
            y0=level,
            y1=level,
            line=line,
            layer="below",
        )
    # the rule above the panel, and its title in the top-left corner
    fig.add_shape(
        type="line",
        xref="paper",
        x0=0,
        x1=1,
        yref=f"{yref} domain",
        y0=1,
        y1=1,
        line={"color": theme.panel_line, "width": 1},
    )
    if panel.title:
        fig.add_annotation(
            text=panel.title,
            xref="paper",
            x=0,
            yref=f"{yref} domain",
            y=1,
            xanchor="left",
            yanchor="top",
            showarrow=False,
            font={"size": 10, "color": theme.text},
        )


def _fit(
    panel: Panel, traces: Sequence[LayerTrace], first_x: str | None
) -> tuple[float, float] | None:
    """The panel's values in view (x >= first_x; bars from 0) and its levels, padded 6%."""
    values = [*panel.levels, *_values_in_view(traces, first_x)]
    for layer_trace in traces:
        trace = layer_trace.trace
        xs = trace.x or ()
        start = 0 if first_x is None else bisect_left(xs, first_x)
        if trace.type == "bar" and len(trace.y or ()) > start:
            values.append(0.0)
    if not values:
        return None
    low, high = candle_chart.padded(min(values), max(values))
    return low, high


def compose_delta(
    data: ChartData,
    layers: Sequence[Layer],
    since: pd.Timestamp | None,
    trace_index: Mapping[str, int],
    theme: ChartTheme = DARK,
    *,
    include_candles: bool = False,
) -> dict[str, list]:
    """A live tick's changes to a composed figure, by trace index.

    >>> compose_delta(data, layers, pd.Timestamp("2018-12-28", tz="UTC"), chart.trace_index)
    {'e': [[5, {'x': ['2018-12-31'], 'y': [50.31]}]], 'r': [[6, {'x': [], 'y': []}]]}

    ``e``: values to append (the browser extends ``["data", i, *path.split(".")]``), only
    for traces that gain rows; ``r``: values that replace the trace's own. The candles layer
    is left out (``candle_delta`` patches traces 0-4) unless `include_candles`. A trace id
    missing from `trace_index` raises KeyError: the figure is stale, rebuild it.
    """
    extend: list[list] = []
    replace: list[list] = []
    for layer in ordered_layers(layers):
        if layer.kind == "candles" and not include_candles:
            continue
        for trace_id, columns in layer.extend(data, since, theme).items():
            if any(len(values) for values in columns.values()):
                extend.append([_index(trace_index, trace_id), columns])
        for trace_id, columns in layer.replace(data, theme).items():
            replace.append([_index(trace_index, trace_id), columns])
    extend.sort(key=lambda item: item[0])
    replace.sort(key=lambda item: item[0])
    return {"e": extend, "r": replace}


def _index(trace_index: Mapping[str, int], trace_id: str) -> int:
    try:
        return trace_index[trace_id]
    except KeyError:
        raise KeyError(f"trace {trace_id!r} is not in the figure: rebuild it") from None


def apply_layer_delta(figure: dict, delta: Mapping[str, list]) -> dict:
    """The client rule for :func:`compose_delta`, on a figure dict (what the browser does).

    >>> apply_layer_delta(chart.figure.to_plotly_json(), compose_delta(...))["data"][5]["y"][-1]
    50.31
    """
    for i, columns in delta["e"]:
        for path, values in columns.items():
            parent, key = _resolve(figure["data"][i], path)
            parent[key] = [*(parent.get(key) or ()), *values]
    for i, columns in delta["r"]:
        for path, values in columns.items():
            parent, key = _resolve(figure["data"][i], path)
            parent[key] = list(values)
    return figure


def _resolve(trace: dict, path: str) -> tuple[dict, str]:
    *parents, key = path.split(".")
    node = trace
    for name in parents:
        node = node.setdefault(name, {})
    return node, key


def finite_rows(index: pd.DatetimeIndex, values: np.ndarray) -> tuple[pd.DatetimeIndex, list]:
    """The rows of `values` that are finite (warm-up NaN dropped), as (index, compact values)."""
    keep = np.isfinite(values)
    return index[keep], compact(values[keep])


def clean(values: np.ndarray | Sequence[float]) -> list[float | None]:
    """:func:`compact` values with NaN and inf as None (JSON null)."""
    array = np.asarray(values, dtype=np.float64)
    out: list[float | None] = list(compact(array))
    for i in np.flatnonzero(~np.isfinite(array)).tolist():
        out[i] = None
    return out
