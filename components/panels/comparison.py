"""Strategy comparison: two or more runs (strategies or parameter sets) on the same data.

>>> runs = {r.label: r for r in (RunSummary.from_backtest("SMA 10/30", sma_result),
...                              RunSummary.from_backtest("EMA 12/26", ema_result))}
>>> table = comparison_table(runs)
>>> comparison_table_component(table, best_per_row(table), theme=DARK)
>>> equity_overlay_figure(runs, theme=DARK), correlation_heatmap_figure(runs, theme=DARK)

Table columns and figure legends show each run's ``label`` (labels must be unique); a run's
colour is its ``color`` or the theme's ``strategy_palette`` entry of its position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import html

from analytics.metrics import compute_metrics, period_returns
from components.charts.lod import lod_line_positions
from components.charts.style import cell_text, diverging_scale, style_figure
from components.charts.theme import DARK, ChartTheme, rgba
from components.panels.performance import (
    FORMULAS,
    MAX_LINE_POINTS,
    NET_PNL,
    drawdown_pct,
    format_metric,
    x_values,
)

NAN = float("nan")
BEST_MARK = "★"
# used when a theme has no strategy_palette: the dark theme's first eight colours
DEFAULT_PALETTE: tuple[str, ...] = DARK.strategy_palette[:8]
COMPARISON_KEYS: tuple[str, ...] = (
    NET_PNL,
    "Return [%]",
    "Return (Ann.) [%]",
    "CAGR [%]",
    "Volatility (Ann.) [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Max. Drawdown [%]",
    "Max. Drawdown Duration",
    "Ulcer Index [%]",
    "# Trades",
    "Win Rate [%]",
    "Profit Factor",
    "Expectancy [%]",
    "SQN",
    "Exposure Time [%]",
    "Avg. Trade Duration",
)
# True: higher is better; False: lower is better; None: no best (a matter of taste or context).
# Drawdowns, VaR and worst trades are negative: higher (closer to 0) is better.
HIGHER_IS_BETTER: dict[str, bool | None] = {
    NET_PNL: True,
    "Equity Final [$]": True,
    "Equity Peak [$]": True,
    "Return [%]": True,
    "Buy & Hold Return [%]": None,
    "Return (Ann.) [%]": True,
    "Volatility (Ann.) [%]": False,
    "CAGR [%]": True,
    "Sharpe Ratio": True,
    "Sortino Ratio": True,
    "Calmar Ratio": True,
    "Alpha [%]": True,
    "Beta": None,
    "Max. Drawdown [%]": True,
    "Avg. Drawdown [%]": True,
    "Max. Drawdown Duration": False,
    "Avg. Drawdown Duration": False,
    "Ulcer Index [%]": False,
    "Recovery Factor": True,
    "Exposure Time [%]": None,
    "Commissions [$]": False,
    "# Trades": None,
    "Win Rate [%]": True,
    "Best Trade [%]": True,
    "Worst Trade [%]": True,
    "Avg. Trade [%]": True,
    "Max. Trade Duration": None,
    "Avg. Trade Duration": None,
    "Profit Factor": True,
    "Expectancy [%]": True,
    "SQN": True,
    "Kelly Criterion": True,
    "Payoff Ratio": True,
    "Max. Consecutive Wins": True,
    "Max. Consecutive Losses": False,
    "Omega Ratio": True,
    "VaR 95% (Hist.) [%]": True,
    "VaR 95% (Param.) [%]": True,
    "CVaR 95% (Hist.) [%]": True,
    "CVaR 95% (Param.) [%]": True,
    "Tail Ratio": True,
    "Skew": None,
    "Kurtosis (Excess)": None,
}
# values within this relative distance tie (the same result computed along two paths)
TIE_REL_TOL = 1e-12


@dataclass(frozen=True)
class RunSummary:
    """One run to compare: its equity curve, trades frame, compute_metrics Series, colour."""

    label: str
    equity: pd.Series
    trades: pd.DataFrame
    metrics: pd.Series
    color: str | None = None

    @classmethod
    def from_backtest(
        cls, label: str, result: Any, *, preset: str = "backtesting.py", color: str | None = None
    ) -> RunSummary:
        """From a BacktestResult, metrics computed under ``preset`` (benchmark included)."""
        metrics = compute_metrics(
            result.equity, result.trades, benchmark=result.benchmark, preset=preset
        )
        return cls(label, result.equity, result.trades, metrics, color)


def _labels(runs: Mapping[str, RunSummary]) -> list[str]:
    labels = [run.label for run in runs.values()]
    if len(set(labels)) != len(labels):
        raise ValueError(f"run labels must be unique, got {labels}")
    return labels


def run_colors(runs: Mapping[str, RunSummary], theme: ChartTheme = DARK) -> dict[str, str]:
    """Label -> colour: the run's own, else the palette entry of its position (cycling)."""
    palette = tuple(getattr(theme, "strategy_palette", ()) or DEFAULT_PALETTE)
    return {
        run.label: run.color or palette[i % len(palette)] for i, run in enumerate(runs.values())
    }


def _metric(run: RunSummary, key: str) -> Any:
    if key == NET_PNL and key not in run.metrics.index:
        final = run.metrics.get("Equity Final [$]")
        if final is None or not len(run.equity):
            return NAN
        return float(final) - float(run.equity.iloc[0])
    return run.metrics.get(key, NAN)


def comparison_table(
    runs: Mapping[str, RunSummary], keys: Sequence[str] = COMPARISON_KEYS
) -> pd.DataFrame:
    """Metrics as rows (``keys``, in order), runs as columns (labels); object dtype, the values
    as compute_metrics gives them (floats, ints, Timedeltas). Net PnL [$], when the metrics
    lack it, is Equity Final [$] minus the first equity value; other missing keys are NaN."""
    labels = _labels(runs)
    data = {
        label: [_metric(run, k) for k in keys]
        for label, run in zip(labels, runs.values(), strict=True)
    }
    return pd.DataFrame(data, index=list(keys), columns=labels, dtype=object)


def _comparable(value: Any) -> float:
    """A number to rank by: Timedeltas in seconds; NaN, NaT, None and text are NaN."""
    if isinstance(value, pd.Timedelta):
        return NAN if pd.isna(value) else value.total_seconds()
    if value is None or isinstance(value, str):
        return NAN
    try:
        number = float(value)
    except (TypeError, ValueError):
        return NAN
    return number


def best_per_row(
    table: pd.DataFrame, higher_is_better: Mapping[str, bool | None] = HIGHER_IS_BETTER
) -> dict[str, tuple[str, ...]]:
    """Row -> the columns holding its best value (all of them on a tie, within
    :data:`TIE_REL_TOL`). Rows whose direction is None or unknown, and rows with fewer than two
    columns, have no best; NaN is never best. Timedeltas compare by length.
    """
    best: dict[str, tuple[str, ...]] = {}
    if table.shape[1] < 2:
        return best
    for row, values in table.iterrows():
        higher = higher_is_better.get(str(row))
        if higher is None:
            continue
        numbers = {col: _comparable(v) for col, v in values.items()}
        numbers = {col: v for col, v in numbers.items() if not math.isnan(v)}
        if not numbers:
            continue
        target = max(numbers.values()) if higher else min(numbers.values())
        best[str(row)] = tuple(
            col
            for col, v in numbers.items()
            if v == target or math.isclose(v, target, rel_tol=TIE_REL_TOL, abs_tol=0.0)
        )
    return best


def comparison_table_component(
    table: pd.DataFrame,
    best: Mapping[str, Sequence[str]],
    *,
    theme: ChartTheme = DARK,
    table_id: str | None = None,
) -> dbc.Table:
    """A compact table of the formatted values; each best cell is bold, tinted and starred
    (``"★ 1.23"``). A metric's name carries its formula as a tooltip (``title``)."""
    border = f"1px solid {theme.grid}"
    cell = {"padding": "2px 8px", "borderBottom": border, "textAlign": "right"}
    best_cell = {
        **cell,
        "fontWeight": "700",
        "color": theme.profit,
        "backgroundColor": rgba(theme.profit, 0.12),
    }
    header = html.Thead(
        html.Tr(
            [
                html.Th("Metric", style={**cell, "textAlign": "left"}),
                *(html.Th(str(c), style=cell) for c in table.columns),
            ]
        )
    )
    rows = []
    for key, values in table.iterrows():
        winners = set(best.get(str(key), ()))
        formula = FORMULAS.get(str(key))
        tip = {"title": f"{formula.text} ({formula.note})"} if formula else {}
        cells = [
            html.Th(
                str(key),
                scope="row",
                style={**cell, "textAlign": "left", "fontWeight": "400"},
                **tip,
            )
        ]
        for column, value in values.items():
            text = format_metric(str(key), value)
            if column in winners:
                cells.append(html.Td(f"{BEST_MARK} {text}", className="sl-best", style=best_cell))
            else:
                cells.append(html.Td(text, style=cell))
        rows.append(html.Tr(cells))
    kwargs = {"id": table_id} if table_id is not None else {}
    return dbc.Table(
        [header, html.Tbody(rows)],
        size="sm",
        hover=True,
        borderless=True,
        className="sl-comparison mb-0",
        style={
            "color": theme.text,
            "backgroundColor": theme.background,
            "--bs-table-bg": theme.background,
            "--bs-table-color": theme.text,
            "--bs-table-hover-bg": rgba(theme.grid, 0.6),
            "--bs-table-hover-color": theme.text,
            "fontSize": "12px",
        },
        **kwargs,
    )


# --- figures ---------------------------------------------------------------------------------


def _line(x: Any, y: np.ndarray, name: str, color: str, hover: str) -> go.Scatter:
    """A run's line, of at most MAX_LINE_POINTS points (the extremes of its runs kept)."""
    keep = lod_line_positions(y, MAX_LINE_POINTS)
    if len(keep) < len(y):
        x, y = x[keep], y[keep]
    return go.Scatter(
        x=x, y=y, name=name, mode="lines", line={"color": color, "width": 1.5}, hovertemplate=hover
    )


def equity_overlay_figure(
    runs: Mapping[str, RunSummary], *, theme: ChartTheme = DARK, normalise: bool = True
) -> go.Figure:
    """One equity line per run; ``normalise``: rebased to 100 at each run's first value."""
    colors = run_colors(runs, theme)
    fig = go.Figure()
    for label, run in zip(_labels(runs), runs.values(), strict=True):
        equity = run.equity.astype(float)
        y = equity / float(equity.iloc[0]) * 100 if normalise and len(equity) else equity
        fig.add_trace(
            _line(x_values(equity.index), y.to_numpy(), label, colors[label], "%{y:,.2f}")
        )
    style_figure(fig, theme)
    fig.update_yaxes(
        tickformat=",.0f", title_text="equity (start = 100)" if normalise else "equity"
    )
    return fig


def drawdown_overlay_figure(
    runs: Mapping[str, RunSummary], *, theme: ChartTheme = DARK
) -> go.Figure:
    """One drawdown [%] line per run (<= 0, from each run's running peak)."""
    colors = run_colors(runs, theme)
    fig = go.Figure()
    for label, run in zip(_labels(runs), runs.values(), strict=True):
        dd = drawdown_pct(run.equity)
        fig.add_trace(_line(x_values(dd.index), dd.to_numpy(), label, colors[label], "%{y:.2f}%"))
    style_figure(fig, theme)
    fig.update_yaxes(ticksuffix="%", tickformat=".0f", title_text="drawdown")
    return fig


def returns_correlation(runs: Mapping[str, RunSummary]) -> pd.DataFrame:
    """Pearson correlation of the runs' period returns (analytics.metrics.period_returns:
    daily for daily and intraday bars), on the dates all runs share; labels x labels."""
    labels = _labels(runs)
    returns = [period_returns(run.equity, "backtesting.py") for run in runs.values()]
    aligned = pd.concat(returns, axis=1, join="inner", keys=labels)
    return aligned.corr()


def correlation_heatmap_figure(
    runs: Mapping[str, RunSummary], *, theme: ChartTheme = DARK
) -> go.Figure:
    """Heatmap of :func:`returns_correlation`, -1..1 on a diverging scale, 2 decimals."""
    corr = returns_correlation(runs)
    z = corr.to_numpy(dtype=float)
    labels = [str(c) for c in corr.columns]
    text = cell_text(z, 2, theme, reach=1.0)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            zmin=-1,
            zmax=1,
            zmid=0,
            colorscale=diverging_scale(theme),
            text=text,
            texttemplate="%{text}",
            xgap=1,
            ygap=1,
            colorbar={"thickness": 10, "tickfont": {"color": theme.text}},
            hovertemplate="%{y} / %{x}: %{z:.3f}<extra></extra>",
        )
    )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False)
    fig.update_xaxes(showgrid=False, type="category")
    fig.update_yaxes(showgrid=False, type="category", autorange="reversed", side="left")
    return fig


def risk_return_scatter_figure(
    runs: Mapping[str, RunSummary], *, theme: ChartTheme = DARK
) -> go.Figure:
    """One marker per run: x = Volatility (Ann.) [%], y = Return (Ann.) [%], labelled; the
    hover adds Sharpe and Max. Drawdown. Both from the run's metrics (its preset)."""
    colors = run_colors(runs, theme)
    labels = _labels(runs)
    points = {
        label: [
            _comparable(run.metrics.get(k, NAN))
            for k in (
                "Volatility (Ann.) [%]",
                "Return (Ann.) [%]",
                "Sharpe Ratio",
                "Max. Drawdown [%]",
            )
        ]
        for label, run in zip(labels, runs.values(), strict=True)
    }
    xs = [p[0] for p in points.values() if math.isfinite(p[0])]
    ys = [p[1] for p in points.values() if math.isfinite(p[1])]
    fig = go.Figure()
    for label, (x, y, sharpe, max_dd) in points.items():
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                name=label,
                mode="markers+text",
                text=[label],
                textposition=_label_position(x, xs),
                textfont={"color": colors[label]},
                cliponaxis=False,  # a label near the plot's edge runs into the margin, uncut
                marker={"color": colors[label], "size": 12, "line": {"width": 0}},
                customdata=[[sharpe, max_dd]],
                hovertemplate=(
                    f"<b>{label}</b><br>return %{{y:.2f}}% / yr<br>volatility %{{x:.2f}}%"
                    "<br>Sharpe %{customdata[0]:.2f}<br>max DD %{customdata[1]:.2f}%"
                    "<extra></extra>"
                ),
            )
        )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False)  # each marker is labelled
    fig.update_xaxes(
        ticksuffix="%", title_text="volatility (ann.)", zeroline=True, range=_padded(xs, 0.15)
    )
    fig.update_yaxes(
        ticksuffix="%",
        title_text="return (ann.)",
        side="left",
        zeroline=True,
        zerolinecolor=theme.level,
        range=_padded(ys, 0.2),
    )
    return fig


def _label_position(x: float, xs: list[float]) -> str:
    """Where a marker's label goes: towards the middle for the leftmost and rightmost markers
    (a centred long label would run off the plot), centred above the others."""
    if len(xs) < 2 or not math.isfinite(x) or min(xs) == max(xs):
        return "top center"
    if x == min(xs):
        return "top right"
    return "top left" if x == max(xs) else "top center"


def _padded(values: list[float], share: float) -> list[float] | None:
    """An axis range holding ``values`` with ``share`` of their span (at least 1) either side
    (room for the labels above and beside the markers); None (autorange) without values."""
    if not values:
        return None
    low, high = min(values), max(values)
    pad = max((high - low) * share, 1.0)
    return [low - pad, high + pad]


__all__ = [
    "BEST_MARK",
    "COMPARISON_KEYS",
    "DEFAULT_PALETTE",
    "HIGHER_IS_BETTER",
    "RunSummary",
    "best_per_row",
    "comparison_table",
    "comparison_table_component",
    "correlation_heatmap_figure",
    "drawdown_overlay_figure",
    "equity_overlay_figure",
    "returns_correlation",
    "risk_return_scatter_figure",
    "run_colors",
]
