"""What keeps the layered chart readable: sub-panel labels apart, the legend off the mode bar."""

from __future__ import annotations

from components.charts.candles import LEGEND_BAND_FONT, candle_figure
from components.charts.layers import CandlesLayer, ChartData, IndicatorLayer, compose
from components.charts.layers.base import SUB_PANEL_SPACING, VERTICAL_SPACING
from indicators.registry import request
from market.sample_data import load_sample
from market.timeframes import Timeframe

TF = Timeframe.parse("1d")


def layered():
    candles = load_sample("SP500").iloc[-400:]
    data = ChartData("SP500", TF, candles, None)
    layers = [CandlesLayer(), IndicatorLayer([request("rsi"), request("macd")])]
    return compose(data, layers).figure


def test_sub_panels_leave_room_for_the_labels_at_their_edges():
    fig = layered()
    domains = [fig.layout[f"yaxis{'' if i == 1 else i}"].domain for i in range(1, 5)]
    gaps = [upper[0] - lower[1] for lower, upper in zip(domains[1:], domains, strict=False)]
    assert min(gaps) >= SUB_PANEL_SPACING - 1e-9 > VERTICAL_SPACING
    rsi = fig.layout.yaxis3
    assert list(rsi.range) == [0.0, 100.0]
    assert list(rsi.tickvals) == [30.0, 70.0]  # its levels, not 0 and 100 at the panel's edges
    assert fig.layout.yaxis4.tickvals is None  # MACD is fitted: plotly places its ticks


def test_candles_alone_keep_their_compact_rows():
    candles = load_sample("SP500").iloc[-400:]
    fig = candle_figure(candles, None, symbol="SP500", timeframe=TF)
    assert fig.layout.yaxis.domain[0] - fig.layout.yaxis2.domain[1] < SUB_PANEL_SPACING


def test_the_legend_starts_below_the_mode_bar_strip():
    fig = layered()
    title = fig.layout.legend.title
    assert (title.text, title.side, title.font.size) == (" ", "top", LEGEND_BAND_FONT)
