"""The tracker's batch FIFO pass (analytics.trade_batch.apply_fills) against PositionLedger
fed one fill at a time: the same pnl, round trips and open positions, bit for bit, on random
books cut into random batches (carried positions, partial closes, flips, fees, several
accounts, symbols and strategies, fractional volumes, lots closed to a hair)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from analytics.label_config import load_label_config
from analytics.labels import Fill, FillBook
from analytics.round_trips import PositionLedger
from analytics.trade_batch import apply_fills, time_ns
from tests.analytics.random_books import next_fill

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def book(seed: int, n: int) -> list[tuple]:
    """(account, symbol, trade id, strategy, side, price, volume, fee, time), positions
    leaning back to flat so that trips close, sometimes closing exactly and flipping."""
    rng = np.random.default_rng(seed)
    rows, held = [], {}
    for k in range(n):
        key = (f"a{rng.integers(3)}", f"S{rng.integers(4)}")
        side, volume = next_fill(rng, held, key)
        fee = 0.0 if rng.random() < 0.2 else float(rng.uniform(0, 0.5))
        rows.append((*key, f"t{k}", f"st{rng.integers(2)}", side, float(rng.uniform(50, 150)),
                     volume, fee, T0 + timedelta(seconds=int(k * 7))))  # fmt: skip
    return rows


def one_by_one(rows: list[tuple]) -> tuple[list[float], list[dict], dict, list[tuple]]:
    """The ledgers fed fill by fill, and each fill's role as the labels' FillBook sees it."""
    ledgers: dict[tuple[str, str], PositionLedger] = {}
    book = FillBook(load_label_config())
    pnl, trips, roles = [], [], []
    for account, symbol, trade_id, strategy, side, price, volume, fee, time in rows:
        ledger = ledgers.setdefault((account, symbol), PositionLedger(account, symbol))
        made, done = ledger.apply(trade_id, strategy, side, price, volume, fee, time)
        pnl.append(made)
        trips.extend(done)
        role = book.apply(Fill(account, symbol, side, price, volume, time_ns(time), fee,
                               trade_id, strategy))  # fmt: skip
        roles.append((role.opened, role.closed, role.entry_price, role.direction, role.entry_ns))
    return pnl, trips, ledgers, roles


def in_batches(
    rows: list[tuple], cuts: list[int], *, closed_trips: bool = True
) -> tuple[list[float], list[dict], dict, list[tuple]]:
    ledgers: dict[tuple[str, str], PositionLedger] = {}
    pnl, trips, roles = [], [], []
    for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        part = rows[a:b]
        keys = list(dict.fromkeys((r[0], r[1]) for r in part))
        for key in keys:
            ledgers.setdefault(key, PositionLedger(*key))
        index = {key: g for g, key in enumerate(keys)}
        made, done, role = apply_fills(
            [ledgers[key] for key in keys],
            np.array([index[(r[0], r[1])] for r in part], dtype=np.int64),
            [r[2] for r in part], [r[3] for r in part], [r[4] for r in part],
            np.array([r[5] for r in part]), np.array([r[6] for r in part]),
            np.array([r[7] for r in part]), [r[8] for r in part], closed_trips=closed_trips,
        )  # fmt: skip
        pnl.extend(made.tolist())
        trips.extend(done)
        roles.extend(zip(*(column.tolist() for column in role), strict=True))
    return pnl, trips, ledgers, roles


def same_roles(got: list[tuple], expected: list[tuple]) -> None:
    """Equal bit for bit, NaN (no entry price: nothing closed) equal to NaN."""
    assert len(got) == len(expected)
    for k, (ours, theirs) in enumerate(zip(got, expected, strict=True)):
        assert [x if x == x else "nan" for x in ours] == [x if x == x else "nan" for x in theirs], k


def state(ledger: PositionLedger) -> tuple:
    trip = ledger.trip
    held = None if trip is None else (
        trip.strategy_id, trip.direction, trip.entry_time, trip.entry_qty, trip.entry_notional,
        trip.exit_qty, trip.exit_notional, trip.gross, trip.fees, trip.entry_ids, trip.exit_ids,
    )  # fmt: skip
    return ledger.side, [list(lot) for lot in ledger.lots], held


@pytest.mark.parametrize("seed", [5, 6])
def test_without_the_closed_trips_the_ledgers_pnl_and_roles_are_the_same(seed: int) -> None:
    """A reader of stored fills that needs only the open positions (closed_trips=False)
    leaves the ledgers (open trips with their ids) as the full pass does, bit for bit."""
    rows = book(seed, 2500)
    rng = np.random.default_rng(200 + seed)
    cuts = sorted(set(rng.integers(1, len(rows), size=int(rng.integers(1, 30))).tolist()))
    pnl, trips, ledgers, roles = in_batches(rows, cuts)
    got_pnl, got_trips, got_ledgers, got_roles = in_batches(rows, cuts, closed_trips=False)
    assert len(trips) > 300
    assert got_trips == []
    assert got_pnl == pnl
    assert {k: state(v) for k, v in got_ledgers.items()} == {
        k: state(v) for k, v in ledgers.items()
    }
    assert any(ledger.trip is not None for ledger in ledgers.values())
    same_roles(got_roles, roles)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_batches_equal_the_ledger_fill_by_fill(seed: int) -> None:
    rows = book(seed, 2500)
    rng = np.random.default_rng(100 + seed)
    cuts = sorted(set(rng.integers(1, len(rows), size=int(rng.integers(1, 60))).tolist()))
    pnl, trips, ledgers, roles = one_by_one(rows)
    got_pnl, got_trips, got_ledgers, got_roles = in_batches(rows, cuts)
    assert len(trips) > 300
    assert got_pnl == pnl  # bit for bit: == on floats
    assert got_trips == trips
    for key in {*ledgers} | {*got_ledgers}:
        assert state(got_ledgers[key]) == state(ledgers[key]), key
    assert any(ledger.side for ledger in ledgers.values())  # positions were carried open
    same_roles(got_roles, roles)
    assert sum(1 for r in roles if r[0] and r[1]) > 50  # flips: closed and opened


def test_one_batch_and_single_fills_equal_the_ledger() -> None:
    rows = book(9, 600)
    expected = one_by_one(rows)
    for cuts in ([], list(range(1, len(rows)))):
        pnl, trips, ledgers, roles = in_batches(rows, cuts)
        assert pnl == expected[0]
        assert trips == expected[1]
        same_roles(roles, expected[3])
        assert {k: state(v) for k, v in ledgers.items()} == {
            k: state(v) for k, v in expected[2].items()
        }


def test_a_flip_in_a_batch_closes_the_carried_trip_and_opens_the_other_side() -> None:
    ledger = PositionLedger("acc", "BTC")
    ledger.apply("t0", "s", "buy", 100.0, 2.0, 0.2, T0)
    pnl, trips, roles = apply_fills(
        [ledger], np.array([0, 0]), ["t1", "t2"], ["s", "s"], ["sell", "buy"],
        np.array([110.0, 105.0]), np.array([3.0, 1.0]), np.array([0.3, 0.0]),
        [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)],
    )  # fmt: skip
    # t1 sells 3: closes the long of 2 (+20 gross) and opens a short of 1; its fee 0.3 split
    assert pnl.tolist() == [20.0 - 0.3, (110.0 - 105.0) * 1.0]
    assert [t["direction"] for t in trips] == ["long", "short"]
    assert trips[0]["entry_trade_ids"] == ("t0",)
    assert trips[0]["exit_trade_ids"] == ("t1",)
    assert trips[0]["fees"] == pytest.approx(0.2 + 0.2)
    assert trips[1]["entry_trade_ids"] == ("t1",)
    assert trips[1]["exit_trade_ids"] == ("t2",)
    assert trips[1]["net_pnl"] == pytest.approx(5.0 - 0.1)
    assert roles.opened.tolist() == [1.0, 0.0]
    assert roles.closed.tolist() == [2.0, 1.0]
    assert roles.entry_price.tolist() == [100.0, 110.0]
    assert roles.direction.tolist() == [1, -1]
    assert roles.entry_ns.tolist() == [time_ns(T0), time_ns(T0 + timedelta(minutes=1))]
    assert ledger.side == 0
    assert not ledger.lots
    assert ledger.trip is None


def test_the_ahead_of_time_walk_equals_the_jit_and_python() -> None:
    """The tracker's processes run the prebuilt module (analytics._fifo_aot); numba's JIT and
    plain Python run the same source: equal outputs, element for element, from carried lots."""
    from numba import njit

    from analytics import _fifo, _fifo_aot

    compiled = _fifo_aot.prebuilt()
    assert compiled is not None, f"no build: {_fifo_aot.artefact_path()}.failed"
    rng = np.random.default_rng(5)
    n, groups = 3000, 6
    side0 = np.array([1, -1, 0, 1, 0, -1], dtype=np.int64)
    lot_group = np.array([0, 0, 1, 3, 5, 5, 5], dtype=np.int64)
    args = (
        rng.integers(0, groups, n), np.where(rng.random(n) < 0.5, 1, -1),
        rng.uniform(50, 150, n), np.round(rng.uniform(0.01, 3, n), 3), rng.uniform(0, 0.3, n),
        groups, side0, lot_group, rng.uniform(0.1, 2, len(lot_group)),
        rng.uniform(50, 150, len(lot_group)), rng.uniform(0, 10, (4, 6)),
    )  # fmt: skip
    ours = compiled(*args)
    for other in (njit(cache=True)(_fifo.carry_walk)(*args), _fifo.carry_walk(*args)):
        assert len(ours) == len(other) == 23
        for k, (a, b) in enumerate(zip(ours, other, strict=True)):
            np.testing.assert_array_equal(a, b, err_msg=str(k))
    assert ours[13].sum() > 50  # trips closed
