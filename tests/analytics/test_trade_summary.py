"""The performance summary of tracked trades: hand-worked counts, per-label table, periods,
metrics through compute_metrics, and the live summary equal to a recomputation after every
round trip of a stream."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.round_trips import fill_pnl, round_trips
from analytics.trade_summary import (
    LiveSummary,
    label_performance,
    performance_summary,
    trade_summary,
    trip_labels,
)

T0 = pd.Timestamp("2024-01-01 10:00", tz="UTC")


def fills_frame(rows) -> pd.DataFrame:
    """rows: (hours after T0, side, price, volume, fee, labels)"""
    frame = pd.DataFrame(
        [
            {"trade_id": f"t{k}", "account_id": "a", "strategy_id": "s", "symbol": "X",
             "side": side, "price": float(price), "volume": float(volume),
             "commission": float(fee), "time": T0 + pd.Timedelta(hours=h), "labels": labels}
            for k, (h, side, price, volume, fee, labels) in enumerate(rows)
        ]
    )  # fmt: skip
    return frame.join(fill_pnl(frame))


ROWS = [
    (0, "buy", 100, 1, 0, ("breakout",)),
    (5, "sell", 110, 1, 0, ("quick_exit",)),  # +10, day 1
    (30, "buy", 100, 2, 0, ("breakout", "high_volatility")),
    (40, "sell", 95, 2, 0, ()),  # -10, day 2
    (60, "sell", 50, 1, 1, ("mean_reversion",)),
    (800, "buy", 50, 1, 1, ()),  # -2 (fees), a month later
]


def test_counts_averages_and_labels_worked_by_hand():
    fills = fills_frame(ROWS)
    trips = round_trips(fills)
    s = trade_summary(trips)
    assert (s["trades"], s["winning"], s["losing"], s["breakeven"]) == (3, 1, 2, 0)
    assert s["net_pnl"] == pytest.approx(-2.0)
    assert s["avg_win"] == pytest.approx(10.0)
    assert s["avg_loss"] == pytest.approx(-6.0)
    assert s["profit_factor"] == pytest.approx(10 / 12)
    assert s["win_rate"] == pytest.approx(1 / 3)
    labels = label_performance(trips, trip_labels(trips, fills))
    assert list(labels) == ["breakout", "high_volatility", "mean_reversion", "quick_exit"]
    assert labels["breakout"] == {"trades": 2, "net_pnl": 0.0, "win_rate": 0.5, "avg_pnl": 0.0}
    assert labels["mean_reversion"]["net_pnl"] == pytest.approx(-2.0)
    empty = trade_summary(trips.iloc[:0])
    assert empty["trades"] == 0
    assert math.isnan(empty["win_rate"])
    assert math.isnan(empty["profit_factor"])


def test_periods_hold_the_trips_that_exit_in_them_and_metrics_need_capital():
    fills = fills_frame(ROWS)
    trips = round_trips(fills)
    daily = performance_summary(fills, trips, capital=1000.0, period="daily")
    assert [p["period"] for p in daily] == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-02-03"]
    assert [p["trade_summary"]["trades"] for p in daily] == [1, 0, 1, 1]  # exits: 5 h, 50 h, 810 h
    monthly = performance_summary(fills, trips, capital=1000.0, period="monthly")
    assert [p["period"] for p in monthly] == ["2024-01", "2024-02"]
    whole = performance_summary(fills, trips, capital=1000.0)[0]
    # realised equity 1000 -> 1010 -> 1000 -> 999 (fee) -> 998: compute_metrics' return
    assert whole["metrics"]["Return [%]"] == pytest.approx(-0.2)
    assert whole["metrics"]["# Trades"] == 3
    assert performance_summary(fills, trips)[0]["metrics"] == {}
    with pytest.raises(ValueError, match="period='yearly'"):
        performance_summary(fills, trips, period="yearly")


def test_the_live_summary_equals_a_recomputation_after_every_trip():
    rng = np.random.default_rng(7)
    rows, price, position = [], 100.0, 0.0
    for k in range(400):
        price *= 1 + rng.normal(0, 0.01)
        # leaning against the position so that it comes back through zero (trips close)
        side = "buy" if rng.random() < 0.5 - 0.15 * np.sign(position) else "sell"
        volume = float(rng.integers(1, 4))
        position += volume if side == "buy" else -volume
        labels = tuple(x for x in ("a", "b", "c") if rng.random() < 0.4)
        rows.append((k, side, price, volume, 0.01, labels))
    fills = fills_frame(rows)
    trips = round_trips(fills)
    trips = trips.assign(labels=trip_labels(trips, fills))
    assert len(trips) > 50
    live = LiveSummary()
    for n, trip in enumerate(trips.itertuples(), start=1):
        live.add(trip.net_pnl, trip.fees, trip.holding_s, trip.labels)
        batch = trade_summary(trips.iloc[:n])
        for key, value in live.trade_summary().items():
            assert value == pytest.approx(batch[key], rel=1e-9, abs=1e-9, nan_ok=True), key
        assert live.labels().keys() == label_performance(trips.iloc[:n]).keys()
        for label, row in label_performance(trips.iloc[:n]).items():
            assert live.labels()[label] == pytest.approx(row, rel=1e-9, abs=1e-9)


def _labels_one_trip_at_a_time(trips: pd.DataFrame, fills: pd.DataFrame) -> list[tuple]:
    """The rule written plainly: each trip's fills' labels in order, each label once."""
    by_id = dict(zip(fills["trade_id"], fills["labels"], strict=True))
    return [
        tuple(dict.fromkeys(x for t in (*entries, *exits) for x in by_id.get(t, ())))
        for entries, exits in zip(trips["entry_trade_ids"], trips["exit_trade_ids"], strict=True)
    ]


def test_trip_labels_over_columns_equal_the_rule_trip_by_trip():
    """Random fills with scale-ins, partial exits and flips (trips of several fills) and a
    handful of label sets, some empty: the column-wise merge equals the plain rule."""
    rng = np.random.default_rng(11)
    sets = [(), ("breakout",), ("momentum", "breakout"), ("stop_loss",), ("quick_exit",),
            ("high_volatility", "momentum")]  # fmt: skip
    rows = [
        (k, ("buy", "sell")[int(rng.random() < 0.5)], 100 + rng.normal(), float(rng.integers(1, 4)),
         0.0, sets[int(rng.integers(len(sets)))])
        for k in range(3000)
    ]  # fmt: skip
    fills = fills_frame(rows)
    trips = round_trips(fills)
    several = (trips["entry_trade_ids"].map(len) > 1) | (trips["exit_trade_ids"].map(len) > 1)
    assert several.sum() > 50
    assert (~several).sum() > 50
    assert trip_labels(trips, fills).tolist() == _labels_one_trip_at_a_time(trips, fills)
    # a trip whose fill is not among the fills given: that fill adds no label
    partial = fills.iloc[1:]
    assert trip_labels(trips, partial).tolist() == _labels_one_trip_at_a_time(trips, partial)
    assert trip_labels(trips.iloc[:0], fills).tolist() == []


def test_round_trips_carry_labels_and_the_entrys_values_by_position():
    """round_trips(carry=...) takes the labels' union and the entry fill's values by the
    fills' positions: the same as trip_labels and a lookup of the first entry trade id."""
    rng = np.random.default_rng(5)
    sets = [(), ("breakout",), ("momentum", "breakout"), ("stop_loss",)]
    rows = [
        (k, ("buy", "sell")[int(rng.random() < 0.5)], 100 + rng.normal(), float(rng.integers(1, 4)),
         0.0, sets[int(rng.integers(len(sets)))])
        for k in range(2000)
    ]  # fmt: skip
    fills = fills_frame(rows).sample(frac=1.0, random_state=3)  # not in time order
    fills["regime"] = [f"r{k % 7}" for k in range(len(fills))]
    trips = round_trips(fills, carry=("labels", "regime"))
    plain = round_trips(fills)
    assert trips["labels"].tolist() == trip_labels(plain, fills).tolist()
    by_id = dict(zip(fills["trade_id"], fills["regime"], strict=True))
    assert trips["regime"].tolist() == [by_id[ids[0]] for ids in plain["entry_trade_ids"]]
    pd.testing.assert_frame_equal(trips.drop(columns=["labels", "regime"]), plain)
