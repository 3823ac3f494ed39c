"""The live view's batch forms equal their one-trip forms to the bit: AttributionState.add_many
and LiveSummary.add_many against add of each trip, on random trips cut into random batches
(labels as tuples, lists, none; clock times naive, UTC, other zones, Timestamps; sizes on the
edges and NaN; groups new and old)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from analytics.attribution import AttributionState
from analytics.attribution.groups import DIMENSIONS
from analytics.trade_summary import LiveSummary

LABELS = ("breakout", "momentum", "stop_loss", "news", "big")
EDGES = (100.0, 250.0, 1000.0)


def random_trips(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    zones = (UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30)), None)
    t0 = datetime(2024, 3, 1, 22, 50)
    out = []
    for k in range(n):
        zone = zones[int(rng.integers(len(zones)))]
        entry = t0 + timedelta(minutes=37 * k + int(rng.integers(60)))
        entry = entry if zone is None else entry.replace(tzinfo=zone)
        if rng.random() < 0.2:
            entry = pd.Timestamp(entry)
        labels = tuple(x for x in LABELS if rng.random() < 0.3)
        if rng.random() < 0.2:
            labels = list(labels)
        elif rng.random() < 0.1:
            labels = None
        price = float(rng.choice([1.0, 2.5, 10.0, 100.0, 37.3]))
        volume = float(rng.choice([100.0, 25.0, 10.0, 0.37, 3.0]))
        if rng.random() < 0.03:
            price = float("nan")
        net = float(rng.normal(0, 10)) * float(rng.choice([1e-3, 1.0, 1e6]))
        if rng.random() < 0.05:
            net = 0.0
        out.append({
            "account_id": "a", "strategy_id": f"st{int(rng.integers(3))}",
            "symbol": ("AAA", "BBB", "CCC")[int(rng.integers(3))],
            "entry_time": entry, "exit_time": entry + timedelta(minutes=5),
            "entry_price": price, "volume": volume, "net_pnl": net,
            "return": net / 1234.5, "fees": float(rng.random()),
            "holding_s": float(rng.integers(1, 10_000)) / 3, "labels": labels,
            "volatility_regime": rng.choice(["high", "low", None, ""]),
            "market_session": rng.choice(["london", "new_york", None, float("nan")]),
        })  # fmt: skip
    return out


def cut(n: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    bounds, at = [], 0
    while at < n:
        step = int(rng.choice([1, 3, 8, 9, 40, 200]))
        bounds.append((at, min(n, at + step)))
        at += step
    return bounds


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("clock", ["entry", "exit"])
def test_attribution_batches_equal_one_trip_at_a_time(seed, clock):
    trips = random_trips(600, seed)
    one, many = (AttributionState(size_edges=EDGES, clock=clock) for _ in range(2))
    for trip in trips:
        one.add(trip)
    for start, stop in cut(len(trips), seed + 100):
        many.add_many(trips[start:stop])
    for by in DIMENSIONS:
        pd.testing.assert_frame_equal(many.table(by), one.table(by), check_exact=True)
    assert many.trades == one.trades == len(trips)


def test_attribution_batch_with_a_bad_trip_raises_as_add_does():
    trips = random_trips(40, 7)
    trips[20]["net_pnl"] = float("inf")
    one, many = AttributionState(size_edges=EDGES), AttributionState(size_edges=EDGES)
    for trip in trips[:20]:
        one.add(trip)
    with pytest.raises(ValueError, match="net_pnl=inf"):
        one.add(trips[20])
    with pytest.raises(ValueError, match="net_pnl=inf"):
        many.add_many(trips)
    for by in DIMENSIONS:  # the trips before it counted, as one at a time
        pd.testing.assert_frame_equal(many.table(by), one.table(by), check_exact=True)


@pytest.mark.parametrize("seed", range(4))
def test_summary_batches_equal_one_trip_at_a_time(seed):
    trips = [t for t in random_trips(500, seed) if t["labels"] is not None]
    one, many = LiveSummary(), LiveSummary()
    for t in trips:
        one.add(t["net_pnl"], t["fees"], t["holding_s"], t["labels"])
    for start, stop in cut(len(trips), seed + 200):
        many.add_many(trips[start:stop])
    assert bits(many.trade_summary()) == bits(one.trade_summary())
    assert bits(many.labels()) == bits(one.labels())
    assert one.trade_summary()["trades"] == len(trips)


def bits(value):
    """A document with every float as its bits' text (NaN equal to NaN, -0.0 not 0.0)."""
    if isinstance(value, dict):
        return {k: bits(v) for k, v in value.items()}
    if isinstance(value, float):
        return float.hex(value) if value == value else "nan"
    return value
