"""Imports that carry orders (orders-csv, freqtrade, Hummingbot) through TrackingService on
SQLite and PostgreSQL: the orders and the fills' trades are stored in one transaction or not at
all, a second import stores nothing new, a stored order cannot change; then TCAService reads
those accounts, with n/a and its reason where no bars are stored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from database.repositories.candles import CandleRepository
from database.repositories.executions import ExecutionRepository
from database.repositories.trades import TradeRepository
from services.tca import TCAService
from services.tracking import TrackingService, UnknownAccountError
from tests.tracking.bot_databases import freqtrade_db
from tests.tracking.test_importers import order
from tests.tracking.test_orders_csv import HEADER, row
from tracking.importers import TradeImportError
from tracking.tracker import OutOfOrderTradeError

NO_FILL = {"fill_time": "", "fill_price": "", "fill_qty": "", "fee": ""}


def orders_file(tmp_path, name: str, *lines: str):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


@pytest.fixture
def first_file(tmp_path):
    return orders_file(
        tmp_path, "first.csv",
        row(fill_time="2024-01-02T10:00:03Z", fill_qty="0.5", fill_price="100.4"),
        row(fill_time="2024-01-02T10:00:05Z", fill_qty="1.5", fill_price="100.5"),
        row(order_id="o2", side="sell", order_qty="1", **NO_FILL),
    )  # fmt: skip


def stored(session_factory, account: str = "desk") -> tuple[list, list, list]:
    with session_factory() as session:
        repo = ExecutionRepository(session)
        return (
            repo.orders(account)["order_id"].tolist(),
            repo.fills(account)["trade_id"].tolist(),
            TradeRepository(session).frame(account)["trade_id"].tolist(),
        )


def test_orders_are_stored_with_their_fills_trades_and_once(session_factory, first_file):
    service = TrackingService(session_factory)
    dry = service.import_file(first_file, "orders-csv", "desk", dry_run=True)
    assert (dry.stored, dry.orders["stored"]) == (2, 2)
    assert stored(session_factory) == ([], [], [])

    report = service.import_file(first_file, "orders-csv", "desk")
    assert (report.stored, report.already_stored) == (2, 0)
    assert report.orders == {"stored": 2, "already_stored": 0, "left_out": {}, "notes": {}}
    assert "orders for transaction-cost analysis: stored 2 new, 0 already stored" in (
        report.summary
    )
    trades = ["orders-csv:o1:0", "orders-csv:o1:1"]
    assert stored(session_factory) == (["o1", "o2"], trades, trades)
    with session_factory() as session:
        frame = TradeRepository(session).frame("desk")
    assert frame["price"].tolist() == [100.4, 100.5]
    assert frame["source"].tolist() == ["orders-csv"] * 2
    assert frame["pnl"].tolist() == [-0.15, -0.15]  # FIFO: a position opened pays its fees

    again = service.import_file(first_file, "orders-csv", "desk")
    assert (again.stored, again.already_stored) == (0, 2)
    assert again.orders == {"stored": 0, "already_stored": 2, "left_out": {}, "notes": {}}
    assert stored(session_factory) == (["o1", "o2"], trades, trades)


def test_a_rejected_file_writes_nothing(session_factory, tmp_path):
    bad = orders_file(
        tmp_path, "bad.csv", row(), row(order_id="o5", fill_price="-1"), row(order_id="o6")
    )
    with pytest.raises(TradeImportError, match=r"row 2, column 'fill_price'"):
        TrackingService(session_factory).import_file(bad, "orders-csv", "desk")
    assert stored(session_factory) == ([], [], [])


def test_orders_and_trades_are_stored_together_or_not_at_all(session_factory, first_file):
    """The tracker refuses a fill older than the account's last one of its symbol: the
    orders of that file, checked and ready, are not stored either (one transaction)."""
    service = TrackingService(session_factory)
    service.import_file(first_file, "orders-csv", "desk")
    older = orders_file(
        first_file.parent, "older.csv",
        row(order_id="o7", decision_time="2024-01-02T09:00:00Z",
            arrival_time="2024-01-02T09:00:01Z", fill_time="2024-01-02T09:00:02Z"),
        row(order_id="o8", symbol="ETH/USDT", **NO_FILL),
    )  # fmt: skip
    with pytest.raises(OutOfOrderTradeError, match="older than the account's last BTC/USDT"):
        service.import_file(older, "orders-csv", "desk")
    trades = ["orders-csv:o1:0", "orders-csv:o1:1"]
    assert stored(session_factory) == (["o1", "o2"], trades, trades)
    # the tracker follows the account on after the rollback: a good file still goes in
    newer = orders_file(
        first_file.parent, "newer.csv",
        row(order_id="o9", decision_time="2024-01-02T09:59:59Z",
            arrival_time="2024-01-02T10:00:00Z", fill_time="2024-01-02T10:00:09Z"),
    )  # fmt: skip
    assert service.import_file(newer, "orders-csv", "desk").stored == 1
    assert stored(session_factory)[0] == ["o9", "o1", "o2"]  # in arrival order


def test_an_order_stored_with_other_values_refuses_the_file(session_factory, first_file):
    service = TrackingService(session_factory)
    service.import_file(first_file, "orders-csv", "desk")
    changed = orders_file(
        first_file.parent, "changed.csv",
        row(fill_time="2024-01-02T10:00:03Z", fill_qty="0.5", fill_price="100.4"),
        row(fill_time="2024-01-02T10:00:05Z", fill_qty="1.5", fill_price="100.6"),
        row(order_id="o2", side="sell", order_qty="2", **NO_FILL),
        row(order_id="o10", fill_time="2024-01-02T10:00:09Z", fill_qty="0.5"),
    )  # fmt: skip
    with pytest.raises(TradeImportError) as caught:
        service.import_file(changed, "orders-csv", "desk")
    assert [(p.place, p.message) for p in caught.value.problems] == [
        ("row 1", "order 'o1' is stored with other values (fills) than this file gives: a "
         "stored order cannot change"),
        ("row 3", "order 'o2' is stored with other values (order_qty) than this file gives: "
         "a stored order cannot change"),
    ]  # fmt: skip
    assert stored(session_factory)[0] == ["o1", "o2"]


def test_tca_of_an_imported_account_without_bars(session_factory, first_file):
    TrackingService(session_factory).import_file(first_file, "orders-csv", "desk")
    tca = TCAService(session_factory)
    report = tca.account("desk", by=("venue",)).report
    o1, o2 = report.orders.to_dict("records")
    assert (o1["order_id"], o1["filled_qty"], o1["fill_rate"]) == ("o1", 2.0, 1.0)
    # the order's own arrival price is not given and no bar is stored: n/a, and why
    assert np.isnan(o1["arrival_slippage_bps"])
    assert "market data: no candles for the symbol" in o1["reason"]
    # what needs no bar: latency, execution time, price improvement against the limit 101
    assert (o1["latency_s"], o1["execution_time_s"]) == (1.0, 4.0)
    avg = (0.5 * 100.4 + 1.5 * 100.5) / 2
    assert o1["price_improvement_bps"] == pytest.approx((101 - avg) / 101 * 1e4)
    # the quote at arrival (bid 100.1, ask 100.3): the cost against its mid
    assert o1["spread_cost_bps"] == pytest.approx((avg - 100.2) / 100.2 * 1e4)
    # filled in full, the shortfall needs no bar: (fills - decision 100) + fees, of 2 x 100
    assert o1["is_bps"] == pytest.approx((2 * (avg - 100) + 0.15 + 0.15) / 200 * 1e4)
    assert (o2["order_id"], o2["fill_rate"], o2["quality_score"]) == ("o2", 0.0, 0.0)
    assert tca.paper("desk").report.orders["order_id"].tolist() == ["o1", "o2"]  # the alias
    with pytest.raises(UnknownAccountError, match="accounts with imported orders: desk"):
        tca.account("nobody")


def minute_bars(start: str, count: int, base: float, step: float) -> pd.DataFrame:
    """1m bars: open = base + step x k, close = open + 5, high = open + 8, low = open - 3."""
    opens = base + step * np.arange(count)
    index = pd.date_range(start, periods=count, freq="1min", tz="UTC")
    return pd.DataFrame(
        {"open": opens, "high": opens + 8, "low": opens - 3, "close": opens + 5,
         "volume": 1.0 + np.arange(count)},
        index=index,
    )  # fmt: skip


def test_tca_of_freqtrade_orders_reads_the_arrival_price_from_the_bars(session_factory, tmp_path):
    path = freqtrade_db(
        tmp_path / "tradesv3.sqlite",
        [{"id": 1, "pair": "BTC/USDT", "fee_open": 0.001, "fee_close": 0.001}],
        [order(1, 1, "buy", 0.5, 40000.0, "2024-01-02 10:00:00.000000")],
    )
    with session_factory.begin() as session:
        CandleRepository(session).upsert(
            "BTC/USDT", "1m", minute_bars("2024-01-02 09:50", 140, 40000.0, 10.0)
        )
    report = TrackingService(session_factory).import_file(path, "freqtrade", "ft")
    assert report.orders["stored"] == 1

    (row_,) = TCAService(session_factory).account("ft").report.orders.to_dict("records")
    # arrival = order_date 09:59:00: the open of that bar, 40000 + 9 x 10
    assert (row_["arrival_price"], row_["arrival_price_source"]) == (40090.0, "bar")
    assert row_["arrival_slippage_bps"] == pytest.approx((40000 - 40090) / 40090 * 1e4)
    # 1 minute after the fill at 10:00: the close of the 10:01 bar, 40110 + 5
    assert row_["markout_1m_bps"] == pytest.approx((40115 - 40000) / 40000 * 1e4)
    assert (row_["latency_s"], row_["execution_time_s"]) == (0.0, 60.0)
    assert np.isnan(row_["is_bps"])  # freqtrade keeps no decision price
    assert "decision price: not given" in row_["reason"]


def test_the_live_view_follows_an_import_of_orders(session_factory, first_file):
    """The import records in its own transaction: the live view hears of its trades after
    the commit, as it does of the tracker's own, and equals a recomputation."""
    service = TrackingService(session_factory)
    service.import_file(first_file, "orders-csv", "desk")
    assert service.live("desk")["fills"] == 2  # read from the database the first time
    closing = orders_file(
        first_file.parent, "closing.csv",
        row(order_id="o11", side="sell", decision_time="2024-01-02T10:01:00Z",
            arrival_time="2024-01-02T10:01:01Z", fill_time="2024-01-02T10:01:05Z",
            fill_qty="2", fill_price="101", fee="0.2"),
    )  # fmt: skip
    assert service.import_file(closing, "orders-csv", "desk").stored == 1
    live = service.live("desk")
    assert live["fills"] == 3
    whole = service.performance("desk")["periods"][0]["trade_summary"]
    assert whole["trades"] == 1
    # bought 0.5 at 100.4 and 1.5 at 100.5, sold 2 at 101; fees 0.15 + 0.15 + 0.2
    assert whole["net_pnl"] == pytest.approx(0.5 * 0.6 + 1.5 * 0.5 - 0.5)
    for key, value in whole.items():
        assert live["trade_summary"][key] == pytest.approx(value, nan_ok=True), key


def test_an_orders_csv_import_fills_the_execution_cache(session_factory, first_file, tmp_path):
    """``app.py trades import --format orders-csv`` leaves the account's execution cache
    written (the first export reads no order or fill row from the database): the files hold
    the rows a read from the database gives, and a second file extends them."""
    import pyarrow.feather as feather
    from sqlalchemy import select

    from database.models import DatabaseIdentity
    from database.repositories._execution_cache import execution_cache_for

    service = TrackingService(session_factory)
    service.import_file(first_file, "orders-csv", "desk")
    with session_factory() as session:
        token = session.scalar(select(DatabaseIdentity.token))
        cache = execution_cache_for(session.connection().engine.url)
    paths = {t: cache.path(t, "desk", token) for t in ("execution_orders", "execution_fills")}
    assert {t: feather.read_table(p).num_rows for t, p in paths.items()} == {
        "execution_orders": 2, "execution_fills": 2,
    }  # fmt: skip
    second = orders_file(tmp_path, "second.csv",
                         row(order_id="o3", fill_time="2024-01-02T11:00:03Z"))  # fmt: skip
    service.import_file(second, "orders-csv", "desk")
    assert feather.read_table(paths["execution_orders"]).num_rows == 3
    with session_factory() as session:
        repo = ExecutionRepository(session)
        pd.testing.assert_frame_equal(repo.orders("desk", cached=True), repo.orders("desk"))
        pd.testing.assert_frame_equal(repo.fills("desk", cached=True), repo.fills("desk"))
        assert repo.orders("desk")["order_id"].tolist() == ["o1", "o2", "o3"]
