"""Importers of fills: freqtrade and Hummingbot databases built here with those projects' exact
schemas (tests/tracking/bot_databases.py cites the sources), and CSV files. The expected
records are written out by hand; every rejected file names the row and the column."""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
from datetime import UTC, datetime

import pytest

from tests.tracking.bot_databases import freqtrade_db, hummingbot_db, hummingbot_fee
from tracking.importers import FORMATS, TradeImportError, read_trades
from tracking.importers.result import MAX_LISTED


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(result) -> list[tuple]:
    return [
        (r.trade_id, r.side, r.price, r.volume, round(r.commission, 10), r.execution_time)
        for r in result.records
    ]


# ---------------------------------------------------------------- freqtrade


def order(id, trade, ft_side, filled, price, filled_at, **more):
    """An orders row: closed, filled at ``filled_at`` (naive text, as SQLAlchemy stores it)."""
    return {
        "id": id, "ft_trade_id": trade, "ft_order_side": ft_side, "order_id": f"ord-{id}",
        "amount": filled, "filled": filled, "remaining": 0.0, "average": price, "price": price,
        "cost": filled * price if filled and price else None, "order_filled_date": filled_at,
        **more,
    }  # fmt: skip


@pytest.fixture
def freqtrade_file(tmp_path):
    trades = [
        # long, closed: two entries (the second partly filled, then cancelled), one exit
        {"id": 1, "pair": "BTC/USDT", "fee_open": 0.001, "fee_close": 0.002},
        # short on futures, closed by an on-exchange stoploss
        {"id": 2, "pair": "ETH/USDT:USDT", "is_short": 1, "leverage": 2.0, "fee_open": 0.0005,
         "fee_close": 0.0007, "strategy": "ShortStrategy", "trading_mode": "FUTURES"},
        # long, still open: its entry filled, its exit still open and partly filled
        {"id": 3, "pair": "SOL/USDT", "is_open": 1, "fee_open": 0.001, "fee_close": 0.001},
    ]  # fmt: skip
    orders = [
        order(1, 1, "buy", 0.5, 40000.0, "2024-01-02 10:00:00.000000"),
        order(2, 1, "buy", 0.25, 39000.0, "2024-01-02 11:00:00.500000", amount=0.5,
              remaining=0.25, status="canceled"),
        order(3, 1, "buy", 0.0, 38000.0, None, status="canceled", ft_cancel_reason="timeout"),
        order(4, 1, "sell", 0.75, 41000.0, "2024-01-02 12:00:00.000000"),
        order(5, 2, "sell", 2.0, 2000.0, "2024-01-02 10:30:00.000000", average=2001.0),
        order(6, 2, "stoploss", 2.0, None, "2024-01-02 13:00:00.000000", average=2100.0,
              stop_price=2095.0, side="buy", order_type="stop_market"),
        order(7, 3, "buy", 10.0, 100.0, "2024-01-02 10:00:00.000000"),
        order(8, 3, "sell", 4.0, 110.0, None, amount=10.0, remaining=6.0, status="open",
              ft_is_open=1),
        order(9, 3, "sell", None, 120.0, None, status="open", ft_is_open=1, cost=None),
    ]  # fmt: skip
    return freqtrade_db(tmp_path / "tradesv3.sqlite", trades, orders)


def test_freqtrade_one_fill_per_filled_order_with_fees_from_the_rates(freqtrade_file):
    result = read_trades(freqtrade_file, "freqtrade", account="ft-live")
    assert rows(result) == [
        # same second: the source's order (orders.id) decides
        ("freqtrade:1:ord-1", "buy", 40000.0, 0.5, 20.0, at("2024-01-02 10:00")),  # 0.001x20000
        ("freqtrade:3:ord-7", "buy", 100.0, 10.0, 1.0, at("2024-01-02 10:00")),
        ("freqtrade:2:ord-5", "sell", 2001.0, 2.0, 2.001, at("2024-01-02 10:30")),  # short entry
        ("freqtrade:1:ord-2", "buy", 39000.0, 0.25, 9.75, at("2024-01-02 11:00:00.5")),
        ("freqtrade:1:ord-4", "sell", 41000.0, 0.75, 61.5, at("2024-01-02 12:00")),  # fee_close
        ("freqtrade:2:ord-6", "buy", 2100.0, 2.0, 2.94, at("2024-01-02 13:00")),  # stoploss exit
    ]  # fmt: skip
    first = result.records[0]
    assert (first.account_id, first.strategy_id, first.symbol) == (
        "ft-live", "SampleStrategy", "BTC/USDT",
    )  # fmt: skip
    assert {(r.source, r.order_id) for r in result.records[:2]} == {
        ("freqtrade", "ord-1"), ("freqtrade", "ord-7"),
    }  # fmt: skip
    assert result.records[2].strategy_id == "ShortStrategy"
    assert result.records[2].symbol == "ETH/USDT:USDT"
    assert all(r.labels == () and r.pnl is None for r in result.records)
    # the on-exchange stoploss exit carries its reason (for the stop_loss label), no other
    assert [r.market_context for r in result.records if r.market_context] == [
        {"reason": "stoploss_on_exchange"}
    ]
    assert result.records[5].order_id == "ord-6"
    assert result.rows_read == 9
    assert result.skipped == {
        "cancelled, expired or rejected orders without fill": 1,
        "open orders partly filled (import again once they close)": 1,
        "open orders, nothing filled yet": 1,
    }
    assert result.rows_read == len(result.records) + result.skipped_rows
    note = "trades still open: their fills so far are imported, the position stays open"
    assert result.notes == {note: 1}
    assert str(result.source) == f"freqtrade file {freqtrade_file}"
    assert "9 orders read, 6 fills imported, 3 skipped" in result.summary()


def test_freqtrade_file_is_read_only_and_reading_twice_gives_the_same_fills(freqtrade_file):
    before = digest(freqtrade_file)
    first = read_trades(freqtrade_file, "freqtrade", account="a")
    second = read_trades(str(freqtrade_file), "freqtrade", account="a")
    assert digest(freqtrade_file) == before
    assert [r.trade_id for r in first.records] == [r.trade_id for r in second.records]
    assert first.records == second.records


def test_freqtrade_fallbacks_missing_fill_date_null_fee_close_and_no_strategy(tmp_path):
    path = freqtrade_db(
        tmp_path / "old.sqlite",
        [{"id": 1, "pair": "XRP/USDT", "strategy": None, "fee_open": 0.001}],
        [order(1, 1, "buy", 100.0, 0.5, None, order_update_date="2024-01-02 10:00:05.000000"),
         order(2, 1, "sell", 100.0, None, None, average=None, stop_price=None, ft_price=0.6)],
    )  # fmt: skip
    result = read_trades(path, "freqtrade", account="a")
    sell, buy = result.records
    assert buy.execution_time == at("2024-01-02 10:00:05")  # order_update_date
    assert sell.execution_time == at("2024-01-02 09:59")  # order_date
    assert sell.price == 0.6  # ft_price, the last of freqtrade's safe_price
    assert buy.strategy_id == sell.strategy_id == "unknown"
    assert result.notes == {
        "fills timed by order_update_date (order_filled_date empty)": 1,
        "fills timed by order_date (order_filled_date empty)": 1,
        "fills of trades without a strategy name (strategy_id 'unknown')": 2,
    }


def test_freqtrade_every_problem_is_listed_with_table_key_and_column(tmp_path):
    path = freqtrade_db(
        tmp_path / "bad.sqlite",
        [{"id": 1, "pair": "BTC/USDT"}, {"id": 2, "pair": "ETH/USDT", "fee_open": "abc"}],
        [order(1, 1, "hold", 1.0, 100.0, "2024-01-02 10:00:00"),
         order(2, 1, "buy", 1.0, 100.0, "yesterday"),
         order(3, 9, "buy", 1.0, 100.0, "2024-01-02 10:00:00"),
         order(4, 1, "buy", 1.0, None, "2024-01-02 10:00:00", average=None, ft_price=0.0),
         order(5, 1, "sell", -1.0, 100.0, "2024-01-02 10:00:00"),
         order(6, 1, "sell", 1.0, 100.0, "2024-01-02 11:00:00")],
    )  # fmt: skip
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "freqtrade", account="a")
    text = str(caught.value)
    assert text.startswith(f"{path}: rejected, nothing imported (6 problems)")
    for expected in [
        "table trades, id=2, column 'fee_open': 'abc' is not a number",
        "table orders, id=1 (order_id='ord-1'), column 'ft_order_side': 'hold' is not buy, sell",
        "table orders, id=2 (order_id='ord-2'), column 'order_filled_date': 'yesterday' is not",
        "table orders, id=3 (order_id='ord-3'), column 'ft_trade_id': trade 9 is not in table",
        "table orders, id=4 (order_id='ord-4'), column 'average': no price",
        "table orders, id=5 (order_id='ord-5'), column 'filled': -1.0 is negative",
    ]:
        assert f"{path}, {expected}" in text
    assert len(caught.value.problems) == 6


def test_freqtrade_missing_table_or_column_and_not_a_database(tmp_path):
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(TradeImportError, match=r"no table 'trades': is this a freqtrade"):
        read_trades(empty, "freqtrade", account="a")

    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE trades (id INTEGER, pair TEXT, is_open BOOLEAN)")
        conn.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(TradeImportError) as caught:
        read_trades(old, "freqtrade", account="a")
    assert f"{old}, table trades, column 'is_short': missing" in str(caught.value)
    assert f"{old}, table trades, column 'fee_close': missing" in str(caught.value)

    text_file = tmp_path / "fills.csv"
    text_file.write_text("trade_id,timestamp\n" * 200)
    with pytest.raises(TradeImportError, match=r"fills.csv: .*not a SQLite database"):
        read_trades(text_file, "freqtrade", account="a")
    with pytest.raises(TradeImportError, match=r"no such file"):
        read_trades(tmp_path / "nope.sqlite", "freqtrade", account="a")


def test_error_lists_at_most_fifty_problems_and_counts_the_rest(tmp_path):
    orders = [order(i, 1, "hold", 1.0, 100.0, "2024-01-02 10:00:00") for i in range(1, 61)]
    path = freqtrade_db(tmp_path / "many.sqlite", [{"id": 1, "pair": "BTC/USDT"}], orders)
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "freqtrade", account="a")
    lines = str(caught.value).splitlines()
    assert len(caught.value.problems) == 60
    assert len(lines) == 1 + MAX_LISTED + 1
    assert lines[-1] == "... and 10 more"


# ---------------------------------------------------------------- Hummingbot

MS = 1704189600000  # 2024-01-02 10:00:00 UTC


def fill(n, side, price, amount, fee=None, **more):
    return {
        "order_id": f"B-BTCUSDT{n}", "exchange_trade_id": f"{1000 + n}", "trade_type": side,
        "price": price, "amount": amount, "timestamp": MS + n * 1000,
        "trade_fee": fee or hummingbot_fee(), **more,
    }  # fmt: skip


@pytest.fixture
def hummingbot_file(tmp_path):
    return hummingbot_db(
        tmp_path / "conf_pure_mm_1.sqlite",
        [
            fill(1, "BUY", "40000.123456", "0.5", hummingbot_fee("0.001")),
            fill(2, "SELL", "40100", "0.25", hummingbot_fee("0", [("USDT", "0.5")])),
            # flat fee in the base token: times the fill price
            fill(3, "BUY", "40000", "0.1", hummingbot_fee("0.001", [("BTC", "0.00001")])),
            # the percentage is of the quote value whatever token pays it (Binance's BNB)
            fill(4, "SELL", "40200", "0.35", hummingbot_fee("0.00075", percent_token="BNB",
                                                            fee_type="DeductedFromReturns")),
            # a third token: Hummingbot's own conversion at fill time
            fill(5, "BUY", "40000", "0.2", hummingbot_fee("0", [("KCS", "0.1")]),
                 trade_fee_in_quote="0.95"),
            # a third token without that conversion: left out, and noted
            fill(6, "SELL", "40000", "0.2", hummingbot_fee("0.001", [("KCS", "0.1")])),
            # below the storage unit of 1e-6: stored as 0
            fill(7, "BUY", "40000", "0.0000004"),
            # WETH counts as ETH, as in Hummingbot
            fill(8, "BUY", "2000", "1", hummingbot_fee("0", [("WETH", "0.001")]),
                 symbol="ETH-USDT", market="uniswap", strategy="amm_arb"),
        ],
    )  # fmt: skip


def test_hummingbot_trade_fills_with_scaled_decimals_and_fees_in_quote(hummingbot_file):
    result = read_trades(hummingbot_file, "hummingbot", account="hb")
    assert rows(result) == [
        ("hummingbot:binance:B-BTCUSDT1:1001", "buy", 40000.123456, 0.5, 20.000061728,
         at("2024-01-02 10:00:01")),
        ("hummingbot:binance:B-BTCUSDT2:1002", "sell", 40100.0, 0.25, 0.5,
         at("2024-01-02 10:00:02")),
        ("hummingbot:binance:B-BTCUSDT3:1003", "buy", 40000.0, 0.1, 4.0 + 0.4,
         at("2024-01-02 10:00:03")),
        ("hummingbot:binance:B-BTCUSDT4:1004", "sell", 40200.0, 0.35, 10.5525,
         at("2024-01-02 10:00:04")),
        ("hummingbot:binance:B-BTCUSDT5:1005", "buy", 40000.0, 0.2, 0.95,
         at("2024-01-02 10:00:05")),
        ("hummingbot:binance:B-BTCUSDT6:1006", "sell", 40000.0, 0.2, 8.0,
         at("2024-01-02 10:00:06")),
        ("hummingbot:uniswap:B-BTCUSDT8:1008", "buy", 2000.0, 1.0, 2.0,
         at("2024-01-02 10:00:08")),
    ]  # fmt: skip
    assert [r.strategy_id for r in result.records][::6] == ["pure_market_making", "amm_arb"]
    assert [r.symbol for r in result.records][::6] == ["BTC-USDT", "ETH-USDT"]
    assert {r.source for r in result.records} == {"hummingbot"}
    assert result.records[0].order_id == "B-BTCUSDT1"
    assert result.rows_read == 8
    assert result.skipped == {"fills of amount 0 (below Hummingbot's 1e-6 storage unit)": 1}
    assert result.notes == {
        "fills with a flat fee in a third token: commission = trade_fee_in_quote": 1,
        "fills with a flat fee in a third token and no trade_fee_in_quote: "
        "that fee is left out of the commission": 1,
    }


def test_hummingbot_read_only_and_deterministic(hummingbot_file):
    before = digest(hummingbot_file)
    first = read_trades(hummingbot_file, "hummingbot", account="hb")
    second = read_trades(hummingbot_file, "hummingbot", account="hb")
    assert digest(hummingbot_file) == before
    assert [r.trade_id for r in first.records] == [r.trade_id for r in second.records]


def test_hummingbot_every_problem_named_by_primary_key_and_column(tmp_path):
    path = hummingbot_db(
        tmp_path / "bad.sqlite",
        [
            fill(1, "HOLD", "100", "1"),
            fill(2, "BUY", "0", "1"),
            fill(3, "BUY", "100", "1", fee="{not json"),
            fill(4, "BUY", "100", "1", fee='{"percent": "x", "flat_fees": []}'),
            fill(5, "SELL", "100", "1", timestamp=1704189600),
        ],
    )
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "hummingbot", account="hb")
    text = str(caught.value)
    key = "table TradeFill, market='binance', order_id='B-BTCUSDT{}', exchange_trade_id='{}'"
    for n, column, reason in [
        (1, "trade_type", "'HOLD' is not BUY or SELL"),
        (2, "price", "0 (x 1e-6) is not > 0"),
        (3, "trade_fee", "'{not json' is not JSON"),
        (4, "trade_fee", "percent='x' is not a number"),
        (5, "timestamp", "1704189600 is before 1973 in epoch milliseconds (seconds?)"),
    ]:
        assert f"{path}, {key.format(n, 1000 + n)}, column {column!r}: {reason}" in text
    assert len(caught.value.problems) == 5


def test_hummingbot_ids_longer_than_a_stored_trade_id_become_a_digest(tmp_path):
    tx_hash = "0x" + "ab" * 64  # a DEX's exchange trade id: a transaction hash
    path = hummingbot_db(
        tmp_path / "dex.sqlite", [fill(1, "BUY", "1", "1", market="uniswap_ethereum_mainnet",
                                       exchange_trade_id=tx_hash)]
    )  # fmt: skip
    (record,) = read_trades(path, "hummingbot", account="hb").records
    assert re.fullmatch(r"hummingbot:[0-9a-f]{32}", record.trade_id)
    assert record.order_id == "B-BTCUSDT1"
    (again,) = read_trades(path, "hummingbot", account="hb").records
    assert again.trade_id == record.trade_id


def test_hummingbot_wrong_database(freqtrade_file):
    with pytest.raises(TradeImportError, match=r"no table 'TradeFill': is this a Hummingbot"):
        read_trades(freqtrade_file, "hummingbot", account="hb")


# ---------------------------------------------------------------- CSV

GOOD_CSV = """trade_id,timestamp,symbol,side,price,volume,commission,strategy_id,account_id
t1,1704189600000,BTC/USDT,buy,40000,0.5,2.0,grid,acc1
t2,2024-01-02T11:00:00Z,BTC/USDT,SELL,41000,0.25,,,
t3,2024-01-02T12:30:00+02:00,BTC/USDT,sell,40500.5,0.25,-0.1,grid,acc1

t0,2024-01-02T09:59:59.250Z,ETH/USDT,Buy,2000,1e-3,0,,acc1
"""


def test_csv_fills_read_with_defaults_and_ordered_by_time(tmp_path):
    path = tmp_path / "fills.csv"
    path.write_text(GOOD_CSV)
    result = read_trades(path, "csv", account="acc1")
    assert rows(result) == [
        ("t0", "buy", 2000.0, 0.001, 0.0, at("2024-01-02 09:59:59.250")),
        ("t1", "buy", 40000.0, 0.5, 2.0, at("2024-01-02 10:00")),
        ("t3", "sell", 40500.5, 0.25, -0.1, at("2024-01-02 10:30")),  # +02:00
        ("t2", "sell", 41000.0, 0.25, 0.0, at("2024-01-02 11:00")),
    ]
    assert [r.strategy_id for r in result.records] == ["manual", "grid", "grid", "manual"]
    assert {(r.source, r.order_id) for r in result.records} == {("csv", None)}
    assert {r.account_id for r in result.records} == {"acc1"}
    assert result.rows_read == 5
    assert result.skipped == {"blank lines": 1}
    again = read_trades(path, "csv", account="acc1")
    assert [r.trade_id for r in again.records] == [r.trade_id for r in result.records]


def test_csv_minimal_columns_any_case_and_order(tmp_path):
    path = tmp_path / "min.csv"
    path.write_text(
        "Side,Price,Volume,Symbol,Timestamp,Trade_ID, Order_ID ,notes\n"
        "buy,10,2,SP500,1704189600000,a,o-1,first fill\n"
    )
    (record,) = read_trades(path, "csv", account="me").records
    assert (record.trade_id, record.commission, record.strategy_id) == ("a", 0.0, "manual")
    assert record.order_id == "o-1"


HEADER = "trade_id,timestamp,symbol,side,price,volume,commission,account_id"
OK = "ok,1704189600000,BTC/USDT,buy,100,1,0,acc1"


@pytest.mark.parametrize(
    ("line", "column", "reason"),
    [
        ("x,1704189600000,BTC/USDT,buy,abc,1,0,acc1", "price", "'abc' is not a number"),
        ("x,1704189600000,BTC/USDT,buy,nan,1,0,acc1", "price", "'nan' is not a finite number"),
        ("x,1704189600000,BTC/USDT,buy,0,1,0,acc1", "price", "'0' is not > 0"),
        ("x,1704189600000,BTC/USDT,buy,100,-1,0,acc1", "volume", "'-1' is not > 0"),
        ("x,1704189600000,BTC/USDT,buy,100,,0,acc1", "volume", "empty: expected a number"),
        ("x,1704189600000,BTC/USDT,buy,100,1,inf,acc1", "commission", "'inf' is not a finite"),
        ("x,1704189600000,BTC/USDT,hold,100,1,0,acc1", "side", "'hold' is not buy or sell"),
        ("x,2024-13-01T00:00:00Z,BTC/USDT,buy,100,1,0,acc1", "timestamp", "is not a time"),
        ("x,2024-01-02 10:00:00,BTC/USDT,buy,100,1,0,acc1", "timestamp", "has no time zone"),
        ("x,1704189600,BTC/USDT,buy,100,1,0,acc1", "timestamp", "epoch seconds?"),
        ("x,1704189600000,,buy,100,1,0,acc1", "symbol", "empty"),
        (",1704189600000,BTC/USDT,buy,100,1,0,acc1", "trade_id", "empty"),
        ("x,1704189600000,BTC/USDT,buy,100,1,0,other", "account_id",
         "'other' is not the account being imported ('acc1')"),
        ("ok,1704189600001,BTC/USDT,sell,100,1,0,acc1", "trade_id", "'ok' repeats row 1"),
        (f"{'x' * 129},1704189600000,BTC/USDT,buy,100,1,0,acc1", "trade_id",
         "is 129 characters: the trade_id of a stored trade holds at most 128"),
    ],
)  # fmt: skip
def test_csv_bad_cell_names_file_row_and_column(tmp_path, line, column, reason):
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n{OK}\n{line}\n")
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "csv", account="acc1")
    (problem,) = caught.value.problems
    assert (problem.place, problem.column) == ("row 2", column)
    assert reason in problem.message
    assert f"{path}, row 2, column {column!r}: " in str(caught.value)


def test_csv_every_problem_of_every_row_at_once(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\nx,soon,BTC/USDT,hold,0,1,0,acc1\n{OK}\ny,1,B,buy,1,1,0,acc1\n")
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "csv", account="acc1")
    places = [(p.place, p.column) for p in caught.value.problems]
    assert places == [
        ("row 1", "side"), ("row 1", "timestamp"), ("row 1", "price"), ("row 3", "timestamp"),
    ]  # fmt: skip


@pytest.mark.parametrize("stamps", ["ms", "iso", "mixed"])
def test_csv_clean_files_read_by_columns_equal_the_row_by_row_reading(tmp_path, stamps):
    """A file without a problem is read column by column (the fast way); its records must be
    the ones the row-by-row reading (which names every problem) makes, in the same order."""
    from tracking.importers import csv_fills

    rng = random.Random(7)
    lines = ["Trade_ID,timestamp,symbol,side,price,volume,commission,strategy_id,order_id"]
    for k in range(400):
        ms = 1_704_189_600_000 + rng.randrange(0, 50) * 60_000 + rng.choice([0, 250, 999])
        when = str(ms)
        iso = datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        if stamps == "iso" or (stamps == "mixed" and k % 3 == 0):
            when = iso if k % 2 else iso.replace("Z", "+00:00")
        price = rng.choice(["100", "0.1", "1e3", " 42.125 ", "40000.123456789"])
        fee = rng.choice(["", "0", "-0.25", "1.5"])
        lines.append(
            f"t{k},{when},{rng.choice(['BTC/USDT', 'SP500'])},{rng.choice(['buy', 'SELL'])},"
            f"{price},{rng.choice(['1', '0.5', '3'])},{fee},{rng.choice(['', 'grid'])},"
            f"{rng.choice(['', f'o{k}'])}"
        )
    path = tmp_path / "clean.csv"
    path.write_text("\n".join(lines) + "\n")
    fast = read_trades(path, "csv", account="acc1")  # Arrow's columns
    arrow, clean = csv_fills._arrow_file, csv_fills._clean_file
    calls = []
    try:
        csv_fills._arrow_file = lambda *a: calls.append("arrow")  # pandas' columns
        by_pandas = read_trades(path, "csv", account="acc1")
        csv_fills._clean_file = lambda *a: calls.append("pandas")  # the row-by-row reading
        slow = read_trades(path, "csv", account="acc1")
    finally:
        csv_fills._arrow_file, csv_fills._clean_file = arrow, clean
    assert calls == ["arrow", "arrow", "pandas"]
    assert arrow(path, "acc1") is not None  # the clean file took the fast ways
    assert clean(*_table_parts(path, "acc1")) is not None
    for read in (fast, by_pandas):
        assert read.records == slow.records
        assert [r.trade_id for r in read.records] == [r.trade_id for r in slow.records]
        assert [type(r.execution_time.tzinfo) for r in read.records] == [
            type(r.execution_time.tzinfo) for r in slow.records
        ]
        assert (read.rows_read, read.skipped) == (slow.rows_read, slow.skipped) == (400, {})


def _table_parts(path, account):
    from tracking.importers import csv_fills
    from tracking.importers.result import ProblemLog

    table = csv_fills._read_table(path, ProblemLog(str(path)))
    header = [str(name).strip().lower() for name in table.iloc[0]]
    return table.iloc[1:], header, account


def test_csv_time_past_the_year_9999_is_named(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text(f"{HEADER}\n{OK}\nx,99999999999999999,BTC/USDT,buy,100,1,0,acc1\n")
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "csv", account="acc1")
    (problem,) = caught.value.problems
    assert (problem.place, problem.column) == ("row 2", "timestamp")
    assert "after the year 9999" in problem.message


def test_csv_missing_or_repeated_columns_and_unreadable_files(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("trade_id,time,symbol,side,price,price\nx,1,BTC,buy,1,1\n")
    with pytest.raises(TradeImportError) as caught:
        read_trades(path, "csv", account="a")
    text = str(caught.value)
    assert f"{path}, header, column 'price': appears more than once" in text
    assert f"{path}, header, column 'timestamp': missing" in text
    assert f"{path}, header, column 'volume': missing" in text

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TradeImportError, match=re.escape(f"{empty}: empty file")):
        read_trades(empty, "csv", account="a")


def test_read_trades_refuses_an_unknown_format_or_empty_account(tmp_path):
    assert FORMATS == ("freqtrade", "hummingbot", "csv", "orders-csv")
    with pytest.raises(ValueError, match="format='excel' is invalid: expected one of freqtrade"):
        read_trades(tmp_path / "x", "excel", account="a")
    with pytest.raises(ValueError, match="account=' ' is invalid"):
        read_trades(tmp_path / "x", "csv", account=" ")
