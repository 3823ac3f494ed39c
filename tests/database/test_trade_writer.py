"""TradeRepository.add_many's writer on SQLite and PostgreSQL: a batch written in many chunks
(one COPY on PostgreSQL, each chunk made as the server reads) stores the rows one chunk
would, and a refusal in a late chunk writes nothing."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from database.repositories import TradeRepository
from tests.database.builders import trade


def _batch(n: int, account: str = "acc") -> list:
    out = []
    for k in range(n):
        out.append(
            trade(
                f"t{k}", minutes=k, account_id=account, symbol=("SP500", "NQ\tX")[k % 2],
                price=100 + k / 7, volume=[1.0, 0.1, 3e-9][k % 3], commission=0.0,
                strategy_id="s", pnl=None if k % 4 == 0 else -k / 3,
                cumulative_pnl=None if k % 4 == 0 else math.pi * k,
                labels=() if k % 5 else ("a", "b\\n"),
                market_context={} if k % 2 else {"spread": k / 9, "text": "x\ty\\z"},
                order_id=None if k % 3 else f"o{k}", source="csv",
            )
        )  # fmt: skip
    return out


def _stored(session, account: str) -> list[tuple]:
    query = text("SELECT * FROM trades WHERE account_id = :a ORDER BY id")
    return [tuple(row)[1:] for row in session.execute(query, {"a": account})]


def test_chunks_store_what_one_statement_stores(session):
    batch = _batch(23)
    TradeRepository(session, chunk_rows=4).add_many(batch)
    TradeRepository(session).add_many(_batch(23, account="one"))

    chunked = _stored(session, "acc")
    whole = [(row[0], "acc", *row[2:]) for row in _stored(session, "one")]
    assert chunked == whole
    repo = TradeRepository(session)
    assert [repo.get(r.trade_id, "acc") for r in batch] == batch
    assert repo.list(account_id="acc") == batch


def test_a_refusal_in_a_late_chunk_writes_nothing(session_factory):
    with session_factory.begin() as session:
        TradeRepository(session).add_many(_batch(2))
    batch = _batch(30)[2:]  # t2..t29, then t1 again, already stored: in the last chunk
    batch.append(_batch(2)[1])
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        TradeRepository(session, chunk_rows=5).add_many(batch, checked=True)
    with session_factory() as session:
        assert [t.trade_id for t in TradeRepository(session).list(account_id="acc")] == [
            "t0", "t1",
        ]  # fmt: skip


def test_an_empty_batch_writes_nothing(session):
    assert TradeRepository(session, chunk_rows=3).add_many([]) == 0
    assert _stored(session, "acc") == []


def test_a_chunk_that_cannot_be_made_writes_nothing(session_factory):
    batch = _batch(12)
    batch[-1] = trade("bad", account_id="acc", market_context={"when": object()})
    with pytest.raises(TypeError), session_factory.begin() as session:
        TradeRepository(session, chunk_rows=4).add_many(batch)
    with session_factory() as session:
        assert _stored(session, "acc") == []
        TradeRepository(session).add_many(_batch(3))  # the connection is fine after it
        assert len(_stored(session, "acc")) == 3
