"""Performance panel: KPI cards, equity/drawdown/volume chart, return distribution, monthly
returns and the trade table of one backtest.

>>> stats = compute_metrics(result.equity, result.trades, benchmark=result.benchmark)
>>> kpi_cards(kpi_values(stats, result.settings.cash), id_prefix="perf")
>>> performance_figure(result.equity, result.trades, benchmark=result.benchmark, theme=DARK)
>>> monthly_heatmap_figure(monthly_returns_table(result.equity), theme=LIGHT)

Pure functions: frames in, plotly figures and dash components out; no callbacks here.
Times are drawn in UTC. Each metric's formula is in ``FORMULAS`` and, in full, in
docs/metrics.md under the anchor ``metric_slug(name)``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import html
from plotly.subplots import make_subplots

from analytics.exports import format_duration
from components.charts.theme import DARK, ChartTheme, rgba

NAN = float("nan")
MISSING = "—"  # what a NaN metric shows
METRICS_DOC = "/docs/metrics"  # docs/metrics.md as HTML (app.py serves it)
NET_PNL = "Net PnL [$]"
KPI_KEYS: tuple[str, ...] = (
    NET_PNL,
    "Return [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "Profit Factor",
    "# Trades",
)
KPI_LABELS: dict[str, str] = {
    NET_PNL: "Net PnL",
    "Return [%]": "Return",
    "Sharpe Ratio": "Sharpe",
    "Sortino Ratio": "Sortino",
    "Calmar Ratio": "Calmar",
    "Max. Drawdown [%]": "Max drawdown",
    "Win Rate [%]": "Win rate",
    "Profit Factor": "Profit factor",
    "# Trades": "Trades",
}
# a KPI is "pos" above its pivot and "neg" below; keys without a pivot stay "neutral"
_TONE_PIVOT: dict[str, float] = {
    NET_PNL: 0.0,
    "Return [%]": 0.0,
    "Sharpe Ratio": 0.0,
    "Sortino Ratio": 0.0,
    "Calmar Ratio": 0.0,
    "Max. Drawdown [%]": 0.0,
    "Profit Factor": 1.0,
}
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
_FONT = "Inter, system-ui, -apple-system, Segoe UI, sans-serif"
_THREE_YEARS = pd.Timedelta(days=3 * 365.25)

Tone = Literal["pos", "neg", "neutral"]


def metric_slug(key: str) -> str:
    """``"Max. Drawdown [%]"`` -> ``"max-drawdown"``: the metric's id part and docs anchor."""
    name = re.sub(r"\[[^\]]*\]", "", key).lower()
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-")


@dataclass(frozen=True)
class Formula:
    """A metric's formula in one line, what changes per preset, and its docs/metrics.md anchor."""

    text: str
    note: str
    anchor: str

    def href(self, doc: str = METRICS_DOC) -> str:
        return f"{doc}#{self.anchor}"


def _formula(key: str, text: str, note: str) -> tuple[str, Formula]:
    return key, Formula(text, note, metric_slug(key))


_SAME = "Same under every preset."
_PER_TRADE = "Per trade under every preset."
FORMULAS: dict[str, Formula] = dict(
    [
        _formula(NET_PNL, "Equity Final - initial cash", _SAME + " Net of all costs."),
        _formula("Return [%]", "(V_end - V_0) / V_0 x 100", _SAME),
        _formula("Buy & Hold Return [%]", "(B_end - B_warmup) / B_warmup x 100", _SAME),
        _formula(
            "Return (Ann.) [%]",
            "((1 + g)^N - 1) x 100, g = geometric mean period return",
            "backtesting.py as shown; quantstats: mean(r) x N; trade: mean(trade R) x trades/yr.",
        ),
        _formula(
            "CAGR [%]",
            "((V_end / V_0)^(1 / years) - 1) x 100",
            "Calendar years (backtesting.py, trade); quantstats: years = #returns / 252.",
        ),
        _formula(
            "Volatility (Ann.) [%]",
            "sd(r) x sqrt(N) x 100",
            "quantstats as shown; backtesting.py compounds: sqrt((var + (1+g)^2)^N - (1+g)^2N);"
            " trade: sd of trade returns, ddof 0.",
        ),
        _formula(
            "Sharpe Ratio",
            "(Return (Ann.) - rf) / Volatility (Ann.)",
            "backtesting.py: geometric annualisation; quantstats: mean(r - rf_p) / sd x sqrt(252);"
            " trade: on trade returns, N = trades per year.",
        ),
        _formula(
            "Sortino Ratio",
            "(Return (Ann.) - rf) / (sqrt(mean(min(r, 0)^2)) x sqrt(N))",
            "backtesting.py as shown; quantstats: mean(x) / sqrt(sum(min(x, 0)^2) / n) x sqrt(N);"
            " trade: the same on trade returns.",
        ),
        _formula(
            "Calmar Ratio",
            "Return (Ann.) / |Max. Drawdown|",
            "backtesting.py as shown; quantstats and trade: CAGR / |Max. Drawdown|.",
        ),
        _formula(
            "Max. Drawdown [%]",
            "-max(1 - V_t / max(V_0..V_t)) x 100",
            _SAME + " On the bar equity.",
        ),
        _formula("Avg. Drawdown [%]", "-mean(depth of each drawdown episode) x 100", _SAME),
        _formula(
            "Max. Drawdown Duration",
            "longest time from a peak to the bar that regains it",
            _SAME + " Ceiled to the data resolution.",
        ),
        _formula("Ulcer Index [%]", "sqrt(sum(dd^2) / (n - ddof)) x 100", "ddof 0 for trade."),
        _formula("Exposure Time [%]", "share of bars inside some trade x 100", _SAME),
        _formula("# Trades", "number of closed trades", _SAME),
        _formula("Win Rate [%]", "share of trades with pnl > 0 x 100", _PER_TRADE),
        _formula(
            "Profit Factor",
            "sum(R > 0) / -sum(R < 0), R = trade return",
            _PER_TRADE + " NaN without a losing trade.",
        ),
        _formula("Expectancy [%]", "mean(R) x 100", _PER_TRADE),
        _formula("SQN", "sqrt(#trades) x mean(pnl) / std(pnl, ddof 1)", _PER_TRADE),
        _formula("Avg. Trade Duration", "mean(exit time - entry time)", _PER_TRADE),
        _formula(
            "Omega Ratio",
            "sum(max(x, 0)) / -sum(min(x, 0))",
            "On period returns; trade: on trade returns.",
        ),
        _formula(
            "VaR 95% (Hist.) [%]",
            "5% quantile of r x 100",
            "On period returns; trade: on trade returns.",
        ),
    ]
)


# --- formatting ------------------------------------------------------------------------------


def _number(value: Any) -> float:
    """A metric value as a float; None, NaT and non-numbers are NaN."""
    if value is None or isinstance(value, str | pd.Timestamp | pd.Timedelta):
        return NAN
    try:
        return NAN if pd.isna(value) else float(value)
    except (TypeError, ValueError):
        return NAN


def _is_count(key: str) -> bool:
    return key.startswith(("# ", "Max. Consecutive"))


def format_metric(key: str, value: Any) -> str:
    """Display text of one metric: ``"-$1,234.50"``, ``"12.34%"``, ``"1.07"``, ``"176"``,
    ``"42d"``; NaN, NaT and None show ``"—"``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, pd.Timedelta):
        return format_duration(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M")
    number = float(value)
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if round(number, 2) == 0:  # no "-0.00" for -0.0 or -0.001
        number = 0.0
    if key.endswith("[$]"):
        return f"-${-number:,.2f}" if number < 0 else f"${number:,.2f}"
    if key.endswith("[%]"):
        return f"{number:,.2f}%"
    if _is_count(key):
        return f"{round(number):,}"
    if key.endswith("Duration"):  # in bars when the equity has no DatetimeIndex
        return f"{number:,.0f} bars"
    return f"{number:,.2f}"


# --- KPI cards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    """One KPI: ``value`` (NaN when undefined), ``text`` to show, ``tone`` for its colour."""

    key: str
    label: str
    value: float | int
    text: str
    tone: Tone

    @property
    def slug(self) -> str:
        return metric_slug(self.key)


def _tone(key: str, value: float) -> Tone:
    pivot = _TONE_PIVOT.get(key)
    if pivot is None or math.isnan(value) or value == pivot:
        return "neutral"
    return "pos" if value > pivot else "neg"


def kpi_values(metrics: pd.Series, initial_cash: float) -> list[Kpi]:
    """The :data:`KPI_KEYS` of a compute_metrics Series, formatted and toned.

    >>> [k.text for k in kpi_values(stats, 10_000)][:2]
    ['$17.60', '0.18%']

    Net PnL = Equity Final [$] - ``initial_cash``. A missing key is NaN ("—").
    """
    out = []
    for key in KPI_KEYS:
        if key == NET_PNL:
            value: float | int = _number(metrics.get("Equity Final [$]")) - float(initial_cash)
        else:
            value = _number(metrics.get(key))
        if _is_count(key) and not math.isnan(value):
            value = round(value)
        out.append(Kpi(key, KPI_LABELS[key], value, format_metric(key, value), _tone(key, value)))
    return out


def kpi_style(kpi: Kpi, theme: ChartTheme = DARK) -> dict[str, str]:
    """The value's inline style: profit, loss or text colour by tone."""
    color = {"pos": theme.profit, "neg": theme.loss}.get(kpi.tone, theme.text)
    return {"color": color, "fontSize": "1.15rem", "fontWeight": "600", "whiteSpace": "nowrap"}


def kpi_cards(
    kpis: list[Kpi],
    *,
    id_prefix: str,
    theme: ChartTheme = DARK,
    docs_url: str = METRICS_DOC,
) -> dbc.Row:
    """A row of small cards, one per KPI.

    Each value is an ``html.Div`` with id ``f"{id_prefix}-{kpi.slug}"`` (a callback updates its
    ``children`` with ``kpi.text`` and its ``style`` with :func:`kpi_style`). A label with a
    formula has a "?" (id ``...-help``): hovering shows the formula and the preset note, clicking
    opens ``docs_url#anchor``.
    """
    cols = []
    for kpi in kpis:
        value_id = f"{id_prefix}-{kpi.slug}"
        label: list[Any] = [html.Span(kpi.label, className="sl-kpi-label")]
        extra: list[Any] = []
        formula = FORMULAS.get(kpi.key)
        if formula is not None:
            help_id = f"{value_id}-help"
            label.append(
                html.A(
                    "?",
                    id=help_id,
                    href=formula.href(docs_url),
                    target="_blank",
                    rel="noopener",
                    className="sl-kpi-help ms-1",
                    style={"color": theme.level, "textDecoration": "none", "cursor": "help"},
                )
            )
            extra.append(
                dbc.Tooltip(
                    [
                        html.Div(formula.text, style={"fontFamily": "monospace"}),
                        html.Div(formula.note, className="small mt-1"),
                    ],
                    target=help_id,
                    placement="bottom",
                )
            )
        body = dbc.CardBody(
            [
                html.Div(label, className="small", style={"color": theme.text, "opacity": 0.8}),
                html.Div(
                    kpi.text,
                    id=value_id,
                    className=f"sl-kpi-value sl-kpi-{kpi.tone}",
                    style=kpi_style(kpi, theme),
                ),
                *extra,
            ],
            className="px-2 py-1",
        )
        card = dbc.Card(
            body,
            className="sl-kpi h-100",
            style={"backgroundColor": theme.background, "borderColor": theme.grid},
        )
        cols.append(dbc.Col(card, xs=6, md=4, xl=True))
    return dbc.Row(cols, className="g-2 sl-kpis", id=f"{id_prefix}-kpis")


# --- figures ---------------------------------------------------------------------------------


def style_figure(
    fig: go.Figure, theme: ChartTheme = DARK, *, hovermode: str = "x unified"
) -> go.Figure:
    """Theme colours, compact margins, legend on top, no range slider."""
    axis = {"gridcolor": theme.grid, "zeroline": False, "showline": False, "color": theme.text}
    fig.update_layout(
        template="none",
        paper_bgcolor=theme.background,
        plot_bgcolor=theme.background,
        font={"family": _FONT, "color": theme.text, "size": 12},
        margin={"l": 10, "r": 64, "t": 30, "b": 28},
        showlegend=True,
        legend={
            "orientation": "h",
            "x": 0.0,
            "y": 1.0,
            "xanchor": "left",
            "yanchor": "bottom",
            "bgcolor": "rgba(0,0,0,0)",
        },
        hovermode=hovermode,
        hoverlabel={
            "bgcolor": theme.hover_background,
            "bordercolor": theme.hover_border,
            "font": {"color": theme.hover_text},
        },
    )
    # automargin: long category labels (years, strategy names) are never cut by the margins
    fig.update_xaxes(**axis, rangeslider={"visible": False}, automargin=True)
    fig.update_yaxes(**axis, side="right", automargin=True)
    return fig


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
) -> go.Figure:
    """Equity (NAV) with the buy-and-hold benchmark dashed; drawdown [%]; traded notional.

    Three rows sharing x. Traces by name: "Equity", "Buy & hold" (when ``benchmark`` is given:
    a Series or an OHLC frame, rebased to the equity's first value), "Drawdown" (row 2, <= 0),
    "Traded notional" (row 3, per :func:`volume_period`).
    """
    equity = result_equity.astype(float)
    x = x_values(equity.index)
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, row_heights=[0.56, 0.24, 0.20], vertical_spacing=0.02
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=equity.to_numpy(),
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
                x=x,
                y=_benchmark_values(benchmark, equity).to_numpy(),
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
            x=x,
            y=drawdown_pct(equity).to_numpy(),
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
    lines = [("zero", 0.0, "0", theme.level, "dot", "bottom right")]
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
            annotation_text=text,
            annotation_position=position,
            annotation_font_color=color,
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


def _cell_text(z: np.ndarray) -> list[list[str]]:
    return [["" if math.isnan(v) else f"{v:.1f}" for v in row] for row in z.tolist()]


def monthly_heatmap_figure(table: pd.DataFrame, *, theme: ChartTheme = DARK) -> go.Figure:
    """Monthly returns as a heatmap, diverging around 0 (down colour below, up above), each
    cell annotated with 1 decimal; the "Year" column is a second heatmap on its own scale."""
    years = [str(y) for y in table.index]
    scale = [[0.0, theme.down], [0.5, theme.grid], [1.0, theme.up]]
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
                text=_cell_text(z),
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
    fig.update_yaxes(autorange="reversed", showgrid=False, type="category", side="left")
    return fig


# --- trade table -----------------------------------------------------------------------------

TRADE_TABLE_TEXT_COLUMNS = ("side", "entry_time", "exit_time", "duration", "exit_reason")


def price_decimals(prices: pd.Series | np.ndarray) -> int:
    """Decimals to show for prices of this size: 2 for 1,245.02, 4 for 1.0834, up to 8."""
    values = np.abs(np.asarray(prices, dtype=float))
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        return 2
    return int(min(8, max(2, 4 - math.floor(math.log10(float(np.median(values)))))))


def _number_format(decimals: int, *, suffix: str = "", trim: bool = False) -> dict:
    """An AG Grid valueFormatter: thousands separators, fixed decimals (d3-format)."""
    spec = f",.{decimals}{'~' if trim else ''}f"
    return {
        "function": f"params.value == null ? '' : d3.format('{spec}')(params.value) + '{suffix}'"
    }


def trade_table_columns(decimals: int = 2, theme: ChartTheme = DARK) -> list[dict]:
    """``columnDefs`` of the trade grid (dash-ag-grid); ``decimals`` of the prices (see
    :func:`price_decimals`). Fields are keys of :func:`trade_table_records`; PnL and return
    are coloured profit/loss by sign."""
    signed = {
        "function": f"params.value > 0 ? {{color: '{theme.profit}'}} : "
        f"params.value < 0 ? {{color: '{theme.loss}'}} : null"
    }
    price = _number_format(decimals)
    percent = _number_format(2, suffix="%")
    numeric = {"type": "rightAligned", "filter": "agNumberColumnFilter"}
    return [
        {"field": "id", "headerName": "#", "width": 70, **numeric},
        {"field": "side", "headerName": "Side", "width": 90},
        {"field": "entry_time", "headerName": "Entry (UTC)", "minWidth": 150},
        {"field": "exit_time", "headerName": "Exit (UTC)", "minWidth": 150},
        {"field": "entry_price", "headerName": "Entry price", "valueFormatter": price, **numeric},
        {"field": "exit_price", "headerName": "Exit price", "valueFormatter": price, **numeric},
        {
            "field": "size",
            "headerName": "Size",
            "valueFormatter": _number_format(6, trim=True),
            **numeric,
        },
        {
            "field": "pnl",
            "headerName": "PnL",
            "valueFormatter": _number_format(2),
            "cellStyle": signed,
            **numeric,
        },
        {
            "field": "return_pct",
            "headerName": "Return",
            "valueFormatter": percent,
            "cellStyle": signed,
            **numeric,
        },
        {"field": "duration", "headerName": "Duration", "width": 110},
        {"field": "exit_reason", "headerName": "Exit reason", "width": 130},
        {"field": "mae_pct", "headerName": "MAE", "valueFormatter": percent, **numeric},
        {"field": "mfe_pct", "headerName": "MFE", "valueFormatter": percent, **numeric},
    ]


def _floats(values: pd.Series | np.ndarray, scale: float = 1.0) -> list[float | None]:
    array = np.asarray(values, dtype=float) * scale
    return [None if math.isnan(v) else v for v in array.tolist()]


def _utc_index(values: pd.Series) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(values)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def trade_table_records(trades: pd.DataFrame) -> list[dict]:
    """One dict per trade for the DataTable's ``data``.

    ``id`` is the trade number (1-based; the DataTable's row id); times are "YYYY-MM-DD HH:MM"
    UTC; ``size`` is absolute (the side says the direction); ``return_pct``, ``mae_pct`` and
    ``mfe_pct`` are percent; ``duration`` is text ("42d 4h"). Not shown as columns:
    ``entry_ms``/``exit_ms`` (epoch ms, to zoom the chart on a click) and ``duration_s``.
    NaN is None.
    """
    if not len(trades):
        return []
    entry, exit_ = _utc_index(trades["entry_time"]), _utc_index(trades["exit_time"])
    durations = pd.to_timedelta(trades["duration"]) if "duration" in trades else exit_ - entry
    columns = {
        "id": list(range(1, len(trades) + 1)),
        "side": trades["side"].astype(str).tolist(),
        "entry_time": entry.strftime("%Y-%m-%d %H:%M").tolist(),
        "exit_time": exit_.strftime("%Y-%m-%d %H:%M").tolist(),
        "entry_price": _floats(trades["entry_price"]),
        "exit_price": _floats(trades["exit_price"]),
        "size": _floats(np.abs(trades["size"].to_numpy(dtype=float))),
        "pnl": _floats(trades["pnl"]),
        "return_pct": _floats(trades["return_pct"], 100),
        "duration": [format_duration(d) for d in durations],
        "exit_reason": trades["exit_reason"].astype(str).tolist(),
        "mae_pct": _floats(trades["mae"], 100),
        "mfe_pct": _floats(trades["mfe"], 100),
        "entry_ms": entry.as_unit("ms").asi8.tolist(),
        "exit_ms": exit_.as_unit("ms").asi8.tolist(),
        "duration_s": _floats(pd.Series(durations).dt.total_seconds()),
    }
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def trade_table_style(theme: ChartTheme = DARK) -> dict[str, Any]:
    """The trade grid's theme and behaviour (dash-ag-grid keyword arguments):
    ``AgGrid(**trade_table_style(theme), ...)``. AG Grid's Quartz theme with the chart
    theme's colours; sort, filter, 10 rows a page."""
    params = {
        "backgroundColor": theme.background,
        "foregroundColor": theme.text,
        "headerBackgroundColor": theme.grid,
        "borderColor": theme.grid,
        "rowHoverColor": rgba(theme.line_palette[0], 0.12),
        "accentColor": theme.line_palette[0],
        "fontFamily": _FONT,
        "fontSize": 12,
        "headerFontSize": 12,
        "spacing": 5,
        "wrapperBorderRadius": 4,
    }
    return {
        "dashGridOptions": {
            "theme": {"function": f"themeQuartz.withParams({json.dumps(params)})"},
            "pagination": True,
            "paginationPageSize": 10,
            "paginationPageSizeSelector": [10, 25, 50, 100],
            "animateRows": False,
            "domLayout": "autoHeight",
        },
        "defaultColDef": {
            "sortable": True,
            "filter": True,
            "floatingFilter": True,
            "resizable": True,
            "minWidth": 80,
            "flex": 1,
        },
        "getRowId": "'' + params.data.id",  # a string, as AG Grid wants
    }


def trade_grid(grid_id: str, theme: ChartTheme = DARK, decimals: int = 2) -> Any:
    """The sortable, filterable, paginated trade table (dash-ag-grid); rows from
    :func:`trade_table_records`, a click on a row gives ``cellClicked`` with its ``rowId``."""
    import dash_ag_grid as dag

    return dag.AgGrid(
        id=grid_id,
        columnDefs=trade_table_columns(decimals, theme),
        rowData=[],
        className="sl-grid",
        **trade_table_style(theme),
    )


__all__ = [
    "FORMULAS",
    "KPI_KEYS",
    "MISSING",
    "MONTHS",
    "Formula",
    "Kpi",
    "drawdown_pct",
    "format_metric",
    "kpi_cards",
    "kpi_style",
    "kpi_values",
    "metric_slug",
    "monthly_heatmap_figure",
    "monthly_returns_table",
    "performance_figure",
    "price_decimals",
    "returns_distribution_figure",
    "style_figure",
    "trade_grid",
    "trade_table_columns",
    "trade_table_records",
    "trade_table_style",
    "traded_volume",
    "volume_period",
    "x_values",
]
