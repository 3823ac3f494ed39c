"""Several processes recording trades of one account (gunicorn's workers, `app.py runner`,
`app.py trades import`), each its own TrackingService on the same database (SQLite and
PostgreSQL): each one's live view, once read, moves with the others' trades too, and each
one's tracker stores the same PnL a single tracker would. The others' rows are read
incrementally (the rows after the newest one a tracker holds), and whole again when a row
came in below that one (PostgreSQL numbers rows at insert, commits need not follow)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import text

from database.repositories.trades import TRADES, TradeRepository
from services.live_accounts import LiveAccounts
from services.tracking import TrackingService
from tests.tracking.test_annotator import seeded  # noqa: F401  (the fixture)
from tracking.tracker import Recorded


def _equal_to_recomputation(service: TrackingService, fills: int) -> None:
    live = service.live("acc")
    whole = TrackingService(service.sessions).performance("acc")["periods"][0]["trade_summary"]
    assert live["fills"] == fills
    for key, value in whole.items():
        assert live["trade_summary"][key] == pytest.approx(
            value, rel=1e-9, abs=1e-9, nan_ok=True
        ), key


def _stored(session_factory, account: str) -> list[tuple]:
    with session_factory() as session:
        return [
            (t.trade_id, round(t.pnl, 9), round(t.cumulative_pnl, 9), t.labels)
            for t in TradeRepository(session).list(account_id=account)
        ]


def test_each_process_sees_the_others_trades(session_factory, seeded):  # noqa: F811
    fills, _, _ = seeded
    a, b = TrackingService(session_factory), TrackingService(session_factory)
    heard: list[Recorded] = []
    a.tracker.add_listener(heard.append)  # a listener of its own batches only
    try:
        a.tracker.record_many(fills[:20])
        _equal_to_recomputation(a, 20)  # a follows the account from here
        done = 20
        for who, size in ((b, 7), (b, 5), (a, 9), (b, 11), (a, 3), (a, 6), (b, 19)):
            who.tracker.record_many(fills[done : done + size])  # b's rows: another process's
            done += size
            _equal_to_recomputation(a, done)
            _equal_to_recomputation(b, done)
        assert done == len(fills)
        own = [t.trade_id for outcome in heard for t in outcome.stored]
        assert own == [f.trade_id for f in fills[:20] + fills[32:41] + fills[52:61]]
    finally:
        a.tracker.close()
        b.tracker.close()
    # the PnL stored by the two trackers taking turns equals what one tracker stores
    reference = TrackingService(session_factory)
    reference.tracker.record_many([dataclasses.replace(f, account_id="ref") for f in fills])
    assert _stored(session_factory, "acc") == _stored(session_factory, "ref")


def test_a_row_below_the_newest_read_makes_the_view_read_the_account_again(
    session_factory,
    seeded,  # noqa: F811
):
    """A row that commits after rows numbered above it (PostgreSQL's sequences): the rows
    after the newest one read would miss it; the count says so and the account is read whole."""
    fills, _, _ = seeded
    a, b = TrackingService(session_factory), TrackingService(session_factory)
    try:
        a.tracker.record_many(fills[:30])
        _equal_to_recomputation(a, 30)
        b.tracker.record_many(fills[30:40])
        names = [c.name for c in TRADES.c if c.name != "id"]
        copied = ", ".join("'late'" if n == "trade_id" else n for n in names)
        with session_factory.begin() as session:  # a row numbered below every other one
            session.execute(text(
                f"INSERT INTO trades (id, {', '.join(names)}) SELECT -1, {copied} FROM trades"
                " WHERE id = (SELECT max(id) FROM trades)"
            ))  # fmt: skip
        _equal_to_recomputation(a, 41)
    finally:
        a.tracker.close()
        b.tracker.close()


def test_batches_heard_out_of_order_are_applied_in_the_chains_order(
    session_factory,
    seeded,  # noqa: F811
):
    fills, _, _ = seeded
    service = TrackingService(session_factory)
    batches: list[Recorded] = []
    service.tracker.add_listener(batches.append)
    for start in range(0, len(fills), 16):
        service.tracker.record_many(fills[start : start + 16])
    assert len(batches) == 5
    no_trips = service.trips(service.fills("acc")).iloc[:0]
    in_order, shuffled = LiveAccounts(), LiveAccounts()
    for live in (in_order, shuffled):
        live.seed("acc", no_trips, fills=0, row=batches[0].rows["acc"][0])
    for outcome in batches:
        in_order(outcome)
    assert in_order.view("acc") == service.live("acc")  # read whole by the service
    for k in (3, 1, 4, 2):
        shuffled(batches[k])
        assert shuffled.view("acc")["fills"] == 0  # waiting for the batch they follow
    shuffled(batches[0])
    shuffled(batches[2])  # heard twice: in the state already
    assert shuffled.view("acc") == in_order.view("acc")
    # a batch that overlaps what the state holds cannot be split: the account is read again
    before, after = batches[4].rows["acc"]
    shuffled(dataclasses.replace(batches[4], rows={"acc": (before - 1, after + 5)}))
    assert not shuffled.known("acc")
