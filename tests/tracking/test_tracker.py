"""TradeTracker on SQLite and PostgreSQL: realised PnL per fill, duplicates and order refused
by name with nothing written, imports idempotent, the group commit acknowledging each trade once
committed, and a tracker that meets trades written by another process."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from database.errors import DuplicateTradeError
from database.records import TradeRecord
from database.repositories.trades import TradeRepository
from tracking.tracker import ConflictingTradeError, OutOfOrderTradeError, TradeTracker

T0 = datetime(2024, 3, 1, 14, 0, tzinfo=UTC)


def fill(trade_id: str, minute: int, side: str, price: float, volume: float, fee: float = 0.0,
         *, account: str = "acc", symbol: str = "BTC") -> TradeRecord:  # fmt: skip
    return TradeRecord(
        trade_id=trade_id, account_id=account, strategy_id="s", symbol=symbol, side=side,
        price=price, volume=volume, commission=fee,
        execution_time=T0 + timedelta(minutes=minute), source="csv",
    )  # fmt: skip


def stored(session_factory, account: str = "acc") -> list[TradeRecord]:
    with session_factory() as session:
        return TradeRepository(session).list(account_id=account)


def test_each_fill_gets_its_realised_pnl_and_the_accounts_cumulative(session_factory):
    tracker = TradeTracker(session_factory)
    out = tracker.record_many(
        [
            fill("b", 1, "buy", 110, 1, 1),  # given out of order: sorted by time
            fill("a", 0, "buy", 100, 1, 1),
            fill("c", 2, "sell", 120, 1.5, 1.5),
            fill("x", 2, "buy", 10, 1, 0, symbol="ETH"),
            fill("d", 3, "sell", 90, 0.5, 0.5),
        ]
    )
    # FIFO: c closes 1 @100 and 0.5 @110 at 120 (+25), d closes 0.5 @110 at 90 (-10)
    rows = {r.trade_id: r for r in stored(session_factory)}
    assert [r.trade_id for r in out.stored] == ["a", "b", "c", "x", "d"]
    assert [rows[t].pnl for t in "abcxd"] == pytest.approx([-1, -1, 23.5, 0, -10.5])
    assert [rows[t].cumulative_pnl for t in "abcxd"] == pytest.approx([-1, -2, 21.5, 21.5, 11])
    assert rows["a"].source == "csv"
    # a second tracker (a new process) goes on from what is stored
    again = TradeTracker(session_factory).record_many([fill("e", 4, "sell", 95, 1, 0)])
    assert again.stored[0].pnl == 0.0  # opens a short
    assert again.stored[0].cumulative_pnl == pytest.approx(11.0)


def test_a_repeated_id_or_an_older_trade_writes_nothing_and_is_named(session_factory):
    tracker = TradeTracker(session_factory)
    tracker.record_many([fill("a", 0, "buy", 100, 1), fill("b", 5, "sell", 101, 1)])
    with pytest.raises(DuplicateTradeError, match=r"already stored: 'b' \(account 'acc'\)"):
        tracker.record_many([fill("c", 6, "buy", 100, 1), fill("b", 7, "sell", 101, 1)])
    with pytest.raises(DuplicateTradeError, match="within the batch: 'z'"):
        tracker.record_many([fill("z", 8, "buy", 100, 1), fill("z", 9, "sell", 101, 1)])
    with pytest.raises(OutOfOrderTradeError, match=r"'old'.*older than the account's last BTC"):
        tracker.record_many([fill("new", 10, "buy", 100, 1), fill("old", 1, "buy", 99, 1)])
    assert [r.trade_id for r in stored(session_factory)] == ["a", "b"]
    # the tracker's own state was not moved by the refused batches
    assert tracker.record_many([fill("c", 6, "buy", 100, 1)]).stored[0].cumulative_pnl == 1.0


def test_importing_twice_stores_nothing_new_and_a_changed_trade_is_refused(session_factory):
    tracker = TradeTracker(session_factory)
    trades = [fill("a", 0, "buy", 100, 1), fill("b", 5, "sell", 101, 1)]
    assert len(tracker.record_many(trades, skip_stored=True).stored) == 2
    again = TradeTracker(session_factory).record_many(
        [*trades, fill("c", 6, "buy", 102, 1)], skip_stored=True
    )
    assert again.skipped == ["a", "b"]
    assert [r.trade_id for r in again.stored] == ["c"]
    with pytest.raises(ConflictingTradeError, match="'b' of account 'acc' is stored with other"):
        tracker.record_many([fill("b", 5, "sell", 999, 1)], skip_stored=True)
    assert len(stored(session_factory)) == 3


def test_streamed_trades_are_acknowledged_once_committed_and_bad_ones_fail_alone(
    session_factory,
):
    seen: list[str] = []
    heard = threading.Condition()

    def listener(out) -> None:
        with heard:
            seen.extend(r.trade_id for r in out.stored)
            heard.notify_all()

    tracker = TradeTracker(session_factory, listeners=[listener])
    try:
        futures = [tracker.submit(fill(f"s{k}", k, "buy" if k % 2 == 0 else "sell", 100 + k, 1))
                   for k in range(200)]  # fmt: skip
        futures.append(tracker.submit(fill("s3", 300, "buy", 1, 1)))  # repeated
        results = [f.result(timeout=30) for f in futures[:-1]]
        with pytest.raises(DuplicateTradeError, match="'s3'"):
            futures[-1].result(timeout=30)
        # acknowledged means readable by anyone
        assert len(stored(session_factory)) == 200
        assert results[-1].cumulative_pnl == pytest.approx(100 * 1.0)  # each pair: +1
        # the listeners hear a group on the writer thread once it is committed, maybe after
        # its trades are acknowledged (the group after it made meanwhile): waited for
        with heard:
            assert heard.wait_for(lambda: len(seen) >= 200, timeout=30)
        assert sorted(seen) == sorted(f"s{k}" for k in range(200))
        # producers on several threads: every trade stored once, the FIFO sum still exact
        threads = [
            threading.Thread(
                target=lambda a=a: [
                    tracker.record(fill(f"{a}-{k}", k, "buy", 10, 1, account=a)) for k in range(50)
                ]
            )
            for a in ("t1", "t2", "t3")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [len(stored(session_factory, a)) for a in ("t1", "t2", "t3")] == [50, 50, 50]
    finally:
        tracker.close()


def test_a_listener_added_later_hears_each_commit_until_removed_and_a_failing_one_loses_nothing(
    session_factory,
):
    tracker = TradeTracker(session_factory)
    heard: list[list[str]] = []
    remove = tracker.add_listener(lambda out: heard.append([r.trade_id for r in out.stored]))
    tracker.add_listener(lambda out: 1 / 0)  # logged, never loses a trade
    tracker.record_many([fill("a", 1, "buy", 10, 1), fill("b", 2, "sell", 11, 1)])
    assert heard == [["a", "b"]]
    remove()
    tracker.record_many([fill("c", 3, "buy", 10, 1)])
    assert heard == [["a", "b"]]
    assert [t.trade_id for t in stored(session_factory)] == ["a", "b", "c"]


def test_a_batch_recorded_in_the_callers_transaction_is_heard_once_committed(session_factory):
    tracker = TradeTracker(session_factory)
    heard: list[list[str]] = []
    tracker.add_listener(lambda out: heard.append([r.trade_id for r in out.stored]))
    with session_factory.begin() as session:
        tracker.record_in(session, [fill("a", 1, "buy", 10, 1)])
        assert heard == []  # not before the commit
    assert heard == [["a"]]
    session = session_factory()
    with session.begin():
        tracker.record_in(session, [fill("b", 2, "sell", 11, 1)])
        session.rollback()  # the caller rolls back
    session.close()
    assert heard == [["a"]]  # a rolled back batch is never heard
    assert [t.trade_id for t in stored(session_factory)] == ["a"]


def test_a_batch_of_more_accounts_and_symbols_than_one_query_binds(session_factory):
    """The newest rows of 520 accounts and the pending bars of 210 symbols are read in
    several statements (500 accounts, 200 series each: bound parameters within the
    databases' limits): every account's rows are the ones it stored, each trade finds its
    symbol's bars."""
    import pandas as pd
    from sqlalchemy import func, select

    from database.repositories.candles import CandleRepository
    from database.repositories.trades import TRADES
    from market.sample_data import generate_random_walk
    from tracking.annotator import MarketAnnotator

    symbols = [f"B{k}" for k in range(210)]
    start = pd.Timestamp(T0) - pd.Timedelta(minutes=30)
    with session_factory.begin() as session:
        for k, symbol in enumerate(symbols):
            bars = generate_random_walk(symbol, "1m", start, 40, seed=k)
            CandleRepository(session).upsert(symbol, "1m", bars)
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator())
    first = [fill(f"x{k}", 0, "buy", 100.0, 1.0, account=f"acc{k}", symbol=symbols[k % 210])
             for k in range(520)]  # fmt: skip
    tracker.record_many(first)
    second = [fill(f"y{k}", 5, "sell", 101.0, 1.0, account=f"acc{k}", symbol=symbols[k % 210])
              for k in range(520)]  # fmt: skip
    out = tracker.record_many(second)
    assert len(out.stored) == 520
    assert all(t.market_context["bar_open"] is not None for t in out.stored)
    with session_factory() as session:
        rows = session.execute(
            select(TRADES.c.account_id, func.min(TRADES.c.id), func.max(TRADES.c.id)).group_by(
                TRADES.c.account_id
            )
        ).all()
    assert out.rows == {account: (low, high) for account, low, high in rows}
    assert len(out.rows) == 520
