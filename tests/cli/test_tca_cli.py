"""`app.py trades import --format orders-csv` then `app.py tca --account X --json` as real
processes on a fresh data folder: a CSV of orders and fills over stored 1m bars, each order's
costs worked by hand (docs/tca.md's conventions); a bad file rejected naming its rows with
nothing stored; a second import storing nothing new."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_paper_cli import app, query

HEADER = (
    "order_id,account_id,strategy_id,symbol,side,order_qty,order_type,limit_price,"
    "decision_time,decision_price,arrival_time,arrival_price,fill_time,fill_price,fill_qty,"
    "fee,venue,algo,bid,ask,expected_return_bps,end_time"
)
ORDERS = [
    # A: a market buy of 2, decided at 100.00, arriving at 10:01 (no arrival price given:
    # the open of the 10:01 bar), filled in two parts, the quote at arrival 100.00 / 100.10
    "o-a,desk,trend,XYZ,buy,2,market,,2024-01-02T10:00:30Z,100.00,2024-01-02T10:01:00Z,,"
    "2024-01-02T10:01:20Z,100.2,1,0.1,v1,twap,100.00,100.10,,",
    "o-a,desk,trend,XYZ,buy,2,market,,2024-01-02T10:00:30Z,100.00,2024-01-02T10:01:00Z,,"
    "2024-01-02T10:02:40Z,100.3,1,0.1,v1,twap,100.00,100.10,,",
    # B: a limit sell of 4 at 100.5 with its own arrival price, a quarter filled, then ended
    "o-b,desk,trend,XYZ,sell,4,limit,100.5,2024-01-02T10:10:00Z,101.00,2024-01-02T10:10:05Z,"
    "101.02,2024-01-02T10:10:30Z,101.0,1,0.05,v2,pov,,,,2024-01-02T10:20:00Z",
    # C: a symbol without stored bars
    "o-c,desk,manual,NOBARS,buy,1,market,,,,2024-01-02T10:30:00Z,,2024-01-02T10:30:10Z,50,1,0,"
    "v1,twap,,,,",
]


def bar(k: int) -> tuple[float, float, float, float, float]:
    """The k-th 1m bar from 10:00: open 100 + 0.1k, high open + 0.1, low open - 0.05,
    close open + 0.05, volume 10 + k (as written to the file, to 4 decimals)."""
    o = round(100 + 0.1 * k, 4)
    return o, round(o + 0.1, 4), round(o - 0.05, 4), round(o + 0.05, 4), 10.0 + k


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tca_cli")
    bars = folder / "xyz.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    for k in range(91):
        stamp = f"2024-01-02 {10 + k // 60:02d}:{k % 60:02d}:00"
        lines.append(stamp + "," + ",".join(map(str, bar(k))))
    bars.write_text("\n".join(lines) + "\n")
    done = app(folder / "data", "import", str(bars), "--symbol", "XYZ", "--timeframe", "1m")
    assert done.returncode == 0, done.stderr
    orders = folder / "orders.csv"
    orders.write_text("\n".join([HEADER, *ORDERS]) + "\n")
    done = app(folder / "data", "trades", "import", str(orders), "--format", "orders-csv",
               "--account", "desk")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "account desk: stored 4 new fills, 0 already stored" in done.stdout
    assert "orders for transaction-cost analysis: stored 3 new, 0 already stored" in done.stdout
    return folder


def test_tca_of_an_imported_account_worked_by_hand(data):
    done = app(data / "data", "tca", "--account", "desk", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    orders = {row["order_id"]: row for row in report["orders"]}
    assert set(orders) == {"o-a", "o-b", "o-c"}

    a = orders["o-a"]
    avg = (100.2 + 100.3) / 2
    assert (a["arrival_price"], a["arrival_price_source"]) == (bar(1)[0], "bar")  # 100.1
    assert a["arrival_slippage_bps"] == pytest.approx((avg - 100.1) / 100.1 * 1e4)  # 14.99
    # Perold on the paper notional 2 x 100.00 = 200: delay 2 x 0.1, trading 0.1 + 0.2,
    # no opportunity (filled in full), fees 0.2; 10 + 15 + 0 + 10 = 35 bps
    assert a["is_delay_bps"] == pytest.approx(10.0)
    assert a["is_trading_bps"] == pytest.approx(15.0)
    assert a["is_opportunity_bps"] == pytest.approx(0.0)
    assert a["is_fees_bps"] == pytest.approx(10.0)
    assert a["is_bps"] == pytest.approx(35.0)
    # the bars opening in [10:01:00, 10:02:40]: 10:01 and 10:02, typical price open + 0.1 / 3
    t1, t2 = 100.1 + 0.1 / 3, 100.2 + 0.1 / 3
    vwap, twap = (t1 * 11 + t2 * 12) / 23, (t1 + t2) / 2
    assert (a["vwap"], a["twap"]) == (pytest.approx(vwap), pytest.approx(twap))
    assert a["vs_vwap_bps"] == pytest.approx((avg - vwap) / vwap * 1e4)
    assert a["vs_twap_bps"] == pytest.approx((avg - twap) / twap * 1e4)
    # 1 minute after each fill: the closes of the 10:02 bar (100.25) and the 10:03 bar (100.35)
    markouts = ((100.25 - 100.2) / 100.2 * 1e4, (100.35 - 100.3) / 100.3 * 1e4)
    assert a["markout_1m_bps"] == pytest.approx(sum(markouts) / 2)
    # impact at 5 minutes after the last fill (10:07:40, the 10:07 bar's close 100.75)
    assert a["permanent_impact_bps"] == pytest.approx((100.75 - 100.1) / 100.1 * 1e4)
    assert a["permanent_impact_bps"] + a["temporary_impact_bps"] == pytest.approx(
        a["arrival_slippage_bps"]
    )
    # the quote 100.00 / 100.10: against its mid 100.05, and the share of the spread kept
    assert a["spread_cost_bps"] == pytest.approx((avg - 100.05) / 100.05 * 1e4)
    assert a["spread_capture_pct"] == pytest.approx((100.10 - avg) / 0.10 * 100)  # -150
    assert (a["latency_s"], a["execution_time_s"], a["fill_rate"]) == (30.0, 100.0, 1.0)
    assert a["price_improvement_bps"] is None  # a market order

    b = orders["o-b"]  # a sell: s = -1
    assert (b["arrival_price"], b["arrival_price_source"]) == (101.02, "order")
    assert b["arrival_slippage_bps"] == pytest.approx(0.02 / 101.02 * 1e4)  # received less
    # paper notional 4 x 101 = 404; 3 left, valued at the close of the bar holding its end
    # (10:20: 102.05): opportunity -(3 x (102.05 - 101)) = -3.15, fees 0.05
    assert b["end_price"] == pytest.approx(102.05)
    assert b["is_delay_bps"] == pytest.approx(-0.02 / 404 * 1e4)
    assert b["is_trading_bps"] == pytest.approx(0.02 / 404 * 1e4)
    assert b["is_opportunity_bps"] == pytest.approx(-3.15 / 404 * 1e4)
    assert b["is_bps"] == pytest.approx((-3.15 + 0.05) / 404 * 1e4)  # -76.73
    assert b["price_improvement_bps"] == pytest.approx((101.0 - 100.5) / 100.5 * 1e4)  # 49.75
    assert b["fill_rate"] == pytest.approx(0.25)

    c = orders["o-c"]  # no bars for NOBARS: n/a, and why
    assert c["arrival_slippage_bps"] is None
    assert c["markout_1m_bps"] is None
    assert "market data: no candles for the symbol" in c["reason"]
    assert c["fill_rate"] == 1.0

    groups = {(r["dimension"], r["group"], r["metric"]): r for r in report["aggregates"]}
    v1 = groups[("venue", "v1", "arrival_slippage_bps")]
    assert (v1["orders"], v1["count"]) == (2, 1)  # C's is n/a, left out of the statistics
    assert v1["mean"] == pytest.approx(a["arrival_slippage_bps"])
    assert groups[("venue", "v2", "fill_rate")]["mean"] == pytest.approx(0.25)
    assert groups[("algo", "twap", "fill_rate")]["mean"] == pytest.approx(1.0)
    assert report["left_out"] == {}

    # the fills are the account's trades: performance sees them
    perf = json.loads(app(data / "data", "performance", "--account", "desk", "--json").stdout)
    assert perf["fills"] == 4
    assert perf["open_positions"] == {"XYZ": 1.0, "NOBARS": 1.0}

    text = app(data / "data", "tca", "--account", "desk", "--by", "venue")
    assert text.returncode == 0, text.stderr
    lines = {line.split()[0]: line for line in text.stdout.splitlines()[1:] if "orders" in line}
    # per venue, the plain means: v1 holds A and C (whose slippage and shortfall are n/a)
    assert text.stdout.startswith("account desk: 3 orders")
    assert "arrival_slippage_bps 14.99  is_bps 35.00" in lines["v1"]
    assert "fill_rate 1.00" in lines["v1"]
    assert "arrival_slippage_bps 1.98  is_bps -76.73" in lines["v2"]
    assert "fill_rate 0.25" in lines["v2"]


def test_a_second_import_stores_nothing_and_a_bad_file_nothing(data, tmp_path):
    again = app(data / "data", "trades", "import", str(data / "orders.csv"), "--format",
                "orders-csv", "--account", "desk", "--json")  # fmt: skip
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert (document["stored"], document["already_stored"]) == (0, 4)
    assert document["orders"]["already_stored"] == 3
    before = query(data / "data", "SELECT COUNT(*) FROM execution_orders")

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join([
            HEADER,
            ORDERS[2].replace("o-b,", "o-d,").replace(",sell,", ",hold,"),
            ORDERS[3].replace("o-c,", "o-e,").replace(",50,", ",-50,"),
            ORDERS[3].replace("o-c,", "o-f,").replace("10:30:10Z", "10:29:00Z"),
        ]) + "\n"
    )  # fmt: skip
    refused = app(data / "data", "trades", "import", str(bad), "--format", "orders-csv",
                  "--account", "desk")  # fmt: skip
    assert refused.returncode == 1
    assert "trades import rejected, nothing written" in refused.stderr
    assert "row 1, column 'side': 'hold' is not buy or sell" in refused.stderr
    assert "row 2, column 'fill_price': '-50' is not > 0" in refused.stderr
    assert "row 3, column 'fill_time'" in refused.stderr
    assert "before its order's arrival_time" in refused.stderr
    assert query(data / "data", "SELECT COUNT(*) FROM execution_orders") == before
    assert query(data / "data", "SELECT COUNT(*) FROM trades WHERE account_id = 'desk'") == [(4,)]
