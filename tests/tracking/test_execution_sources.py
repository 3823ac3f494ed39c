"""freqtrade's orders table and Hummingbot's fills (with its Order table) as sources of
transaction-cost analysis: the orders each importer gives beside its fills, written out by
hand from databases built with those projects' exact schemas (tests/tracking/bot_databases.py).
"""

from __future__ import annotations

import math
import sqlite3

import pandas as pd
import pytest

from tests.tracking.bot_databases import freqtrade_db, hummingbot_db, hummingbot_fee
from tests.tracking.test_importers import fill, order
from tracking.importers import read_trades

ORDER_FIELDS = (
    "order_id", "strategy_id", "symbol", "side", "order_qty", "order_type", "limit_price",
    "decision_time", "arrival_time", "end_time", "venue", "algo",
)  # fmt: skip
NA = None  # an empty field


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def orders_of(result) -> list[tuple]:
    """Each order's fields, NaN and NaT as None."""
    frame = result.executions.orders
    assert set(frame["source"]) <= {result.source.format}
    assert set(frame["decision_price"].isna()) <= {True}  # neither source keeps one
    assert set(frame["arrival_price"].isna()) <= {True}
    out = []
    for values in frame[list(ORDER_FIELDS)].itertuples(index=False):
        out.append(tuple(None if (not isinstance(v, str) and pd.isna(v)) else v for v in values))
    return out


@pytest.fixture
def freqtrade_file(tmp_path):
    trades = [
        {"id": 1, "pair": "BTC/USDT", "fee_open": 0.001, "fee_close": 0.002,
         "exchange": "binance"},
        {"id": 2, "pair": "ETH/USDT:USDT", "is_short": 1, "fee_open": 0.0005,
         "fee_close": 0.0007, "strategy": "ShortStrategy", "exchange": "okx"},
        {"id": 3, "pair": "SOL/USDT", "is_open": 1},
    ]  # fmt: skip
    orders = [
        order(1, 1, "buy", 0.5, 40000.0, "2024-01-02 10:00:00.000000"),
        # cancelled after a partial fill: its end is the cancel (order_update_date)
        order(2, 1, "buy", 0.25, 39000.0, "2024-01-02 11:00:00.500000", amount=0.5,
              remaining=0.25, status="canceled", order_date="2024-01-02 10:59:00.000000",
              order_update_date="2024-01-02 11:30:00.000000"),
        # cancelled without a fill: an order all the same (fill rate 0)
        order(3, 1, "buy", 0.0, 38000.0, None, amount=0.4, status="canceled",
              order_date="2024-01-02 11:31:00.000000",
              order_update_date="2024-01-02 11:45:00.000000"),
        # a market order: no limit price
        order(4, 1, "sell", 0.75, None, "2024-01-02 12:00:00.000000", average=41000.0,
              order_type="market", order_date="2024-01-02 11:59:58.000000"),
        order(5, 2, "sell", 2.0, 2000.0, "2024-01-02 10:30:00.000000", average=2001.0),
        order(6, 2, "stoploss", 2.0, None, "2024-01-02 13:00:00.000000", average=2100.0,
              stop_price=2095.0, side="buy", order_type="stop_market",
              order_date="2024-01-02 12:00:00.000000"),
        # filled before its order_date (a clock off): arrival = the fill
        order(7, 3, "buy", 10.0, 100.0, "2024-01-02 09:00:00.000000",
              order_date="2024-01-02 09:30:00.000000"),
        order(8, 3, "sell", 4.0, 110.0, None, amount=10.0, remaining=6.0, status="open",
              ft_is_open=1),
    ]  # fmt: skip
    return freqtrade_db(tmp_path / "tradesv3.sqlite", trades, orders)


def test_freqtrade_every_closed_order_with_its_fill(freqtrade_file):
    result = read_trades(freqtrade_file, "freqtrade", account="ft")
    created = ts("2024-01-02 09:59:00")  # bot_databases' default order_date
    assert orders_of(result) == [
        ("ord-1", "SampleStrategy", "BTC/USDT", "buy", 0.5, "limit", 40000.0, created, created,
         NA, "binance", "entry"),
        ("ord-2", "SampleStrategy", "BTC/USDT", "buy", 0.5, "limit", 39000.0,
         ts("2024-01-02 10:59"), ts("2024-01-02 10:59"), ts("2024-01-02 11:30"), "binance",
         "entry"),
        ("ord-3", "SampleStrategy", "BTC/USDT", "buy", 0.4, "limit", 38000.0,
         ts("2024-01-02 11:31"), ts("2024-01-02 11:31"), ts("2024-01-02 11:45"), "binance",
         "entry"),
        ("ord-4", "SampleStrategy", "BTC/USDT", "sell", 0.75, "market", NA,
         ts("2024-01-02 11:59:58"), ts("2024-01-02 11:59:58"), NA, "binance", "exit"),
        ("ord-5", "ShortStrategy", "ETH/USDT:USDT", "sell", 2.0, "limit", 2000.0, created,
         created, NA, "okx", "entry"),
        # the short's on-exchange stoploss: a buy, its exit
        ("ord-6", "ShortStrategy", "ETH/USDT:USDT", "buy", 2.0, "stop_market", NA,
         ts("2024-01-02 12:00"), ts("2024-01-02 12:00"), NA, "okx", "stoploss"),
        ("ord-7", "SampleStrategy", "SOL/USDT", "buy", 10.0, "limit", 100.0,
         ts("2024-01-02 09:00"), ts("2024-01-02 09:00"), NA, "binance", "entry"),
    ]  # fmt: skip
    batch = result.executions
    assert batch.left_out == {"open orders (import again once they close)": 1}
    assert batch.notes == {"orders filled before their order_date: arrival = the fill's time": 1}
    # one fill per filled order: the trade it was recorded as, its price, quantity and fee
    trades = {r.trade_id: r for r in result.records}
    fills = batch.fills.to_dict("records")
    assert [f["order_id"] for f in fills] == ["ord-1", "ord-2", "ord-4", "ord-5", "ord-6",
                                              "ord-7"]  # fmt: skip
    for f in fills:
        trade = trades[f["trade_id"]]
        assert (trade.order_id, trade.price, trade.volume, trade.commission) == (
            f["order_id"], f["fill_price"], f["fill_qty"], f["fee"],
        )  # fmt: skip
        assert f["fill_time"] == pd.Timestamp(trade.execution_time)
    assert (fills[1]["fill_qty"], fills[1]["fee"]) == (0.25, pytest.approx(9.75))


def test_freqtrade_orders_of_an_older_file_without_amount_or_order_type(tmp_path):
    """Columns later freqtrade versions added are read as empty: ft_amount (or the filled
    quantity) gives the order's size, and an order without a size or a date is left out."""
    path = freqtrade_db(
        tmp_path / "old.sqlite",
        [{"id": 1, "pair": "BTC/USDT"}],
        [
            order(1, 1, "buy", 0.5, 40000.0, "2024-01-02 10:00:00.000000", amount=None,
                  ft_amount=0.6, order_type=None),
            order(2, 1, "sell", 0.5, 40100.0, "2024-01-02 11:00:00.000000", amount=None,
                  ft_amount=0.0, order_date=None, order_type=None),
        ],
    )  # fmt: skip
    result = read_trades(path, "freqtrade", account="ft")
    assert [(o[0], o[4], o[5]) for o in orders_of(result)] == [("ord-1", 0.6, None)]
    assert result.executions.left_out == {"orders without a side, order_date or amount": 1}
    assert len(result.records) == 2  # the fills are imported as before


MS = 1704189600000  # 2024-01-02 10:00:00 UTC


def test_hummingbot_orders_from_the_fills_and_the_order_table(tmp_path):
    path = hummingbot_db(
        tmp_path / "hb.sqlite",
        [
            fill(1, "BUY", "40000", "0.3", hummingbot_fee("0.001"), order_id="A"),
            fill(3, "BUY", "40010", "0.2", hummingbot_fee("0.001"), order_id="A",
                 exchange_trade_id="1003"),
            fill(2, "SELL", "40100", "0.5", order_id="B"),
            fill(4, "SELL", "39990", "0.1", order_id="C", order_type="MARKET"),
        ],
    )  # fmt: skip
    conn = sqlite3.connect(path)
    # A: placed for 1.0 at 40005 at 09:59:50, last updated (cancelled) at 10:05
    conn.execute(
        'UPDATE "Order" SET amount = 1000000, price = 40005000000, creation_timestamp = ?, '
        "last_update_timestamp = ?, last_status = 'OrderCancelled' WHERE id = 'A'",
        [MS - 10_000, MS + 300_000],
    )
    # B: its creation recorded after its fill (a clock off): arrival = the fill
    conn.execute('UPDATE "Order" SET creation_timestamp = ? WHERE id = ?', [MS + 10_000, "B"])
    conn.execute('DELETE FROM "Order" WHERE id = ?', ["C"])  # C: no Order row
    conn.commit()
    conn.close()

    result = read_trades(path, "hummingbot", account="hb")
    at = pd.Timestamp(MS, unit="ms", tz="UTC")
    assert orders_of(result) == [
        ("A", "pure_market_making", "BTC-USDT", "buy", 1.0, "limit", 40005.0,
         at - pd.Timedelta(seconds=10), at - pd.Timedelta(seconds=10),
         at + pd.Timedelta(minutes=5), "binance", NA),
        ("B", "pure_market_making", "BTC-USDT", "sell", 0.5, "limit", 40100.0, NA,
         at + pd.Timedelta(seconds=2), NA, "binance", NA),
        # no Order row: its fills give the size and the arrival, TradeFill the type
        ("C", "pure_market_making", "BTC-USDT", "sell", 0.1, "market", NA, NA,
         at + pd.Timedelta(seconds=4), NA, "binance", NA),
    ]  # fmt: skip
    batch = result.executions
    assert batch.notes == {"orders created after their first fill: arrival = the first fill": 1}
    fills = batch.fills
    assert fills[["order_id", "fill_price", "fill_qty"]].values.tolist() == [
        ["A", 40000.0, 0.3], ["A", 40010.0, 0.2], ["B", 40100.0, 0.5], ["C", 39990.0, 0.1],
    ]  # fmt: skip
    assert fills["fee"].tolist() == pytest.approx([12.0, 8.002, 0.0, 0.0])
    assert fills["trade_id"].tolist()[:2] == [
        "hummingbot:binance:A:1001", "hummingbot:binance:A:1003",
    ]  # fmt: skip
    assert set(fills["trade_id"]) == {r.trade_id for r in result.records}


def test_hummingbot_without_an_order_table_and_fills_that_disagree(tmp_path):
    path = hummingbot_db(
        tmp_path / "hb.sqlite",
        [
            fill(1, "BUY", "40000", "0.3", order_id="A"),
            fill(2, "BUY", "40010", "0.2", order_id="A", exchange_trade_id="1002"),
            fill(3, "BUY", "2000", "1", order_id="X", symbol="ETH-USDT"),
            fill(4, "SELL", "2001", "1", order_id="X", symbol="ETH-USDT",
                 exchange_trade_id="1004"),
        ],
    )  # fmt: skip
    conn = sqlite3.connect(path)
    conn.execute('DROP TABLE "Order"')
    conn.commit()
    conn.close()
    result = read_trades(path, "hummingbot", account="hb")
    ((order_id, *_, qty, order_type, limit, decision, arrival, end, venue, algo),) = [
        (o[0], o[4], o[5], o[6], o[7], o[8], o[9], o[10], o[11]) for o in orders_of(result)
    ]
    assert (order_id, qty, order_type, limit, decision) == ("A", 0.5, "limit", None, None)
    assert arrival == pd.Timestamp(MS + 1000, unit="ms", tz="UTC")
    assert (end, venue, algo) == (None, "binance", None)
    assert math.isclose(result.executions.fills["fill_qty"].sum(), 0.5)
    assert result.executions.left_out == {
        "orders whose fills disagree on market, symbol, side or strategy": 1
    }
    assert result.executions.notes == {
        "orders read without Hummingbot's Order table (arrival = first fill)": 2
    }
    assert len(result.records) == 4  # every fill is still a trade
