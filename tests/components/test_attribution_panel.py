"""The Attribution panel's figure builders on round trips worked by hand: each figure draws the
numbers of the analytics table it is given (and nothing else), in both themes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from dash import html

from analytics.attribution import pnl_attribution, risk_attribution
from components.charts.theme import DARK, LIGHT
from components.panels.attribution import (
    alpha_beta_card,
    bucket_figure,
    compact_bucket,
    factor_table,
    heatmap_grid,
    hour_weekday_figure,
    label_pnl_figure,
    risk_figure,
    trip_figure,
)
from market.timeframes import Timeframe
from services.tracking_views import hour_weekday_table


def _trips() -> pd.DataFrame:
    """Six round trips: Monday 14:xx and 15:xx, Tuesday 14:xx, a Saturday; labels overlap."""
    entry = pd.to_datetime(
        [
            "2024-01-01 14:05",
            "2024-01-01 14:40",
            "2024-01-01 15:10",
            "2024-01-02 14:30",
            "2024-01-06 09:00",
            "2024-01-08 14:00",
        ],
        utc=True,
    )
    net = [120.0, -40.0, 65.5, -300.25, 10.0, 44.0]
    price = [100.0, 101.0, 99.0, 98.0, 102.0, 100.0]
    volume = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    return pd.DataFrame(
        {
            "strategy_id": ["a", "a", "b", "b", "a", "b"],
            "symbol": ["X"] * 6,
            "entry_time": entry,
            "exit_time": entry + pd.Timedelta(hours=2),
            "entry_price": price,
            "volume": volume,
            "net_pnl": net,
            "return": [n / (p * v) for n, p, v in zip(net, price, volume, strict=True)],
            "labels": [
                ("breakout", "momentum"),
                ("breakout",),
                (),
                ("stop_loss", "momentum"),
                ("momentum",),
                ("breakout",),
            ],
            "volatility_regime": ["high", "low", "medium", "high", None, "low"],
            "market_session": ["us"] * 6,
        }
    )


def test_label_bars_are_the_tables_rows_and_win_rates():
    table = pnl_attribution(_trips(), "label")
    fig = label_pnl_figure(table, theme=DARK)
    pnl, win = fig.data
    rows = table.set_index("group").drop("all")
    # most profitable first; each bar the label's net PnL, each win-rate bar its rate in %
    assert list(pnl.x) == rows.sort_values("net_pnl", ascending=False).index.tolist()
    assert list(pnl.y) == [rows.loc[g, "net_pnl"] for g in pnl.x]
    assert list(win.y) == pytest.approx([rows.loc[g, "win_rate"] * 100 for g in win.x])
    assert dict(zip(pnl.x, pnl.y, strict=True))["momentum"] == pytest.approx(120 - 300.25 + 10)
    assert "(none)" in pnl.x  # a trip without labels has its bar
    assert fig.layout.yaxis2.range == (0, 100)
    assert pnl.marker.color[list(pnl.x).index("stop_loss")] == DARK.loss


def test_empty_tables_say_so():
    empty = pnl_attribution(_trips().iloc[:0], "label")
    for fig in (
        label_pnl_figure(empty),
        bucket_figure(empty, axis="regime"),
        hour_weekday_figure(hour_weekday_table(_trips().iloc[:0])),
    ):
        assert not fig.data
        assert fig.layout.annotations[0].text == "no closed round trips"


def test_the_heatmap_cells_add_up_to_the_net_pnl_and_count_every_trip():
    trips = _trips()
    cells = hour_weekday_table(trips)
    fig = hour_weekday_figure(cells, theme=LIGHT)
    (heat,) = fig.data
    z = np.array(heat.z, dtype=float)
    assert np.nansum(z) == pytest.approx(trips["net_pnl"].sum())
    assert np.array(heat.customdata).sum() == len(trips)
    # Saturday is traded: its row is there; Sunday is not; hours from the first to the last
    assert list(heat.y) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    assert list(heat.x) == [f"{h:02d}" for h in range(9, 16)]
    monday = list(heat.y).index("Mon")
    assert z[monday, list(heat.x).index("14")] == pytest.approx(120 - 40 + 44)
    assert np.array(heat.customdata)[monday, list(heat.x).index("14")] == 3
    assert math.isnan(z[list(heat.y).index("Wed"), 0])  # no trade: no value, not a 0
    assert "trades" in heat.hovertemplate
    # the hour and weekday rules are pnl_attribution's
    by_hour = pnl_attribution(trips, "hour").set_index("group")["net_pnl"]
    assert np.nansum(z[:, list(heat.x).index("14")]) == pytest.approx(by_hour["14"])
    by_day = pnl_attribution(trips, "weekday").set_index("group")["net_pnl"]
    assert np.nansum(z[monday]) == pytest.approx(by_day["Mon"])


def test_the_heatmap_of_daily_bars_is_one_column_and_says_why():
    trips = _trips().assign(entry_time=pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC"))
    days, hours, pnl, count = heatmap_grid(hour_weekday_table(trips))
    assert hours == ["00"]
    assert days == list(WEEKDAYS_ALL)
    fig = hour_weekday_figure(hour_weekday_table(trips))
    assert "every entry at 00:00" in fig.layout.xaxis.title.text
    assert np.nansum(pnl) == pytest.approx(trips["net_pnl"].sum())
    assert count.sum() == 6


WEEKDAYS_ALL = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # 2024-01-01..06: Monday to Saturday


def test_regime_bars_run_low_to_high_with_their_trade_counts():
    table = pnl_attribution(_trips(), "regime")
    (bars,) = bucket_figure(table, axis="volatility regime", theme=DARK).data
    assert list(bars.x) == ["low", "medium", "high", "(unknown)"]
    rows = table.set_index("group")
    assert list(bars.y) == [rows.loc[g, "net_pnl"] for g in bars.x]
    assert list(bars.text) == [f"{rows.loc[g, 'trades']} trades" for g in bars.x]


def test_size_buckets_keep_their_order_with_short_names():
    table = pnl_attribution(_trips(), "size", size_edges=(1500.0, 3000.0))
    (bars,) = bucket_figure(table, axis="size").data
    assert list(bars.x) == ["≤ 1.5k", "1.5k-3k", "> 3k"]
    assert list(bars.y) == table["net_pnl"].iloc[:-1].tolist()
    assert compact_bucket("2: (4276.81, 6578.54]") == "4.28k-6.58k"
    assert compact_bucket("5: > 1250000") == "> 1.25M"
    assert compact_bucket("1: <= 180") == "≤ 180"
    assert compact_bucket("1: all") == "1: all"
    assert compact_bucket("high") == "high"


def test_risk_bars_are_the_variance_shares_largest_on_top():
    trips = _trips()
    table = risk_attribution(trips, "strategy")
    (bars,) = risk_figure(table, theme=DARK).data
    shares = table.set_index("group")["variance_share"].drop("all") * 100
    assert dict(zip(bars.y, bars.x, strict=True)) == pytest.approx(shares.to_dict())
    assert sum(bars.x) == pytest.approx(100.0)
    assert list(bars.x) == sorted(bars.x)  # plotly draws the last bar on top
    one_day = risk_attribution(trips.iloc[:1], "strategy")  # a variance needs two days
    assert risk_figure(one_day).layout.annotations[0].text.startswith("too few days")


FIT = {
    "convention": "empyrical",
    "alpha": 0.0269142759,
    "beta": 0.0046668156,
    "alpha_per_period": 0.000105,
    "periods_per_year": 252,
    "risk_free": 0.0,
    "risk_free_per_period": 0.0,
    "observations": 4969,
}


def _texts(component) -> list[str]:
    out = []

    def walk(node):
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, list | tuple):
            for child in node:
                walk(child)
        elif hasattr(node, "children"):
            walk(node.children)

    walk(component)
    return out


def test_the_alpha_beta_card_names_its_convention_and_shows_four_decimals():
    card = alpha_beta_card(FIT, "NASDAQ", capital=10_000.0, theme=DARK)
    texts = _texts(card)
    assert "0.0269" in texts
    assert "0.0047" in texts
    assert any(t.startswith("convention empyrical") for t in texts)
    assert any("4,969 paired days" in t and "capital 10,000.00" in t for t in texts)
    assert any("+2.69% a year" in t for t in texts)
    assert any(t.startswith("empyrical: daily returns") for t in texts)
    missing = alpha_beta_card(None, "NASDAQ", error="alpha and beta need daily returns: enter")
    assert _texts(missing) == ["alpha and beta need daily returns: enter"]
    assert "choose a benchmark" in _texts(alpha_beta_card(None, None))[0]
    nan = alpha_beta_card({**FIT, "alpha": float("nan"), "beta": float("nan")}, "SP500")
    assert _texts(nan).count("—") == 2


def test_the_factor_table_has_coef_std_err_and_t_per_term():
    factors = pd.DataFrame(
        {
            "term": ["intercept", "market", "volatility", "momentum"],
            "coef": [9.0e-05, 0.0047, 0.0050, 0.0023],
            "std_err": [8.4e-05, 0.0053, 0.0058, 0.0011],
            "t_stat": [1.07, 0.90, 0.87, 2.09],
            "r_squared": [0.0008] * 4,
            "adj_r_squared": [0.0002] * 4,
            "n": [4969] * 4,
        }
    )
    table = factor_table(factors, theme=LIGHT)
    rows = table.children[0].children[1].children
    assert [r.__dict__["data-term"] for r in rows] == list(factors["term"])
    momentum = rows[3].children
    assert [c.children for c in momentum[1:]] == ["0.002300", "0.001100", "2.09"]
    assert momentum[3].style["fontWeight"] == 700
    assert rows[1].children[3].style["fontWeight"] == 400
    assert "n = 4,969 days" in table.children[1].children
    assert isinstance(factor_table(pd.DataFrame()), html.Div)


def test_a_trip_chart_marks_its_fills_on_their_bars():
    index = pd.date_range("2024-01-01", periods=10, freq="1h", tz="UTC")
    candles = pd.DataFrame(
        {"open": 100.0, "high": 102.0, "low": 98.0, "close": 101.0, "volume": 5.0}, index=index
    )
    trip = {
        "trip_id": "t1",
        "symbol": "X",
        "net_pnl": -3.0,
        "entry_time": index[2],
        "exit_time": index[5] + pd.Timedelta(minutes=20),
    }
    fills = pd.DataFrame(
        {
            "time": [index[2] + pd.Timedelta(minutes=5), trip["exit_time"]],
            "side": ["buy", "sell"],
            "price": [100.5, 99.1],
            "volume": [2.0, 2.0],
        }
    )
    for theme in (DARK, LIGHT):
        fig = trip_figure(candles, Timeframe.parse("1h"), trip, fills, theme=theme)
        buy = next(t for t in fig.data if t.name == "buy")
        sell = next(t for t in fig.data if t.name == "sell")
        assert list(buy.x) == ["2024-01-01 02:00"]
        assert list(buy.y) == [100.5]
        assert list(sell.x) == ["2024-01-01 05:00"]
        assert list(sell.y) == [99.1]
        assert buy.marker.color == theme.execution_buy
        assert fig.layout.paper_bgcolor == theme.background
        (span,) = fig.layout.shapes
        assert (span.x0, span.x1) == ("2024-01-01 02:00", "2024-01-01 05:00")
        assert span.fillcolor.startswith("rgba")
        assert theme.loss != theme.profit
    blank = trip_figure(None, None, trip, fills, note="no stored bars of BTC/USDT")
    assert blank.layout.annotations[0].text == "no stored bars of BTC/USDT"


def test_both_themes_colour_every_figure():
    trips = _trips()
    for theme in (DARK, LIGHT):
        figures = (
            label_pnl_figure(pnl_attribution(trips, "label"), theme=theme),
            hour_weekday_figure(hour_weekday_table(trips), theme=theme),
            bucket_figure(pnl_attribution(trips, "regime"), axis="regime", theme=theme),
            risk_figure(risk_attribution(trips, "label"), theme=theme),
        )
        for fig in figures:
            assert fig.layout.paper_bgcolor == theme.background
            assert fig.layout.font.color == theme.text
