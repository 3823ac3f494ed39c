"""One FIFO walk over an account's stored fills (tracking.stored_walk) gives what the two
walks it replaces give, bit for bit, on SQLite and PostgreSQL: the tracker's history of the
account (tracking.history.apply_stored over the rows) and the account's round trips
(analytics.round_trips.round_trips over the fills in time order), on random books with partial
fills, exact closes, flips, shorts and fractional quantities, whose rows interleave symbols out
of time order; rows of a symbol out of time order are refused (None)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.distinct import factorized
from analytics.round_trips import merge_label_sets, round_trips
from database.records import TradeRecord
from database.repositories.trades import TradeRepository
from tests.analytics.random_books import next_fill
from tracking.annotator import MarketAnnotator
from tracking.history import AccountHistory, apply_stored
from tracking.stored_walk import StoredIds, walk_stored
from tracking.tracker import TradeTracker

T0 = datetime(2024, 3, 4, 13, 0, tzinfo=UTC)
CARRY = ("labels", "volatility_regime", "market_session")


def book(seed: int, n: int, symbols: int = 3) -> list[TradeRecord]:
    """One account's random fills, each symbol's in time order (times may repeat)."""
    rng = np.random.default_rng(seed)
    out, held = [], {}
    for k in range(n):
        symbol = f"S{rng.integers(symbols)}"
        side, volume = next_fill(rng, held, symbol)
        out.append(
            TradeRecord(
                trade_id=f"t{k}", account_id="acc", strategy_id=f"st{rng.integers(2)}",
                symbol=symbol, side=side, price=float(np.round(rng.uniform(50, 150), 4)),
                volume=volume, commission=float(np.round(rng.uniform(0, 0.4), 4)),
                execution_time=T0 + timedelta(seconds=37 * (k // 3)), source="api",
            )
        )  # fmt: skip
    return out


def stored(session_factory, trades: list[TradeRecord], seed: int) -> tuple[pd.DataFrame, int]:
    """The trades recorded in batches of one symbol each (rows interleave the symbols out of
    time order), read back as the tracker reads an account: (rows, newest row)."""
    rng = np.random.default_rng(seed)
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator())
    by_symbol: dict[str, list[TradeRecord]] = {}
    for t in trades:
        by_symbol.setdefault(t.symbol, []).append(t)
    while by_symbol:
        symbol = sorted(by_symbol)[int(rng.integers(len(by_symbol)))]
        take = int(rng.integers(1, 40))
        tracker.record_many(by_symbol[symbol][:take])
        by_symbol[symbol] = by_symbol[symbol][take:]
        if not by_symbol[symbol]:
            del by_symbol[symbol]
    with session_factory() as session:
        rows = TradeRepository(session).rows_after("acc", 0)[0]
    return rows, int(rows["id"].max())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_walk_gives_the_trackers_history_and_the_round_trips(session_factory, seed):
    rows, newest = stored(session_factory, book(seed, 700), seed)
    assert not rows["time"].is_monotonic_increasing  # rows out of time order across symbols
    walk = walk_stored(rows)
    assert walk is not None
    expected = AccountHistory("acc")
    apply_stored(expected, rows, trips=False, newest_row=newest)
    got = walk.history("acc", newest)
    assert isinstance(got.ids, StoredIds)
    assert got == expected
    assert any(ledger.trip is not None for ledger in got.ledgers.values())  # open trips too
    pd.testing.assert_frame_equal(walk.trips(CARRY), round_trips(rows, carry=CARRY),
                                  check_exact=True)  # fmt: skip
    # the ids as a dict would give them, then as new ones are added
    assert dict(got.ids) == expected.ids
    assert len(got.ids) == len(expected.ids)
    assert "t5" in got.ids
    assert "nope" not in got.ids
    assert got.ids.get("nope") is None
    got.ids["new"] = expected.ids["new"] = ("S0", "buy", 1.0, 1.0, T0)
    assert got.ids == expected.ids
    assert got.ids["t5"] == expected.ids["t5"]


def test_rows_of_a_symbol_out_of_time_order_are_not_walked_once(session_factory):
    rows, _ = stored(session_factory, book(4, 60, symbols=1), 4)
    swapped = rows.copy()
    swapped.loc[0, "time"] = swapped["time"].iat[5] + pd.Timedelta(seconds=1)  # after row 5
    assert walk_stored(swapped) is None
    assert walk_stored(rows) is not None


@pytest.mark.parametrize("kinds", [3, 2000])
def test_label_unions_equal_merging_each_trips_fills_in_turn(kinds):
    """merge_label_sets (packed sequences; with 2000 label sets a key holds 5 codes, longer
    sequences go one by one) against each trip's union taken fill by fill; -1 reads the
    last label set, as indexing does."""
    rng = np.random.default_rng(kinds)
    names = [f"l{k}" for k in range(12)]
    values = [tuple(rng.choice(names, size=int(rng.integers(0, 4)), replace=False).tolist())
              for _ in range(kinds)]  # fmt: skip
    entries = rng.integers(0, 9, size=400)
    exits = rng.integers(0, 9, size=400)
    entry_codes = rng.integers(-1, kinds, size=int(entries.sum()))
    exit_codes = rng.integers(-1, kinds, size=int(exits.sum()))
    got = merge_label_sets(entry_codes, entries, exit_codes, exits, values)
    a = b = 0
    for t in range(400):
        held = [*entry_codes[a : a + entries[t]], *exit_codes[b : b + exits[t]]]
        a, b = a + entries[t], b + exits[t]
        assert got[t] == tuple(dict.fromkeys(x for c in held for x in values[c]))


def test_factorized_equals_pandas_factorize():
    """analytics.distinct.factorized: by identity, then by value: pandas' codes and uniques
    (equal tuples held apart, missing values, first appearance order)."""
    rng = np.random.default_rng(5)
    pool = [("a",), ("a", "b"), (), None, float("nan"), ("b",), tuple("a")]  # equal to the first
    values = [pool[k] if k < len(pool) else ("x", str(k % 3))
              for k in rng.integers(0, 12, size=500).tolist()]  # fmt: skip
    array = np.empty(len(values), dtype=object)
    array[:] = values
    codes, uniques = pd.factorize(array)
    got_codes, got_uniques = factorized(values)
    np.testing.assert_array_equal(got_codes, codes)
    assert got_uniques.tolist() == uniques.tolist()
