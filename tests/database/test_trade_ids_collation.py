"""Migration 0017 on SQLite and PostgreSQL: trades' account and trade ids compare byte by byte
(PostgreSQL's "C" collation, SQLite's BINARY), the stored rows untouched and still unique,
both ways; the two databases then sort ids alike."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from database.migrate import downgrade, upgrade
from database.repositories import TradeRepository
from database.session import make_engine, make_session_factory
from tests.database.builders import trade
from tests.database.test_trade_indexes_migration import _rows

IDS = ["b", "B", "a", "é", "Z", "a-1", "a_1", "10", "9"]


def _collations(engine) -> dict[str, str | None]:
    if engine.dialect.name != "postgresql":
        return {}
    query = text(
        "SELECT a.attname, c.collname FROM pg_attribute a"
        " LEFT JOIN pg_collation c ON c.oid = a.attcollation"
        " WHERE a.attrelid = 'trades'::regclass AND a.attname IN ('account_id', 'trade_id')"
    )
    with engine.connect() as connection:
        return dict(connection.execute(query).all())


def test_0017_orders_ids_by_bytes_and_keeps_every_row(empty_database_url):
    upgrade(empty_database_url, "0016")
    engine = make_engine(empty_database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            TradeRepository(session).add_many(
                [trade(i, minutes=k, account_id="Acc") for k, i in enumerate(IDS)]
            )
        before = _rows(engine)
        postgresql = engine.dialect.name == "postgresql"
        if postgresql:
            assert set(_collations(engine).values()) == {"default"}

        upgrade(engine, "0017")

        assert _rows(engine) == before
        if postgresql:
            assert _collations(engine) == {"account_id": "C", "trade_id": "C"}
        with engine.connect() as connection:
            ordered = connection.execute(text("SELECT trade_id FROM trades ORDER BY trade_id"))
            assert [row[0] for row in ordered] == sorted(IDS, key=str.encode)
        unchecked = [trade("é", minutes=99, account_id="Acc")]  # only the unique key refuses
        with pytest.raises(IntegrityError), sessions.begin() as session:
            TradeRepository(session).add_many(unchecked, checked=True)
        with sessions() as session:  # the unique key still finds stored ids
            assert TradeRepository(session).stored_ids("Acc", ["é", "e", "B"]) == {"é", "B"}

        downgrade(engine, "0016")

        assert _rows(engine) == before
        if postgresql:
            assert set(_collations(engine).values()) == {"default"}
        upgrade(engine, "head")
        assert _rows(engine) == before
    finally:
        engine.dispose()
