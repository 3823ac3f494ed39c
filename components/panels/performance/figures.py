"""Figures of the performance panel: equity with buy and hold, drawdown and traded volume;
the return distribution; the monthly returns heatmap.

>>> performance_figure(result.equity, result.trades, benchmark=result.benchmark, theme=DARK)
>>> monthly_heatmap_figure(monthly_returns_table(result.equity), theme=LIGHT)

Times are drawn in UTC.
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.charts.lod import lod_line_positions
from components.charts.style import cell_text, diverging_scale, style_figure
from components.charts.theme import DARK, ChartTheme, rgba

MONTHS: tuple[str, ...] = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_THREE_YEARS = pd.Timedelta(days=3 * 365.25)
MAX_LINE_POINTS = 4000  # points of each line of the performance figure, at most (LOD)


def x_values(index: pd.Index) -> pd.Index:
    """Plot x values: a tz-aware DatetimeIndex as naive UTC (plotly.js has no time zones)."""
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert(None)
    return index


def drawdown_pct(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak in percent, <= 0: ``(V / max(V_0..V_t) - 1) x 100``."""
    values = equity.astype(float)
    return (values / values.cummax() - 1) * 100


def volume_period(index: pd.Index) -> Literal["D", "M"]:
    """ "M" (months) when the data spans more than 3 years, else "D" (days)."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return "D"
    return "M" if index[-1] - index[0] > _THREE_YEARS else "D"


def traded_volume(trades: pd.DataFrame, period: Literal["D", "M"] = "D") -> pd.Series:
    """Traded notional per day or month: ``|size| x price`` of every entry and exit, summed by
    the UTC day or month of the fill; indexed by the period's start (UTC)."""
    size = trades["size"].abs().to_numpy(dtype=float)
    notional = np.r_[
        size * trades["entry_price"].to_numpy(dtype=float),
        size * trades["exit_price"].to_numpy(dtype=float),
    ]
    times = pd.DatetimeIndex(trades["entry_time"]).append(pd.DatetimeIndex(trades["exit_time"]))
    naive = times.tz_convert(None) if times.tz is not None else times
    keys = naive.to_numpy().astype(f"datetime64[{period}]")
    sums = pd.Series(notional).groupby(keys).sum()
    index = pd.DatetimeIndex(sums.index.to_numpy().astype("datetime64[ns]")).tz_localize("UTC")
    return pd.Series(sums.to_numpy(dtype=float), index=index, name="notional")


def _benchmark_values(benchmark: pd.Series | pd.DataFrame, equity: pd.Series) -> pd.Series:
    """The benchmark on the equity's times, rebased to the equity's first value."""
    series = benchmark
    if isinstance(series, pd.DataFrame):
        series = series["close"] if "close" in series else series["Close"]
    series = series.astype(float).reindex(equity.index).ffill()
    first = series.first_valid_index()
    if first is None or not len(equity):
        return series
    return series * (float(equity.iloc[0]) / float(series[first]))


def performance_figure(
    result_equity: pd.Series,
    trades: pd.DataFrame,
    *,
    benchmark: pd.Series | pd.DataFrame | None = None,
    theme: ChartTheme = DARK,
    max_points: int = MAX_LINE_POINTS,
) -> go.Figure:
    """Equity (NAV) with the buy-and-hold benchmark dashed; drawdown [%]; traded notional.

    Three rows sharing x. Traces by name: "Equity", "Buy & hold" (when ``benchmark`` is given:
    a Series or an OHLC frame, rebased to the equity's first value), "Drawdown" (row 2, <= 0),
    "Traded notional" (row 3, per :func:`volume_period`). A line longer than ``max_points``
    is drawn from its first and last points and the lowest and highest point of each of
    ``max_points // 4`` runs (:func:`~components.charts.lod.lod_line_positions`): a million
    bars' equity travels as a few thousand points, its extremes exact.
    """
    equity = result_equity.astype(float)
    x = x_values(equity.index)

    def line(values: pd.Series | np.ndarray, row: int, **style: Any) -> dict[str, Any]:
        y = np.asarray(values, dtype=float)
        keep = lod_line_positions(y, max_points)
        xy = {"x": x, "y": y} if len(keep) == len(y) else {"x": x[keep], "y": y[keep]}
        return {"type": "scatter", **xy, "mode": "lines", **style, **_axes(row)}

    traces = [
        line(
            equity.to_numpy(),
            1,
            name="Equity",
            line={"color": theme.line_palette[0], "width": 1.6},
            hovertemplate="%{y:,.2f}",
        )
    ]
    if benchmark is not None:
        traces.append(
            line(
                _benchmark_values(benchmark, equity).to_numpy(),
                1,
                name="Buy & hold",
                line={"color": theme.level, "width": 1.2, "dash": "dash"},
                hovertemplate="%{y:,.2f}",
            )
        )
    traces.append(
        line(
            drawdown_pct(equity).to_numpy(),
            2,
            name="Drawdown",
            fill="tozeroy",
            line={"color": theme.loss, "width": 1},
            fillcolor=rgba(theme.loss, 0.3),
            hovertemplate="%{y:.2f}%",
        )
    )
    volume = traded_volume(trades, volume_period(equity.index))
    traces.append(
        {
            "type": "bar",
            "x": x_values(volume.index),
            "y": volume.to_numpy(),
            "name": "Traded notional",
            "marker": {"color": rgba(theme.forming, 0.7), "line": {"width": 0}},
            "hovertemplate": "%{y:,.0f}",
            **_axes(3),
        }
    )
    return _figure(traces, _performance_layout(theme))


@lru_cache(maxsize=8)
def _performance_layout(theme: ChartTheme) -> dict[str, Any]:
    """The performance figure's layout (three rows sharing x, styled, axes titled): built
    once per theme through plotly's own subplot grid; each figure gets a copy."""
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, row_heights=[0.56, 0.24, 0.20], vertical_spacing=0.02
    )
    style_figure(fig, theme)
    fig.update_xaxes(type="date")
    fig.update_yaxes(tickformat=",.0f", title_text="NAV", row=1, col=1)
    fig.update_yaxes(ticksuffix="%", tickformat=".0f", title_text="DD", row=2, col=1)
    fig.update_yaxes(tickformat=".2s", title_text="Volume", row=3, col=1)
    return fig.to_plotly_json()["layout"]


def _axes(n: int) -> dict[str, str]:
    """The axes of the ``n``-th cell of a subplot grid (numbered row by row from 1), as a
    trace names them: "x"/"y" for the first, "x2"/"y2" for the second..."""
    suffix = "" if n == 1 else str(n)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def _figure(traces: list[dict[str, Any]], layout: dict[str, Any], **more: Any) -> go.Figure:
    """A figure of ``traces`` on a copy of a cached ``layout`` (with ``more`` layout keys).

    The panels refresh on every closed bar for every chart shown: building a figure through
    plotly's update methods (make_subplots, add_trace by row, update_layout, add_vline) parses
    each property path and validates each value as it goes, about 30 ms a figure; a figure
    made whole from its dictionaries is validated once, about 1 ms, and is the same figure
    (tests/components/test_performance_panel.py compares the two)."""
    return go.Figure(data=traces, layout={**copy.deepcopy(layout), **more})


def returns_distribution_figure(
    returns: pd.Series, *, theme: ChartTheme = DARK, var_confidence: float = 0.95
) -> go.Figure:
    """Histogram of period returns [%] with vertical lines (shapes named "zero", "mean",
    "VaR") at 0, the mean and the historical VaR (the (1 - confidence) quantile, linear
    interpolation, as compute_metrics)."""
    if not 0 < var_confidence < 1:
        raise ValueError(f"var_confidence={var_confidence!r} is invalid: expected 0 < c < 1")
    r = returns.dropna().to_numpy(dtype=float) * 100
    bins = int(min(120, max(20, math.sqrt(r.size))))
    histogram = {
        "type": "histogram",
        "x": r,
        "name": "Returns",
        "nbinsx": bins,
        "marker": {"color": rgba(theme.line_palette[0], 0.75), "line": {"width": 0}},
        "hovertemplate": "%{x}%: %{y}<extra></extra>",
    }
    # the zero line has no label: the axis' "0%" tick names it (a "0" on the line sat on the bars)
    lines: list[tuple[str, float, str | None, str, str, str]] = [
        ("zero", 0.0, None, theme.level, "dot", "right")
    ]
    if r.size:
        mean = float(r.mean())
        var = float(np.quantile(r, 1 - var_confidence))
        lines += [
            ("mean", mean, f"mean {mean:.2f}%", theme.text, "dash", "right"),
            ("VaR", var, f"VaR {var_confidence:.0%} {var:.2f}%", theme.loss, "dash", "left"),
        ]
    shapes, annotations = [], []
    for name, x, text, color, dash, side in lines:
        # a vertical line across the plot (plotly's add_vline: x in data, y in the domain),
        # its label at the top, on the ``side`` of the line
        shapes.append(
            {
                "type": "line", "name": name, "x0": x, "x1": x, "xref": "x",
                "y0": 0, "y1": 1, "yref": "y domain",
                "line": {"color": color, "dash": dash, "width": 1.2},
            }
        )  # fmt: skip
        if text:
            annotations.append(
                {
                    "text": text, "font": {"color": color}, "showarrow": False,
                    "x": x, "xref": "x", "xanchor": "left" if side == "right" else "right",
                    "y": 1, "yref": "y domain", "yanchor": "top",
                }
            )  # fmt: skip
    return _figure([histogram], _distribution_layout(theme), shapes=shapes, annotations=annotations)


@lru_cache(maxsize=8)
def _distribution_layout(theme: ChartTheme) -> dict[str, Any]:
    fig = go.Figure()
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, bargap=0.02)
    fig.update_xaxes(ticksuffix="%", title_text="return per period")
    fig.update_yaxes(title_text="periods")
    return fig.to_plotly_json()["layout"]


def monthly_returns_table(equity: pd.Series) -> pd.DataFrame:
    """Returns [%] per month (columns :data:`MONTHS`) and per ``"Year"``, one row per year.

    A month's return compounds the bars inside it: its last value over the previous month's
    last value (the first month: over the first value). NaN for a month without data.
    Months and years are UTC.
    """
    columns = [*MONTHS, "Year"]
    values = equity.astype(float).dropna()
    if values.empty:
        return pd.DataFrame(columns=columns, dtype=float).rename_axis("year")
    times = x_values(values.index).to_numpy()
    v = values.to_numpy()
    # periods counted from 1970 (numpy's datetime64 units): years y, months 12 y + month - 1
    months = times.astype("datetime64[M]").astype(np.int64)
    first, last = months[0] // 12, months[-1] // 12
    cells = np.full((last - first + 1, 13), np.nan)  # a row per year, the Year column last
    for keys, yearly in ((months, False), (months // 12, True)):
        # each period's last value over the last value of the period before it that has
        # data (the first: over the first value); a period without data stays NaN
        ends = np.flatnonzero(np.r_[keys[1:] != keys[:-1], True])
        close = v[ends]
        r = (close / np.r_[v[0], close[:-1]] - 1) * 100
        period = keys[ends]
        if yearly:
            cells[period - first, 12] = r
        else:
            cells[period // 12 - first, period % 12] = r
    years = pd.Index((np.arange(first, last + 1) + 1970).astype(np.int32), name="year")
    return pd.DataFrame(cells, index=years, columns=columns)


def monthly_heatmap_figure(table: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Monthly returns as a heatmap, diverging around 0 (down colour below, up above), each
    cell annotated with 1 decimal; the "Year" column is a second heatmap on its own scale."""
    years = [str(y) for y in table.index]
    scale = diverging_scale(theme)
    traces = []
    for cell, names in ((1, list(MONTHS)), (2, ["Year"])):
        z = table.reindex(columns=names).to_numpy(dtype=float)
        traces.append(
            {
                "type": "heatmap",
                "z": z,
                "x": names,
                "y": years,
                "name": "Months" if cell == 1 else "Year",
                "zmid": 0,
                "colorscale": scale,
                "showscale": False,
                "text": cell_text(z, 1, theme),
                "texttemplate": "%{text}",
                "textfont": {"size": 11},
                "xgap": 1,
                "ygap": 1,
                "hovertemplate": "%{y} %{x}: %{z:.2f}%<extra></extra>",
                **_axes(cell),
            }
        )
    return _figure(traces, _heatmap_layout(theme), height=max(200, 60 + 22 * len(years)))


@lru_cache(maxsize=8)
def _heatmap_layout(theme: ChartTheme) -> dict[str, Any]:
    """Months and the Year column side by side, sharing the years' axis."""
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, column_widths=[12 / 13, 1 / 13], horizontal_spacing=0.01
    )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False)
    fig.update_xaxes(side="top", showgrid=False, type="category")
    # no tick marks: a year names its row, and the Year column's shared axis drew a dash per row
    fig.update_yaxes(autorange="reversed", showgrid=False, type="category", side="left", ticks="")
    return fig.to_plotly_json()["layout"]
