"""Performance panel: KPI values and cards, the equity/drawdown/volume figure, the return
distribution, monthly returns and the trade table, checked against independent computations
on a real backtest (SMA 10/30 long and short on the SP500 sample)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from dash.development.base_component import Component
from plotly.subplots import make_subplots

from analytics.backtest import BacktestResult, run_backtest
from analytics.metrics import compute_metrics, period_returns
from components.charts.theme import DARK, LIGHT, THEMES, ChartTheme, rgba
from components.panels.performance import (
    FORMULAS,
    KPI_KEYS,
    MISSING,
    MONTHS,
    format_metric,
    kpi_cards,
    kpi_values,
    metric_slug,
    monthly_heatmap_figure,
    monthly_returns_table,
    performance_figure,
    price_decimals,
    returns_distribution_figure,
    trade_table_columns,
    trade_table_records,
    trade_table_style,
    traded_volume,
    volume_period,
)
from market.sample_data import load_sample
from strategies.registry import create

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


@pytest.fixture(scope="module")
def run() -> tuple[BacktestResult, pd.Series]:
    candles = load_sample("SP500")
    strategy = create("sma_crossover", fast=10, slow=30, direction="both")
    result = run_backtest(candles, strategy.generate(candles, symbol="SP500", timeframe="1d"))
    return result, compute_metrics(result.equity, result.trades, benchmark=result.benchmark)


def walk(component: object):
    """Every dash component in a tree, depth first."""
    if isinstance(component, Component):
        yield component
        yield from walk(getattr(component, "children", None))
    elif isinstance(component, list | tuple):
        for child in component:
            yield from walk(child)


def trace(fig, name: str):
    (found,) = [t for t in fig.data if t.name == name]
    return found


# --- KPIs ------------------------------------------------------------------------------------


def test_kpi_values_follow_the_metrics(run: tuple[BacktestResult, pd.Series]) -> None:
    result, metrics = run
    kpis = {k.key: k for k in kpi_values(metrics, result.settings.cash)}
    assert list(kpis) == list(KPI_KEYS)
    net = result.equity.iloc[-1] - result.settings.cash
    assert kpis["Net PnL [$]"].value == pytest.approx(net, rel=1e-12)
    assert kpis["Net PnL [$]"].text == f"${net:,.2f}"
    assert kpis["# Trades"].value == len(result.trades)
    assert isinstance(kpis["# Trades"].value, int)
    for key in KPI_KEYS[1:-1]:
        assert kpis[key].value == metrics[key]
    dd = metrics["Max. Drawdown [%]"]
    assert dd < 0
    assert kpis["Max. Drawdown [%]"].text == f"{dd:.2f}%"
    assert kpis["Max. Drawdown [%]"].tone == "neg"
    assert kpis["Win Rate [%]"].tone == "neutral"


def test_kpi_text_formatting_and_tones() -> None:
    metrics = pd.Series(
        {
            "Equity Final [$]": 8_765.5,
            "Return [%]": 12.3456,
            "Sharpe Ratio": float("nan"),
            "Sortino Ratio": -0.5,
            "Max. Drawdown [%]": 0.0,
            "Win Rate [%]": 50.0,
            "Profit Factor": 0.5,
            "# Trades": 1234,
        },
        dtype=object,
    )  # no Calmar Ratio: a missing key is NaN
    kpis = {k.key: k for k in kpi_values(metrics, 10_000)}
    expect = {
        "Net PnL [$]": ("-$1,234.50", "neg"),
        "Return [%]": ("12.35%", "pos"),
        "Sharpe Ratio": (MISSING, "neutral"),
        "Sortino Ratio": ("-0.50", "neg"),
        "Calmar Ratio": (MISSING, "neutral"),
        "Max. Drawdown [%]": ("0.00%", "neutral"),
        "Win Rate [%]": ("50.00%", "neutral"),
        "Profit Factor": ("0.50", "neg"),
        "# Trades": ("1,234", "neutral"),
    }
    assert {k: (v.text, v.tone) for k, v in kpis.items()} == expect
    assert math.isnan(kpis["Sharpe Ratio"].value)
    assert math.isnan(kpis["Calmar Ratio"].value)
    big = kpi_values(pd.Series({"Equity Final [$]": 1_244_567.891}, dtype=object), 10_000)
    assert big[0].text == "$1,234,567.89"


def test_format_metric_special_values() -> None:
    assert format_metric("Avg. Trade Duration", pd.Timedelta(days=42, hours=4)) == "42d 4h"
    assert format_metric("Max. Drawdown Duration", pd.NaT) == MISSING
    assert format_metric("Profit Factor", None) == MISSING
    assert format_metric("Profit Factor", float("inf")) == "∞"
    assert format_metric("Max. Drawdown [%]", -0.0) == "0.00%"
    assert format_metric("Sharpe Ratio", -0.004) == "0.00"
    assert format_metric("Sharpe Ratio", -0.005001) == "-0.01"
    assert format_metric("Net PnL [$]", -0.001) == "$0.00"
    assert format_metric("Max. Drawdown Duration", 12) == "12 bars"
    assert format_metric("Start", pd.Timestamp("2024-01-02 09:30", tz="UTC")) == "2024-01-02 09:30"


def test_kpi_cards_have_stable_ids_and_formula_links(
    run: tuple[BacktestResult, pd.Series],
) -> None:
    result, metrics = run
    kpis = kpi_values(metrics, result.settings.cash)
    row = kpi_cards(kpis, id_prefix="perf", theme=LIGHT)
    by_id = {c.id: c for c in walk(row) if getattr(c, "id", None)}
    tooltips = {c.target: c for c in walk(row) if type(c).__name__ == "Tooltip"}
    for kpi in kpis:
        value = by_id[f"perf-{kpi.slug}"]
        assert value.children == kpi.text
        colour = {"pos": LIGHT.profit, "neg": LIGHT.loss, "neutral": LIGHT.text}[kpi.tone]
        assert value.style["color"] == colour
        help_link = by_id[f"perf-{kpi.slug}-help"]
        formula = FORMULAS[kpi.key]
        assert help_link.href == f"/docs/metrics#{formula.anchor}"
        tip_text = [c.children for c in walk(tooltips[help_link.id].children)]
        assert formula.text in tip_text
        assert formula.note in tip_text
    assert by_id["perf-sharpe-ratio"].children == f"{metrics['Sharpe Ratio']:.2f}"


def test_every_formula_anchor_is_in_the_docs() -> None:
    anchors = re.findall(r'<a id="([^"]+)"></a>', DOCS.read_text())
    assert len(anchors) == len(set(anchors))
    for key, formula in FORMULAS.items():
        assert formula.anchor == metric_slug(key)
        assert formula.anchor in anchors, key
    assert metric_slug("Max. Drawdown [%]") == "max-drawdown"
    assert metric_slug("# Trades") == "trades"
    assert metric_slug("VaR 95% (Hist.) [%]") == "var-95-hist"


# --- performance figure ----------------------------------------------------------------------


@pytest.mark.parametrize("theme_name", sorted(THEMES))
def test_performance_figure_values(run: tuple[BacktestResult, pd.Series], theme_name) -> None:
    result, _ = run
    theme: ChartTheme = THEMES[theme_name]
    every = len(result.equity)  # every point drawn (by default a long line is thinned)
    fig = performance_figure(
        result.equity, result.trades, benchmark=result.benchmark, theme=theme, max_points=every
    )
    assert [t.name for t in fig.data] == ["Equity", "Buy & hold", "Drawdown", "Traded notional"]
    equity = result.equity.to_numpy()
    np.testing.assert_array_equal(trace(fig, "Equity").y, equity)
    np.testing.assert_allclose(trace(fig, "Buy & hold").y, result.benchmark, rtol=1e-12)
    drawdown = trace(fig, "Drawdown")
    expected = 1 - equity / np.maximum.accumulate(equity)
    np.testing.assert_allclose(-np.asarray(drawdown.y) / 100, expected, rtol=0, atol=1e-15)
    assert expected.max() > 0.3  # the run has a deep drawdown to draw
    assert drawdown.fill == "tozeroy"
    assert drawdown.line.color == theme.loss
    assert list(pd.DatetimeIndex(drawdown.x)) == list(result.equity.index.tz_convert(None))
    assert fig.layout.paper_bgcolor == theme.background
    assert fig.layout.legend.orientation == "h"
    assert fig.layout.xaxis.rangeslider.visible is False
    # shared x: rows 1 and 2 follow the bottom row's axis
    assert (fig.layout.xaxis.matches, fig.layout.xaxis2.matches) == ("x3", "x3")


def test_performance_figure_draws_a_long_line_from_its_extremes(
    run: tuple[BacktestResult, pd.Series],
) -> None:
    result, _ = run
    equity = result.equity.to_numpy()
    assert len(equity) > 4 * 400  # thinned below
    fig = performance_figure(result.equity, result.trades, benchmark=result.benchmark,
                             max_points=400)  # fmt: skip
    times = result.equity.index.tz_convert(None)
    drawdown = (equity / np.maximum.accumulate(equity) - 1) * 100
    benchmark = result.benchmark.to_numpy()
    for name, full in (("Equity", equity), ("Drawdown", drawdown), ("Buy & hold", benchmark)):
        line = trace(fig, name)
        y, x = np.asarray(line.y, dtype=float), pd.DatetimeIndex(line.x)
        assert 4 < len(y) <= 400
        assert x.is_monotonic_increasing
        assert x.is_unique
        # each drawn point is the series' own at its time; first, last, min and max kept
        positions = times.get_indexer(x)
        assert (positions >= 0).all()
        np.testing.assert_allclose(y, full[positions], rtol=1e-12)
        assert (positions[0], positions[-1]) == (0, len(full) - 1)
        assert y.min() == pytest.approx(full.min(), rel=1e-12)
        assert y.max() == pytest.approx(full.max(), rel=1e-12)
        # every run of ceil(n / 100) bars keeps its own low and high
        size = -(-len(full) // 100)
        for start in range(0, len(full), size):
            chunk = full[start : start + size]
            inside = y[(positions >= start) & (positions < start + size)]
            assert inside.min() == chunk.min()
            assert inside.max() == chunk.max()


def test_performance_figure_volume_is_monthly_over_three_years(
    run: tuple[BacktestResult, pd.Series],
) -> None:
    result, _ = run
    trades = result.trades
    fig = performance_figure(result.equity, trades)
    assert [t.name for t in fig.data] == ["Equity", "Drawdown", "Traded notional"]
    bars = trace(fig, "Traded notional")
    # hand-rolled: every fill's |size| x price, grouped by its (year, month)
    fills = pd.DataFrame(
        {
            "time": list(trades["entry_time"]) + list(trades["exit_time"]),
            "notional": list(trades["size"].abs() * trades["entry_price"])
            + list(trades["size"].abs() * trades["exit_price"]),
        }
    )
    times = pd.DatetimeIndex(fills["time"])
    expected = fills.groupby([times.year, times.month])["notional"].sum()
    got = pd.Series(np.asarray(bars.y), index=pd.DatetimeIndex(bars.x))
    assert (got.index.day == 1).all()
    assert list(zip(got.index.year, got.index.month, strict=True)) == list(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_traded_volume_intraday_is_per_day() -> None:
    t = pd.to_datetime(
        ["2024-01-01 09:30", "2024-01-01 15:00", "2024-01-02 10:00", "2024-01-02 23:59"], utc=True
    )
    trades = pd.DataFrame(
        {
            "entry_time": [t[0], t[2]],
            "exit_time": [t[1], t[3]],
            "size": [2.0, -3.0],
            "entry_price": [100.0, 110.0],
            "exit_price": [105.0, 100.0],
        }
    )
    index = pd.date_range("2024-01-01", periods=2 * 24 * 60, freq="min", tz="UTC")
    assert volume_period(index) == "D"
    volume = traded_volume(trades, volume_period(index))
    assert list(volume.index) == list(pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True))
    assert volume.tolist() == [2 * 100 + 2 * 105, 3 * 110 + 3 * 100]
    assert volume_period(pd.date_range("2020-01-01", "2022-12-31", freq="D")) == "D"
    assert volume_period(pd.date_range("2020-01-01", "2023-01-02", freq="D")) == "M"
    assert traded_volume(trades.iloc[:0]).empty


def test_returns_distribution_lines(run: tuple[BacktestResult, pd.Series]) -> None:
    result, metrics = run
    returns = period_returns(result.equity)
    fig = returns_distribution_figure(returns, theme=DARK)
    assert len(fig.data[0].x) == len(returns)
    shapes = {s.name: s.x0 for s in fig.layout.shapes}
    assert shapes["zero"] == 0
    # the mean and VaR lines are labelled; the zero line is named by the axis' 0% tick only
    labels = sorted(a.text for a in fig.layout.annotations)
    assert labels == sorted([f"mean {returns.mean() * 100:.2f}%", f"VaR 95% {shapes['VaR']:.2f}%"])
    assert shapes["mean"] == pytest.approx(returns.mean() * 100, rel=1e-12)
    # the same historical VaR compute_metrics reports
    assert shapes["VaR"] == pytest.approx(metrics["VaR 95% (Hist.) [%]"], rel=1e-12)
    fig99 = returns_distribution_figure(returns, theme=DARK, var_confidence=0.99)
    var99 = {s.name: s.x0 for s in fig99.layout.shapes}["VaR"]
    assert var99 < shapes["VaR"]
    with pytest.raises(ValueError, match="var_confidence"):
        returns_distribution_figure(returns, var_confidence=95)


# --- monthly returns -------------------------------------------------------------------------


def test_monthly_table_against_month_end_groupby(run: tuple[BacktestResult, pd.Series]) -> None:
    equity = run[0].equity
    month_end = equity.groupby([equity.index.year, equity.index.month]).last()
    base = month_end.shift(1)
    base.iloc[0] = equity.iloc[0]
    expected = (month_end / base - 1) * 100
    table = monthly_returns_table(equity)
    assert list(table.columns) == [*MONTHS, "Year"]
    assert list(table.index) == list(range(1999, 2019))
    got = table[list(MONTHS)].stack()
    assert len(got) == len(expected)  # every month of the sample has data
    for (year, month), value in expected.items():
        assert table.loc[year, MONTHS[month - 1]] == pytest.approx(value, rel=1e-12, abs=1e-12)
    compounded = (1 + table[list(MONTHS)] / 100).prod(axis=1) - 1
    np.testing.assert_allclose(compounded * 100, table["Year"], rtol=1e-9, atol=1e-12)
    assert table.loc[2018, "Year"] == pytest.approx(
        (equity["2018"].iloc[-1] / equity["2017"].iloc[-1] - 1) * 100, rel=1e-12
    )


def _resampled_table(equity: pd.Series) -> pd.DataFrame:
    """The monthly table through pandas' resample: month and year ends, the ends forward
    filled over periods without data, pivoted (the reference of the test below)."""
    series = equity.astype(float).dropna()
    series.index = series.index.tz_convert(None)

    def returns(rule: str) -> pd.Series:
        ends = series.resample(rule).last()
        base = ends.ffill().shift(1)
        base.iloc[0] = series.iloc[0]
        return (ends / base - 1) * 100

    monthly = returns("ME")
    frame = pd.DataFrame({"y": monthly.index.year, "m": monthly.index.month, "r": monthly.values})
    table = frame.pivot(index="y", columns="m", values="r").reindex(columns=range(1, 13))
    table.columns = list(MONTHS)
    yearly = returns("YE")
    table["Year"] = pd.Series(yearly.values, index=yearly.index.year).reindex(table.index)
    table.index.name, table.columns.name = "year", None
    return table.astype(float)


@pytest.mark.parametrize("seed", range(12))
def test_monthly_table_equals_pandas_resample(seed: int) -> None:
    """Random curves at several frequencies, with gaps, a whole year without data and NaN
    values: the same table, value for value, as pandas' resample gives."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4000))
    index = pd.date_range("2018-12-30", periods=n, freq=["h", "D", "6h", "W", "37min"][seed % 5],
                          tz="UTC")  # fmt: skip
    keep = rng.random(n) > (0.3 if seed % 3 == 0 else 0.0)
    if seed % 4 == 0:
        keep[index.year == 2019] = False
    equity = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), index=index)[keep]
    if seed % 6 == 0 and len(equity) > 3:
        equity.iloc[1] = np.nan
    if equity.dropna().empty:
        assert monthly_returns_table(equity).empty
        return
    pd.testing.assert_frame_equal(monthly_returns_table(equity), _resampled_table(equity))


def test_monthly_table_month_without_data_is_nan() -> None:
    jan = pd.date_range("2021-01-04", periods=3, freq="D", tz="UTC")
    mar = pd.date_range("2021-03-01", periods=2, freq="D", tz="UTC")
    equity = pd.Series([100.0, 101.0, 102.0, 110.0, 99.0], index=jan.append(mar))
    table = monthly_returns_table(equity)
    assert list(table.index) == [2021]
    row = table.loc[2021]
    assert row["Jan"] == pytest.approx(2.0)
    assert math.isnan(row["Feb"])
    assert row["Mar"] == pytest.approx((99 / 102 - 1) * 100)  # over January's end
    assert row[list(MONTHS[3:])].isna().all()
    assert row["Year"] == pytest.approx(-1.0)
    assert monthly_returns_table(equity.iloc[:0]).empty


def test_monthly_heatmap_cells_and_colours(run: tuple[BacktestResult, pd.Series]) -> None:
    table = monthly_returns_table(run[0].equity)
    table.loc[1999, "Jan"] = np.nan
    fig = monthly_heatmap_figure(table, theme=LIGHT)
    months, year = fig.data
    np.testing.assert_array_equal(np.asarray(months.z, dtype=float), table[list(MONTHS)])
    np.testing.assert_array_equal(np.asarray(year.z, dtype=float)[:, 0], table["Year"])
    assert months.text[0][0] == ""
    assert _label(months.text[0][1]) == f"{table.loc[1999, 'Feb']:.1f}"
    assert _label(year.text[1][0]) == f"{table.loc[2000, 'Year']:.1f}"
    assert months.zmid == 0
    assert months.colorscale[0][1] == LIGHT.down
    assert months.colorscale[-1][1] == LIGHT.up
    assert list(months.y) == [str(y) for y in table.index]


# --- trade table -----------------------------------------------------------------------------


def test_trade_table_records(run: tuple[BacktestResult, pd.Series]) -> None:
    trades = run[0].trades
    records = trade_table_records(trades)
    assert len(records) == len(trades)
    ids = {c["field"] for c in trade_table_columns()}
    assert ids <= set(records[0])
    for i in (0, len(trades) - 1):
        record, trade = records[i], trades.iloc[i]
        assert record["id"] == i + 1
        assert record["side"] == trade["side"]
        assert record["entry_time"] == trade["entry_time"].strftime("%Y-%m-%d %H:%M")
        assert record["exit_ms"] == trade["exit_time"].value // 1_000_000
        assert record["entry_ms"] == pd.Timestamp(record["entry_time"], tz="UTC").value // 10**6
        assert record["size"] == abs(trade["size"])
        assert record["pnl"] == trade["pnl"]
        assert record["return_pct"] == pytest.approx(trade["return_pct"] * 100, rel=1e-15)
        assert record["mae_pct"] == pytest.approx(trade["mae"] * 100, rel=1e-15)
        assert record["duration_s"] == trade["duration"].total_seconds()
        assert record["exit_reason"] == trade["exit_reason"]
    assert records[0]["duration"] == "3d"  # 1999-02-26 to 1999-03-01
    nan_trade = trades.iloc[:1].assign(mfe=np.nan)
    assert trade_table_records(nan_trade)[0]["mfe_pct"] is None
    assert trade_table_records(trades.iloc[:0]) == []


def test_trade_table_columns_and_style() -> None:
    columns = {c["field"]: c for c in trade_table_columns(decimals=4, theme=LIGHT)}
    assert "d3.format(',.4f')" in columns["entry_price"]["valueFormatter"]["function"]
    assert columns["return_pct"]["valueFormatter"]["function"].endswith("+ '%'")
    pnl_style = columns["pnl"]["cellStyle"]["function"]
    assert LIGHT.profit in pnl_style
    assert LIGHT.loss in pnl_style
    style = trade_table_style(LIGHT)
    assert (
        f'"backgroundColor": "{LIGHT.background}"' in style["dashGridOptions"]["theme"]["function"]
    )
    assert DARK.background in trade_table_style(DARK)["dashGridOptions"]["theme"]["function"]
    assert style["dashGridOptions"]["pagination"] is True
    assert style["defaultColDef"]["sortable"] is True
    assert style["defaultColDef"]["filter"] is True
    assert price_decimals(pd.Series([1245.02, 1300.5])) == 2
    assert price_decimals(np.array([1.0834, 1.0901])) == 4
    assert price_decimals(np.array([0.000123])) == 8
    assert price_decimals(np.array([np.nan])) == 2


def _label(text: str) -> str:
    """A heatmap cell's number without the colour its label is drawn in."""
    return re.sub(r"<[^>]+>", "", text)


# --- the figures as plotly's own API draws them -------------------------------------------------
# The panel figures are made whole from dictionaries on a cached layout (a refresh per closed bar
# must cost ~1 ms, not the ~30 ms of plotly's update methods). Here each one is drawn again the
# long way, through make_subplots, add_trace by row, update_* and add_vline: the two figures must
# be the same, key for key and value for value.


def _plotly_performance(equity: pd.Series, trades: pd.DataFrame, benchmark, theme) -> go.Figure:
    from components.charts.style import style_figure
    from components.panels.performance.figures import _benchmark_values, drawdown_pct, x_values

    x = x_values(equity.index)
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, row_heights=[0.56, 0.24, 0.20], vertical_spacing=0.02
    )
    lines = [("Equity", equity, 1, {"color": theme.line_palette[0], "width": 1.6}, {})]
    if benchmark is not None:
        dashed = {"color": theme.level, "width": 1.2, "dash": "dash"}
        lines.append(("Buy & hold", _benchmark_values(benchmark, equity), 1, dashed, {}))
    fill = {"fill": "tozeroy", "fillcolor": rgba(theme.loss, 0.3)}
    lines.append(("Drawdown", drawdown_pct(equity), 2, {"color": theme.loss, "width": 1}, fill))
    for name, values, row, line, more in lines:
        template = "%{y:.2f}%" if row == 2 else "%{y:,.2f}"
        scatter = go.Scatter(
            x=x, y=values.to_numpy(dtype=float), name=name, mode="lines", line=line,
            hovertemplate=template, **more,
        )  # fmt: skip
        fig.add_trace(scatter, row=row, col=1)
    volume = traded_volume(trades, volume_period(equity.index))
    bar = go.Bar(
        x=x_values(volume.index), y=volume.to_numpy(), name="Traded notional",
        marker={"color": rgba(theme.forming, 0.7), "line": {"width": 0}},
        hovertemplate="%{y:,.0f}",
    )  # fmt: skip
    fig.add_trace(bar, row=3, col=1)
    style_figure(fig, theme)
    fig.update_xaxes(type="date")
    fig.update_yaxes(tickformat=",.0f", title_text="NAV", row=1, col=1)
    fig.update_yaxes(ticksuffix="%", tickformat=".0f", title_text="DD", row=2, col=1)
    fig.update_yaxes(tickformat=".2s", title_text="Volume", row=3, col=1)
    return fig


def _plotly_distribution(returns: pd.Series, theme) -> go.Figure:
    from components.charts.style import style_figure

    r = returns.dropna().to_numpy(dtype=float) * 100
    fig = go.Figure(
        go.Histogram(
            x=r, name="Returns", nbinsx=int(min(120, max(20, math.sqrt(r.size)))),
            marker={"color": rgba(theme.line_palette[0], 0.75), "line": {"width": 0}},
            hovertemplate="%{x}%: %{y}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_vline(x=0.0, name="zero", line={"color": theme.level, "dash": "dot", "width": 1.2})
    if r.size:
        mean, var = float(r.mean()), float(np.quantile(r, 1 - 0.95))
        for name, x, text, color, position in (
            ("mean", mean, f"mean {mean:.2f}%", theme.text, "top right"),
            ("VaR", var, f"VaR 95% {var:.2f}%", theme.loss, "top left"),
        ):
            fig.add_vline(
                x=x, name=name, line={"color": color, "dash": "dash", "width": 1.2},
                annotation_text=text, annotation_position=position,
                annotation_font_color=color,
            )  # fmt: skip
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, bargap=0.02)
    fig.update_xaxes(ticksuffix="%", title_text="return per period")
    fig.update_yaxes(title_text="periods")
    return fig


def _plotly_heatmap(table: pd.DataFrame, theme) -> go.Figure:
    from components.charts.style import cell_text, diverging_scale, style_figure

    years = [str(y) for y in table.index]
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, column_widths=[12 / 13, 1 / 13], horizontal_spacing=0.01
    )
    for col, names in ((1, list(MONTHS)), (2, ["Year"])):
        z = table.reindex(columns=names).to_numpy(dtype=float)
        heatmap = go.Heatmap(
            z=z, x=names, y=years, name="Months" if col == 1 else "Year", zmid=0,
            colorscale=diverging_scale(theme), showscale=False, text=cell_text(z, 1, theme),
            texttemplate="%{text}", textfont={"size": 11}, xgap=1, ygap=1,
            hovertemplate="%{y} %{x}: %{z:.2f}%<extra></extra>",
        )  # fmt: skip
        fig.add_trace(heatmap, row=1, col=col)
    style_figure(fig, theme, hovermode="closest")
    fig.update_layout(showlegend=False, height=max(200, 60 + 22 * len(years)))
    fig.update_xaxes(side="top", showgrid=False, type="category")
    fig.update_yaxes(autorange="reversed", showgrid=False, type="category", side="left", ticks="")
    return fig


def _same(ours: go.Figure, theirs: go.Figure) -> None:
    a = json.loads(pio.to_json(ours, engine="json"))
    b = json.loads(pio.to_json(theirs, engine="json"))
    assert a == b


@pytest.mark.parametrize("theme", [DARK, LIGHT], ids=["dark", "light"])
@pytest.mark.parametrize("bars", [5031, 40, 1])
def test_panel_figures_are_the_figures_plotly_draws(
    run: tuple[BacktestResult, pd.Series], theme: ChartTheme, bars: int
) -> None:
    result, _ = run
    equity = result.equity.iloc[:bars]
    trades = result.trades[result.trades["exit_time"] <= equity.index[-1]]
    for benchmark in (result.benchmark, None):
        _same(
            # every point drawn (the level of detail is checked above)
            performance_figure(
                equity, trades, benchmark=benchmark, theme=theme, max_points=len(equity) + 4
            ),
            _plotly_performance(equity, trades, benchmark, theme),
        )
    returns = period_returns(equity)
    _same(returns_distribution_figure(returns, theme=theme), _plotly_distribution(returns, theme))
    table = monthly_returns_table(equity)
    _same(monthly_heatmap_figure(table, theme=theme), _plotly_heatmap(table, theme))
