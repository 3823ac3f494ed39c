"""What keeps the layered chart readable: sub-panel labels apart, the legend off the mode bar."""

from __future__ import annotations

import pytest

from components.charts.candles import LEGEND_BAND_FONT, candle_figure
from components.charts.layers import CandlesLayer, ChartData, IndicatorLayer, compose
from components.charts.layers.base import SUB_PANEL_SPACING, VERTICAL_SPACING
from components.charts.theme import DARK, LIGHT
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


def _contrast(ink: str, cell: tuple[float, float, float]) -> float:
    from components.charts.style import _luminance, _rgb

    a, b = _luminance(_rgb(ink)), _luminance(cell)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


@pytest.mark.parametrize("theme", [DARK, LIGHT], ids=["dark", "light"])
def test_heatmap_labels_read_at_4_5_to_1_on_every_cell(theme):
    """Every label of a diverging heatmap (monthly returns, correlation, sweep) is black or white,
    whichever reads at >= 4.5:1 on its own cell's colour; plotly's #444 / white did not."""
    import re

    import numpy as np

    from components.charts.style import _rgb, cell_text, diverging_scale

    z = np.array([[-9.0, -4.5, 0.0, 4.5, 9.0], [-1.0, np.nan, 2.0, 7.0, -7.0]])
    labels = cell_text(z, 1, theme)
    assert labels[1][1] == ""
    stops = [_rgb(c) for _, c in diverging_scale(theme)]
    for row_labels, row in zip(labels, z.tolist(), strict=True):
        for label, value in zip(row_labels, row, strict=True):
            if not label:
                continue
            ink, text = re.fullmatch(
                r'<span style="color:(#[0-9a-f]{6})">(.*)</span>', label
            ).groups()
            assert text == f"{value:.1f}"
            at = (value + 9.0) / 9.0  # 0..2 along the stops (reach = max |z| = 9)
            low = min(int(at), 1)
            cell = tuple(
                a + (b - a) * (at - low) for a, b in zip(*stops[low : low + 2], strict=True)
            )
            assert _contrast(ink, cell) >= 4.5, (value, ink)
    # the scale's bright ends: plotly's grey on them read at about 3:1
    assert _contrast("#444444", stops[2]) < 4.5 or _contrast("#ffffff", stops[0]) < 4.5
    assert cell_text(z, 1) == [[f"{v:.1f}" for v in z[0]], ["-1.0", "", "2.0", "7.0", "-7.0"]]
