"""Strategy comparison: table and best-per-row (hand-made ties and NaN), the table component,
and the overlay, correlation and risk/return figures of two real runs (SMA 10/30 and EMA
12/26, long and short, on the SP500 sample)."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pandas as pd
import pytest
from dash.development.base_component import Component

from analytics.backtest import run_backtest
from components.charts.lod import lod_line_positions
from components.charts.theme import DARK, LIGHT
from components.panels.comparison import (
    BEST_MARK,
    COMPARISON_KEYS,
    DEFAULT_PALETTE,
    RunSummary,
    best_per_row,
    comparison_table,
    comparison_table_component,
    correlation_heatmap_figure,
    drawdown_overlay_figure,
    equity_overlay_figure,
    returns_correlation,
    risk_return_scatter_figure,
    run_colors,
)
from components.panels.performance import FORMULAS, MAX_LINE_POINTS, drawdown_pct
from market.sample_data import load_sample
from strategies.registry import create

NAN = float("nan")


@pytest.fixture(scope="module")
def runs() -> dict[str, RunSummary]:
    candles = load_sample("SP500")
    out = {}
    for label, name, params in (
        ("SMA 10/30", "sma_crossover", {"fast": 10, "slow": 30}),
        ("EMA 12/26", "ema_crossover", {"fast": 12, "slow": 26}),
    ):
        strategy = create(name, direction="both", **params)
        result = run_backtest(candles, strategy.generate(candles, symbol="SP500", timeframe="1d"))
        out[label] = RunSummary.from_backtest(label, result)
    return out


def walk(component: object):
    if isinstance(component, Component):
        yield component
        yield from walk(getattr(component, "children", None))
    elif isinstance(component, list | tuple):
        for child in component:
            yield from walk(child)


def test_comparison_table_holds_each_runs_metrics(runs: dict[str, RunSummary]) -> None:
    table = comparison_table(runs)
    assert list(table.index) == list(COMPARISON_KEYS)
    assert list(table.columns) == ["SMA 10/30", "EMA 12/26"]
    for label, run in runs.items():
        for key in COMPARISON_KEYS[1:]:
            assert table.loc[key, label] == run.metrics[key], (label, key)
        net = run.equity.iloc[-1] - run.equity.iloc[0]
        assert table.loc["Net PnL [$]", label] == pytest.approx(net, rel=1e-12)
    only = comparison_table(runs, keys=["Sharpe Ratio", "Not A Metric"])
    assert list(only.index) == ["Sharpe Ratio", "Not A Metric"]
    assert only.loc["Not A Metric"].isna().all()


def test_best_per_row_ties_nan_and_directions() -> None:
    table = pd.DataFrame(
        {
            "A": [1.0, -10.0, 10.0, 5, NAN, pd.Timedelta(days=10), 3.0, 1.0],
            "B": [2.0, -5.0, NAN, 9, NAN, pd.Timedelta(days=5), 3.0, 1.0 + 1e-15],
            "C": [NAN, -5.0, 12.0, 7, NAN, pd.NaT, 3.0 + 1e-9, 0.5],
        },
        index=[
            "Sharpe Ratio",  # higher; NaN never best
            "Max. Drawdown [%]",  # negative: closer to 0 is better; a tie
            "Volatility (Ann.) [%]",  # lower
            "# Trades",  # no best
            "Sortino Ratio",  # all NaN
            "Max. Drawdown Duration",  # shorter; NaT never best
            "Ulcer Index [%]",  # lower: 3.0 twice, 3.0 + 1e-9 is no tie
            "Profit Factor",  # a tie within 1e-12 relative
        ],
        dtype=object,
    )
    assert best_per_row(table) == {
        "Sharpe Ratio": ("B",),
        "Max. Drawdown [%]": ("B", "C"),
        "Volatility (Ann.) [%]": ("A",),
        "Max. Drawdown Duration": ("B",),
        "Ulcer Index [%]": ("A", "B"),
        "Profit Factor": ("A", "B"),
    }
    assert best_per_row(table[["A"]]) == {}
    assert best_per_row(table, {"# Trades": False}) == {"# Trades": ("A",)}


def test_best_per_row_on_real_runs(runs: dict[str, RunSummary]) -> None:
    table = comparison_table(runs)
    best = best_per_row(table)
    sharpe = table.loc["Sharpe Ratio"].astype(float)
    assert best["Sharpe Ratio"] == (sharpe.idxmax(),)
    vol = table.loc["Volatility (Ann.) [%]"].astype(float)
    assert best["Volatility (Ann.) [%]"] == (vol.idxmin(),)
    dd = table.loc["Max. Drawdown [%]"].astype(float)
    assert best["Max. Drawdown [%]"] == (dd.idxmax(),)
    assert "# Trades" not in best


def test_comparison_table_component_marks_best_cells(runs: dict[str, RunSummary]) -> None:
    table = comparison_table(runs)
    best = best_per_row(table)
    component = comparison_table_component(table, best, theme=LIGHT, table_id="cmp")
    assert component.id == "cmp"
    rows = [c for c in walk(component) if type(c).__name__ == "Tr"]
    header, body = rows[0], rows[1:]
    assert [c.children for c in header.children] == ["Metric", *table.columns]
    assert len(body) == len(table)
    starred = 0
    for key, row in zip(table.index, body, strict=True):
        name, *cells = row.children
        assert name.children == key
        for column, cell in zip(table.columns, cells, strict=True):
            is_best = column in best.get(key, ())
            assert cell.children.startswith(BEST_MARK) == is_best
            assert (cell.style.get("fontWeight") == "700") == is_best
            starred += is_best
    assert starred == sum(len(v) for v in best.values())
    sharpe_row = body[list(table.index).index("Sharpe Ratio")]
    winner = list(table.columns).index(best["Sharpe Ratio"][0])
    value = table.loc["Sharpe Ratio", best["Sharpe Ratio"][0]]
    assert sharpe_row.children[1 + winner].children == f"{BEST_MARK} {value:.2f}"
    formula = FORMULAS["Sharpe Ratio"]
    assert sharpe_row.children[0].title == f"{formula.text} ({formula.note})"


def test_equity_and_drawdown_overlays(runs: dict[str, RunSummary]) -> None:
    # a line longer than MAX_LINE_POINTS is drawn at lod_line_positions: the points of the
    # series there, its first, last, lowest and highest among them
    fig = equity_overlay_figure(runs, theme=LIGHT)
    assert [t.name for t in fig.data] == list(runs)
    for t, run, colour in zip(fig.data, runs.values(), LIGHT.strategy_palette, strict=False):
        equity = run.equity.to_numpy()
        keep = lod_line_positions(equity, MAX_LINE_POINTS)
        assert len(t.y) == len(keep) <= MAX_LINE_POINTS
        assert list(pd.DatetimeIndex(t.x)) == list(run.equity.index.tz_convert(None)[keep])
        np.testing.assert_allclose(t.y, (equity / equity[0] * 100)[keep], rtol=1e-15)
        assert t.y[0] == 100
        assert max(t.y) == pytest.approx(equity.max() / equity[0] * 100, rel=1e-15)
        assert t.line.color == colour
    raw = equity_overlay_figure(runs, theme=DARK, normalise=False)
    ema = runs["EMA 12/26"].equity.to_numpy()
    np.testing.assert_array_equal(raw.data[1].y, ema[lod_line_positions(ema, MAX_LINE_POINTS)])
    dd = drawdown_overlay_figure(runs, theme=DARK)
    for t, run in zip(dd.data, runs.values(), strict=True):
        equity = run.equity.to_numpy()
        expected = 1 - equity / np.maximum.accumulate(equity)
        keep = lod_line_positions(drawdown_pct(run.equity).to_numpy(), MAX_LINE_POINTS)
        np.testing.assert_allclose(-np.asarray(t.y) / 100, expected[keep], rtol=0, atol=1e-15)
        assert min(t.y) == pytest.approx(run.metrics["Max. Drawdown [%]"], rel=1e-12)
    assert dd.layout.paper_bgcolor == DARK.background


def test_correlation_against_dataframe_corr(runs: dict[str, RunSummary]) -> None:
    # independently: each equity's last value per calendar day, simple returns, common days
    daily = {
        label: run.equity.resample("D").last().dropna().pct_change().dropna()
        for label, run in runs.items()
    }
    expected = pd.DataFrame(daily).dropna().corr()
    got = returns_correlation(runs)
    pd.testing.assert_frame_equal(got, expected, rtol=1e-12)
    assert 0.5 < expected.iloc[0, 1] < 0.99  # two similar but different strategies
    fig = correlation_heatmap_figure(runs, theme=LIGHT)
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float), expected.to_numpy(), rtol=1e-12)
    assert _label(heat.text[0][1]) == f"{expected.iloc[0, 1]:.2f}"
    assert _label(heat.text[0][0]) == "1.00"
    assert (heat.zmin, heat.zmax, heat.zmid) == (-1, 1, 0)
    assert heat.colorscale[0][1] == LIGHT.down
    assert heat.colorscale[-1][1] == LIGHT.up


def test_correlation_uses_common_dates_only(runs: dict[str, RunSummary]) -> None:
    sma, ema = runs.values()
    late = dataclasses.replace(ema, equity=ema.equity["2010":])
    got = returns_correlation({"a": sma, "b": late})
    a = sma.equity.pct_change()["2010":].iloc[1:]  # first common return: the 2nd 2010 day
    b = late.equity.pct_change().iloc[1:]
    assert got.loc["SMA 10/30", "EMA 12/26"] == pytest.approx(a.corr(b), rel=1e-12)


def test_risk_return_scatter(runs: dict[str, RunSummary]) -> None:
    custom = {**runs, "EMA 12/26": dataclasses.replace(runs["EMA 12/26"], color="#123456")}
    fig = risk_return_scatter_figure(custom, theme=DARK)
    assert [t.name for t in fig.data] == list(runs)
    for t, run in zip(fig.data, custom.values(), strict=True):
        m = run.metrics
        assert t.x[0] == m["Volatility (Ann.) [%]"]
        assert t.y[0] == m["Return (Ann.) [%]"]
        assert list(t.customdata[0]) == [m["Sharpe Ratio"], m["Max. Drawdown [%]"]]
        assert t.text[0] == run.label
    assert fig.data[0].marker.color == DARK.strategy_palette[0]
    assert fig.data[1].marker.color == "#123456"
    # labels are never cut: drawn past the plot's edge, turned inwards at the sides, and the
    # ranges leave room around the markers
    assert all(t.cliponaxis is False for t in fig.data)
    xs, ys = [t.x[0] for t in fig.data], [t.y[0] for t in fig.data]
    left = fig.data[xs.index(min(xs))]
    right = fig.data[xs.index(max(xs))]
    assert (left.textposition, right.textposition) == ("top right", "top left")
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    assert x0 < min(xs)
    assert x1 > max(xs)
    assert y0 < min(ys)
    assert y1 - max(ys) >= 0.2 * (max(ys) - min(ys)) > 0


def test_run_colors_palettes_and_label_checks(runs: dict[str, RunSummary]) -> None:
    sma = runs["SMA 10/30"]
    many = {str(i): dataclasses.replace(sma, label=str(i)) for i in range(12)}
    colours = run_colors(many, DARK)
    palette = DARK.strategy_palette
    assert list(colours.values()) == [palette[i % len(palette)] for i in range(12)]
    bare = dataclasses.replace(DARK, strategy_palette=())
    assert list(run_colors(many, bare).values())[:9] == [*DEFAULT_PALETTE, DEFAULT_PALETTE[0]]
    assert len(set(DEFAULT_PALETTE)) == 8
    twins = {"a": sma, "b": sma}
    with pytest.raises(ValueError, match="unique"):
        comparison_table(twins)
    assert math.isnan(
        comparison_table({"x": dataclasses.replace(sma, metrics=pd.Series())}).iloc[0, 0]
    )


def _label(text: str) -> str:
    """A heatmap cell's number without the colour its label is drawn in."""
    return re.sub(r"<[^>]+>", "", text)
