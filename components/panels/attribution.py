"""Attribution panel: where an account's PnL and its risk come from, drawn from the tables of
``analytics.attribution`` (the ``app.py attribution --json`` numbers).

>>> label_pnl_figure(pnl_attribution(trips, "label"), theme=DARK)
>>> hour_weekday_figure(cells, theme=LIGHT)        # weekday, hour, trades, net_pnl per cell
>>> bucket_figure(pnl_attribution(trips, "regime"), axis="volatility regime")
>>> risk_figure(risk_attribution(trips, "label"))
>>> alpha_beta_card(fit_dict, "NASDAQ", capital=10_000.0), factor_table(factors)
>>> trip_figure(candles, Timeframe.parse("1d"), trip, fills)

Pure functions: frames in, plotly figures and dash components out. Each table's ``all`` row
is the total and is not drawn as a group. Hours and weekdays are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import html
from plotly.subplots import make_subplots

from components.charts.candles import candle_figure, x_labels
from components.charts.style import PANEL_MARGIN, cell_text, diverging_scale, style_figure
from components.charts.theme import DARK, ChartTheme, rgba
from market.timeframes import Timeframe

ALL = "all"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EMPYRICAL_NOTE = (
    "empyrical: daily returns on start-of-day equity (capital + realised PnL), paired with the "
    "benchmark's close-to-close returns; beta = cov(r, b) / var(b); alpha = (1 + mean daily "
    "alpha)^N - 1"
)
FACTOR_NAMES = {
    "intercept": "intercept (daily alpha)",
    "market": "market (benchmark return)",
    "volatility": "volatility change (known before the day)",
    "momentum": "momentum (trailing 20-day return)",
}


def groups_of(table: pd.DataFrame) -> pd.DataFrame:
    """An attribution table without its ``all`` row."""
    return table.loc[table["group"] != ALL].reset_index(drop=True)


def empty_figure(message: str, theme: ChartTheme = DARK, height: int | None = None) -> go.Figure:
    """A blank figure saying ``message`` in its middle (no axes)."""
    fig = go.Figure()
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, **({"height": height} if height else {}))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"color": theme.level, "size": 13},
    )
    return fig


def _signed_colors(values: np.ndarray, theme: ChartTheme) -> list[str]:
    return [theme.profit if v > 0 else theme.loss if v < 0 else theme.level for v in values]


def _group_hover(table: pd.DataFrame) -> np.ndarray:
    """customdata of a group's bar: trades, wins, win rate [%], average net PnL."""
    return np.column_stack(
        [
            table["trades"].to_numpy(int),
            table["wins"].to_numpy(int),
            table["win_rate"].to_numpy(float) * 100,
            table["avg_net_pnl"].to_numpy(float),
        ]
    )


_GROUP_HOVER = (
    "<b>%{x}</b><br>net PnL %{y:,.2f}<br>%{customdata[0]} trades, %{customdata[1]} wins "
    "(%{customdata[2]:.1f}%)<br>average %{customdata[3]:,.2f}<extra></extra>"
)


def label_pnl_figure(table: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Net PnL per label (bars, profit or loss colour; most profitable first) above each
    label's win rate (bars, 0-100%, a dotted line at 50%). ``table``: ``pnl_attribution(trips,
    "label")``. A trip counts in each of its labels, so the PnL bars overlap and add up to
    more than the total (the table's ``all`` row)."""
    groups = groups_of(table).sort_values("net_pnl", ascending=False, kind="stable")
    if groups.empty:
        return empty_figure("no closed round trips", theme)
    net = groups["net_pnl"].to_numpy(float)
    names = groups["group"].tolist()
    custom = _group_hover(groups)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32], vertical_spacing=0.06
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=net,
            name="Net PnL",
            marker={"color": _signed_colors(net, theme), "line": {"width": 0}},
            customdata=custom,
            hovertemplate=_GROUP_HOVER,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=groups["win_rate"].to_numpy(float) * 100,
            name="Win rate",
            marker={"color": rgba(theme.forming, 0.8), "line": {"width": 0}},
            customdata=custom,
            hovertemplate="<b>%{x}</b><br>win rate %{y:.1f}%<br>%{customdata[1]} of "
            "%{customdata[0]} trades won<extra></extra>",
        ),
        row=2,
        col=1,
    )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(bargap=0.3, showlegend=False)
    fig.update_xaxes(type="category")
    fig.update_xaxes(tickangle=-30, row=2, col=1)
    fig.update_yaxes(title_text="net PnL", tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(
        title_text="win rate", range=[0, 100], ticksuffix="%", tickvals=[0, 50, 100], row=2, col=1
    )
    fig.add_hline(y=0, line={"color": theme.level, "width": 1}, row=1, col=1)
    fig.add_hline(y=50, line={"color": theme.level, "width": 1, "dash": "dot"}, row=2, col=1)
    return fig


def heatmap_grid(cells: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(weekdays, hours, net PnL, trades) of the hour x weekday heatmap from its cells
    (weekday, hour, trades, net_pnl): Monday to Friday, Saturday and Sunday only when traded;
    the hours from the first to the last traded one; NaN (no trade) elsewhere."""
    traded_days = set(cells["weekday"])
    days = [d for d in WEEKDAYS if d in traded_days or d not in ("Sat", "Sun")]
    hours_traded = sorted(int(h) for h in cells["hour"])
    hours = [f"{h:02d}" for h in range(hours_traded[0], hours_traded[-1] + 1)]
    pnl = np.full((len(days), len(hours)), np.nan)
    count = np.zeros((len(days), len(hours)), dtype=int)
    for day, hour, trades, net in cells[["weekday", "hour", "trades", "net_pnl"]].itertuples(
        index=False
    ):
        i, j = days.index(day), hours.index(hour)
        pnl[i, j], count[i, j] = net, trades
    return days, hours, pnl, count


def hour_weekday_figure(cells: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Net PnL per entry weekday (rows) and hour (columns), UTC: a diverging heatmap around
    0, each cell's trade count in its hover; every traded cell is labelled when the grid is
    small enough to read. The cells add up to the net PnL of the trips."""
    if cells.empty:
        return empty_figure("no closed round trips", theme)
    days, hours, pnl, count = heatmap_grid(cells)
    reach = float(np.nanmax(np.abs(pnl))) if np.isfinite(pnl).any() else 0.0
    labelled = pnl.size <= 72
    fig = go.Figure(
        go.Heatmap(
            z=pnl,
            x=hours,
            y=days,
            customdata=count,
            name="Net PnL",
            zmid=0,
            zmin=-reach,
            zmax=reach,
            colorscale=diverging_scale(theme),
            showscale=False,
            xgap=1,
            ygap=1,
            text=cell_text(pnl, 0, theme, reach) if labelled else None,
            texttemplate="%{text}" if labelled else None,
            textfont={"size": 11},
            hovertemplate="%{y} %{x}:00 UTC<br>net PnL %{z:,.2f}<br>%{customdata} trades"
            "<extra></extra>",
        )
    )
    style_figure(fig, theme, hovermode="closest")
    # weekdays on the left: no price scale on the right to keep room for
    fig.update_layout(showlegend=False, margin={**PANEL_MARGIN, "r": 12})
    fig.update_xaxes(type="category", showgrid=False, title_text="entry hour (UTC)")
    fig.update_yaxes(type="category", showgrid=False, autorange="reversed", side="left", ticks="")
    if len(hours) == 1:  # daily bars: every entry at one hour
        fig.update_xaxes(title_text=f"entry hour (UTC): every entry at {hours[0]}:00")
    return fig


REGIME_ORDER = ("low", "medium", "high")


def compact_bucket(name: str) -> str:
    """A size bucket's name as its range in short numbers (the buckets stay in order, the
    axis says what they are): ``2: (4276.81, 6578.54]`` -> ``4.28k-6.58k``, ``1: <= 4276.81``
    -> ``≤ 4.28k``, ``5: > 16769.8`` -> ``> 16.8k``; other names unchanged."""
    head, sep, rest = name.partition(": ")
    if not sep or not head.isdigit():
        return name

    def short(text: str) -> str:
        try:
            value = float(text)
        except ValueError:
            return text
        for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                return f"{value / size:.3g}{unit}"
        return f"{value:.3g}"

    if rest.startswith("(") and rest.endswith("]"):
        low, _, high = rest[1:-1].partition(", ")
        return f"{short(low)}-{short(high)}"
    for op, shown in (("<= ", "≤ "), ("> ", "> ")):
        if rest.startswith(op):
            return f"{shown}{short(rest[len(op) :])}"
    return name


def bucket_figure(
    table: pd.DataFrame, *, axis: str, theme: ChartTheme = DARK, sort: bool = False
) -> go.Figure:
    """Net PnL per group of a ``pnl_attribution`` table (regime, size bucket, ...) in the
    table's order (``sort``: most profitable first), each bar with its trade count."""
    groups = groups_of(table)
    if sort:
        groups = groups.sort_values("net_pnl", ascending=False, kind="stable")
    elif set(groups["group"]) & set(REGIME_ORDER):  # regimes low to high, the rest after
        rank = {name: i for i, name in enumerate(REGIME_ORDER)}
        order = sorted(range(len(groups)), key=lambda i: rank.get(groups["group"].iloc[i], 9))
        groups = groups.iloc[order]
    if groups.empty:
        return empty_figure("no closed round trips", theme)
    net = groups["net_pnl"].to_numpy(float)
    fig = go.Figure(
        go.Bar(
            x=[compact_bucket(g) for g in groups["group"]],
            y=net,
            name="Net PnL",
            marker={"color": _signed_colors(net, theme), "line": {"width": 0}},
            text=[f"{n} trades" for n in groups["trades"]],
            textposition="outside",
            cliponaxis=False,
            textfont={"size": 11},
            customdata=_group_hover(groups),
            hovertemplate=_GROUP_HOVER,
        )
    )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, bargap=0.35)
    names = [compact_bucket(g) for g in groups["group"]]
    fig.update_xaxes(
        type="category",
        title_text=axis,
        tickangle=0,
        tickfont={"size": 11},
        # a range over two lines ("4.28k-" above "6.58k"): five fit side by side at 1280 px
        tickvals=names,
        ticktext=[n.replace("-", "-<br>", 1) for n in names],
    )
    low, high = float(min(net.min(), 0.0)), float(max(net.max(), 0.0))
    room = (high - low) * 0.15 or 1.0  # the counts above (below) the bars
    fig.update_yaxes(
        title_text="net PnL",
        tickformat=",.0f",
        range=[low - (room if low < 0 else 0), high + room],
    )
    fig.add_hline(y=0, line={"color": theme.level, "width": 1})
    return fig


def risk_figure(table: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Each group's share of the variance of daily PnL (``risk_attribution``): horizontal
    bars in percent (they add up to 100%; a negative share is a hedge), hover with the
    contribution, the group's daily standard deviation, correlation and net PnL."""
    groups = groups_of(table)
    share = groups["variance_share"].to_numpy(float) * 100
    if groups.empty or not np.isfinite(share).any():
        return empty_figure("too few days of PnL for a variance", theme)
    order = np.argsort(np.nan_to_num(share, nan=-np.inf), kind="stable")  # largest on top
    groups, share = groups.iloc[order], share[order]
    colors = [theme.line_palette[0] if s >= 0 else theme.forming for s in share]
    custom = groups[["contribution", "std_daily_pnl", "correlation", "net_pnl"]].to_numpy(float)
    fig = go.Figure(
        go.Bar(
            x=share,
            y=groups["group"].tolist(),
            orientation="h",
            name="Share of variance",
            marker={"color": colors, "line": {"width": 0}},
            customdata=custom,
            text=[f"{s:.1f}%" if math.isfinite(s) else "" for s in share],
            textposition="outside",
            cliponaxis=False,
            textfont={"size": 11},
            hovertemplate="<b>%{y}</b><br>share of variance %{x:.2f}%<br>"
            "contribution %{customdata[0]:,.2f}<br>daily std %{customdata[1]:,.2f}<br>"
            "correlation %{customdata[2]:.2f}<br>net PnL %{customdata[3]:,.2f}<extra></extra>",
        )
    )
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, bargap=0.3, height=max(240, 70 + 26 * len(groups)))
    finite = share[np.isfinite(share)]
    low, high = float(min(finite.min(), 0.0)), float(max(finite.max(), 0.0))
    room = (high - low) * 0.18 or 1.0
    fig.update_xaxes(
        ticksuffix="%",
        title_text="share of var(daily PnL)",
        range=[low - (room if low < 0 else 0), high + room],
    )
    fig.update_yaxes(type="category", side="left", showgrid=False, ticks="")
    fig.add_vline(x=0, line={"color": theme.level, "width": 1})
    return fig


# --- skill or market -----------------------------------------------------------------------


def _fixed(value: Any, decimals: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):,.{decimals}f}"


def alpha_beta_card(
    fit: Mapping[str, Any] | None,
    benchmark: str | None,
    *,
    capital: float | None = None,
    error: str | None = None,
    theme: ChartTheme = DARK,
) -> html.Div:
    """Alpha and beta (to 4 decimals, alpha also in percent) against ``benchmark``, the
    convention named and explained, the paired days and the capital they rest on; ``error``
    (or no ``fit``) says what is missing instead."""
    if not benchmark:
        return html.Div("choose a benchmark to measure alpha and beta", className="sl-hint")
    if error and not fit:
        return html.Div(error, className="sl-hint", id="at-alpha-error")
    fit = fit or {}
    alpha, beta = fit.get("alpha"), fit.get("beta")
    per_year = fit.get("periods_per_year", 252)

    def figure(name: str, value: Any, note: str, slug: str) -> dbc.Col:
        tone = theme.text
        if name == "Alpha" and value is not None and math.isfinite(value) and value != 0:
            tone = theme.profit if value > 0 else theme.loss
        return dbc.Col(
            html.Div(
                [
                    html.Div(name, className="small", style={"opacity": 0.8}),
                    html.Div(
                        _fixed(value),
                        id=f"at-{slug}-value",
                        style={"color": tone, "fontSize": "1.35rem", "fontWeight": 600},
                    ),
                    html.Div(note, className="small sl-muted"),
                ],
                className="sl-kpi px-2 py-1",
                style={"border": f"1px solid {theme.grid}"},
            ),
            xs=6,
        )

    pct = "" if alpha is None or not math.isfinite(alpha) else f" ({alpha * 100:+.2f}% a year)"
    head = dbc.Row(
        [
            figure("Alpha", alpha, f"annualised over {per_year:g} days{pct}", "alpha"),
            figure("Beta", beta, f"to {benchmark} daily returns", "beta"),
        ],
        className="g-2 mb-2",
    )
    facts = (
        f"convention {fit.get('convention', 'empyrical')} · {fit.get('observations', 0):,} "
        f"paired days · capital {_fixed(capital, 2)} · risk-free {fit.get('risk_free', 0):g}"
    )
    return html.Div(
        [
            head,
            html.Div(facts, className="small", id="at-convention"),
            html.Div(EMPYRICAL_NOTE, className="small sl-muted mt-1"),
            *([html.Div(error, className="small text-warning mt-1")] if error else []),
        ]
    )


def factor_table(factors: pd.DataFrame, *, theme: ChartTheme = DARK) -> Any:
    """The factor regression (``term, coef, std_err, t_stat``, the model's ``r_squared`` and
    ``n``) as a small table; |t| >= 2 in bold (the coefficient is told from zero)."""
    if factors is None or factors.empty:
        return html.Div("no factor regression", className="sl-hint")
    rows = []
    for term, coef, err, t in factors[["term", "coef", "std_err", "t_stat"]].itertuples(
        index=False
    ):
        strong = t is not None and math.isfinite(t) and abs(t) >= 2
        rows.append(
            html.Tr(
                [
                    html.Td(FACTOR_NAMES.get(term, term)),
                    html.Td(_fixed(coef, 6), className="text-end"),
                    html.Td(_fixed(err, 6), className="text-end"),
                    html.Td(
                        _fixed(t, 2),
                        className="text-end",
                        style={"fontWeight": 700 if strong else 400},
                    ),
                ],
                **{"data-term": term},
            )
        )
    first = factors.iloc[0]
    note = (
        f"OLS of daily returns, n = {int(first['n']):,} days, R² {_fixed(first['r_squared'])},"
        f" adjusted {_fixed(first['adj_r_squared'])}; bold: |t| >= 2"
    )
    head = html.Thead(
        html.Tr(
            [
                html.Th("factor"),
                html.Th("coef", className="text-end"),
                html.Th("std err", className="text-end"),
                html.Th("t-stat", className="text-end"),
            ]
        )
    )
    return html.Div(
        [
            dbc.Table(
                [head, html.Tbody(rows)],
                size="sm",
                className="sl-factor-table mb-1",
                id="at-factor-table",
                style={"color": theme.text},
            ),
            html.Div(note, className="small sl-muted"),
        ]
    )


# --- one round trip ------------------------------------------------------------------------


def trip_figure(
    candles: pd.DataFrame | None,
    timeframe: Timeframe | None,
    trip: Mapping[str, Any],
    fills: pd.DataFrame,
    *,
    theme: ChartTheme = DARK,
    note: str = "",
) -> go.Figure:
    """The bars around a round trip with its fills (buys up, sells down triangles at their
    price and bar) and the trip's span shaded, profit or loss colour; ``note`` when there
    are no bars (a symbol the database does not hold)."""
    if candles is None or candles.empty or timeframe is None:
        return empty_figure(note or "no bars around this trade", theme, height=300)
    fig = candle_figure(
        candles,
        None,
        symbol=f"{trip['symbol']} {timeframe.label}",  # the legend says which bars these are
        timeframe=timeframe,
        view_bars=len(candles),
        theme=theme,
    )
    bar_of = _bar_labels(candles.index, fills["time"], timeframe)
    won = float(trip["net_pnl"]) > 0
    entry, exit_ = _bar_labels(candles.index, [trip["entry_time"], trip["exit_time"]], timeframe)
    fig.add_vrect(
        x0=entry,
        x1=exit_,
        fillcolor=rgba(theme.profit if won else theme.loss, 0.12),
        line={"width": 0},
        layer="below",
        row=1,
        col=1,
    )
    for side, symbol, color in (
        ("buy", "triangle-up", theme.execution_buy),
        ("sell", "triangle-down", theme.execution_sell),
    ):
        mask = (fills["side"] == side).to_numpy()
        if not mask.any():
            continue
        fig.add_trace(
            go.Scatter(
                x=[b for b, keep in zip(bar_of, mask, strict=True) if keep],
                y=fills.loc[mask, "price"].to_numpy(float),
                mode="markers",
                name=side,
                marker={
                    "symbol": symbol,
                    "size": 13,
                    "color": color,
                    "line": {"color": theme.execution_line, "width": 1},
                },
                customdata=np.column_stack(
                    [
                        fills.loc[mask, "volume"].to_numpy(float),
                        fills.loc[mask, "time"].astype(str).to_numpy(),
                    ]
                ),
                hovertemplate=f"{side} %{{y:,.4~f}} x %{{customdata[0]:,.6~f}}<br>"
                "%{customdata[1]}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.update_yaxes(showticklabels=False, row=2, col=1)  # the volume's shape is enough here
    fig.update_layout(
        uirevision=f"trip:{trip.get('trip_id', '')}",
        height=340,
        legend_title={"text": ""},
        margin={"t": 28},
    )
    return fig


def _bar_labels(
    index: pd.DatetimeIndex, times: Sequence[Any] | pd.Series, timeframe: Timeframe
) -> list[str]:
    """The x label of the bar holding each time (the last bar opened at or before it)."""
    stamps = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))
    positions = np.clip(index.searchsorted(stamps, side="right") - 1, 0, len(index) - 1)
    return x_labels(index[positions], timeframe)


__all__ = [
    "ALL",
    "EMPYRICAL_NOTE",
    "WEEKDAYS",
    "alpha_beta_card",
    "bucket_figure",
    "compact_bucket",
    "empty_figure",
    "factor_table",
    "groups_of",
    "heatmap_grid",
    "hour_weekday_figure",
    "label_pnl_figure",
    "risk_figure",
    "trip_figure",
]
