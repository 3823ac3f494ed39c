"""Execution panel: what an account's orders cost, drawn from the frames of its TCA report and
the summaries of services/execution_views.py (the numbers of ``app.py tca --json``).

>>> slippage_figure(orders["arrival_slippage_bps"].dropna(), theme=DARK)
>>> shortfall_figure(shortfall_split(orders))        # Perold's parts -> total, a waterfall
>>> markout_figure(markout_curve(report.fills))      # mean bps per horizon, 95% band
>>> breakdown_figure(group_rows(view.by_group, BREAKDOWN_METRICS), "venue")
>>> quality_figure(quality_counts(report.round_trips), "D")
>>> prediction_figure(predictions.rows)              # predicted against realised, 45° line

Pure functions: frames in, plotly figures and dash components out. The conventions are
docs/tca.md's: every cost in bps of its reference price, positive = a cost to the trader;
markouts positive when the price moved in the trade's favour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import html
from plotly.subplots import make_subplots

from components.charts.style import style_figure
from components.charts.theme import DARK, ChartTheme, rgba
from components.panels.attribution import empty_figure

SLIPPAGE_AXIS = "arrival slippage [bps of the arrival price; + = cost]"
SHORTFALL_AXIS = "bps; + = cost"
MARKOUT_AXIS = "bps; + = favourable"
PREDICTION_AXIS = "bps of the arrival price; + = cost"
PERIODS = {"D": "day", "W": "week (from Monday)", "M": "month", "Q": "quarter"}
SPLIT_ORDER = ("train", "validation", "test")
SVG_POINTS = 5_000


def _finite(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _cost_colors(values: Sequence[float], theme: ChartTheme) -> list[str]:
    """A cost (positive) in the loss colour, a gain in the profit colour."""
    return [theme.loss if v > 0 else theme.profit if v < 0 else theme.level for v in values]


def slippage_figure(
    values: pd.Series | np.ndarray, *, theme: ChartTheme = DARK, missing: int = 0
) -> go.Figure:
    """The distribution of arrival slippage (one value per order, bps): a histogram with the
    mean and the median marked (dashed and dotted lines, their values in the legend); ``missing``:
    orders where it is n/a, said on the axis."""
    data = _finite(values)
    if not len(data):
        return empty_figure("no order with an arrival slippage", theme)
    mean, median = float(data.mean()), float(np.median(data))
    fig = go.Figure(
        go.Histogram(
            x=data,
            name="orders",
            nbinsx=min(60, max(10, int(math.sqrt(len(data)) * 2))),
            marker={"color": rgba(theme.line_palette[0], 0.75), "line": {"width": 0}},
            hovertemplate="%{x} bps<br>%{y} orders<extra></extra>",
        )
    )
    # the mean and the median as lines on an overlaid 0-1 axis: named in the legend, where
    # two close values never overlap as labels would
    for value, name, dash, color in (
        (mean, "mean", "dash", theme.forming),
        (median, "median", "dot", theme.text),
    ):
        fig.add_trace(
            go.Scatter(
                x=[value, value],
                y=[0, 1],
                yaxis="y2",
                mode="lines",
                name=f"{name} {value:+,.2f}",
                line={"color": color, "dash": dash, "width": 2},
                hovertemplate=f"{name} %{{x:+,.2f}} bps<extra></extra>",
            )
        )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(
        bargap=0.05,
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
    )
    note = f"n = {len(data):,}" + (f", {missing:,} n/a" if missing else "")
    fig.update_xaxes(title_text=f"{SLIPPAGE_AXIS} · {note}", zeroline=False)
    fig.update_layout(yaxis={"title_text": "orders", "rangemode": "tozero"})
    return fig


def shortfall_figure(split: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Perold's implementation shortfall as a waterfall: delay, trading, opportunity and fees
    (notional-weighted means, bps) rising or falling to the total (``shortfall_split``)."""
    bps = split["bps"].to_numpy(float)
    if split.empty or not np.isfinite(bps).all():
        return empty_figure("no order with a decision price: shortfall n/a", theme)
    parts, total = split.iloc[:-1], float(bps[-1])
    fig = go.Figure(
        go.Waterfall(
            x=split["part"].tolist(),
            y=[*parts["bps"].tolist(), total],
            measure=["relative"] * len(parts) + ["total"],
            text=[f"{v:+,.2f}" for v in bps],
            textposition="outside",
            cliponaxis=False,
            name="shortfall",
            increasing={"marker": {"color": theme.loss}},
            decreasing={"marker": {"color": theme.profit}},
            totals={"marker": {"color": theme.line_palette[0]}},
            connector={"line": {"color": theme.level, "width": 1, "dash": "dot"}},
            hovertemplate="%{x}: %{y:+,.3f} bps<extra></extra>",
        )
    )
    style_figure(fig, theme, hovermode="closest")
    running = np.cumsum(np.r_[0.0, bps[:-1]])
    low, high = float(min(running.min(), total, 0.0)), float(max(running.max(), total, 0.0))
    room = (high - low) * 0.18 or 1.0
    orders = int(split["orders"].iloc[0])
    fig.update_layout(showlegend=False)
    fig.update_xaxes(type="category", title_text=f"notional-weighted means over {orders:,} orders")
    fig.update_yaxes(title_text=SHORTFALL_AXIS, range=[low - room, high + room])
    return fig


def markout_figure(curve: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Mean markout (bps) against the horizon after each fill, with its 95% band (mean ± 1.96
    standard errors) and the fills counted at each horizon (``markout_curve``)."""
    curve = curve.loc[curve["n"] > 0]
    if curve.empty:
        return empty_figure("no fill with the bars after it: markouts n/a", theme)
    x = curve["minutes"].to_numpy(float)
    color = theme.line_palette[0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.r_[x, x[::-1]],
            y=np.r_[curve["high"].to_numpy(float), curve["low"].to_numpy(float)[::-1]],
            fill="toself",
            mode="lines",
            fillcolor=rgba(color, 0.18),
            line={"width": 0},
            name="95% band (mean ± 1.96 SE)",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve["mean"].to_numpy(float),
            mode="lines+markers+text",
            name="mean",
            line={"color": color, "width": 2},
            marker={"size": 8},
            text=[f"n={n:,}" for n in curve["n"]],
            textposition="top center",
            textfont={"size": 11},
            customdata=curve[["low", "high", "n"]].to_numpy(float),
            hovertemplate="%{x:g} min after the fill<br>mean %{y:+,.2f} bps<br>95%: "
            "%{customdata[0]:+,.2f} to %{customdata[1]:+,.2f}<br>%{customdata[2]:,.0f} fills"
            "<extra></extra>",
        )
    )
    style_figure(fig, theme, hovermode="closest")
    fig.add_hline(y=0, line={"color": theme.level, "width": 1})
    fig.update_xaxes(
        type="log",
        tickvals=x,
        ticktext=curve["horizon"].tolist(),
        title_text="horizon after the fill",
        range=[math.log10(x.min()) - 0.15, math.log10(x.max()) + 0.15],
    )
    fig.update_yaxes(title_text=MARKOUT_AXIS)
    return fig


BREAKDOWN_PANELS = (
    ("fill_rate", "fill rate [%]", 100.0),
    ("latency_s", "latency [s]", 1.0),
)
COST_SERIES = (("arrival_slippage_bps", "arrival slippage"), ("is_bps", "shortfall"))


def breakdown_figure(rows: pd.DataFrame, by: str, *, theme: ChartTheme = DARK) -> go.Figure:
    """Fill rate, latency and cost (arrival slippage and shortfall, bps) per group of ``by``:
    three panels side by side of notional-weighted means (``group_rows``)."""
    if rows.empty:
        return empty_figure(f"no orders by {by}", theme)
    groups = rows["group"].astype(str).tolist()
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("fill rate [%]", "latency [s]", "cost [bps; + = cost]"),
        horizontal_spacing=0.09,
        column_widths=[0.28, 0.28, 0.44],
    )
    for col, (metric, name, scale) in enumerate(BREAKDOWN_PANELS, start=1):
        values = rows[metric].to_numpy(float) * scale
        fig.add_trace(
            go.Bar(
                x=groups,
                y=values,
                name=name,
                marker={"color": theme.line_palette[col - 1], "line": {"width": 0}},
                customdata=rows["orders"].to_numpy(int),
                hovertemplate=f"<b>%{{x}}</b><br>{name} %{{y:,.2f}}<br>%{{customdata}} orders"
                "<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
    for k, (metric, name) in enumerate(COST_SERIES):
        fig.add_trace(
            go.Bar(
                x=groups,
                y=rows[metric].to_numpy(float),
                name=name,
                marker={"color": theme.line_palette[2 + k], "line": {"width": 0}},
                hovertemplate=f"<b>%{{x}}</b><br>{name} %{{y:+,.2f}} bps<extra></extra>",
            ),
            row=1,
            col=3,
        )
    style_figure(fig, theme, hovermode="closest")
    # the legend under the cost panel: the panels' titles hold the top
    fig.update_layout(
        barmode="group",
        bargap=0.25,
        legend={"x": 1.0, "xanchor": "right", "y": -0.14, "yanchor": "top"},
    )
    fig.update_xaxes(type="category", tickangle=-30 if len(groups) > 5 else 0)
    fig.update_yaxes(side="left")
    fig.update_yaxes(range=[0, 105], row=1, col=1)
    for annotation in fig.layout.annotations:
        annotation.font = {"size": 11, "color": theme.text}
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 40})
    return fig


def breakdown_table(rows: pd.DataFrame, *, table_id: str = "ex-kinds-table") -> Any:
    """Fill rate, latency and cost by algo, venue and order type as a small table
    (``group_rows`` of ``kind_breakdown``): notional-weighted means."""
    if rows.empty:
        return html.Div("no orders", className="sl-hint")
    head = html.Thead(
        html.Tr(
            [
                html.Th("by"),
                html.Th("group"),
                *(
                    html.Th(h, className="text-end")
                    for h in ("orders", "fill rate", "latency", "slippage", "shortfall")
                ),
            ]
        )
    )
    body = []
    for row in rows.to_dict("records"):
        body.append(
            html.Tr(
                [
                    html.Td(row["dimension"], className="sl-muted"),
                    html.Td(str(row["group"])),
                    html.Td(f"{int(row['orders']):,}", className="text-end"),
                    html.Td(
                        _number(row["fill_rate"], 1, scale=100, suffix="%"), className="text-end"
                    ),
                    html.Td(_number(row["latency_s"], 2, suffix=" s"), className="text-end"),
                    html.Td(
                        _number(row["arrival_slippage_bps"], 2, sign=True), className="text-end"
                    ),
                    html.Td(_number(row["is_bps"], 2, sign=True), className="text-end"),
                ],
                **{"data-group": f"{row['dimension']}:{row['group']}"},
            )
        )
    return dbc.Table(
        [head, html.Tbody(body)], size="sm", className="sl-kinds-table mb-0", id=table_id
    )


def _number(
    value: Any, decimals: int, *, scale: float = 1.0, suffix: str = "", sign: bool = False
) -> str:
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    return f"{float(value) * scale:{'+' if sign else ''},.{decimals}f}{suffix}"


def quality_figure(counts: pd.DataFrame, period: str, *, theme: ChartTheme = DARK) -> go.Figure:
    """Round trips per exit ``period`` (D, W, M, Q) by decision quality, stacked: good (net
    return after costs above expectation + threshold), neutral, bad (``quality_counts``)."""
    if counts.empty:
        return empty_figure("no closed round trip: decision quality n/a", theme)
    x = pd.to_datetime(counts["period_start"], utc=True)
    colors = {"good": theme.profit, "neutral": theme.level, "bad": theme.loss}
    fig = go.Figure(
        [
            go.Bar(
                x=x,
                y=counts[name].to_numpy(int),
                name=name,
                marker={"color": colors[name], "line": {"width": 0}},
                hovertemplate=f"%{{x|%Y-%m-%d}}<br>{name} %{{y}}<extra></extra>",
            )
            for name in ("good", "neutral", "bad")
        ]
    )
    style_figure(fig, theme, hovermode="x unified")
    fig.update_layout(barmode="stack", bargap=0.15, legend={"traceorder": "normal"})
    fig.update_xaxes(title_text=f"exit {PERIODS.get(period, period)} (UTC)")
    fig.update_yaxes(title_text="round trips", rangemode="tozero")
    return fig


def prediction_figure(rows: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """The stored cost model's expected cost against the realised arrival slippage, one point
    per decision coloured by its split (the test rows: the later period, never trained on),
    with the 45° line (a perfect prediction: both axes share one range) and each split's MAE
    in the legend."""
    known = rows.loc[np.isfinite(rows["realised_bps"].to_numpy(float))]
    if known.empty:
        return empty_figure("no decision with a realised cost", theme)
    fig = go.Figure()
    palette = {
        "train": theme.level,
        "validation": theme.line_palette[1],
        "test": theme.line_palette[0],
    }
    for split in SPLIT_ORDER:
        part = known.loc[known["split"] == split]
        if part.empty:
            continue
        predicted = part["predicted_bps"].to_numpy(float)
        realised = part["realised_bps"].to_numpy(float)
        mae = float(np.mean(np.abs(predicted - realised)))
        # SVG up to a few thousand points (no WebGL needed), WebGL beyond
        scatter = go.Scatter if len(known) <= SVG_POINTS else go.Scattergl
        fig.add_trace(
            scatter(
                x=predicted,
                y=realised,
                mode="markers",
                name=f"{split} (n={len(part):,}, MAE {mae:.2f})",
                marker={
                    "color": palette[split],
                    "size": 6 if split == "test" else 5,
                    "opacity": 0.9 if split == "test" else 0.5,
                },
                customdata=part["order_id"].to_numpy(),
                hovertemplate="%{customdata}<br>predicted %{x:+,.2f} bps<br>realised %{y:+,.2f} "
                "bps<extra></extra>",
            )
        )
    values = _finite(
        np.r_[known["predicted_bps"].to_numpy(float), known["realised_bps"].to_numpy(float)]
    )
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.05 or 1.0
    fig.add_trace(
        go.Scatter(
            x=[low - pad, high + pad],
            y=[low - pad, high + pad],
            mode="lines",
            name="45° (predicted = realised)",
            line={"color": theme.text, "dash": "dash", "width": 1},
            hoverinfo="skip",
        )
    )
    style_figure(fig, theme, hovermode="closest")
    fig.update_xaxes(title_text=f"predicted [{PREDICTION_AXIS}]", range=[low - pad, high + pad])
    fig.update_yaxes(
        title_text=f"realised [{PREDICTION_AXIS}]",
        range=[low - pad, high + pad],
        side="left",
    )
    return fig


__all__ = [
    "MARKOUT_AXIS",
    "PREDICTION_AXIS",
    "SHORTFALL_AXIS",
    "SLIPPAGE_AXIS",
    "breakdown_figure",
    "breakdown_table",
    "markout_figure",
    "prediction_figure",
    "quality_figure",
    "shortfall_figure",
    "slippage_figure",
]
