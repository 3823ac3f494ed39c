"""Figures of the performance panel: equity with buy and hold, drawdown and traded volume;
the return distribution; the monthly returns heatmap.

>>> performance_figure(result.equity, result.trades, benchmark=result.benchmark, theme=DARK)
>>> monthly_heatmap_figure(monthly_returns_table(result.equity), theme=LIGHT)

Times are drawn in UTC.
"""

from __future__ import annotations

import math
from typing import Literal

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

    def line(values: pd.Series | np.ndarray) -> dict:
        y = np.asarray(values, dtype=float)
        keep = lod_line_positions(y, max_points)
        if len(keep) == len(y):
            return {"x": x, "y": y}
        return {"x": x[keep], "y": y[keep]}

    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, row_heights=[0.56, 0.24, 0.20], vertical_spacing=0.02
    )
    fig.add_trace(
        go.Scatter(
            **line(equity.to_numpy()),
            name="Equity",
            mode="lines",
            line={"color": theme.line_palette[0], "width": 1.6},
            hovertemplate="%{y:,.2f}",
        ),
        row=1,
        col=1,
    )
    if benchmark is not None:
        fig.add_trace(
            go.Scatter(
                **line(_benchmark_values(benchmark, equity).to_numpy()),
                name="Buy & hold",
                mode="lines",
                line={"color": theme.level, "width": 1.2, "dash": "dash"},
                hovertemplate="%{y:,.2f}",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            **line(drawdown_pct(equity).to_numpy()),
            name="Drawdown",
            mode="lines",
            fill="tozeroy",
            line={"color": theme.loss, "width": 1},
            fillcolor=rgba(theme.loss, 0.3),
            hovertemplate="%{y:.2f}%",
        ),
        row=2,
        col=1,
    )
    volume = traded_volume(trades, volume_period(equity.index))
    fig.add_trace(
        go.Bar(
            x=x_values(volume.index),
            y=volume.to_numpy(),
            name="Traded notional",
            marker={"color": rgba(theme.forming, 0.7), "line": {"width": 0}},
            hovertemplate="%{y:,.0f}",
        ),
        row=3,
        col=1,
    )
    style_figure(fig, theme)
    fig.update_xaxes(type="date")
    fig.update_yaxes(tickformat=",.0f", title_text="NAV", row=1, col=1)
    fig.update_yaxes(ticksuffix="%", tickformat=".0f", title_text="DD", row=2, col=1)
    fig.update_yaxes(tickformat=".2s", title_text="Volume", row=3, col=1)
    return fig


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
    fig = go.Figure(
        go.Histogram(
            x=r,
            name="Returns",
            nbinsx=bins,
            marker={"color": rgba(theme.line_palette[0], 0.75), "line": {"width": 0}},
            hovertemplate="%{x}%: %{y}<extra></extra>",
        )
    )
    # the zero line has no label: the axis' "0%" tick names it (a "0" on the line sat on the bars)
    lines = [("zero", 0.0, None, theme.level, "dot", "bottom right")]
    if r.size:
        mean = float(r.mean())
        var = float(np.quantile(r, 1 - var_confidence))
        lines += [
            ("mean", mean, f"mean {mean:.2f}%", theme.text, "dash", "top right"),
            ("VaR", var, f"VaR {var_confidence:.0%} {var:.2f}%", theme.loss, "dash", "top left"),
        ]
    for name, x, text, color, dash, position in lines:
        fig.add_vline(
            x=x,
            name=name,
            line={"color": color, "dash": dash, "width": 1.2},
            **(
                {
                    "annotation_text": text,
                    "annotation_position": position,
                    "annotation_font_color": color,
                }
                if text
                else {}
            ),
        )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, bargap=0.02)
    fig.update_xaxes(ticksuffix="%", title_text="return per period")
    fig.update_yaxes(title_text="periods")
    return fig


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
    series = pd.Series(values.to_numpy(), index=x_values(values.index))
    first = float(series.iloc[0])

    def returns(rule: str) -> pd.Series:
        ends = series.resample(rule).last()
        base = ends.ffill().shift(1)
        base.iloc[0] = first
        return (ends / base - 1) * 100

    monthly = returns("ME")
    frame = pd.DataFrame(
        {"year": monthly.index.year, "month": monthly.index.month, "r": monthly.to_numpy()}
    )
    table = frame.pivot(index="year", columns="month", values="r").reindex(columns=range(1, 13))
    table.columns = list(MONTHS)
    yearly = returns("YE")
    table["Year"] = pd.Series(yearly.to_numpy(), index=yearly.index.year).reindex(table.index)
    table.index.name = "year"
    table.columns.name = None
    return table.astype(float)


def monthly_heatmap_figure(table: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Monthly returns as a heatmap, diverging around 0 (down colour below, up above), each
    cell annotated with 1 decimal; the "Year" column is a second heatmap on its own scale."""
    years = [str(y) for y in table.index]
    scale = diverging_scale(theme)
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, column_widths=[12 / 13, 1 / 13], horizontal_spacing=0.01
    )
    for col, names in ((1, list(MONTHS)), (2, ["Year"])):
        z = table.reindex(columns=names).to_numpy(dtype=float)
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=names,
                y=years,
                name="Months" if col == 1 else "Year",
                zmid=0,
                colorscale=scale,
                showscale=False,
                text=cell_text(z, 1, theme),
                texttemplate="%{text}",
                textfont={"size": 11},
                xgap=1,
                ygap=1,
                hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
            ),
            row=1,
            col=col,
        )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, height=max(200, 60 + 22 * len(years)))
    fig.update_xaxes(side="top", showgrid=False, type="category")
    # no tick marks: a year names its row, and the Year column's shared axis drew a dash per row
    fig.update_yaxes(autorange="reversed", showgrid=False, type="category", side="left", ticks="")
    return fig
