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


def cell_text(z: np.ndarray, decimals: int) -> list[list[str]]:
    """Heatmap cell labels with ``decimals`` decimals; an empty label for NaN."""
    return [["" if math.isnan(v) else f"{v:.{decimals}f}" for v in row] for row in z.tolist()]


__all__ = [
    "FONT",
    "LEGEND_ON_TOP",
    "PANEL_MARGIN",
    "cell_text",
    "diverging_scale",
    "hover_label",
    "style_figure",
]
