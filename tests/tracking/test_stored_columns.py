"""The tracker stores its batch from the columns it read (tracking.batch_columns) the rows
TradeRepository.add_many stores of the same records: every column, as the database holds it,
on SQLite and PostgreSQL (sources' own contexts and labels, order ids, NULLs,
times to the microsecond)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from database.records import TradeRecord
from database.repositories.trades import TRADES, TradeRepository
from tests.tracking.test_tracker_batches import book
from tracking import group_commits as tracker_module
from tracking.annotator import MarketAnnotator
from tracking.tracker import TradeTracker


def trades(n: int, seed: int) -> list[TradeRecord]:
    """test_tracker_batches' random book with what sources add: contexts (one with a tab),
    labels, no source, order ids, times to the microsecond."""
    rng = np.random.default_rng(seed)
    out = []
    for t in book(seed, n):
        context = {"reason": "stop_loss", "note": "a\tb"} if rng.random() < 0.2 else {}
        out.append(
            dataclasses.replace(
                t, execution_time=t.execution_time + timedelta(microseconds=int(rng.integers(999))),
                source=("api", None)[int(rng.random() < 0.3)],
                order_id=(f"o{t.trade_id}", None)[int(rng.random() < 0.5)],
                labels=("manual",) if rng.random() < 0.2 else (), market_context=context,
            )
        )  # fmt: skip
    return out


def rows(session, account: str) -> list[tuple]:
    names = [c for c in TRADES.c if c.name not in ("id", "account_id")]
    statement = select(*names).where(TRADES.c.account_id == account).order_by(TRADES.c.id)
    return [tuple(row) for row in session.execute(statement)]


@pytest.mark.parametrize("chunk_rows", [2_500, 37])  # on PostgreSQL: one chunk, or many
def test_a_streamed_batch_stores_what_add_many_stores(session_factory, monkeypatch, chunk_rows):
    monkeypatch.setattr(tracker_module, "COPY_CHUNK_ROWS", chunk_rows)
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator(), window_s=0.05)
    try:
        futures = [tracker.submit(t) for t in trades(400, 3)]
        stored = [f.result(timeout=60) for f in futures]
    finally:
        tracker.close()
    renamed = {"acc0": "copy0", "acc1": "copy1"}
    with session_factory.begin() as session:
        copies = [dataclasses.replace(r, account_id=renamed[r.account_id]) for r in stored]
        TradeRepository(session).add_many(copies, checked=True)
    with session_factory() as session:
        for account, copy in renamed.items():
            mine, theirs = rows(session, account), rows(session, copy)
            assert len(mine) == len(theirs) > 100
            assert mine == theirs
