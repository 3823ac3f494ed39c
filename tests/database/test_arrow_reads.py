"""Rows read straight into Arrow (database/repositories/_arrow_reads.py, _trade_copy.py): the
trades' read of an account's rows after a row equals the row read on both databases
(PostgreSQL through the COPY parsed by Arrow, SQLite through the session's rows regrouped
into Arrow columns a chunk at a time), for texts
with commas, quotes, line breaks and non-ASCII, empty texts beside missing ones, columns
missing in their first rows and set later, and floats that need all their digits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import Text, case, cast, func, literal, select, text
from sqlalchemy.exc import DBAPIError

import database.repositories.trades as trades_module
from database.records import TradeRecord
from database.repositories import _arrow_reads, _sqlite_columns
from database.repositories.trades import TradeRepository
from tests.conftest import ONLY_POSTGRESQL
from tests.database.builders import copy_recorder

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def odd_trades(n: int) -> list[TradeRecord]:
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


@pytest.mark.parametrize("chunk", [65_536, 1000])
def test_the_rows_after_a_row_equal_the_row_read(session_factory, monkeypatch, chunk):
    """With SQLite's rows regrouped 1,000 at a time too: a first chunk whose pnl, order and
    context keys are all missing, the next ones with them."""
    monkeypatch.setattr(_sqlite_columns, "CHUNK_ROWS", chunk)
    with session_factory.begin() as session:
        TradeRepository(session).add_many(odd_trades(1500))
    copied, spy = copy_recorder()
    real = trades_module.copied_rows

    with session_factory() as session:
        repo = TradeRepository(session)
        total = repo.stored_version("acc")[1]
        for after in (0, 1200):

            def frame(after=after):
                rows = repo._read("acc", None, None, None, None, False, after_id=after,
                                  with_id=True)  # fmt: skip
                return trades_module._finished(rows, False)

            monkeypatch.setattr(trades_module, "copied_rows", lambda *args: None)
            plain = frame()  # without the copy: the session's rows
            monkeypatch.setattr(trades_module, "copied_rows", spy)
            pd.testing.assert_frame_equal(frame(), plain, check_exact=True)
            monkeypatch.setattr(trades_module, "copied_rows", real)
            assert len(plain) == total - after
    assert copied == [True, True]


@pytest.mark.parametrize("database_backend", ["sqlite"], indirect=True)
def test_a_blob_in_a_text_column_is_read_as_the_rows_give_it(session_factory, monkeypatch):
    """SQLite keeps a blob in a text column as it is: its bytes become the same text either
    way."""
    with session_factory.begin() as session:
        TradeRepository(session).add_many(odd_trades(3))
        session.execute(
            text(
                "INSERT INTO trades (trade_id, account_id, strategy_id, symbol, side, price,"
                " volume, commission, execution_time, market_context, labels, order_id)"
                " VALUES ('blob', 'acc', 's', 'X', 'buy', 1.5, 1.0, 0.0,"
                " '2024-03-02 00:00:00.000000', '{}', '[]', x'6869')"
            )
        )
    made, spy = copy_recorder()

    def frame():
        with session_factory() as session:
            rows = TradeRepository(session)._read("acc", None, None, None, None, False)
            return trades_module._finished(rows, False)

    monkeypatch.setattr(trades_module, "copied_rows", lambda *args: None)
    plain = frame()
    monkeypatch.setattr(trades_module, "copied_rows", spy)
    pd.testing.assert_frame_equal(frame(), plain, check_exact=True)
    assert made == [True]


def test_no_second_copy_of_sqlite_reads_the_file():
    """A driver linking its own SQLite (ADBC's) must not read the file a process writes
    through sqlite3: the two copies lose each other's POSIX locks (the runner then failed
    with "disk I/O error")."""
    assert not hasattr(_arrow_reads, "sqlite_table")
    for module in (_arrow_reads, trades_module):
        assert "adbc_driver" not in Path(module.__file__).read_text()


@pytest.mark.parametrize("database_backend", [ONLY_POSTGRESQL], indirect=True)
def test_a_copy_parsed_as_it_comes_ends_whatever_the_parse_or_the_copy_did(session_factory):
    """The COPY is parsed while it comes (a thread writes it into a pipe): its rows in order;
    a text Arrow refuses (past the pipe's first blocks) raises ArrowInvalid and an error of
    the query SQLAlchemy's, each with the copy run to its end: the connection answers after."""
    rows = select(func.generate_series(1, 200_000).label("n")).subquery()
    texts = select(cast(rows.c.n, Text), rows.c.n).order_by(rows.c.n)
    with session_factory() as session:
        connection = session.connection()
        table = _arrow_reads.copy_table(connection, texts, {"t": pa.large_string(),
                                                            "n": pa.int64()})  # fmt: skip
        assert table.column("n").to_pylist() == list(range(1, 200_001))
        assert table.column("t").to_pylist()[-1] == "200000"
        refused = select(case((rows.c.n < 150_000, cast(rows.c.n, Text)), else_="x"))
        with pytest.raises(pa.ArrowInvalid):
            _arrow_reads.copy_table(connection, refused, {"n": pa.float64()})
        assert connection.execute(select(literal(1))).scalar() == 1
        failing = select(literal(1) / (rows.c.n - 150_000))
        with pytest.raises(DBAPIError):  # the division by zero (its transaction aborted)
            _arrow_reads.copy_table(connection, failing, {"n": pa.float64()})
        session.rollback()
        assert session.connection().execute(select(literal(1))).scalar() == 1
        empty = select(rows.c.n).where(rows.c.n < 0)
        assert _arrow_reads.copy_table(session.connection(), empty, {"n": pa.int64()}).num_rows == 0


def test_committed_rows_read_in_two_halves_equal_the_row_read(session_factory, monkeypatch):
    """A read of committed rows is made in two halves of their ids at once (PostgreSQL: two
    connections in one snapshot; SQLite: a child process reads the lower): the halves
    together are the rows the row read gives."""
    assert_halves_read_as_rows(session_factory, monkeypatch)


@pytest.mark.parametrize("database_backend", ["sqlite"], indirect=True)
def test_a_child_that_fails_leaves_its_half_to_the_session(session_factory, monkeypatch):
    start = _sqlite_columns.Child.__init__

    def elsewhere(self, path, *rest):  # the child is asked for a file that is not there
        start(self, path + ".gone", *rest)

    monkeypatch.setattr(_sqlite_columns.Child, "__init__", elsewhere)
    assert_halves_read_as_rows(session_factory, monkeypatch)


def assert_halves_read_as_rows(session_factory, monkeypatch) -> None:
    from database.repositories import _trade_copy

    with session_factory.begin() as session:
        TradeRepository(session).add_many(odd_trades(1500))
        postgresql = session.connection().dialect.name == "postgresql"
    monkeypatch.setattr(_trade_copy, "HALVES_FROM", 2)
    name = "_copied_in_halves" if postgresql else "_read_in_halves"
    made = []
    real = getattr(_trade_copy, name)
    monkeypatch.setattr(_trade_copy, name, lambda *args: made.append(real(*args)) or made[-1])
    with session_factory() as session:
        repo = TradeRepository(session)
        for after in (None, 1200, 1499):
            halves = repo._read("acc", None, None, None, None, False, after_id=after,
                                with_id=True, committed=True)  # fmt: skip
            monkeypatch.setattr(trades_module, "copied_rows", lambda *args: None)
            plain = repo._read("acc", None, None, None, None, False, after_id=after,
                               with_id=True)  # fmt: skip
            monkeypatch.setattr(trades_module, "copied_rows", _trade_copy.copied_rows)
            pd.testing.assert_frame_equal(
                trades_module._finished(halves, False),
                trades_module._finished(plain, False),
                check_exact=True,
            )
    assert [t is not None and t.num_rows for t in made] == [1500, 300, False]  # 1 row: one read
