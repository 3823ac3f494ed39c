"""The look every figure shares: theme colours, font, legend on top, price scale on the right.

>>> style_figure(fig, LIGHT, hovermode="closest")            # a panel figure
>>> style_figure(fig, DARK, margin=..., axis=..., automargin=False)  # the candle chart

The candle chart (:mod:`components.charts.candles`) and the panels (``components/panels/``)
style their figures here; what differs between them (margins, hover label, spikes, automatic
margins) is a parameter.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

from components.charts.theme import DARK, ChartTheme

FONT = "Inter, system-ui, -apple-system, Segoe UI, sans-serif"
# the panels' margins; the candle chart keeps more room for its price scale and mode bar
PANEL_MARGIN: dict[str, int] = {"l": 10, "r": 64, "t": 30, "b": 28}
LEGEND_ON_TOP: dict[str, Any] = {
    "orientation": "h",
    "x": 0.0,
    "y": 1.0,
    "xanchor": "left",
    "yanchor": "bottom",
    "bgcolor": "rgba(0,0,0,0)",
}


def hover_label(theme: ChartTheme = DARK) -> dict[str, Any]:
    """The hover label in the theme's colours."""
    return {
        "bgcolor": theme.hover_background,
        "bordercolor": theme.hover_border,
        "font": {"color": theme.hover_text},
    }


def axis_style(theme: ChartTheme = DARK, *, spikes: bool = False) -> dict[str, Any]:
    """Every axis's look in the theme; ``spikes``: dotted crosshair lines across the panels."""
    axes = {"gridcolor": theme.grid, "zeroline": False, "showline": False, "color": theme.text}
    if spikes:
        axes |= {
            "showspikes": True,
            "spikecolor": theme.level,
            "spikethickness": 1,
            "spikedash": "dot",
            "spikemode": "across",
            "spikesnap": "cursor",
        }
    return axes


def style_figure(
    fig: go.Figure,
    theme: ChartTheme = DARK,
    *,
    hovermode: str = "x unified",
    margin: dict[str, int] | None = None,
    hoverlabel: dict[str, Any] | None = None,
    axis: dict[str, Any] | None = None,
    automargin: bool = True,
) -> go.Figure:
    """Theme colours, compact margins, legend on top, no range slider, y axes on the right.

    ``margin``: :data:`PANEL_MARGIN` by default; ``hoverlabel``: :func:`hover_label` of the
    theme by default; ``axis``: more properties of every x and y axis (spikes);
    ``automargin``: long category labels (years, strategy names) are never cut by the margins.
    """
    axes = axis_style(theme) | (axis or {})
    fig.update_layout(
        template="none",
        paper_bgcolor=theme.background,
        plot_bgcolor=theme.background,
        font={"family": FONT, "color": theme.text, "size": 12},
        margin=PANEL_MARGIN if margin is None else margin,
        showlegend=True,
        legend=LEGEND_ON_TOP,
        hovermode=hovermode,
        hoverlabel=hover_label(theme) if hoverlabel is None else hoverlabel,
    )
    auto = {"automargin": True} if automargin else {}
    fig.update_xaxes(**axes, rangeslider={"visible": False}, **auto)
    fig.update_yaxes(**axes, side="right", **auto)
    return fig


def diverging_scale(theme: ChartTheme = DARK) -> list[list[Any]]:
    """A heatmap colour scale around 0: the down colour below, grid at 0, the up colour above."""
    return [[0.0, theme.down], [0.5, theme.grid], [1.0, theme.up]]


def cell_text(
    z: np.ndarray, decimals: int, theme: ChartTheme | None = None, reach: float | None = None
) -> list[list[str]]:
    """Heatmap cell labels with ``decimals`` decimals; an empty label for NaN.

    With ``theme`` (a heatmap on :func:`diverging_scale` around 0 from ``-reach`` to
    ``reach``; default: plotly's own range for ``zmid=0``, the largest ``|z|``) each label is
    black or white, whichever contrasts more with its cell (always >= 4.5:1, WCAG). Plotly's
    own pick, #444 or white, reads at about 3:1 on the scale's bright ends (grey on the dark
    theme's teal, white on its red)."""
    rows = z.tolist()
    labels = [["" if math.isnan(v) else f"{v:.{decimals}f}" for v in row] for row in rows]
    if theme is None:
        return labels
    if reach is None:
        reach = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 0.0
    stops = [_rgb(color) for _, color in diverging_scale(theme)]  # at 0, 0.5 and 1
    out = []
    for label_row, z_row in zip(labels, rows, strict=True):
        row = []
        for label, value in zip(label_row, z_row, strict=True):
            if label:
                at = 1.0 if reach == 0 else min(max((value + reach) / reach, 0.0), 2.0)
                low = min(int(at), 1)  # 0..2 along the three stops
                mix = [a + (b - a) * (at - low) for a, b in zip(*stops[low : low + 2], strict=True)]
                label = f'<span style="color:{readable_ink(mix)}">{label}</span>'
            row.append(label)
        out.append(row)
    return out


def readable_ink(rgb: list[float] | tuple[float, float, float]) -> str:
    """Black or white, whichever contrasts more with the sRGB colour ``rgb`` (channels 0-1)."""
    lum = _luminance(rgb)
    return "#000000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#ffffff"


def _rgb(color: str) -> tuple[float, float, float]:
    hex_ = color.lstrip("#")
    red, green, blue = (int(hex_[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return red, green, blue


def _luminance(rgb: list[float] | tuple[float, float, float]) -> float:
    """WCAG relative luminance of an sRGB colour (channels 0-1)."""
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


__all__ = [
    "FONT",
    "LEGEND_ON_TOP",
    "PANEL_MARGIN",
    "cell_text",
    "diverging_scale",
    "hover_label",
    "readable_ink",
    "style_figure",
]
