"""The remaining REST routes on SQLite and PostgreSQL: /history and /comparison against
`app.py performance --json`; a paper account's KPIs, positions, orders, fills and deployments
(created, started, stopped: write scope; another account's: 404); alerts of the account only;
TCA as `app.py tca --json`; the ML dataset as Parquet."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from database.repositories import CandleRepository
from services.paper import PaperTrading
from services.tracking import TrackingService
from tests.api.conftest import ACCOUNT, bars, cli_json
from tests.services.test_order_imports import orders_file
from tests.tracking.test_orders_csv import row
from trading.alerts import AlertCenter, AlertEvent

PERF = f"/api/v1/performance/{ACCOUNT}"
ACC = f"/api/v1/accounts/{ACCOUNT}"


def test_history_is_the_performance_per_period(api, seeded):
    got = api.get(f"{PERF}/history", capital=10_000)
    assert got.status_code == 200, got.text
    want = cli_json(api.database_url, "performance", "--account", ACCOUNT, "--period", "monthly",
                    "--capital", "10000")  # fmt: skip
    body = got.json()
    assert body["period"] == "monthly"
    assert [p["period"] for p in body["periods"]] == [p["period"] for p in want["periods"]]
    for ours, theirs in zip(body["periods"], want["periods"], strict=True):
        assert ours["trade_summary"] == theirs["trade_summary"]
        assert ours["labels"] == theirs["labels"]
        assert ours["metrics"]["Sharpe Ratio"] == pytest.approx(theirs["metrics"]["Sharpe Ratio"])
    assert api.get(f"{PERF}/history", who="other").status_code == 404


def test_comparison_gives_two_spans_as_periods(api, seeded):
    months = api.get(f"{PERF}/history").json()["periods"]
    first, second = months[0], months[1]
    everything = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
    got = api.get(
        f"{PERF}/comparison", a_start=everything[0], a_end=everything[1],
        b_start=second["start"], b_end=second["end"],
    )  # fmt: skip
    assert got.status_code == 200, got.text
    a, b = got.json()["periods"]
    whole = api.get(f"{PERF}/summary").json()["periods"][0]
    assert (a["period"], b["period"]) == ("a", "b")
    assert a["trade_summary"] == whole["trade_summary"]
    assert b["trade_summary"] == second["trade_summary"]
    assert b["fills"] == second["fills"]
    assert first["trade_summary"] != second["trade_summary"]
    reversed_span = api.get(f"{PERF}/comparison", a_start=everything[1], a_end=everything[0],
                            b_start=everything[0], b_end=everything[1])  # fmt: skip
    assert reversed_span.status_code == 422
    missing = api.get(f"{PERF}/comparison", a_start=everything[0])
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"a_end", "b_start", "b_end"}


@pytest.fixture
def paper_account(api):
    with api.sessions.begin() as session:
        CandleRepository(session).upsert("BTC", "1h", bars("2024-01-01", 500, "h", 1))
    PaperTrading(api.sessions).create_account(ACCOUNT, 10_000.0, 0.2)
    PaperTrading(api.sessions).create_account("acc2", 5_000.0)
    return ACCOUNT


def test_a_paper_account_its_books_and_deployments(api, paper_account):
    account = api.get(f"{ACC}/account")
    assert account.status_code == 200, account.text
    body = account.json()
    assert (body["name"], body["cash"], body["equity"], body["max_drawdown_pct"]) == (
        ACCOUNT, 10_000.0, 10_000.0, 0.2,
    )  # fmt: skip
    assert body["return_pct"] == 0.0
    for part in ("positions", "orders", "fills", "deployments"):
        got = api.get(f"{ACC}/{part}")
        assert (got.status_code, got.json()) == (200, []), part

    new = {"name": "ema-btc", "strategy": "ema_crossover", "params": {"direction": "both"},
           "symbol": "BTC", "timeframe": "1h", "settings": {"commission_pct": 0.001}}  # fmt: skip
    path = f"{ACC}/deployments"
    assert api.client.post(path, json=new, headers=api.headers("read")).status_code == 403
    made = api.client.post(path, json=new, headers=api.headers("write"))
    assert made.status_code == 201, made.text
    assert (made.json()["name"], made.json()["status"]) == ("ema-btc", "stopped")
    again = api.client.post(path, json=new, headers=api.headers("write"))
    assert again.status_code == 409, again.text
    bad = api.client.post(path, json=new | {"name": "x", "strategy": "nope"},
                          headers=api.headers("write"))  # fmt: skip
    assert bad.status_code == 422
    assert "nope" in bad.json()["detail"]

    started = api.client.post(f"{path}/ema-btc/start", headers=api.headers("write"))
    assert (started.status_code, started.json()["status"]) == (200, "running")
    stopped = api.client.post(f"{path}/ema-btc/stop", headers=api.headers("admin"))
    assert (stopped.status_code, stopped.json()["status"]) == (200, "stopped")
    assert [d["name"] for d in api.get(path).json()] == ["ema-btc"]
    assert api.client.post(f"{path}/nope/start", headers=api.headers("write")).status_code == 404

    # another account's token reaches none of it
    for part in ("account", "positions", "deployments", "alerts", "tca", "dataset.parquet"):
        assert api.get(f"{ACC}/{part}", who="other").status_code == 404, part


def test_an_account_that_is_not_a_paper_account_is_404(api):
    got = api.get(f"{ACC}/account")
    assert got.status_code == 404
    assert got.json()["title"] == "No paper account"


def test_alerts_of_the_account_only(api):
    center = AlertCenter(api.sessions)
    try:
        center.emit(AlertEvent("halt", "mine halted", account=ACCOUNT, severity="critical"))
        center.emit(AlertEvent("halt", "theirs halted", account="acc2", severity="critical"))
    finally:
        center.close()
    got = api.get(f"{ACC}/alerts")
    assert got.status_code == 200, got.text
    assert [(a["kind"], a["message"]) for a in got.json()] == [("halt", "mine halted")]


def test_tca_and_the_dataset_of_an_account_with_orders(api, tmp_path):
    assert api.get(f"{ACC}/tca").status_code == 404  # no orders yet
    path = orders_file(
        tmp_path, "orders.csv",
        row(account_id=ACCOUNT, fill_time="2024-01-02T10:00:03Z", fill_qty="0.5",
            fill_price="100.4"),
        row(account_id=ACCOUNT, fill_time="2024-01-02T10:00:05Z", fill_qty="1.5",
            fill_price="100.5"),
    )  # fmt: skip
    TrackingService(api.sessions).import_file(path, "orders-csv", ACCOUNT)
    got = api.get(f"{ACC}/tca")
    assert got.status_code == 200, got.text
    want = cli_json(api.database_url, "tca", "--account", ACCOUNT)
    assert got.json()["left_out"] == want["left_out"]
    assert [o["order_id"] for o in got.json()["orders"]] == [o["order_id"] for o in want["orders"]]
    ours, theirs = got.json()["orders"][0], want["orders"][0]
    for key in ("filled_qty", "vwap_fill_price", "arrival_slippage_bps", "is_bps"):
        assert ours.get(key) == pytest.approx(theirs.get(key), nan_ok=True), key

    parquet = api.get(f"{ACC}/dataset.parquet")
    assert parquet.status_code == 200
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 1  # one decision: the order
