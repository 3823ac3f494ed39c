"""Layered charts on real data: the bundled S&P 500 daily bars (2011-2018), the EMA and SMA
crossover strategies and a backtest of the first. Lines are checked against TA-Lib, markers
against the strategies' own signals, segments against the trade list, and a figure patched
with a live delta against the figure built from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import talib

from analytics.backtest import run_backtest
from components.charts.candles import candle_figure, compact, x_labels
from components.charts.layers import (
    LAYER_TYPES,
    PRICE,
    CandlesLayer,
    ChartData,
    ComposedChart,
    IndicatorLayer,
    Layer,
    LayerTrace,
    Panel,
    StrategySignalLayer,
    StrategyView,
    TradeLayer,
    apply_layer_delta,
    compose,
    compose_delta,
    compute_indicators,
    indicator_label,
    make_layer,
    register_layer,
    row_heights,
)
from components.charts.layers.candles import TRACE_IDS
from components.charts.layers.signals import marker_symbol
from components.charts.theme import DARK, LIGHT, THEMES, ChartTheme
from indicators.registry import request
from market.candles import Candle
from market.sample_data import load_sample
from market.timeframes import Timeframe
from strategies.registry import create
from strategies.signals import SIGNAL_TYPES, StrategyResult

SYMBOL = "SP500"
TF = Timeframe.parse("1d")
SMA, EMA, WMA = (request(n, timeperiod=p) for n, p in (("sma", 50), ("ema", 20), ("wma", 10)))
BB, DC, VWAP = request("bbands"), request("donchian"), request("vwap")
RSI, MACD, STOCH, ATR, OBV = (request(n) for n in ("rsi", "macd", "stoch", "atr", "obv"))
REQUESTS = (SMA, EMA, WMA, BB, DC, VWAP, RSI, MACD, STOCH, ATR, OBV)
EMA_LABEL = "ema_crossover(fast=12, slow=26)"
SMA_LABEL = "sma_crossover(fast=10, slow=30)"
LAYERS = (CandlesLayer(), IndicatorLayer(REQUESTS), StrategySignalLayer(), TradeLayer())


@dataclass(frozen=True)
class World:
    candles: pd.DataFrame
    ema: StrategyResult
    sma: StrategyResult
    trades: pd.DataFrame
    data: ChartData


def chart_data(
    candles: pd.DataFrame, trades: pd.DataFrame | None = None, **options: Any
) -> ChartData:
    """ChartData for `candles`, everything computed on them (what a tab would be sent)."""
    ema = create("ema_crossover", direction="both").generate(candles, symbol=SYMBOL, timeframe="1d")
    sma = create("sma_crossover").generate(candles, symbol=SYMBOL, timeframe="1d")
    if trades is None:
        trades = run_backtest(candles, ema).trades
    strategies = {
        "ema": StrategyView(EMA_LABEL, 0, ema, trades),
        "sma": StrategyView(SMA_LABEL, 1, sma, None),
    }
    return ChartData(
        SYMBOL, TF, candles, None, compute_indicators(candles, REQUESTS), strategies, **options
    )


@pytest.fixture(scope="module")
def world() -> World:
    candles = load_sample(SYMBOL).loc["2011":]
    data = chart_data(candles)
    views = data.strategies
    return World(candles, views["ema"].result, views["sma"].result, views["ema"].trades, data)


@pytest.fixture(scope="module")
def chart(world: World) -> ComposedChart:
    return compose(world.data, LAYERS)


def trace_of(chart: ComposedChart, trace_id: str) -> Any:
    return chart.figure.data[chart.trace_index[trace_id]]


def forming_candle(candles: pd.DataFrame) -> Candle:
    close = float(candles["close"].iloc[-1])
    return Candle(candles.index[-1] + TF.delta, close, close + 9, close - 4, close + 3, 2.5e9)


# -- the candles layer ------------------------------------------------------------------------


@pytest.mark.parametrize("with_forming", [False, True], ids=["no-forming", "forming"])
def test_candles_alone_compose_exactly_candle_figure(world: World, with_forming: bool) -> None:
    forming = forming_candle(world.candles) if with_forming else None
    expected = candle_figure(world.candles, forming, symbol=SYMBOL, timeframe=TF).to_plotly_json()
    data = ChartData(SYMBOL, TF, world.candles, forming)
    chart = compose(data, [CandlesLayer()])
    assert chart.figure.to_plotly_json() == expected
    assert compose(data, []).figure.to_plotly_json() == expected  # the candles layer is implied
    assert chart.panels == ("price", "volume")
    assert chart.trace_index == {trace_id: i for i, trace_id in enumerate(TRACE_IDS)}


def test_hidden_forming_bar_keeps_its_traces_empty(world: World) -> None:
    data = ChartData(SYMBOL, TF, world.candles, forming_candle(world.candles), show_forming=False)
    chart = compose(data, [CandlesLayer()])
    expected = candle_figure(world.candles, None, symbol=SYMBOL, timeframe=TF)
    assert chart.figure.to_plotly_json() == expected.to_plotly_json()
    assert len(chart.figure.data) == 5
    assert not chart.figure.data[1].x
    assert not chart.figure.data[4].x
    assert CandlesLayer().replace(data, DARK)["candles:forming"]["x"] == []


def test_candles_layer_always_comes_first(world: World) -> None:
    chart = compose(world.data, [IndicatorLayer([RSI]), CandlesLayer()])
    assert [chart.trace_index[t] for t in TRACE_IDS] == [0, 1, 2, 3, 4]
    assert chart.panels == ("price", "volume", RSI.key)
    with pytest.raises(ValueError, match="one candles layer"):
        compose(world.data, [CandlesLayer(), CandlesLayer()])


# -- composition -------------------------------------------------------------------------------


def test_trace_ids_are_unique_and_trace_index_is_the_figure_order(
    world: World, chart: ComposedChart
) -> None:
    traces = [t for layer in LAYERS for t in layer.traces(world.data, DARK)]
    ids = [t.id for t in traces]
    assert len(set(ids)) == len(ids) == len(chart.figure.data)
    assert chart.trace_index == {trace_id: i for i, trace_id in enumerate(ids)}
    for layer_trace, trace in zip(traces, chart.figure.data, strict=True):
        assert trace.type == layer_trace.trace.type
        assert list(trace.x or ()) == list(layer_trace.trace.x or ())
    assert ids[:5] == list(TRACE_IDS)
    assert trace_of(chart, f"ind:{MACD.key}:hist").type == "bar"
    assert trace_of(chart, f"sig:{EMA_LABEL}:exit_short").mode == "markers"
    # every figure array is a plain list of compact values (a live patch appends to them)
    closed = chart.figure.to_plotly_json()["data"][0]
    assert type(closed["close"]) is list
    assert closed["close"] == compact(world.candles["close"])


def test_sub_panels_rows_levels_ranges_and_titles(world: World, chart: ComposedChart) -> None:
    assert chart.panels == ("price", "volume", RSI.key, MACD.key, STOCH.key, ATR.key, OBV.key)
    layout = chart.figure.layout
    # rows: price, volume, then the sub-panels in request order; shared x axes
    for row, name in enumerate(chart.panels, start=1):
        suffix = "" if row == 1 else str(row)
        for trace_id, i in chart.trace_index.items():
            panel = name if name not in ("price", "volume") else None
            if panel and trace_id.startswith(f"ind:{panel}:"):
                assert chart.figure.data[i].yaxis == f"y{suffix}"
        assert layout[f"yaxis{suffix}"].side == "right"
        if row < len(chart.panels):
            assert layout[f"xaxis{suffix}"].matches == f"x{len(chart.panels)}"
    # reference levels: shapes per panel, not per-bar data
    levels: dict[str, list[float]] = {}
    for shape in layout.shapes:
        if shape.line.dash == "dot":
            assert shape.y0 == shape.y1
            assert shape.xref == shape.yref.replace("y", "x") + " domain"
            levels.setdefault(shape.yref, []).append(shape.y0)
    assert levels == {"y3": [30.0, 70.0], "y4": [0.0], "y5": [20.0, 80.0]}
    assert layout.yaxis3.range == (0.0, 100.0)
    assert layout.yaxis5.range == (0.0, 100.0)
    # MACD and ATR fitted to the values in view (the last 150 bars)
    atr = talib.ATR(*(world.candles[c].to_numpy() for c in ("high", "low", "close")), 14)[-150:]
    low, high = layout.yaxis6.range
    assert low < atr.min() < atr.max() < high
    assert high - low == pytest.approx((atr.max() - atr.min()) * 1.12, rel=1e-6)
    titles = {a.yref: a.text for a in layout.annotations}
    assert titles == {
        "y3 domain": "RSI 14",
        "y4 domain": "MACD 12,26,9",
        "y5 domain": "Stoch 5,3,3",
        "y6 domain": "ATR 14",
        "y7 domain": "OBV",
    }
    assert all(a.x == 0 and a.xanchor == "left" and a.yanchor == "top" for a in layout.annotations)


def test_row_heights_price_gets_most_and_sub_panels_about_18_percent() -> None:
    main = [Panel("price", 0.78), Panel("volume", 0.22)]
    assert row_heights(main) == [0.78, 0.22]
    for n in (1, 2, 3):
        heights = row_heights(main + [Panel(f"p{i}") for i in range(n)])
        assert sum(heights) == pytest.approx(1.0)
        assert heights[2:] == pytest.approx([0.18] * n)
        assert heights[0] == max(heights)
        assert heights[0] / heights[1] == pytest.approx(0.78 / 0.22)
    many = row_heights(main + [Panel(f"p{i}") for i in range(6)])  # capped: price keeps 45%
    assert sum(many[2:]) == pytest.approx(0.55)
    assert many[0] == max(many)


def test_compose_rejects_duplicate_ids_and_unknown_panels(world: World) -> None:
    twice = {"a": StrategyView("same"), "b": StrategyView("same")}
    with pytest.raises(ValueError, match="two traces have the id"):
        compose(replace(world.data, strategies=twice), [StrategySignalLayer()])

    @dataclass(frozen=True)
    class Lost:
        kind: ClassVar[str] = "lost"

        def panels(self, data: ChartData) -> list[Panel]:
            return []

        def traces(self, data: ChartData, theme: ChartTheme) -> list[LayerTrace]:
            return [LayerTrace("lost:1", "nowhere", go.Scatter(x=[], y=[]))]

    with pytest.raises(ValueError, match="nowhere"):
        compose(world.data, [Lost()])


# -- indicators --------------------------------------------------------------------------------


def talib_values(candles: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    o, h, lo, c, v = (candles[col].to_numpy() for col in ("open", "high", "low", "close", "volume"))
    del o
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    k, d = talib.STOCH(h, lo, c, 5, 3, 0, 3, 0)
    return {
        SMA.key: {"sma": talib.SMA(c, 50)},
        EMA.key: {"ema": talib.EMA(c, 20)},
        WMA.key: {"wma": talib.WMA(c, 10)},
        BB.key: {"upper": upper, "middle": middle, "lower": lower},
        DC.key: {"upper": talib.MAX(h, 20), "middle": talib.MIDPRICE(h, lo, 20)},
        RSI.key: {"rsi": talib.RSI(c, 14)},
        MACD.key: {"macd": macd, "signal": signal, "hist": hist},
        STOCH.key: {"k": k, "d": d},
        ATR.key: {"atr": talib.ATR(h, lo, c, 14)},
        OBV.key: {"obv": talib.OBV(c, v)},
    }


def test_indicator_lines_equal_talib(world: World, chart: ComposedChart) -> None:
    checked = 0
    for key, outputs in talib_values(world.candles).items():
        for output, values in outputs.items():
            trace = trace_of(chart, f"ind:{key}:{output}")
            keep = np.isfinite(values)
            assert 0 < keep.sum() < len(values) or key == OBV.key  # a warm-up, left out
            assert list(trace.y) == compact(values[keep])
            assert list(trace.x) == x_labels(world.candles.index[keep], TF)
            checked += 1
    assert checked == 16
    # donchian's lower band and the session VWAP: the values the specs compute
    lower = talib.MIN(world.candles["low"].to_numpy(), 20)
    assert list(trace_of(chart, f"ind:{DC.key}:lower").y) == compact(lower[np.isfinite(lower)])
    vwap = VWAP.spec.compute(world.candles, VWAP.param_dict)["vwap"]
    assert list(trace_of(chart, f"ind:{VWAP.key}:vwap").y) == compact(vwap)


def test_macd_histogram_coloured_by_sign(chart: ComposedChart) -> None:
    hist = trace_of(chart, f"ind:{MACD.key}:hist")
    colors = list(hist.marker.color)
    assert len(colors) == len(hist.y)
    assert colors == [DARK.up if v >= 0 else DARK.down for v in hist.y]
    assert {DARK.up, DARK.down} == set(colors)


def test_overlays_on_price_with_names_colours_and_band_fill(chart: ComposedChart) -> None:
    data = chart.figure.data
    names = {}
    for req in (SMA, EMA, WMA, BB, DC, VWAP):
        ids = [t for t in chart.trace_index if t.startswith(f"ind:{req.key}:")]
        traces = [data[chart.trace_index[t]] for t in ids]
        assert all(t.yaxis == "y" for t in traces)
        assert [t.showlegend for t in traces] == [True] + [False] * (len(traces) - 1)
        names[req.key] = traces[0].name
    assert names == {
        SMA.key: "SMA 50",
        EMA.key: "EMA 20",
        WMA.key: "WMA 10",
        BB.key: "BB 20,2",
        DC.key: "DC 20",
        VWAP.key: "VWAP D",
    }
    # Bollinger: a translucent fill from the lower band up to the upper band drawn just before
    upper = chart.trace_index[f"ind:{BB.key}:upper"]
    lower = data[upper + 1]
    assert chart.trace_index[f"ind:{BB.key}:lower"] == upper + 1
    assert lower.fill == "tonexty"
    assert lower.fillcolor == "rgba(0,188,212,0.08)"  # the band colour (#00bcd4), translucent
    assert data[upper].fill is None
    # palette colours in order: the overlays from its start, the sub-panel lines too
    overlays = [f"ind:{r.key}:{r.spec.outputs[0]}" for r in (SMA, EMA, WMA, BB, DC, VWAP)]
    subs = [f"ind:{RSI.key}:rsi", f"ind:{MACD.key}:macd", f"ind:{MACD.key}:signal"]
    subs += [f"ind:{STOCH.key}:k", f"ind:{STOCH.key}:d", f"ind:{ATR.key}:atr", f"ind:{OBV.key}:obv"]
    for lines in (overlays, subs):
        colors = [trace_of(chart, t).line.color for t in lines]
        assert colors == list(DARK.line_palette[: len(lines)])
    band = [trace_of(chart, f"ind:{BB.key}:{o}").line.color for o in BB.spec.outputs]
    assert band == [DARK.line_palette[3]] * 3
    # sub-panel lines stay out of the legend: their panel titles name them
    assert trace_of(chart, f"ind:{RSI.key}:rsi").showlegend is False
    assert "%{y:.2f}" in trace_of(chart, f"ind:{RSI.key}:rsi").hovertemplate


def test_indicator_labels() -> None:
    assert indicator_label(request("bbands", nbdevup=2.5)) == "BB 20,2.5,2"
    assert indicator_label(request("rsi", timeframe="1h")) == "RSI 14 (1h)"
    assert indicator_label(request("obv")) == "OBV"
    assert indicator_label(request("macd", fast=8)) == "MACD 8,26,9"


def test_indicator_values_computed_when_not_supplied(world: World) -> None:
    bare = replace(world.data, indicators={})
    traces = {t.id: t.trace for t in IndicatorLayer([RSI]).traces(bare, DARK)}
    rsi = talib.RSI(world.candles["close"].to_numpy(), 14)
    assert list(traces[f"ind:{RSI.key}:rsi"].y) == compact(rsi[np.isfinite(rsi)])
    with pytest.raises(KeyError, match="another timeframe"):
        IndicatorLayer([request("rsi", timeframe="1w")]).traces(bare, DARK)


# -- strategy signals --------------------------------------------------------------------------


def expected_signals(view: StrategyView, signal_type: str) -> list:
    assert view.result is not None
    return [
        s
        for s in view.result.signals
        if s.signal_type == signal_type
        and s.signal_type in view.signal_types
        and s.confidence >= view.min_confidence
    ]


def test_signal_markers_are_the_strategies_signals(world: World, chart: ComposedChart) -> None:
    candles = world.candles
    for view in world.data.strategies.values():
        assert view.result is not None
        names = list(view.result.metadata_columns)
        for signal_type in SIGNAL_TYPES:
            trace = trace_of(chart, f"sig:{view.label}:{signal_type}")
            signals = expected_signals(view, signal_type)
            assert len(trace.x) == len(signals)
            stamps = pd.DatetimeIndex([s.timestamp for s in signals])
            assert list(trace.x) == x_labels(stamps, TF)
            # hover data: price, confidence and the indicator values behind each signal
            assert [row[:2] for row in trace.customdata] == [
                compact([s.price, s.confidence]) for s in signals
            ]
            assert [row[2:] for row in trace.customdata] == [
                compact([s.metadata[n] for n in names]) for s in signals
            ]
            for name in names:
                assert name in trace.hovertemplate
            assert view.label in trace.hovertemplate
            # purchases under the bar, sales over it, never on the candle
            bars = candles.loc[stamps]
            y = np.array(trace.y, dtype=float)
            if signal_type in ("entry_long", "exit_short"):
                assert (y < bars["low"].to_numpy()).all()
            else:
                assert (y > bars["high"].to_numpy()).all()
    ema = world.data.strategies["ema"]
    assert ema.result is not None
    counts = {t: len(trace_of(chart, f"sig:{EMA_LABEL}:{t}").x) for t in SIGNAL_TYPES}
    assert sum(counts.values()) == len(ema.result.signals)
    assert all(counts.values())  # long and short, entries and exits: all drawn
    sma_short = trace_of(chart, f"sig:{SMA_LABEL}:entry_short")
    assert list(sma_short.x) == []  # a long-only strategy: the trace is there, empty


def test_signal_filters(world: World) -> None:
    ema = world.data.strategies["ema"]
    assert ema.result is not None
    view = replace(ema, signal_types=frozenset({"entry_long", "exit_long"}), min_confidence=0.5)
    data = replace(world.data, strategies={"ema": view})
    columns = StrategySignalLayer().extend(data, None, DARK)
    entries = columns[f"sig:{EMA_LABEL}:entry_long"]
    expected = expected_signals(view, "entry_long")
    unfiltered = expected_signals(ema, "entry_long")
    assert 0 < len(expected) < len(unfiltered)
    assert len(entries["x"]) == len(expected)
    assert all(row[1] >= 0.5 for row in entries["customdata"])
    # exits have confidence 1: the threshold keeps them all
    exits = columns[f"sig:{EMA_LABEL}:exit_long"]
    assert len(exits["x"]) == len(expected_signals(ema, "exit_long")) > 0
    assert columns[f"sig:{EMA_LABEL}:entry_short"] == {"x": [], "y": [], "customdata": []}
    assert columns[f"sig:{EMA_LABEL}:exit_short"]["x"] == []
    with pytest.raises(ValueError, match="signal_types"):
        StrategyView("x", signal_types=frozenset({"entry_sideways"}))
    with pytest.raises(ValueError, match="min_confidence"):
        StrategyView("x", min_confidence=1.5)


def test_each_strategy_has_its_colour_and_symbols(chart: ComposedChart) -> None:
    looks = {}
    for label in (EMA_LABEL, SMA_LABEL):
        traces = [trace_of(chart, f"sig:{label}:{t}") for t in SIGNAL_TYPES]
        assert len({t.marker.color for t in traces}) == 1
        symbols = [t.marker.symbol for t in traces]
        assert len(set(symbols)) == 4  # long/short, entry/exit: all distinct
        looks[label] = (traces[0].marker.color, tuple(symbols))
        assert [t.showlegend for t in traces] == [True, False, False, False]
    assert looks[EMA_LABEL][0] == DARK.strategy_palette[0]
    assert looks[SMA_LABEL][0] == DARK.strategy_palette[1]
    assert set(looks[EMA_LABEL][1]).isdisjoint(looks[SMA_LABEL][1])
    assert looks[EMA_LABEL][1] == ("triangle-up", "x", "triangle-down", "x-open")
    assert StrategyView("c", "#123456").style(DARK, 3) == ("#123456", DARK.marker_symbols[3])


# -- trades ------------------------------------------------------------------------------------


def test_trade_segments_one_per_trade_coloured_by_pnl(world: World, chart: ComposedChart) -> None:
    trades = world.trades.sort_values("exit_time", kind="stable")
    assert len(trades) > 20
    seen = 0
    for outcome, color, wins in (("win", DARK.profit, True), ("loss", DARK.loss, False)):
        trace = trace_of(chart, f"trade:{EMA_LABEL}:{outcome}")
        expected = trades[(trades["pnl"] > 0) == wins]
        assert trace.line.color == trace.marker.color == color
        assert len(trace.x) == 3 * len(expected)
        assert list(trace.x[2::3]) == [None] * len(expected)
        assert list(trace.x[0::3]) == x_labels(pd.DatetimeIndex(expected["entry_time"]), TF)
        assert list(trace.x[1::3]) == x_labels(pd.DatetimeIndex(expected["exit_time"]), TF)
        assert list(trace.y[0::3]) == compact(expected["entry_price"])
        assert list(trace.y[1::3]) == compact(expected["exit_price"])
        pnl = [row[5] for row in trace.customdata[0::3]]
        assert pnl == compact(expected["pnl"])
        assert all((p > 0) == wins for p in pnl)
        assert [row[0] for row in trace.customdata[0::3]] == expected["side"].astype(str).tolist()
        seen += len(expected)
    assert seen == len(trades)
    assert trace_of(chart, f"trade:{SMA_LABEL}:win").x in (None, ())  # no trades given


# -- live ticks --------------------------------------------------------------------------------


def test_extend_after_bar_k_rebuilds_the_full_figure(world: World, chart: ComposedChart) -> None:
    k = len(world.candles) - 200
    since = world.candles.index[k]
    held = world.trades[world.trades["exit_time"] <= since]  # the trades the tab was sent
    before = chart_data(world.candles.iloc[: k + 1], held)
    tab = compose(before, LAYERS)
    figure = tab.figure.to_plotly_json()
    delta = compose_delta(world.data, LAYERS, since, tab.trace_index, include_candles=True)
    apply_layer_delta(figure, delta)
    full = chart.figure.to_plotly_json()
    assert tab.trace_index == chart.trace_index
    assert len(figure["data"]) == len(full["data"])
    for patched, rebuilt in zip(figure["data"], full["data"], strict=True):
        assert patched == rebuilt
    # exactly the rows after bar k
    extended = dict(delta["e"])
    after = x_labels(world.candles.index[k + 1 :], TF)
    assert extended[0]["x"] == after
    assert extended[chart.trace_index[f"ind:{EMA.key}:ema"]]["x"] == after
    macd_hist = extended[chart.trace_index[f"ind:{MACD.key}:hist"]]
    assert len(macd_hist["marker.color"]) == len(macd_hist["y"]) == len(after) == 199
    new_signals = [s for s in world.ema.signals if s.timestamp > since]
    assert new_signals
    added = sum(
        len(columns["x"]) for i, columns in delta["e"] if i in _ids(chart, f"sig:{EMA_LABEL}:")
    )
    assert added == len(new_signals)
    # without the candles: candle_delta patches traces 0-4
    live = compose_delta(world.data, LAYERS, since, tab.trace_index)
    assert min(i for i, _ in live["e"]) > 4
    assert all(i > 4 for i, _ in live["r"])
    assert compose_delta(world.data, LAYERS, world.candles.index[-1], tab.trace_index)["e"] == []


def _ids(chart: ComposedChart, prefix: str) -> set[int]:
    return {i for trace_id, i in chart.trace_index.items() if trace_id.startswith(prefix)}


def test_forming_values_replace_their_traces(world: World) -> None:
    forming = forming_candle(world.candles)
    peek = {EMA.key: {"ema": 2501.25}, MACD.key: {"macd": -12.5, "signal": -10.0, "hist": -2.5}}
    data = replace(world.data, forming=forming, forming_indicators=peek)
    layers = [CandlesLayer(), IndicatorLayer([EMA, MACD, RSI])]
    chart = compose(data, layers)
    fx = x_labels(pd.DatetimeIndex([forming.ts]), TF)[0]
    dot = trace_of(chart, f"ind:{EMA.key}:ema:forming")
    assert (list(dot.x), list(dot.y), dot.mode) == ([fx], [2501.25], "markers")
    assert dot.marker.color == trace_of(chart, f"ind:{EMA.key}:ema").line.color
    hist = trace_of(chart, f"ind:{MACD.key}:hist:forming")
    assert (list(hist.x), list(hist.y), list(hist.marker.color)) == ([fx], [-2.5], [DARK.down])
    assert trace_of(chart, f"ind:{RSI.key}:rsi:forming").x in (None, ())  # no peek given
    # a tick with no new closed bar: the forming values are replaced, nothing is appended
    delta = compose_delta(data, layers, world.candles.index[-1], chart.trace_index)
    assert delta["e"] == []
    replaced = dict(delta["r"])
    assert replaced[chart.trace_index[f"ind:{EMA.key}:ema:forming"]] == {"x": [fx], "y": [2501.25]}
    assert replaced[chart.trace_index[f"ind:{MACD.key}:hist:forming"]] == {
        "x": [fx],
        "y": [-2.5],
        "marker.color": [DARK.down],
    }
    hidden = compose_delta(replace(data, show_forming=False), layers, None, chart.trace_index)
    assert all(columns["x"] == [] for _, columns in hidden["r"])


def test_a_delta_needs_only_the_rows_after_since(world: World, chart: ComposedChart) -> None:
    """What a live tick has at hand: the new bars and their indicator rows, not the history."""
    k = len(world.candles) - 120
    since = world.candles.index[k]
    recent = {key: frame.iloc[k + 1 :] for key, frame in world.data.indicators.items()}
    data = replace(world.data, candles=world.candles.iloc[k + 1 :], indicators=recent)
    delta = compose_delta(data, LAYERS, since, chart.trace_index, include_candles=True)
    assert delta == compose_delta(
        world.data, LAYERS, since, chart.trace_index, include_candles=True
    )
    assert any(i in _ids(chart, "sig:") for i, _ in delta["e"])


def test_a_stale_figure_is_told_to_rebuild(world: World, chart: ComposedChart) -> None:
    index = {k: v for k, v in chart.trace_index.items() if not k.startswith("trade:")}
    with pytest.raises(KeyError, match="rebuild"):
        compose_delta(world.data, LAYERS, world.candles.index[-10], index)


# -- themes ------------------------------------------------------------------------------------


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""

    def luminance(color: str) -> float:
        channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("theme", [DARK, LIGHT], ids=["dark", "light"])
def test_theme_palettes_and_symbols(theme: ChartTheme) -> None:
    assert THEMES[theme.name] is theme
    for palette in (theme.strategy_palette, theme.line_palette):
        assert len(palette) >= 8
        assert len(set(palette)) == len(palette)
        assert min(contrast(c, theme.background) for c in palette) >= 3.0
    assert len(set(theme.marker_symbols)) == len(theme.marker_symbols) >= 8
    for pair in theme.marker_symbols:
        symbols = [marker_symbol(pair, t) for t in SIGNAL_TYPES]
        assert len(set(symbols)) == 4
        go.Scatter(marker={"symbol": symbols})  # plotly validates every symbol
    assert contrast(theme.text, theme.background) >= 4.5


def test_light_theme_applies_everywhere(world: World) -> None:
    chart = compose(world.data, LAYERS, LIGHT)
    layout = chart.figure.layout
    assert layout.paper_bgcolor == layout.plot_bgcolor == "#ffffff" == LIGHT.background
    assert layout.font.color == LIGHT.text
    assert layout.hoverlabel.bgcolor == LIGHT.hover_background
    for row in range(1, len(chart.panels) + 1):
        axis = layout[f"yaxis{'' if row == 1 else row}"]
        assert axis.gridcolor == LIGHT.grid
        assert axis.spikecolor == LIGHT.level
    assert {s.line.color for s in layout.shapes if s.line.dash == "dot"} == {LIGHT.level}
    data = chart.figure.data
    assert data[0].increasing.fillcolor == LIGHT.up
    assert data[0].decreasing.fillcolor == LIGHT.down
    assert trace_of(chart, f"sig:{EMA_LABEL}:entry_long").marker.color == LIGHT.strategy_palette[0]
    assert trace_of(chart, f"trade:{EMA_LABEL}:win").line.color == LIGHT.profit
    assert trace_of(chart, f"ind:{EMA.key}:ema").line.color in LIGHT.line_palette
    assert set(trace_of(chart, f"ind:{MACD.key}:hist").marker.color) == {LIGHT.up, LIGHT.down}


# -- the registry ------------------------------------------------------------------------------


def test_layer_registry_and_a_new_layer_type(world: World) -> None:
    assert {k: LAYER_TYPES[k] for k in ("candles", "indicators", "signals", "trades")} == {
        "candles": CandlesLayer,
        "indicators": IndicatorLayer,
        "signals": StrategySignalLayer,
        "trades": TradeLayer,
    }
    for layer in LAYERS:
        assert isinstance(layer, Layer)
    assert make_layer("indicators", requests=[RSI]) == IndicatorLayer((RSI,))
    with pytest.raises(KeyError, match="unknown layer kind"):
        make_layer("heatmap")

    # a new layer type: one class, registered; compose gives it its own panel
    @dataclass(frozen=True)
    class RangeLayer:
        kind: ClassVar[str] = "test_range"

        def panels(self, data: ChartData) -> list[Panel]:
            return [Panel("range", title="High-low", levels=(0.0,))]

        def traces(self, data: ChartData, theme: ChartTheme) -> list[LayerTrace]:
            spread = data.candles["high"] - data.candles["low"]
            trace = go.Scatter(x=data.x(data.candles.index), y=compact(spread), mode="lines")
            return [LayerTrace("range:spread", "range", trace)]

        def extend(self, data: ChartData, since: Any, theme: ChartTheme) -> dict:
            return {}

        def replace(self, data: ChartData, theme: ChartTheme) -> dict:
            return {}

    register_layer(RangeLayer)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_layer(type("Other", (), {"kind": "test_range"}))
        chart = compose(world.data, [make_layer("test_range"), IndicatorLayer([RSI])])
        assert chart.panels == ("price", "volume", "range", RSI.key)
        assert trace_of(chart, "range:spread").yaxis == "y3"
        assert compose_delta(world.data, [RangeLayer()], None, chart.trace_index) == {
            "e": [],
            "r": [],
        }
    finally:
        del LAYER_TYPES["test_range"]
    assert PRICE == "price"
