"""GET /api/v1/performance/{account}/...: the numbers equal those of `app.py performance
--json` and `app.py attribution --json` on the same database (SQLite and PostgreSQL); the
trade list's filters and cursor; the PnL curve; bad parameters named."""

from __future__ import annotations

import pytest

from tests.api.conftest import ACCOUNT, cli_json

BASE = f"/api/v1/performance/{ACCOUNT}"
SPAN = ("period", "start", "end", "fills")


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_performance_routes_equal_the_cli_json(api, seeded):
    cli = cli_json(api.database_url, "performance", "--account", ACCOUNT, "--period", "monthly",
                   "--capital", "10000")  # fmt: skip
    query = {"period": "monthly", "capital": 10000}
    summary = ok(api.get(f"{BASE}/summary", **query))
    metrics = ok(api.get(f"{BASE}/metrics", **query))
    labels = ok(api.get(f"{BASE}/label-analysis", period="monthly"))
    assert len(cli["periods"]) == 4  # January to April
    for key in ("account_id", "strategy_id", "period", "capital", "fills", "open_positions"):
        assert summary[key] == cli[key], key
    assert (metrics["capital"], metrics["convention"]) == (10000.0, "quantstats")
    for got, want in zip(summary["periods"], cli["periods"], strict=True):
        assert {k: got[k] for k in SPAN} == {k: want[k] for k in SPAN}
        assert got["trade_summary"] == want["trade_summary"]
    assert [p["metrics"] for p in metrics["periods"]] == [p["metrics"] for p in cli["periods"]]
    assert [p["labels"] for p in labels["periods"]] == [p["labels"] for p in cli["periods"]]
    assert cli["periods"][0]["metrics"]["Sharpe Ratio"] is not None  # real numbers compared
    assert "breakout" in cli["periods"][0]["labels"]


def test_daily_metrics_give_an_undefined_duration_as_null(api, seeded):
    """Schemathesis' finding: a day without a drawdown or a trade has NaT durations, which
    the response model refused (a 500); they are null, as NaN figures are."""
    for capital in (None, 10000):
        query = {"period": "daily"} | ({"capital": capital} if capital else {})
        periods = ok(api.get(f"{BASE}/metrics", **query))["periods"]
        assert len(periods) > 20
    durations = [
        value
        for period in periods
        for name, value in period["metrics"].items()
        if name.endswith("Duration")
    ]
    assert None in durations
    assert any(isinstance(v, float) and v > 0 for v in durations)


def test_a_strategy_filter_and_no_capital_equal_the_cli_json(api, seeded):
    cli = cli_json(api.database_url, "performance", "--account", ACCOUNT, "--strategy", "s2")
    summary = ok(api.get(f"{BASE}/summary", strategy="s2"))
    metrics = ok(api.get(f"{BASE}/metrics", strategy="s2"))
    assert (summary["strategy_id"], summary["fills"], summary["capital"]) == (
        "s2",
        cli["fills"],
        None,
    )
    assert summary["periods"][0]["trade_summary"] == cli["periods"][0]["trade_summary"]
    assert metrics["periods"][0]["metrics"] == {}  # no capital: no metrics, as the CLI


@pytest.mark.parametrize(("by", "clock"), [("label", "entry"), ("hour", "exit")])
def test_attribution_routes_equal_the_cli_json(api, seeded, by, clock):
    cli = cli_json(api.database_url, "attribution", "--account", ACCOUNT, "--by", by,
                   "--clock", clock, "--benchmark", "BENCH", "--capital", "10000")  # fmt: skip
    pnl = ok(api.get(f"{BASE}/attribution", by=by, clock=clock))
    risk = ok(api.get(f"{BASE}/risk-attribution", by=by, clock=clock))
    patterns = ok(api.get(f"{BASE}/pattern-analysis"))
    bench = ok(api.get(f"{BASE}/benchmark", symbol="BENCH", capital=10000))
    for doc in (pnl, risk):
        assert {k: doc[k] for k in ("by", "clock", "trips")} == {
            "by": by, "clock": clock, "trips": cli["trips"],
        }  # fmt: skip
    assert pnl["pnl"] == cli["pnl"]
    assert risk["risk"] == cli["risk"]
    assert patterns["patterns"] == cli["patterns"]
    assert patterns["trips"] == cli["trips"] == 80
    assert bench.pop("error") is None
    assert {k: bench[k] for k in ("account_id", "strategy_id")} == {
        "account_id": ACCOUNT, "strategy_id": None,
    }  # fmt: skip
    assert {k: v for k, v in bench.items() if k not in ("account_id", "strategy_id")} == cli[
        "benchmark"
    ]
    assert cli["benchmark"]["beta"] is not None
    assert len(cli["benchmark"]["factors"]) == 4


def test_a_benchmark_without_capital_says_why(api, seeded):
    bench = ok(api.get(f"{BASE}/benchmark", symbol="BENCH"))
    assert bench["error"].startswith("alpha and beta need daily returns")
    assert (bench["alpha"], bench["factors"]) == (None, [])


def test_the_trade_list_pages_by_row_id_with_its_filters(api, seeded):
    seen, cursor = [], 0
    while True:
        page = ok(api.get(f"{BASE}/trades", limit=7, cursor=cursor))
        seen += page["trades"]
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["trades"][-1]["id"]
        cursor = page["next_cursor"]
    assert [t["trade_id"] for t in seen] == [r.trade_id for r in seeded]
    ids = [t["id"] for t in seen]
    assert ids == sorted(ids)
    first, stored = seen[0], seeded[0]
    assert (first["price"], first["volume"], first["pnl"]) == (
        stored.price,
        stored.volume,
        stored.pnl,
    )
    assert first["labels"] == list(stored.labels)
    assert (
        first["market_context"]["volatility_regime"] == stored.market_context["volatility_regime"]
    )
    assert first["execution_time"] == "2024-01-02T09:30:00Z"

    def trade_ids(**query) -> list[str]:
        return [t["trade_id"] for t in ok(api.get(f"{BASE}/trades", limit=1000, **query))["trades"]]

    assert trade_ids(label="breakout") == [r.trade_id for r in seeded if "breakout" in r.labels]
    assert trade_ids(symbol="ETH", strategy="s2") == [
        r.trade_id for r in seeded if r.symbol == "ETH" and r.strategy_id == "s2"
    ]
    start, end = seeded[10].execution_time, seeded[20].execution_time
    assert trade_ids(start=start.isoformat(), end=end.isoformat()) == [
        r.trade_id for r in seeded[10:21]
    ]
    naive = start.replace(tzinfo=None).isoformat()  # no zone: UTC
    assert trade_ids(start=naive)[0] == seeded[10].trade_id
    assert trade_ids(label="no-such-label") == []


def test_the_pnl_curve_is_each_fills_realised_pnl(api, seeded):
    curve = ok(api.get(f"{BASE}/pnl-curve", capital=5000))
    points = curve["points"]
    assert [p["trade_id"] for p in points] == [r.trade_id for r in seeded]
    assert [p["cumulative_pnl"] for p in points] == [r.cumulative_pnl for r in seeded]
    assert [p["equity"] for p in points] == [5000 + r.cumulative_pnl for r in seeded]
    own = [r for r in seeded if r.strategy_id == "s1"]
    s1 = ok(api.get(f"{BASE}/pnl-curve", strategy="s1"))["points"]
    assert [p["pnl"] for p in s1] == [r.pnl for r in own]
    assert s1[-1]["cumulative_pnl"] == pytest.approx(sum(r.pnl for r in own), abs=1e-9)
    assert {p["equity"] for p in s1} == {None}


def test_bad_parameters_are_problems_naming_each_field(api, seeded):
    bad = api.get(f"{BASE}/attribution", by="colour", clock="noon")
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    problem = bad.json()
    assert {e["field"] for e in problem["errors"]} == {"by", "clock"}
    assert problem["type"].endswith("invalid-request")
    reversed_span = api.get(f"{BASE}/trades", start="2024-03-01", end="2024-01-01")
    assert reversed_span.status_code == 422
    assert "after end" in reversed_span.json()["detail"]
    for query in ({"limit": 0}, {"limit": 1001}, {"cursor": -1}, {"cursor": 2**63},
                  {"capital": -5}, {"strategy": "s\x00"}, {"label": "a\nb"}):  # fmt: skip
        path = f"{BASE}/pnl-curve" if "capital" in query else f"{BASE}/trades"
        assert api.get(path, **query).status_code == 422, query
    missing = api.get(f"{BASE}/benchmark", symbol="NOPE")
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"index": None, "field": "symbol", "reason": "'NOPE' has no stored bars"}
    ]


def test_an_account_without_trades_is_404(api):
    for path in ("summary", "metrics", "attribution", "pnl-curve", "pattern-analysis"):
        got = api.get(f"{BASE}/{path}")
        assert got.status_code == 404, path
        assert got.json()["detail"] == f"account {ACCOUNT!r} has no trades yet"
    assert ok(api.get(f"{BASE}/trades"))["trades"] == []  # a list is just empty
