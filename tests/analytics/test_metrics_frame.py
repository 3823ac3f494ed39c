"""metrics_frame takes the trips' zoned time columns as they are: the same frame as the plain
construction through Timestamp objects (what it did before, 14x slower), dtypes included."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.round_trips import round_trips
from analytics.trade_summary import metrics_frame, realised_equity
from tests.analytics.test_trade_summary import fills_frame


def test_metrics_frame_equals_the_frame_built_from_timestamp_objects():
    rng = np.random.default_rng(4)
    rows, position = [], 0.0
    for k in range(400):
        side = "buy" if rng.random() < 0.5 - 0.15 * np.sign(position) else "sell"
        volume = float(rng.integers(1, 4))
        position += volume if side == "buy" else -volume
        rows.append((k, side, 100 + rng.normal(), volume, 0.01, ()))
    fills = fills_frame(rows)
    trips = round_trips(fills)
    assert len(trips) > 50
    equity = realised_equity(fills, 10_000.0)
    made = metrics_frame(trips, equity)
    plain = made.assign(
        entry_time=pd.Series(trips["entry_time"].to_numpy(), index=made.index),
        exit_time=pd.Series(trips["exit_time"].to_numpy(), index=made.index),
    )
    assert "UTC" in str(made["entry_time"].dtype)
    pd.testing.assert_frame_equal(made, plain, check_exact=True)
