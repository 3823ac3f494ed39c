"""Rows read straight into Arrow (database/repositories/_arrow_reads.py): SQLite's committed
rows through the ADBC SQLite driver (types taken from every row, a column of another type
refused, shares read side by side joined in order) and the trades' cached read through it
equal to the row read; the COPY read shared by the trades and the executions."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, select, text

import database.repositories.trades as trades_module
from database.records import TradeRecord
from database.repositories import _arrow_reads
from database.repositories.trades import TradeRepository

pytest.importorskip("adbc_driver_sqlite")

T0 = datetime(2024, 3, 1, tzinfo=UTC)
KINDS = {"id": pa.int64(), "s": pa.large_string(), "f": pa.float64(), "n": pa.large_string()}


@pytest.fixture
def small(tmp_path):
    """A SQLite file: 1,500 rows whose text and float columns are NULL in their first 1,100
    rows (more than the driver's default batch of 1,024) and one column NULL throughout."""
    path = tmp_path / "small.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, f REAL, n TEXT)")
        db.executemany(
            "INSERT INTO t (s, f, n) VALUES (?, ?, NULL)",
            [(None, None)] * 1100 + [(f"x{k}", k / 3) for k in range(400)],
        )
    engine = create_engine(f"sqlite:///{path}")
    yield engine, path
    engine.dispose()


def columns():
    from sqlalchemy import Float, Integer, String, column, table

    return table("t", column("id", Integer), column("s", String), column("f", Float),
                 column("n", String))  # fmt: skip


def test_every_row_sets_the_types_and_an_all_null_column_takes_the_one_asked(small):
    engine, path = small
    t = columns()
    with engine.connect() as connection:
        read = _arrow_reads.sqlite_table(connection, select(*t.c).order_by(t.c.id), KINDS)
    assert read is not None
    assert read.schema == pa.schema(list(KINDS.items()))
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, s, f, n FROM t ORDER BY id").fetchall()
    assert list(zip(*(read.column(k).to_pylist() for k in range(4)), strict=True)) == rows


def test_shares_read_side_by_side_are_joined_in_their_order(small):
    engine, _ = small
    t = columns()
    whole = select(*t.c).where(t.c.id > 3).order_by(t.c.id)
    parts = [whole.where(t.c.id <= 700), whole.where(t.c.id > 700, t.c.id <= 1200),
             whole.where(t.c.id > 1200)]  # fmt: skip
    with engine.connect() as connection:
        one = _arrow_reads.sqlite_table(connection, whole, KINDS)
        joined = _arrow_reads.sqlite_table(connection, whole, KINDS, parts)
    assert joined is not None
    assert joined.equals(one)
    assert joined.num_rows == 1497


def test_a_value_of_another_type_or_a_database_not_in_a_file_is_not_read(small):
    engine, path = small
    t = columns()
    with sqlite3.connect(path) as db:  # a blob where a text is asked
        db.execute("INSERT INTO t (s, f) VALUES (?, 1.0)", (b"\x00\x01",))
    with engine.connect() as connection:
        assert _arrow_reads.sqlite_table(connection, select(*t.c), KINDS) is None
    memory = create_engine("sqlite://")
    with memory.connect() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER, s TEXT, f REAL, n TEXT)"))
        assert _arrow_reads.sqlite_table(connection, select(*t.c), KINDS) is None


def odd_trades(n: int) -> list[TradeRecord]:
    """Texts with commas, quotes, line breaks and non-ASCII, empty texts beside missing ones,
    columns missing in their first rows and set later, floats that need all their digits."""
    return [
        TradeRecord(
            trade_id=f'id,"{k}"\nx', account_id="acc",
            strategy_id=(" s", "s é")[k % 2],
            symbol=("BTC/€", "a,b")[k % 2], side=("buy", "sell")[k % 2],
            price=0.1 + k / 3, volume=1 / 3 + k, commission=(1e-300, 0.0)[k % 2],
            execution_time=T0 + timedelta(microseconds=123457 * k + 1),
            labels=(("q\"u,o", "l\nb"), ())[k % 2],
            market_context={} if k < 1100 else {"volatility_regime": ('a"b,c', "")[k % 2],
                                                "market_session": (None, "x")[k % 2]},
            pnl=None if k < 1100 else (None, 2 / 7)[k % 2],
            cumulative_pnl=(-1e17 / 3, None)[k % 2], source=("", None)[k % 2],
            order_id=None if k < 1100 else (None, "")[k % 2],
        )
        for k in range(n)
    ]  # fmt: skip


def test_committed_rows_read_by_the_driver_equal_the_row_read(session_factory, monkeypatch):
    """On a SQLite file the committed rows a cached read asks (TradeRepository._read with
    ``committed``: the account's rows after a row) come through the driver, in shares side
    by side when there are many, the same frame as the session's rows; elsewhere not."""
    with session_factory.begin() as session:
        TradeRepository(session).add_many(odd_trades(1500))
    read = []
    real = _arrow_reads.sqlite_table

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        read.append((found is not None, len(args[3]) if len(args) > 3 else 0))
        return found

    monkeypatch.setattr("database.repositories._trade_copy.sqlite_table", spy)
    monkeypatch.setattr(trades_module, "sqlite_parts", lambda rows: 3 if rows > 1000 else 1)
    with session_factory() as session:
        repo = TradeRepository(session)
        _, total, last = repo.stored_version("acc")
        for after in (0, 1200):

            def frame(committed, after=after):
                rows = repo._read("acc", None, None, None, None, False, after_id=after,
                                  with_id=True, committed=committed)  # fmt: skip
                return trades_module._finished(rows, False)

            plain = frame(None)
            pd.testing.assert_frame_equal(frame((total - after, last)), plain, check_exact=True)
            assert len(plain) == total - after
        sqlite = session.connection().dialect.name == "sqlite"
    assert read == ([(True, 3), (True, 0)] if sqlite else [])
