"""The PostgreSQL writer's proof that an insert's rows are all of the account's rows after
its ``before`` (database/repositories/_trade_cache_sync.Writes): at once when their ids
span as many ids as the batch has rows, counted otherwise (ids with gaps), and a row of
another transaction visible in the range keeps the batch out of the cache."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from database.repositories import _trade_cache_sync as sync
from database.repositories.trades import TradeRepository
from tests.conftest import ONLY_POSTGRESQL
from tests.database.test_trade_cache_writes import (
    add,
    assert_cached_as_stored,
    read_rows,
    trades,
    written,
)

pytestmark = pytest.mark.parametrize("database_backend", [ONLY_POSTGRESQL], indirect=True)


def spied(monkeypatch) -> list[tuple[int, int | None, int, bool]]:
    seen: list[tuple[int, int | None, int, bool]] = []
    original = sync.Writes._ours_alone

    def spy(self, account, last, first, rows):
        alone = original(self, account, last, first, rows)
        seen.append((last, first, rows, alone))
        return alone

    monkeypatch.setattr(sync.Writes, "_ours_alone", spy)
    return seen


def test_ids_with_gaps_are_counted(session_factory, monkeypatch):
    monkeypatch.setattr(sync, "FLUSH_ROWS", 1)
    seen = spied(monkeypatch)
    add(session_factory, trades(0, 4))
    with session_factory.begin() as session:
        session.execute(text("ALTER SEQUENCE trades_id_seq INCREMENT BY 3"))
    add(session_factory, trades(4, 5))
    assert [(last - first + 1, rows, alone) for last, first, rows, alone in seen] == [
        (4, 4, True), (13, 5, True)  # a run of ids; every third id: counted, ours
    ]  # fmt: skip
    _, _, hit = written(session_factory)
    assert hit.count == 9
    assert_cached_as_stored(session_factory)


def test_a_row_of_another_transaction_in_the_range(session_factory, monkeypatch):
    monkeypatch.setattr(sync, "FLUSH_ROWS", 1)
    add(session_factory, trades(0, 5))
    seen = spied(monkeypatch)
    other = session_factory()
    other.begin()
    TradeRepository(other).add_many(trades(5, 2))  # ids taken, not committed yet
    stored = sync.Writes.stored

    def committed_first(self):  # it commits after our insert, before our rows are proved
        if other.in_transaction():
            other.commit()
        stored(self)

    monkeypatch.setattr(sync.Writes, "stored", committed_first)
    add(session_factory, trades(7, 3))
    other.close()
    assert [alone for *_, alone in seen] == [True, False]  # the other's rows, then ours
    _, _, hit = written(session_factory)
    assert hit.count == 5 + 2  # the other's two rows (below ours) appended, ours not claimed
    frame, afters = read_rows(session_factory, monkeypatch)
    assert len(frame) == 10
    assert afters == [hit.last_id]  # ours read from the database, then cached
    assert_cached_as_stored(session_factory)
