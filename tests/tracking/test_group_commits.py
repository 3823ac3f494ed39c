"""Streamed group commits, each made ready while the one before is stored
(tracking.group_commits), on SQLite and PostgreSQL: what is stored equals what one trade at a
time gives (test_tracker_batches.one_at_a_time), the listeners hear the batches in order with
each account's rows following on, and a batch in flight that fails, or whose account another
writer moved, leaves the next batch made again from the database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from database.records import TradeRecord
from database.repositories.trades import TradeRepository
from tests.tracking.test_tracker_batches import book, one_at_a_time
from tracking import group_commits
from tracking.annotator import MarketAnnotator
from tracking.tracker import Recorded, TradeTracker


def streamed(tracker: TradeTracker, trades: list[TradeRecord]) -> list:
    """Every trade submitted before the writer starts (the tracker's lock held meanwhile):
    the groups are all queued, so each is made ready while the one before is stored."""
    with tracker.exclusive():
        futures = [tracker.submit(t) for t in trades]
    return futures


def stored_values(session_factory, accounts=("acc0", "acc1")) -> dict[str, tuple]:
    with session_factory() as session:
        return {
            r.trade_id: (r.pnl, r.cumulative_pnl, r.market_context, r.labels)
            for account in accounts
            for r in TradeRepository(session).list(account_id=account)
        }


def spy_held(tracker: TradeTracker) -> list[set]:
    """The accounts in flight each batch was made ready beside."""
    seen: list[set] = []
    prepare = tracker._prepare

    def spied(*args, held=(), **kwargs):
        seen.append(set(held))
        return prepare(*args, held=held, **kwargs)

    tracker._prepare = spied  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("run", [8, 3])  # groups in one run: the writer lets go between runs
def test_pipelined_groups_store_what_one_trade_at_a_time_gives(session_factory, monkeypatch, run):
    monkeypatch.setattr(group_commits, "RUN_GROUPS", run)
    trades = book(5, 600)
    heard: list[Recorded] = []
    tracker = TradeTracker(
        session_factory, annotator=MarketAnnotator(), max_batch=40, listeners=[heard.append]
    )
    held = spy_held(tracker)
    try:
        results = [f.result(timeout=120) for f in streamed(tracker, trades)]
    finally:
        tracker.close()
    assert sum(1 for accounts in held if accounts) >= 10  # made ready beside one in flight
    expected, _ = one_at_a_time(trades)
    assert stored_values(session_factory) == expected
    assert [(r.trade_id, r.pnl) for r in results] == [(t, expected[t][0]) for t in expected]
    ours = [batch for batch in heard if not batch.reset]  # not the accounts' first reads
    assert [r.trade_id for batch in ours for r in batch.stored] == [t.trade_id for t in trades]
    newest: dict[str, int] = {}
    for batch in ours:  # each account's rows follow on from batch to batch
        for account, (before, after) in batch.rows.items():
            assert before == newest.get(account, 0)
            assert after > before
            newest[account] = after
    assert newest == {a: tracker.newest_row(a) for a in ("acc0", "acc1")}


def test_a_failed_batch_in_flight_makes_the_next_one_again(session_factory, monkeypatch):
    trades = book(6, 80)
    second = trades[40:]
    insert = group_commits.insert_prepared
    calls: list[int] = []

    def failing_once(session, prepared):
        calls.append(len(prepared.stored))
        if len(calls) == 1:
            raise RuntimeError("the disk is full")
        return insert(session, prepared)

    monkeypatch.setattr(group_commits, "insert_prepared", failing_once)
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator(), max_batch=40)
    held = spy_held(tracker)
    try:
        futures = streamed(tracker, trades)
        for future in futures[:40]:
            with pytest.raises(RuntimeError, match="disk is full"):
                future.result(timeout=120)
        for future in futures[40:]:
            future.result(timeout=120)
    finally:
        tracker.close()
    assert held[1] == {"acc0", "acc1"}
    assert held[2] == set()
    expected, _ = one_at_a_time(second)  # as if the first batch never came
    assert stored_values(session_factory) == expected


def test_an_account_moved_by_another_writer_meanwhile_is_read_again(session_factory):
    trades = book(7, 80)
    early = trades[0].execution_time - timedelta(hours=1)
    foreign = TradeRecord(
        trade_id="elsewhere", account_id="acc0", strategy_id="st0", symbol="S9", side="buy",
        price=10.0, volume=2.0, commission=0.5, execution_time=early, source="api",
    )  # fmt: skip
    other = TradeTracker(session_factory, annotator=MarketAnnotator())
    other.record_many(trades[:1])  # the account is known to both before
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator(), max_batch=40)
    tracker.catch_up("acc0")
    tracker.catch_up("acc1")
    prepare = tracker._prepare
    made: list[int] = []

    def then_another_writer(*args, **kwargs):
        prepared = prepare(*args, **kwargs)
        made.append(len(prepared.stored))
        if len(made) == 1:  # stored by another writer after the batch was made ready
            other.record_many([foreign])
        return prepared

    tracker._prepare = then_another_writer  # type: ignore[method-assign]
    try:
        for future in streamed(tracker, trades[1:]):
            future.result(timeout=120)
    finally:
        tracker.close()
    assert len(made) > 2  # the first batch made again
    expected, _ = one_at_a_time([trades[0], foreign, *trades[1:]])
    assert stored_values(session_factory) == expected
