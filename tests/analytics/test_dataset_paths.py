"""The decision dataset's faster paths against the former ones, on random books: the TCA
outcomes read from arrays (``order_metrics``) equal ``order_tca``'s frame, the round-trip
outcomes found by position equal ``decision_quality``'s frame looked up by order id, the
calendars found once per bar grid (``CalendarMemo``) equal those walked per symbol, and rows
in decision order whether the orders come in it or not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.dataset import DatasetSettings, decision_dataset
from analytics.dataset.features import CalendarMemo, calendars_at
from analytics.tca import decision_quality, order_tca
from analytics.tca.conventions import markout_column
from tests.analytics.execution_book import impact_book


def flipping_book(seed: int, shuffle: bool):
    """A random book whose orders buy and sell the same symbols (round trips, flips, some
    split into two fills), rows in decision order or shuffled."""
    rng = np.random.default_rng(seed)
    book = impact_book(orders=400, symbols=3, bars=1_500, a=1.0, b=1.0, noise_bps=2.0, seed=seed)
    orders, fills = book.orders.copy(), book.fills.copy()
    # per symbol, pairs of orders of one quantity, buy then sell or sell then buy: each pair
    # a round trip (a few pairs with a third of the quantity more: flips)
    nth = orders.groupby("symbol").cumcount().to_numpy()
    pair_qty = rng.integers(1, 4, len(orders) // 2 + 1).astype(float)
    first_side = np.where(rng.uniform(size=len(pair_qty)) < 0.5, "buy", "sell")
    flip = np.where((nth % 2 == 1) & (rng.uniform(size=len(orders)) < 0.1), 4 / 3, 1.0)
    quantity = pair_qty[nth // 2] * flip
    opposite = {"buy": "sell", "sell": "buy"}
    orders["side"] = [s if k % 2 == 0 else opposite[s] for s, k in
                      zip(first_side[nth // 2], nth, strict=True)]  # fmt: skip
    orders["order_qty"] = quantity
    fills["fill_qty"] = quantity  # the book's fills are its orders', row for row
    orders["expected_return_bps"] = np.where(rng.uniform(size=len(orders)) < 0.3,
                                             rng.normal(0, 20, len(orders)), np.nan)  # fmt: skip
    split = rng.uniform(size=len(fills)) < 0.25  # two fills: 40% now, 60% a minute later
    second = fills[split].copy()
    second["fill_qty"] *= 0.6
    second["fill_time"] += pd.Timedelta(seconds=59)
    fills.loc[split, "fill_qty"] *= 0.4
    fills = pd.concat([fills, second], ignore_index=True)
    if shuffle:
        orders = orders.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        fills = fills.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    return orders, fills, book.candles


@pytest.mark.parametrize(("seed", "shuffle"), [(11, False), (12, True), (13, True)])
def test_outcomes_equal_the_per_order_and_round_trip_frames(seed, shuffle):
    orders, fills, candles = flipping_book(seed, shuffle)
    settings = DatasetSettings()
    frame = decision_dataset(orders, fills, candles, settings)
    decided = pd.to_datetime(orders["decision_time"], utc=True)
    expected_order = orders.assign(t=decided).sort_values("t", kind="stable")["order_id"]
    assert list(frame["order_id"]) == list(expected_order)

    tca = order_tca(orders, fills, candles, settings.tca).set_index("order_id")
    tca = tca.loc[frame["order_id"]]
    columns = ["fill_rate", "arrival_slippage_bps", "is_bps", "is_delay_bps", "is_trading_bps",
               "is_opportunity_bps", "is_fees_bps", "permanent_impact_bps",
               "temporary_impact_bps"]  # fmt: skip
    columns += [markout_column(h) for h in settings.tca.markout_horizons]
    for column in columns:
        np.testing.assert_array_equal(frame[column].to_numpy(), tca[column].to_numpy())

    trips = decision_quality(orders, fills, settings.tca.decision_threshold_bps)
    assert len(trips) > 20
    last = trips.drop_duplicates("entry_order_id", keep="last").set_index("entry_order_id")
    found = last.reindex(frame["order_id"])
    for column in ("net_return_bps", "excess_return_bps"):
        np.testing.assert_array_equal(frame[column].to_numpy(), found[column].to_numpy())
    assert list(frame["decision_quality"].astype(object).fillna("-")) == list(
        found["decision_quality"].astype(object).fillna("-")
    )
    assert list(frame["decision_quality"].cat.categories) == ["good", "neutral", "bad"]
    exit_ns = pd.to_datetime(found["exit_time"], utc=True)
    assert (frame["outcome_end_time"].to_numpy()[exit_ns.notna().to_numpy()]
            >= exit_ns.dropna().to_numpy()).all()  # fmt: skip


def test_calendars_found_once_per_grid_equal_those_walked_per_symbol():
    rng = np.random.default_rng(4)
    minute = 60 * 10**9
    start = pd.Timestamp("2024-01-05 13:30", tz="UTC").value
    # weekdays 13:30-20:00 only for three weeks: the calendar changes as the window fills
    days = pd.bdate_range("2024-01-05", periods=15, tz="UTC")
    grid = np.concatenate([np.arange(d.value + 810 * minute, d.value + 1200 * minute, minute)
                           for d in days])  # fmt: skip
    other = np.sort(rng.choice(np.arange(start, start + 30_000 * minute, minute), 8_000,
                               replace=False))  # fmt: skip
    memo = CalendarMemo()
    for open_ns in (grid, grid, other, grid):
        positions = rng.integers(-1, len(open_ns), 700)
        alone = calendars_at(open_ns, minute, positions)
        shared = calendars_at(open_ns, minute, positions, memo)
        names = [list(found) for _, found in (alone, shared)]
        assert [names[0][c] for c in alone[0]] == [names[1][c] for c in shared[0]]
