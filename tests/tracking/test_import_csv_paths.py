"""A CSV of fills reads the same whichever way it is read: Arrow's columns (the fast way for a
plain clean file), pandas' columns, or row by row (the way that names every problem). Each
file here is read the three ways and gives the same records in the same order, or the same
refusal."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from tracking.importers import TradeImportError, csv_arrow, csv_fills, read_trades

HEADER = "trade_id,timestamp,symbol,side,price,volume,commission,account_id"
FILES = {
    "plain": f"{HEADER}\na,1704189600000,BTC/USDT,buy,100,1,0,acc1\nb,1704189500000,X,sell,2,3,,\n",
    "crlf and a bom": f"\ufeff{HEADER}\r\na,1704189600000,BTC,BUY,1e3,.5,-0.25,acc1\r\n",
    "odd spaces": f"{HEADER}\n\x1ca\x1f, 1704189600000 ,\u00a0BTC ,\tsell , 42.125 ,1, 0 ,\n",
    "quoted": f'{HEADER}\n"a,1",1704189600000,"BTC, spot",buy,"7",1,0,acc1\n',
    "quoted line break": f'{HEADER}\n"a\n1",1704189600000,BTC,buy,7,1,0,acc1\n',
    "iso times": (
        f"{HEADER}\na,2024-01-02T10:00:00Z,B,buy,1,1,0,\nb,2024-01-02T11:00:00+01:00,B,buy,1,1,0,\n"
    ),
    "far times": f"{HEADER}\na,253402300799999,B,buy,1,1,0,\nb,100000000000,B,buy,1,1,0,\n",
    "blank line": f"{HEADER}\na,1704189600000,B,buy,1,1,0,\n\nb,1704189600001,B,buy,1,1,0,\n",
    "empty cells": f"{HEADER}\na,1704189600000,B,buy,1,1,0,\n,,,,,,,\n",
    "underscored number": f"{HEADER}\na,1704189600000,B,buy,1_000,1,0,\n",
    "nan price": f"{HEADER}\na,1704189600000,B,buy,nan,1,0,\n",
    "zero volume": f"{HEADER}\na,1704189600000,B,buy,1,0,0,\n",
    "another account": f"{HEADER}\na,1704189600000,B,buy,1,1,0,acc2\n",
    "repeated id": f"{HEADER}\na,1704189600000,B,buy,1,1,0,\na,1704189600001,B,buy,1,1,0,\n",
    "unicode side": f"{HEADER}\na,1704189600000,B,BUY\u0130,1,1,0,\n",
    "epoch seconds": f"{HEADER}\na,1704189600,B,buy,1,1,0,\n",
    "wide row": f"{HEADER}\na,1704189600000,B,buy,1,1,0,acc1,extra\n",
    "long symbol": f"{HEADER}\na,1704189600000,{'S' * 65},buy,1,1,0,\n",
    "unnamed column": (
        "trade_id,,timestamp,symbol,side,price,volume\na,x,1704189600000,B,sell,1,1\n"
    ),
    "strategy and order": (
        "trade_id,timestamp,symbol,side,price,volume,strategy_id,order_id\n"
        "a,1704189600000,B,buy,1,1,,o1\nb,1704189600000,B,buy,1,1,grid,\n"
    ),
}


def _read(path) -> object:
    try:
        read = read_trades(path, "csv", account="acc1")
    except TradeImportError as exc:
        return str(exc)
    return read.records, [type(r.execution_time.tzinfo) for r in read.records], read.rows_read


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_three_readings_agree(tmp_path, monkeypatch, name):
    path = tmp_path / "fills.csv"
    path.write_bytes(FILES[name].encode())
    fast = _read(path)
    monkeypatch.setattr(csv_fills, "_arrow_file", lambda *a: None)
    by_pandas = _read(path)
    monkeypatch.setattr(csv_fills, "_clean_file", lambda *a: None)
    by_rows = _read(path)
    assert fast == by_pandas == by_rows


def test_plain_clean_files_take_the_arrow_way_and_others_do_not(tmp_path):
    ways = {}
    for name, text in FILES.items():
        path = tmp_path / f"{len(ways)}.csv"
        path.write_bytes(text.encode())
        ways[name] = csv_fills._arrow_file(path, "acc1") is not None
    assert {name for name, arrow in ways.items() if arrow} == {
        "plain", "crlf and a bom", "odd spaces", "quoted", "quoted line break", "iso times",
        "far times",
        "underscored number", "unnamed column", "strategy and order",
    }  # fmt: skip
    packed = tmp_path / "fills.csv.gz"
    packed.write_bytes(gzip.compress(FILES["plain"].encode()))
    assert csv_fills._arrow_file(packed, "acc1") is None
    assert len(read_trades(packed, "csv", account="acc1").records) == 2


def _fields(table) -> list:
    return None if table is None else [
        value.tolist() if hasattr(value, "tolist") else value for value in table
    ]  # fmt: skip


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_file_read_ahead_gives_what_reading_it_then_gives(tmp_path, monkeypatch, name):
    path = tmp_path / "fills.csv"
    path.write_bytes(FILES[name].encode())
    csv_fills.read_fill_table_ahead(path, "acc1")
    csv_fills._AHEAD.started[(str(path), "acc1")][1].result()  # read
    made = csv_fills._read_fill_table(path, "acc1")
    monkeypatch.setattr(csv_fills, "_read_fill_table", lambda *a: pytest.fail("read again"))
    assert _fields(csv_fills.read_fill_table(path, "acc1")) == _fields(made)
    assert not csv_fills._AHEAD.started  # taken once


def test_a_file_changed_after_its_read_ahead_is_read_again(tmp_path):
    path = tmp_path / "fills.csv"
    path.write_bytes(FILES["plain"].encode())
    csv_fills.read_fill_table_ahead(path, "acc1")
    csv_fills._AHEAD.started[(str(path), "acc1")][1].result()
    path.write_bytes(FILES["strategy and order"].encode())
    again = csv_fills.read_fill_table(path, "acc1")
    assert again is not None
    assert again.trade_ids == ["a", "b"]
    assert again.orders == ["o1", None]
    csv_fills.read_fill_table_ahead(path, "other")  # another account: not this reading's
    assert _fields(csv_fills.read_fill_table(path, "acc1")) == _fields(again)
    csv_fills._AHEAD.started.clear()


def test_a_read_ahead_that_failed_raises_when_its_table_is_read(tmp_path, monkeypatch):
    path = tmp_path / "fills.csv"
    path.write_bytes(FILES["plain"].encode())

    def broken(*args):
        raise MemoryError("no room")

    monkeypatch.setattr(csv_fills, "_read_fill_table", broken)
    csv_fills.read_fill_table_ahead(path, "acc1")
    with pytest.raises(MemoryError, match="no room"):
        csv_fills.read_fill_table(path, "acc1")


@pytest.mark.parametrize("name", sorted(FILES))
def test_columns_read_ahead_are_those_read_then_and_taken_once(tmp_path, monkeypatch, name):
    path = tmp_path / "fills.csv"
    path.write_bytes(FILES[name].encode())
    made = csv_arrow.arrow_columns(path, csv_fills.REQUIRED)
    csv_arrow.read_columns_ahead(path)
    csv_arrow._AHEAD.started[str(path)][1].result()  # read
    monkeypatch.setattr(csv_arrow, "_columns", lambda *a: pytest.fail("read again"))
    ahead = csv_arrow.arrow_columns(path, csv_fills.REQUIRED)
    assert (ahead is None) == (made is None)
    if made is not None:
        assert ahead[1] == made[1]
        assert {k: v.to_pylist() for k, v in ahead[0].items()} == {
            k: v.to_pylist() for k, v in made[0].items()
        }
    assert not csv_arrow._AHEAD.started  # taken once


def test_columns_read_ahead_of_a_changed_file_or_failed_read_are_not_used(tmp_path, monkeypatch):
    path = tmp_path / "fills.csv"
    path.write_bytes(FILES["plain"].encode())
    csv_arrow.read_columns_ahead(path)
    csv_arrow._AHEAD.started[str(path)][1].result()
    path.write_bytes(FILES["strategy and order"].encode())
    columns, rows = csv_arrow.arrow_columns(path, csv_fills.REQUIRED)
    assert rows == 2
    assert columns["order_id"].to_pylist() == ["o1", ""]
    assert csv_arrow.arrow_columns(path, (*csv_fills.REQUIRED, "venue")) is None  # not named

    def broken(*args):
        raise MemoryError("no room")

    monkeypatch.setattr(csv_arrow, "_columns", broken)
    csv_arrow.read_columns_ahead(path)
    with pytest.raises(MemoryError, match="no room"):
        csv_arrow.arrow_columns(path, csv_fills.REQUIRED)


def test_the_columns_reader_starts_without_pandas_or_the_orm():
    # what lets a CSV import start Arrow's read before the rest of the app loads
    code = (
        "import sys, tracking.importers.csv_arrow;"
        "print(sorted(m for m in ('pandas', 'sqlalchemy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert done.stdout.strip() == "[]"
