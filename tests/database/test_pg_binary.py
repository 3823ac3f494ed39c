"""PostgreSQL's binary COPY (database/repositories/_pg_binary.py): the rows it stores equal
the rows the text COPY stores, value for value, for the awkward values of every column type:
NULLs, texts with tabs, newlines, backslashes and non-ASCII letters, extreme floats (a
subnormal, -0.0, 1e300), times before 2000 and with microseconds, 64-bit ints for an
integer column, one text in every row and a column the rows do not have."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import text

from database.repositories import _trade_io
from database.repositories._pg_binary import (
    UnsupportedColumn,
    binary_rows,
    field_types,
)
from database.repositories._trade_io import TRADE_COLUMNS, insert_columns, insert_trades
from tests.conftest import ONLY_POSTGRESQL

on_postgresql = pytest.mark.parametrize("database_backend", [ONLY_POSTGRESQL], indirect=True)

FLOATS = [1 / 3, 5e-324, 1.2345678901234567e300, -0.0, 2.5, 1e-300, 123456789.123456789]


def _trades(account: str, n: int = 7) -> dict[str, object]:
    times = np.array(
        ["1999-12-31T23:59:59.999999", "2000-01-01T00:00:00", "2024-02-29T12:34:56.000001",
         "1970-01-01T00:00:00", "2262-04-11T00:00:00", "2000-01-01T00:00:00.000001",
         "2026-12-05T10:00:00.5"],
        dtype="datetime64[us]",
    )[:n]  # fmt: skip
    return {
        "trade_id": [f"t{k}\t\\é\n" for k in range(n)],
        "account_id": [account] * n,
        "strategy_id": ["s", "ß", "s", "s\r", "s", "s", "日本"][:n],
        "run_id": [None] * n,
        "symbol": ["BTC/USDT"] * n,
        "side": (["buy", "sell"] * 4)[:n],
        "price": np.array([abs(f) + 1 for f in FLOATS][:n]),
        "volume": [0.5] * n,
        "commission": np.array(FLOATS[:n]),
        "execution_time": times,
        "market_context": (['{"a": "x\\ty", "b": 1.5, "c": "é"}', "{}"] * 4)[:n],
        "labels": (['["breakout", "new\\nline"]', "[]"] * 4)[:n],
        "pnl": np.array([np.nan, -1.25, np.nan, 3.0, 5e-324, np.nan, -0.0][:n]),
        "cumulative_pnl": [None, 1 / 7, None, 2.0, None, 1e300, -3.5][:n],
        "source": ["csv"] * n,
        "order_id": [None, "o1", None, "o\\3", "", None, "o6"][:n],
    }


def _stored(session, account: str) -> list[tuple]:
    query = text("SELECT * FROM trades WHERE account_id = :a ORDER BY id")
    return [(row[1], *tuple(row)[3:]) for row in session.execute(query, {"a": account})]


def _as_text(monkeypatch):
    def refuse(table, names):
        raise UnsupportedColumn("the text format, for the comparison")

    monkeypatch.setattr(_trade_io, "field_types", refuse)


@on_postgresql
def test_binary_rows_equal_text_rows(session, monkeypatch):
    insert_trades(session, _trades("binary"))
    with monkeypatch.context() as patch:
        _as_text(patch)
        insert_trades(session, _trades("text"))
    binary, texts = _stored(session, "binary"), _stored(session, "text")
    assert len(binary) == 7
    assert binary == texts
    first = binary[0]
    assert first[0] == "t0\t\\é\n"
    assert first[8] == datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert [row[11] for row in binary][:2] == [None, -1.25]  # pnl NaN -> NULL
    assert np.signbit(binary[6][11])  # -0.0 kept


@on_postgresql
def test_one_row_and_many_chunks(session, monkeypatch):
    columns = _trades("one", n=1)
    insert_trades(session, columns)
    chunks = [{k: v[i : i + 2] for k, v in _trades("chunks").items()} for i in range(0, 7, 2)]
    _trade_io.copy_chunks(session.connection(), "trades", TRADE_COLUMNS, chunks)
    with monkeypatch.context() as patch:
        _as_text(patch)
        insert_trades(session, _trades("one-text", n=1))
        insert_trades(session, _trades("chunks-text"))
    assert _stored(session, "one") == _stored(session, "one-text")
    assert _stored(session, "chunks") == _stored(session, "chunks-text")


@on_postgresql
def test_execution_fills_integer_and_absent_columns(session, monkeypatch):
    def fills(account: str) -> dict[str, object]:
        return {
            "account_id": [account] * 3,
            "order_id": ["o1", "o1", "o2"],
            "seq": np.array([0, 1, 0], dtype=np.int64),  # 8-byte ints for an INTEGER column
            "fill_time": np.array(
                ["2024-01-01T00:00:01", "1990-05-06", "2024-01-02"], dtype="datetime64[us]"
            ),
            "fill_price": np.array([1.5, 2.5, 3.5]),
            "fill_qty": [1.0, 2.0, 3.0],
            "fee": np.array([0.0, -0.01, 1e-9]),
            "trade_id": [None, None, None],  # a column the rows do not have
        }

    def orders(account: str) -> dict[str, object]:
        return {
            "account_id": [account] * 2, "order_id": ["o1", "o2"], "source": ["csv"] * 2,
            "strategy_id": ["s", "s"], "symbol": ["X", "X"], "side": ["buy", "sell"],
            "order_qty": [3.0, 1.5], "order_type": [None, "limit"], "limit_price": [None, 2.0],
            "decision_time": np.array(["NaT", "2024-01-01"], dtype="datetime64[us]"),
            "arrival_time": np.array(["2024-01-01", "2024-01-01"], dtype="datetime64[us]"),
            "arrival_price": np.array([np.nan, 2.25]), "bid": [None, None],
        }  # fmt: skip

    assert field_types("execution_fills", ("seq", "fill_time")) == (
        "INTEGER", "TIMESTAMP WITH TIME ZONE",
    )  # fmt: skip
    for account in ("bin", "txt"):
        with monkeypatch.context() as patch:
            if account == "txt":
                _as_text(patch)
            insert_columns(session, "execution_orders", list(orders(account)), orders(account))
            insert_columns(session, "execution_fills", list(fills(account)), fills(account))
    rows = {}
    for table in ("execution_orders", "execution_fills"):
        query = text(f"SELECT * FROM {table} WHERE account_id = :a ORDER BY id")
        for a in ("bin", "txt"):
            rows[table, a] = [tuple(r)[2:] for r in session.execute(query, {"a": a})]
    assert len(rows["execution_orders", "bin"]) == 2
    assert rows["execution_orders", "bin"] == rows["execution_orders", "txt"]
    fills_stored = rows["execution_fills", "bin"]
    assert len(fills_stored) == 3
    assert fills_stored == rows["execution_fills", "txt"]
    assert [r[1] for r in fills_stored] == [0, 1, 0]
    assert all(r[-1] is None for r in fills_stored)


def test_a_fraction_for_an_integer_column_is_refused():
    columns = {"seq": np.array([0.5]), "account_id": ["a"]}
    with pytest.raises(ValueError, match="whole numbers"):
        binary_rows(columns, ["seq"], ["INTEGER"])


def test_texts_that_are_not_texts_are_written_as_their_str():
    as_str = binary_rows({"a": ["x", 5, None]}, ["a"], ["TEXT"])
    given = binary_rows({"a": ["x", "5", None]}, ["a"], ["TEXT"])
    assert as_str == given
    assert given.endswith(b"\xff\xff\xff\xff")  # the NULL's length, no bytes
