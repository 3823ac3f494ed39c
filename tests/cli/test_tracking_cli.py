"""`app.py trades import`, `performance` and `attribution` as real processes on a fresh data
folder: a freqtrade database imported once (twice stores nothing new), its round trips worked
by hand; a bad CSV rejected naming row and column with nothing stored; a paper replay's
account summarised to the backtest engine's own trade PnL."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_paper_cli import app, query
from tests.tracking.bot_databases import freqtrade_db
from tests.tracking.test_importers import order


@pytest.fixture
def freqtrade_file(tmp_path):
    trades = [
        {"id": 1, "pair": "BTC/USDT", "fee_open": 0.001, "fee_close": 0.002},
        {"id": 2, "pair": "ETH/USDT:USDT", "is_short": 1, "fee_open": 0.0005,
         "fee_close": 0.0007, "strategy": "ShortStrategy"},
        {"id": 3, "pair": "SOL/USDT", "is_open": 1, "fee_open": 0.001, "fee_close": 0.001},
    ]  # fmt: skip
    orders = [
        order(1, 1, "buy", 0.5, 40000.0, "2024-01-02 10:00:00.000000"),
        order(2, 1, "buy", 0.25, 39000.0, "2024-01-02 11:00:00.000000"),
        order(4, 1, "sell", 0.75, 41000.0, "2024-01-02 12:00:00.000000"),
        order(5, 2, "sell", 2.0, 2001.0, "2024-01-03 10:30:00.000000"),
        order(6, 2, "stoploss", 2.0, 2100.0, "2024-01-03 13:00:00.000000"),
        order(7, 3, "buy", 10.0, 100.0, "2024-01-04 10:00:00.000000"),
    ]
    return freqtrade_db(tmp_path / "tradesv3.sqlite", trades, orders)


def test_a_freqtrade_database_imports_once_and_is_summarised(tmp_path, freqtrade_file):
    data = tmp_path / "data"
    dry = app(data, "trades", "import", str(freqtrade_file), "--format", "freqtrade",
              "--account", "ft", "--dry-run", "--json")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["stored"] == 6
    assert query(data, "SELECT COUNT(*) FROM trades") == [(0,)]

    first = app(data, "trades", "import", str(freqtrade_file), "--format", "freqtrade",
                "--account", "ft", "--json")  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) | {"summary": ""} == {
        "account": "ft", "read": 6, "stored": 6, "already_stored": 0, "dry_run": False,
        "skipped": {}, "summary": "",
        # every order closed (filled) is kept for TCA with its fill
        "orders": {"stored": 6, "already_stored": 0, "left_out": {}, "notes": {}},
    }  # fmt: skip
    again = app(data, "trades", "import", str(freqtrade_file), "--format", "freqtrade",
                "--account", "ft", "--json")  # fmt: skip
    assert (json.loads(again.stdout)["stored"], json.loads(again.stdout)["already_stored"]) == (
        0,
        6,
    )
    assert json.loads(again.stdout)["orders"]["already_stored"] == 6
    assert query(data, "SELECT COUNT(*), MIN(source) FROM trades") == [(6, "freqtrade")]
    assert query(data, "SELECT COUNT(*) FROM execution_orders") == [(6,)]
    assert query(
        data, "SELECT COUNT(*) FROM execution_fills f JOIN trades t ON t.trade_id = f.trade_id"
    ) == [(6,)]
    # the on-exchange stoploss that closed the short: labelled stop_loss from its reason
    (stop,) = query(data, "SELECT labels FROM trades WHERE order_id = 'ord-6'")
    assert "stop_loss" in json.loads(stop[0])

    perf = app(data, "performance", "--account", "ft", "--json")
    assert perf.returncode == 0, perf.stderr
    document = json.loads(perf.stdout)
    summary = document["periods"][0]["trade_summary"]
    # BTC long: FIFO gross 0.5 x 1000 + 0.25 x 2000 = 1000, fees 20 + 9.75 + 61.5 -> +908.75
    # ETH short: (2001 - 2100) x 2 = -198, fees 2.001 + 2.94 -> -202.941; SOL still open
    assert (summary["trades"], summary["winning"], summary["losing"]) == (2, 1, 1)
    assert summary["net_pnl"] == pytest.approx(908.75 - 202.941)
    assert summary["largest_loss"] == pytest.approx(-202.941)
    assert document["open_positions"] == {"SOL/USDT": 10.0}
    assert document["periods"][0]["metrics"] == {}  # no capital known for a bot's account
    with_capital = json.loads(
        app(data, "performance", "--account", "ft", "--capital", "100000", "--json").stdout
    )
    # realised equity: 100000 - 1 (SOL's entry fee) + 705.809 at the end
    assert with_capital["periods"][0]["metrics"]["Return [%]"] == pytest.approx(
        (705.809 - 1.0) / 1000.0
    )

    attr = app(data, "attribution", "--account", "ft", "--by", "symbol", "--json")
    assert attr.returncode == 0, attr.stderr
    rows = {row["group"]: row for row in json.loads(attr.stdout)["pnl"]}
    assert rows["BTC/USDT"]["net_pnl"] == pytest.approx(908.75)
    assert rows["ETH/USDT:USDT"]["net_pnl"] == pytest.approx(-202.941)
    assert rows["all"]["trades"] == 2

    unknown = app(data, "performance", "--account", "nobody")
    assert unknown.returncode == 2
    assert "account 'nobody' has no trades (accounts with trades: ft)" in unknown.stderr


def test_a_bad_csv_is_rejected_naming_row_and_column_and_stores_nothing(tmp_path):
    data = tmp_path / "data"
    good = tmp_path / "good.csv"
    good.write_text(
        "trade_id,timestamp,symbol,side,price,volume\n"
        "a,2024-01-02T10:00:00Z,BTC,buy,100,1\nb,2024-01-02T11:00:00Z,BTC,sell,110,1\n"
    )
    assert (
        app(data, "trades", "import", str(good), "--format", "csv", "--account", "c").returncode
        == 0
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "trade_id,timestamp,symbol,side,price,volume\n"
        "c,2024-01-03T10:00:00Z,BTC,buy,-5,1\nd,2024-01-03T11:00:00Z,BTC,hold,110,1\n"
    )
    done = app(data, "trades", "import", str(bad), "--format", "csv", "--account", "c")
    assert done.returncode == 1
    assert "nothing written" in done.stderr
    assert "row 1" in done.stderr
    assert "'price'" in done.stderr
    assert "row 2" in done.stderr
    assert "'side'" in done.stderr
    assert query(data, "SELECT trade_id FROM trades ORDER BY id") == [("a",), ("b",)]
    older = tmp_path / "older.csv"
    older.write_text(
        "trade_id,timestamp,symbol,side,price,volume\ne,2024-01-01T10:00:00Z,BTC,buy,90,1\n"
    )
    refused = app(data, "trades", "import", str(older), "--format", "csv", "--account", "c")
    assert refused.returncode == 1
    assert "older than the account's last BTC trade" in refused.stderr


def test_a_paper_accounts_summary_is_the_backtest_engines_trades(tmp_path):
    data = tmp_path / "data"
    args = ["--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover",
            "--set", "fast=10", "--set", "slow=30", "--commission", "0.001"]  # fmt: skip
    replay = app(data, "paper", "replay", *args, "--account", "p1", "--start", "2012-01-01",
                 "--json")  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    backtest = app(data, "backtest", *args, "--start", "2012-01-01", "--json", "--no-store")
    expected = json.loads(backtest.stdout)["trades"]
    assert len(expected) >= 10
    perf = json.loads(app(data, "performance", "--account", "p1", "--json").stdout)
    summary = perf["periods"][0]["trade_summary"]
    assert perf["capital"] == 10_000.0  # the paper account's own
    assert summary["trades"] == len(expected)
    assert summary["net_pnl"] == pytest.approx(sum(t["pnl"] for t in expected), rel=1e-9)
    assert summary["winning"] == sum(t["pnl"] > 0 for t in expected)


def test_a_news_calendar_is_imported_once_and_labels_the_trades_near_its_events(tmp_path):
    data = tmp_path / "data"
    calendar = tmp_path / "calendar.csv"
    calendar.write_text(
        "time,title,symbol\n2024-01-02T14:00:00Z,FOMC,\n2024-01-03T09:00:00Z,Earnings,ETH\n"
    )
    done = app(data, "trades", "news", str(calendar))
    assert done.returncode == 0, done.stderr
    assert "2 events read, 2 new stored" in done.stdout
    assert "2 events read, 0 new stored" in app(data, "trades", "news", str(calendar)).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("time,title\nyesterday,CPI\n2024-01-02T14:00:00Z,\n")
    refused = app(data, "trades", "news", str(bad))
    assert refused.returncode == 1
    assert "row 1, column 'time'" in refused.stderr
    assert "row 2, column 'title'" in refused.stderr
    assert query(data, "SELECT COUNT(*) FROM news_events") == [(2,)]

    fills = tmp_path / "fills.csv"
    fills.write_text(
        "trade_id,timestamp,symbol,side,price,volume\n"
        "near,2024-01-02T13:50:00Z,BTC,buy,100,1\n"  # 10 minutes before the FOMC
        "far,2024-01-02T18:00:00Z,BTC,sell,101,1\n"  # hours after it
        "eth,2024-01-03T09:20:00Z,ETH,buy,10,1\n"  # 20 minutes after ETH's earnings
    )
    assert (
        app(data, "trades", "import", str(fills), "--format", "csv", "--account", "n").returncode
        == 0
    )
    labels = dict(query(data, "SELECT trade_id, labels FROM trades"))
    assert "news_event" in json.loads(labels["near"])
    assert "news_event" not in json.loads(labels["far"])
    assert "news_event" in json.loads(labels["eth"])


def test_tca_of_a_paper_account_prints_every_order_and_its_costs(tmp_path):
    data = tmp_path / "data"
    args = ["--symbol", "SP500", "--timeframe", "1d", "--strategy", "sma_crossover",
            "--set", "fast=10", "--set", "slow=30", "--commission", "0.001",
            "--slippage-bps", "2"]  # fmt: skip
    assert (
        app(data, "paper", "replay", *args, "--account", "t1", "--start", "2015-01-01").returncode
        == 0
    )
    done = app(data, "tca", "--account", "t1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    orders = report["orders"]
    stored = query(data, "SELECT COUNT(*) FROM orders WHERE status = 'filled'")[0][0]
    assert len(orders) == stored >= 10
    for row in orders:
        assert row["fill_rate"] == pytest.approx(1.0)
        # the broker's commission, 0.1 % of what was paid: 10 bps of the decision notional
        # give or take the move from decision to fill
        assert row["is_fees_bps"] == pytest.approx(10.0, abs=0.6)
        parts = ("is_delay_bps", "is_trading_bps", "is_opportunity_bps", "is_fees_bps")
        assert sum(row[p] for p in parts) == pytest.approx(row["is_bps"], abs=1e-9)
    groups = {(a["dimension"], a["group"]) for a in report["aggregates"]}
    assert {("side", "buy"), ("side", "sell"), ("venue", "paper")} <= groups
    missing = app(data, "tca", "--account", "nobody")
    assert missing.returncode == 2
    assert (
        "account 'nobody' has no order to analyse (paper accounts: t1; accounts with imported"
        " orders: none)" in missing.stderr
    )
