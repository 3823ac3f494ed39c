"""The CSV of orders and fills (``--format orders-csv``): files written here, the expected
orders, fills and trades written out by hand; every rejected file names the row and the
column, and lists every problem at once."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from tracking.importers import TradeImportError, read_trades
from tracking.importers.orders_csv import REQUIRED

HEADER = (
    "order_id,account_id,strategy_id,symbol,side,order_qty,order_type,limit_price,"
    "decision_time,decision_price,arrival_time,arrival_price,fill_time,fill_price,fill_qty,"
    "fee,venue,algo,bid,ask,expected_return_bps"
)
# a buy filled in two parts, written out of time order; a sell that never filled
GOOD = [
    "o1,desk,ema,BTC/USDT,BUY,2,limit,101,2024-01-02T10:00:00Z,100,2024-01-02T10:00:01Z,,"
    "2024-01-02T10:00:05Z,100.5,1.5,0.15,binance,twap,100.1,100.3,20",
    "o1,desk,ema,BTC/USDT,buy,2.0,limit,101,2024-01-02T10:00:00Z,100,2024-01-02T10:00:01Z,,"
    "1704189603000,100.4,0.5,,binance,twap,100.1,100.3,20",
    "o2,,,ETH/USDT,sell,3,market,,,,2024-01-02T11:00:00+01:00,2001,,,,,kraken,,,,",
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def write(tmp_path, *lines: str, header: str = HEADER):
    path = tmp_path / "orders.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_orders_and_their_fills_read_with_the_fills_as_trades(tmp_path):
    path = write(tmp_path, GOOD[0], "", GOOD[1], GOOD[2])
    result = read_trades(path, "orders-csv", account="desk")

    assert [
        (r.trade_id, r.side, r.price, r.volume, r.commission, r.execution_time, r.order_id)
        for r in result.records
    ] == [
        # the order's k-th fill in time order: row 3's fill (10:00:03) is the first
        ("orders-csv:o1:0", "buy", 100.4, 0.5, 0.0, at("2024-01-02 10:00:03"), "o1"),
        ("orders-csv:o1:1", "buy", 100.5, 1.5, 0.15, at("2024-01-02 10:00:05"), "o1"),
    ]  # fmt: skip
    assert {(r.strategy_id, r.symbol, r.source) for r in result.records} == {
        ("ema", "BTC/USDT", "orders-csv")
    }
    assert result.rows_read == 4
    assert result.skipped == {
        "blank lines": 1,
        "rows without a fill (orders that never filled: no trade, the order kept for TCA)": 1,
    }
    batch = result.executions
    assert batch is not None
    assert batch.source == "orders-csv"
    assert batch.places == ("row 1", "row 4")
    o1, o2 = batch.orders.to_dict("records")
    assert {k: o1[k] for k in ("order_id", "account_id", "strategy_id", "symbol", "side",
                               "order_qty", "order_type", "limit_price", "decision_price",
                               "venue", "algo", "bid", "ask", "expected_return_bps",
                               "source")} == {
        "order_id": "o1", "account_id": "desk", "strategy_id": "ema", "symbol": "BTC/USDT",
        "side": "buy", "order_qty": 2.0, "order_type": "limit", "limit_price": 101.0,
        "decision_price": 100.0, "venue": "binance", "algo": "twap", "bid": 100.1,
        "ask": 100.3, "expected_return_bps": 20.0, "source": "orders-csv",
    }  # fmt: skip
    assert (o1["decision_time"], o1["arrival_time"]) == (
        pd.Timestamp("2024-01-02 10:00:00", tz="UTC"),
        pd.Timestamp("2024-01-02 10:00:01", tz="UTC"),
    )
    assert math.isnan(o1["arrival_price"])
    assert pd.isna(o1["end_time"])
    # empty cells: no decision, the default strategy, the account imported
    assert (o2["order_id"], o2["strategy_id"], o2["side"], o2["order_qty"]) == (
        "o2", "manual", "sell", 3.0,
    )  # fmt: skip
    assert o2["arrival_time"] == pd.Timestamp("2024-01-02 10:00:00", tz="UTC")
    assert pd.isna(o2["decision_time"])
    assert math.isnan(o2["decision_price"])
    assert o2["arrival_price"] == 2001.0
    assert pd.isna(o2["algo"])
    fills = batch.fills
    assert fills[["order_id", "fill_price", "fill_qty", "fee", "trade_id"]].values.tolist() == [
        ["o1", 100.4, 0.5, 0.0, "orders-csv:o1:0"],
        ["o1", 100.5, 1.5, 0.15, "orders-csv:o1:1"],
    ]


def test_columns_in_any_case_and_order_and_the_optional_ones_absent(tmp_path):
    names = [n.upper() for n in REQUIRED][::-1]
    cells = ["o9", "", "", "SP500", "sell", "1", "", "", "", "", "1704189600000", "",
             "1704189660000", "4700", "1", "0.5", "", ""]  # fmt: skip
    values = dict(zip(REQUIRED, cells, strict=True))
    path = write(tmp_path, ",".join(values[n.lower()] for n in names), header=",".join(names))
    result = read_trades(path, "orders-csv", account="a")
    (record,) = result.records
    assert (record.trade_id, record.price, record.commission) == ("orders-csv:o9:0", 4700.0, 0.5)
    orders = result.executions.orders
    assert orders[["bid", "ask", "expected_return_bps"]].isna().all().all()
    assert orders["order_type"].isna().all()
    assert orders["end_time"].isna().all()


GOOD_ROW = GOOD[0].split(",")


def row(**cells: str) -> str:
    values = dict(zip(HEADER.split(","), GOOD_ROW, strict=True)) | cells
    return ",".join(values.values())


@pytest.mark.parametrize(
    ("cells", "column", "reason"),
    [
        ({"side": "hold"}, "side", "'hold' is not buy or sell"),
        ({"order_qty": "0"}, "order_qty", "'0' is not > 0"),
        ({"order_qty": ""}, "order_qty", "empty: expected a number"),
        ({"fill_price": "-1"}, "fill_price", "'-1' is not > 0"),
        ({"fill_qty": "abc"}, "fill_qty", "'abc' is not a number"),
        ({"fill_qty": ""}, "fill_qty", "empty, while the row has a fill"),
        ({"decision_price": "0"}, "decision_price", "'0' is not > 0"),
        ({"arrival_price": "nan"}, "arrival_price", "'nan' is not a finite number"),
        ({"limit_price": "-5"}, "limit_price", "'-5' is not > 0"),
        ({"bid": "0"}, "bid", "'0' is not > 0"),
        ({"ask": "100.0"}, "ask", "100.0 is below the bid 100.1"),
        ({"fee": "inf"}, "fee", "'inf' is not a finite number"),
        ({"expected_return_bps": "good"}, "expected_return_bps", "'good' is not a number"),
        ({"arrival_time": "yesterday"}, "arrival_time", "is not a time"),
        ({"arrival_time": ""}, "arrival_time", "empty"),
        ({"fill_time": "2024-01-02 10:00:05"}, "fill_time", "has no time zone"),
        ({"decision_time": "1704189600"}, "decision_time", "epoch seconds?"),
        ({"decision_time": "2024-01-02T10:00:02Z"}, "arrival_time",
         "is before the decision_time 2024-01-02T10:00:02+00:00"),
        ({"fill_time": "2024-01-02T10:00:00.500Z"}, "fill_time",
         "2024-01-02T10:00:00.500000+00:00 is before its order's arrival_time"),
        ({"order_id": ""}, "order_id", "empty"),
        ({"symbol": ""}, "symbol", "empty"),
        ({"account_id": "other"}, "account_id",
         "'other' is not the account being imported ('desk')"),
        ({"symbol": "S" * 65}, "symbol", "is 65 characters: at most 64"),
        ({"fill_time": "", "fill_price": "", "fill_qty": "", "fee": "1"}, "fee",
         "'1' on a row without a fill"),
    ],
)  # fmt: skip
def test_a_bad_cell_names_file_row_and_column(tmp_path, cells, column, reason):
    path = write(tmp_path, GOOD[2], row(**({"order_id": "o3"} | cells)))
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "orders-csv", account="desk")
    (problem,) = caught.value.problems
    assert (problem.place, problem.column) == ("row 2", column)
    assert reason in problem.message
    assert f"{path}, row 2, column {column!r}: " in str(caught.value)
    assert str(caught.value).startswith(f"{path}: rejected, nothing imported (1 problem)")


def test_an_orders_rows_must_agree_and_fit_it(tmp_path):
    path = write(
        tmp_path,
        row(fill_time="2024-01-02T10:00:09Z", fill_qty="1"),
        row(order_qty="3", venue="kraken", fill_time="2024-01-02T10:00:07Z", fill_qty="0.5"),
        # the fills in time order: 10:00:03 (0.25), 10:00:05 (1), 10:00:09 (1) passes 2
        row(fill_time="2024-01-02T10:00:03Z", fill_qty="0.25"),
        row(fill_time="2024-01-02T10:00:05Z", fill_qty="1"),
        row(order_id="o7", end_time="2024-01-02T10:00:04Z"),
        row(order_id="o8", fill_time="", fill_price="", fill_qty="", fee=""),
        row(order_id="o8", fill_time="", fill_price="", fill_qty="", fee=""),
        header=f"{HEADER},end_time",
    )
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "orders-csv", account="desk")
    problems = [(p.place, p.column, p.message) for p in caught.value.problems]
    assert problems == [
        ("row 2", "order_qty",
         "3.0 differs from row 1's 2.0 for order 'o1' (an order's fields repeat on each of its "
         "rows)"),
        ("row 2", "venue", "'kraken' differs from row 1's 'binance' for order 'o1' (an order's "
         "fields repeat on each of its rows)"),
        ("row 1", "fill_qty", "order 'o1' filled 2.75 here and before, above its order_qty 2.0"),
        ("row 5", "fill_time",
         "2024-01-02T10:00:05+00:00 is after its order's end_time 2024-01-02T10:00:04+00:00"),
        ("row 7", "fill_time",
         "no fill, but order 'o8' has other rows (row 6): the row without a fill is an order's "
         "only row"),
    ]  # fmt: skip


def test_every_problem_of_every_row_at_once_and_a_missing_column(tmp_path):
    path = write(tmp_path, row(side="hold", fill_price="x"), GOOD[2], row(order_qty="-1"))
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "orders-csv", account="desk")
    assert [(p.place, p.column) for p in caught.value.problems] == [
        ("row 1", "side"), ("row 1", "fill_price"), ("row 3", "order_qty"),
    ]  # fmt: skip

    no_algo = write(tmp_path, GOOD[2].rsplit(",", 4)[0], header=HEADER.rsplit(",", 4)[0])
    with pytest.raises(TradeImportError, match=r"header, column 'algo': missing"):
        read_trades(no_algo, "orders-csv", account="desk")


def test_reading_twice_gives_the_same_ids_and_the_file_is_not_written(tmp_path):
    path = write(tmp_path, *GOOD)
    before = path.read_bytes()
    first = read_trades(path, "orders-csv", account="desk")
    second = read_trades(path, "orders-csv", account="desk")
    assert [r.trade_id for r in first.records] == [r.trade_id for r in second.records]
    pd.testing.assert_frame_equal(first.executions.orders, second.executions.orders)
    assert path.read_bytes() == before


def test_a_stored_order_is_the_files_only_with_every_field_and_fill_the_same(tmp_path):
    """ExecutionBatch.changed: what makes a second import of an order refuse the file."""
    batch = read_trades(write(tmp_path, *GOOD), "orders-csv", account="desk").executions
    orders, fills = batch.orders.copy(), batch.fills.copy()
    assert batch.changed(orders, fills, "f.csv") == []  # the same: nothing to say
    orders.loc[0, "limit_price"] = float("nan")  # given 101, stored empty
    orders.loc[1, "decision_time"] = pd.Timestamp("2024-01-02 09:00", tz="UTC")  # empty in file
    orders.loc[1, "venue"] = "kraken2"
    problems = batch.changed(orders, fills, "f.csv")
    assert [(p.place, p.message.split(" than")[0]) for p in problems] == [
        ("row 1", "order 'o1' is stored with other values (limit_price)"),
        ("row 3", "order 'o2' is stored with other values (decision_time, venue)"),
    ]
    one_fill_less = batch.fills.iloc[1:]
    later = batch.fills.assign(fill_time=batch.fills["fill_time"] + pd.Timedelta("1us"))
    for stored_fills in (one_fill_less, later):
        (problem,) = batch.changed(batch.orders, stored_fills, "f.csv")
        assert "order 'o1' is stored with other values (fills)" in problem.message
    # a fee is not part of what makes the order the same (as a trade's commission is not)
    assert batch.changed(batch.orders, batch.fills.assign(fee=9.0), "f.csv") == []
