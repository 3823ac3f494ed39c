"""The Execution panel's figure builders and the summaries they draw, on orders worked by hand:
each figure draws the numbers it is given (and nothing else), in both themes, and says what is
missing when there is nothing to draw."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.tca import aggregate_tca
from components.charts.theme import DARK, LIGHT
from components.panels.execution import (
    MARKOUT_AXIS,
    SHORTFALL_AXIS,
    SLIPPAGE_AXIS,
    breakdown_figure,
    breakdown_table,
    markout_figure,
    prediction_figure,
    quality_figure,
    shortfall_figure,
    slippage_figure,
)
from services.execution_views import (
    BREAKDOWN_METRICS,
    Z95,
    group_rows,
    kind_breakdown,
    markout_curve,
    quality_counts,
    quality_period,
    reason_counts,
    shortfall_split,
)


def _orders() -> pd.DataFrame:
    """Four orders: a buy and a sell filled, a limit buy half filled, one with no decision
    price (its shortfall n/a)."""
    return pd.DataFrame(
        {
            "order_id": ["a", "b", "c", "d"],
            "strategy_id": ["s1", "s1", "s2", "s2"],
            "symbol": ["X", "X", "Y", "Y"],
            "side": ["buy", "sell", "buy", "sell"],
            "order_type": ["market", "market", "limit", "market"],
            "venue": ["V1", "V2", "V1", "V2"],
            "algo": ["twap", "twap", "pov", "pov"],
            "order_qty": [10.0, 20.0, 10.0, 5.0],
            "filled_qty": [10.0, 20.0, 5.0, 5.0],
            "fill_rate": [1.0, 1.0, 0.5, 1.0],
            "notional": [1000.0, 3000.0, 1000.0, np.nan],
            "filled_notional": [1001.0, 2995.0, 499.0, 500.0],
            "latency_s": [0.5, 1.5, 0.1, np.nan],
            "execution_time_s": [60.0, 120.0, 30.0, 10.0],
            "arrival_slippage_bps": [4.0, -2.0, 1.0, np.nan],
            "is_bps": [6.0, 1.0, 9.0, np.nan],
            "is_delay_bps": [1.0, 2.0, 0.5, np.nan],
            "is_trading_bps": [4.0, -2.0, 0.5, np.nan],
            "is_opportunity_bps": [0.0, 0.0, 7.0, np.nan],
            "is_fees_bps": [1.0, 1.0, 1.0, np.nan],
            "quality_score": [42.0, 54.0, 24.0, np.nan],
            "reason": [
                "",
                "spread: bid and ask at arrival not known",
                "spread: bid and ask at arrival not known",
                "decision price: not given; spread: bid and ask at arrival not known",
            ],
        }
    )


def test_the_shortfall_split_is_the_weighted_means_of_the_orders_with_every_part():
    split = shortfall_split(_orders())
    # order d has no decision price: left out; weights Q x decision price 1000, 3000, 1000
    weights = np.array([1000.0, 3000.0, 1000.0])
    expected = {
        "delay": (1.0 * 1000 + 2.0 * 3000 + 0.5 * 1000) / weights.sum(),
        "trading": (4.0 * 1000 - 2.0 * 3000 + 0.5 * 1000) / weights.sum(),
        "opportunity": 7.0 * 1000 / weights.sum(),
        "fees": 1.0,
        "total": (6.0 * 1000 + 1.0 * 3000 + 9.0 * 1000) / weights.sum(),
    }
    assert dict(zip(split["part"], split["bps"], strict=True)) == pytest.approx(expected)
    assert split["bps"].iloc[:-1].sum() == pytest.approx(split["bps"].iloc[-1])
    assert set(split["orders"]) == {3}
    fig = shortfall_figure(split, theme=DARK)
    (trace,) = fig.data
    assert trace.type == "waterfall"
    assert list(trace.x) == ["delay", "trading", "opportunity", "fees", "total"]
    assert list(trace.measure) == ["relative"] * 4 + ["total"]
    assert list(trace.y) == pytest.approx(list(expected.values()))
    assert fig.layout.yaxis.title.text == SHORTFALL_AXIS
    assert "over 3 orders" in fig.layout.xaxis.title.text
    none = shortfall_split(_orders().assign(notional=np.nan))
    assert none["orders"].eq(0).all()
    assert "n/a" in shortfall_figure(none).layout.annotations[0].text


def test_the_slippage_histogram_draws_every_value_and_marks_mean_and_median():
    values = pd.Series([4.0, -2.0, 1.0, 10.0])
    fig = slippage_figure(values, theme=LIGHT, missing=2)
    hist, mean, median = fig.data
    assert list(hist.x) == [4.0, -2.0, 1.0, 10.0]
    assert (mean.name, median.name) == ("mean +3.25", "median +2.50")
    assert list(mean.x) == pytest.approx([3.25, 3.25])
    assert list(median.x) == pytest.approx([2.5, 2.5])
    assert mean.yaxis == median.yaxis == "y2"  # a 0-1 axis over the counts: full height
    assert fig.layout.xaxis.title.text == f"{SLIPPAGE_AXIS} · n = 4, 2 n/a"
    assert fig.layout.paper_bgcolor == LIGHT.background
    assert "no order" in slippage_figure(pd.Series([np.nan])).layout.annotations[0].text


def test_the_markout_curve_is_mean_and_a_95_percent_band_of_each_horizon():
    fills = pd.DataFrame(
        {
            "order_id": ["a", "a", "b", "c"],
            "markout_1m_bps": [1.0, 3.0, -2.0, 6.0],
            "markout_5m_bps": [2.0, np.nan, 4.0, np.nan],
            "markout_60m_bps": [np.nan] * 4,
        }
    )
    curve = markout_curve(fills)
    assert curve["horizon"].tolist() == ["1m", "5m", "60m"]
    assert curve["minutes"].tolist() == [1.0, 5.0, 60.0]
    assert curve["n"].tolist() == [4, 2, 0]
    one = np.array([1.0, 3.0, -2.0, 6.0])
    se = one.std(ddof=1) / math.sqrt(4)
    assert curve.loc[0, "mean"] == pytest.approx(2.0)
    assert curve.loc[0, "se"] == pytest.approx(se)
    assert (curve.loc[0, "low"], curve.loc[0, "high"]) == pytest.approx(
        (2 - Z95 * se, 2 + Z95 * se)
    )
    assert pytest.approx(1.96, abs=1e-3) == Z95
    fig = markout_figure(curve, theme=DARK)
    band, mean = fig.data
    assert list(mean.x) == [1.0, 5.0]  # the horizon without a value is not drawn
    assert list(mean.y) == pytest.approx([2.0, 3.0])
    assert list(mean.text) == ["n=4", "n=2"]
    assert list(band.y) == pytest.approx(
        [curve.loc[0, "high"], curve.loc[1, "high"], curve.loc[1, "low"], curve.loc[0, "low"]]
    )
    assert fig.layout.yaxis.title.text == MARKOUT_AXIS
    assert list(fig.layout.xaxis.ticktext) == ["1m", "5m"]
    empty = markout_figure(markout_curve(fills[["order_id", "markout_60m_bps"]]))
    assert "n/a" in empty.layout.annotations[0].text


def test_breakdown_by_a_dimension_and_by_algo_venue_and_order_type():
    orders = _orders()
    rows = group_rows(aggregate_tca(orders, "venue"), BREAKDOWN_METRICS)
    assert rows["group"].tolist() == ["V1", "V2"]
    v1 = rows.iloc[0]
    assert v1["orders"] == 2
    assert v1["fill_rate"] == pytest.approx((1.0 * 1000 + 0.5 * 1000) / 2000)
    assert v1["arrival_slippage_bps"] == pytest.approx((4.0 * 1001 + 1.0 * 499) / 1500)
    fig = breakdown_figure(rows, "venue", theme=DARK)
    fill, latency, slip, shortfall = fig.data
    assert list(fill.y) == pytest.approx(list(rows["fill_rate"] * 100))
    assert list(latency.y) == pytest.approx(list(rows["latency_s"]))
    assert list(slip.y) == pytest.approx(list(rows["arrival_slippage_bps"]))
    assert list(shortfall.y) == pytest.approx(list(rows["is_bps"]), nan_ok=True)
    kinds = group_rows(kind_breakdown(orders), BREAKDOWN_METRICS)
    assert list(zip(kinds["dimension"], kinds["group"], strict=True)) == [
        ("algo", "pov"),
        ("algo", "twap"),
        ("venue", "V1"),
        ("venue", "V2"),
        ("order type", "limit"),
        ("order type", "market"),
    ]
    limit = kinds.iloc[4]
    assert (limit["orders"], limit["fill_rate"], limit["is_bps"]) == (1, 0.5, 9.0)
    table = breakdown_table(kinds)
    text = str(table)
    assert "order type" in text
    assert "50.0%" in text
    assert "+9.00" in text
    assert "no orders" in str(breakdown_table(kinds.iloc[:0]))
    assert (
        "no orders by venue" in breakdown_figure(rows.iloc[:0], "venue").layout.annotations[0].text
    )


def test_decision_quality_counts_per_period():
    exits = pd.to_datetime(
        ["2024-01-01 10:00", "2024-01-01 23:59", "2024-01-03 00:00", "2024-01-03 05:00"], utc=True
    )
    trips = pd.DataFrame(
        {"exit_time": exits, "decision_quality": ["good", "bad", "bad", "neutral"]}
    )
    assert quality_period(trips) == "D"
    counts = quality_counts(trips)
    assert counts["period_start"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-03"]
    assert counts[["good", "neutral", "bad"]].to_numpy().tolist() == [[1, 0, 1], [0, 1, 1]]
    weekly = quality_counts(trips, "W")
    assert weekly[["good", "neutral", "bad"]].to_numpy().tolist() == [[1, 1, 2]]
    assert weekly["period_start"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")  # a Monday
    long = trips.assign(exit_time=exits + pd.to_timedelta([0, 100, 200, 300], unit="D"))
    assert quality_period(long) == "W"
    for days, period in ((800, "M"), (2920, "M"), (2923, "Q")):
        late = exits + pd.to_timedelta([0, 0, 0, days], unit="D")
        assert quality_period(trips.assign(exit_time=late)) == period, days
    quarters = quality_counts(
        trips.assign(exit_time=exits + pd.to_timedelta([0, 0, 0, 100], unit="D")), "Q"
    )
    assert quarters["period_start"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-04-01"]
    fig = quality_figure(counts, "D", theme=LIGHT)
    assert [t.name for t in fig.data] == ["good", "neutral", "bad"]
    assert [list(t.y) for t in fig.data] == [[1, 0], [0, 1], [1, 1]]
    assert fig.layout.barmode == "stack"
    assert fig.data[0].marker.color == LIGHT.profit
    assert fig.data[2].marker.color == LIGHT.loss
    assert "exit day" in fig.layout.xaxis.title.text
    assert "n/a" in quality_figure(quality_counts(trips.iloc[:0]), "D").layout.annotations[0].text


def test_predicted_against_realised_by_split_with_the_45_degree_line():
    rows = pd.DataFrame(
        {
            "order_id": ["a", "b", "c", "d", "e"],
            "split": ["train", "train", "validation", "test", "test"],
            "predicted_bps": [1.0, 2.0, 3.0, 4.0, 5.0],
            "baseline_bps": [0.0] * 5,
            "realised_bps": [1.5, 1.0, np.nan, 6.0, 5.0],
        }
    )
    fig = prediction_figure(rows, theme=DARK)
    names = [t.name for t in fig.data]
    assert names == ["train (n=2, MAE 0.75)", "test (n=2, MAE 1.00)", "45° (predicted = realised)"]
    test = fig.data[1]
    assert list(test.x) == [4.0, 5.0]
    assert list(test.y) == [6.0, 5.0]
    line = fig.data[2]
    assert list(line.x) == list(line.y)
    assert line.x[0] <= 1.0
    assert line.x[1] >= 6.0
    assert list(fig.layout.xaxis.range) == list(fig.layout.yaxis.range)
    assert "n/a" not in str(fig.layout.annotations)
    assert (
        "no decision"
        in prediction_figure(rows.assign(realised_bps=np.nan)).layout.annotations[0].text
    )


def test_reasons_are_counted_per_cause():
    table = reason_counts(_orders())
    assert table.to_dict("records") == [
        {"reason": "spread: bid and ask at arrival not known", "orders": 3},
        {"reason": "decision price: not given", "orders": 1},
    ]
