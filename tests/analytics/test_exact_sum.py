"""analytics.exact_sum against math.fsum (the outside reference: the exact sum rounded once),
and the property the live figures rest on: however values are split and ordered, one double."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics.exact_sum import ExactSum, exact_sum
from analytics.trade_summary import LiveSummary, label_performance, trade_summary


def test_exact_sum_equals_fsum_over_magnitudes_signs_and_subnormals():
    rng = np.random.default_rng(1)
    for trial in range(150):
        n = int(rng.integers(0, 2000))
        values = rng.normal(0, 1, n) * 10.0 ** rng.integers(-300, 300, n)
        if trial % 3 == 0:
            values = np.round(rng.normal(0, 50, n), 4)  # prices and PnL: cancelling decimals
        if trial % 5 == 0 and n:
            values[: n // 2] = 5e-324 * rng.integers(-5, 5, n // 2)
        assert exact_sum(values) == math.fsum(values), trial
        shuffled = rng.permutation(values)
        split = ExactSum()  # a third added one by one, the rest as an array
        for value in shuffled[: n // 3].tolist():
            split.add(value)
        split.extend(shuffled[n // 3 :])
        assert split.value() == math.fsum(values), trial
    assert exact_sum([1e16, 1.0, -1e16]) == 1.0  # numpy's pairwise sum gives 0.0
    assert exact_sum([]) == 0.0
    assert math.isinf(exact_sum([math.inf, 1.0]))
    assert math.isnan(exact_sum([math.inf, -math.inf]))


def test_many_values_of_one_exponent_summed_in_shares_stay_exact(monkeypatch):
    """The halves' per-exponent sums are float64 (bincount's weights): exact while every
    partial sum stays below 2**53, so at most 2**25 values a pass; a larger array is summed
    in shares. Mantissas at their largest (2**53 - 1), one sign and mixed, the most values
    a pass and, with the pass made 1,000 values, many passes."""
    import analytics.exact_sum as module

    rng = np.random.default_rng(3)
    top = np.nextafter(2.0, 0.0)  # 2 - 2**-52: every mantissa bit set
    cases = [
        np.full(1 << 16, top),
        -np.full(1 << 16, top) * 2.0**-1000,
        rng.choice([top, -top, 1.5, 5e-324], 1 << 16) * 2.0 ** rng.integers(-3, 3, 1 << 16),
    ]
    for values in cases:
        reference = math.fsum(values)
        assert exact_sum(values) == reference
        monkeypatch.setattr(module, "_BINNED_MOST", 1000)
        assert exact_sum(values) == reference
        monkeypatch.undo()


def test_any_split_and_order_give_the_same_double():
    rng = np.random.default_rng(2)
    values = np.round(rng.normal(0, 75, 5000), 6)
    reference = math.fsum(values)
    for _ in range(20):
        shuffled = rng.permutation(values)
        cut = int(rng.integers(0, len(values)))
        total = ExactSum()
        total.extend(shuffled[:cut])
        for value in shuffled[cut:].tolist():
            total.add(value)
        assert total.value() == reference


def test_live_summary_trip_by_trip_equals_the_batch_functions_exactly():
    rng = np.random.default_rng(3)
    n = 800
    trips = pd.DataFrame({
        "net_pnl": np.round(rng.normal(0, 40, n), 5),
        "fees": np.round(rng.random(n), 4),
        "holding_s": rng.integers(1, 10_000, n).astype(float) + 0.25,
        "labels": [tuple(x for x in ("a", "b", "c") if rng.random() < 0.4) for _ in range(n)],
    })  # fmt: skip
    trips.loc[::50, "net_pnl"] = 0.0  # breakeven trips
    live = LiveSummary()
    order = rng.permutation(n)  # trip order does not matter
    for k in order[: n // 2]:
        row = trips.iloc[k]
        live.add(row.net_pnl, row.fees, row.holding_s, row.labels)
    live.extend(trips.iloc[order[n // 2 :]])
    assert live.trade_summary() == trade_summary(trips)
    assert live.labels() == label_performance(trips)
