"""Decision quality per round trip (docs/tca.md#decision-quality).

>>> decision_quality(orders, fills, threshold_bps=10.0)   # one row per closed round trip

The fills, each with its order's side, are walked first in first out per (account, symbol) by
the same compiled walk as :func:`analytics.round_trips.round_trips` (docs/tracking.md's PnL
conventions). A trip's net return after every cost, in bps of its entry notional, less what the
decision expected (the entry order's ``expected_return_bps``, 0 when not given), is its excess
return: good above +threshold, bad below -threshold, neutral within.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics._fifo import fifo_walk
from analytics.tca.conventions import TCASettings
from analytics.tca.inputs import Inputs, read_inputs

QUALITY = ("good", "neutral", "bad")
TRIP_COLUMNS = (
    "account_id",
    "strategy_id",
    "symbol",
    "direction",
    "entry_order_id",
    "exit_order_id",
    "entry_time",
    "exit_time",
    "volume",
    "entry_price",
    "exit_price",
    "gross_pnl",
    "fees",
    "net_pnl",
    "net_return_bps",
    "expected_return_bps",
    "excess_return_bps",
    "decision_quality",
)


def decision_quality(
    orders: pd.DataFrame,
    fills: pd.DataFrame,
    threshold_bps: float = TCASettings.decision_threshold_bps,
) -> pd.DataFrame:
    """Closed round trips in exit order (columns :data:`TRIP_COLUMNS`) with their
    ``decision_quality``: ``good``, ``bad`` or ``neutral``."""
    if not threshold_bps >= 0:
        raise ValueError(f"threshold_bps={threshold_bps!r}: expected >= 0")
    return per_round_trip(read_inputs(orders, fills), threshold_bps)


def per_round_trip(inp: Inputs, threshold_bps: float) -> pd.DataFrame:
    """:func:`decision_quality` of inputs already read."""
    trips = round_trip_arrays(inp, threshold_bps)
    orders = inp.orders
    entry_order, exit_order = trips["entry_order"], trips["exit_order"]
    ids = orders["order_id"].array
    return pd.DataFrame(
        {
            **{
                c: orders[c].array.take(entry_order)
                for c in ("account_id", "strategy_id", "symbol")
            },
            "direction": pd.Categorical.from_codes(trips["long"], ["short", "long"]),
            "entry_order_id": ids.take(entry_order),
            "exit_order_id": ids.take(exit_order),
            "entry_time": pd.to_datetime(trips["entry_ns"], utc=True),
            "exit_time": pd.to_datetime(trips["exit_ns"], utc=True),
            **{c: trips[c] for c in TRIP_COLUMNS[8:-1]},
            "decision_quality": pd.Categorical.from_codes(trips["quality"], list(QUALITY)),
        },
        columns=list(TRIP_COLUMNS),
    )


def round_trip_arrays(inp: Inputs, threshold_bps: float) -> dict[str, np.ndarray]:
    """The closed round trips of :func:`per_round_trip` as arrays, in exit order: the
    positions of their entry and exit orders (``entry_order``, ``exit_order``), ``long``
    (1 long, 0 short), ``entry_ns`` and ``exit_ns``, the numbers of :data:`TRIP_COLUMNS`
    from ``volume`` to ``excess_return_bps``, and ``quality`` (codes into QUALITY)."""
    orders = inp.orders
    time_order = inp.fill_time_order
    of = inp.fill_order[time_order]
    accounts = orders["account_id"].factorize()[0]
    symbols, names = orders["symbol"].factorize()
    groups, uniques = pd.factorize((accounts * max(len(names), 1) + symbols)[of])
    walked = fifo_walk(
        groups.astype(np.int64), inp.side[of], inp.fill_price[time_order],
        inp.fill_qty[time_order], inp.fill_fee[time_order], max(len(uniques), 1),
    )  # fmt: skip
    (_, _, _, _, direction, first, last, entry_qty, entry_notional, exit_qty, exit_notional,
     gross, fees, done) = walked  # fmt: skip
    keep = np.flatnonzero(done)
    keep = keep[np.argsort(last[keep], kind="stable")]
    entry_order, exit_order = of[first[keep]], of[last[keep]]
    net = gross[keep] - fees[keep]
    net_bps = net / entry_notional[keep] * 1e4
    expected = inp.expected_return_bps[entry_order]
    expected = np.where(np.isnan(expected), 0.0, expected)
    excess = net_bps - expected
    quality = np.where(excess > threshold_bps, 0, np.where(excess < -threshold_bps, 2, 1))
    times = inp.fill_ns[time_order]
    return {
        "entry_order": entry_order,
        "exit_order": exit_order,
        "long": (direction[keep] > 0).astype(np.int8),
        "entry_ns": times[first[keep]],
        "exit_ns": times[last[keep]],
        "volume": entry_qty[keep],
        "entry_price": entry_notional[keep] / entry_qty[keep],
        "exit_price": exit_notional[keep] / exit_qty[keep],
        "gross_pnl": gross[keep],
        "fees": fees[keep],
        "net_pnl": net,
        "net_return_bps": net_bps,
        "expected_return_bps": expected,
        "excess_return_bps": excess,
        "quality": quality,
    }


__all__ = ["QUALITY", "TRIP_COLUMNS", "decision_quality", "per_round_trip", "round_trip_arrays"]
