"""POST /api/v1/trades on SQLite and PostgreSQL: one trade or a batch recorded whole through
the TradeTracker and committed before the answer; a batch with bad trades refused with every
problem listed; repeated ids refused by name (409) with nothing written."""

from __future__ import annotations

from sqlalchemy import func, select

from database.repositories.trades import TRADES
from database.session import make_engine, make_session_factory
from tests.api.conftest import ACCOUNT


def trade(k: int, **changes) -> dict:
    return {
        "trade_id": f"p{k}", "symbol": "BTC/USDT", "side": "buy" if k % 2 == 0 else "sell",
        "price": 100.0 + k, "volume": 1.5, "commission": 0.1, "strategy_id": "bot",
        "execution_time": f"2024-05-01T10:{k:02d}:00Z",
    } | changes  # fmt: skip


def count(api) -> int:
    with api.sessions() as session:
        return session.scalar(select(func.count()).select_from(TRADES))


def test_one_trade_is_recorded_with_its_pnl_and_labels(api):
    got = api.post(trade(0, labels=["manual"], execution_time=1714557600000))
    assert got.status_code == 201, got.text
    body = got.json()
    assert (body["account_id"], body["stored"]) == (ACCOUNT, 1)
    (stored,) = body["trades"]
    assert (stored["trade_id"], stored["pnl"], stored["cumulative_pnl"]) == ("p0", -0.1, -0.1)
    assert stored["labels"][0] == "manual"
    page = api.get(f"/api/v1/performance/{ACCOUNT}/trades").json()["trades"]
    assert [(t["trade_id"], t["source"], t["side"], t["execution_time"]) for t in page] == [
        ("p0", "api", "buy", "2024-05-01T10:00:00Z")
    ]


def test_an_accepted_batch_is_committed_before_the_answer(api):
    batch = [trade(k) for k in range(6)]
    got = api.post(batch, who="admin")  # admin may write too
    assert got.status_code == 201, got.text
    assert [t["trade_id"] for t in got.json()["trades"]] == [t["trade_id"] for t in batch]
    # another engine (another process's view) reads every trade at once
    engine = make_engine(api.database_url)
    try:
        with make_session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(TRADES)) == 6
    finally:
        engine.dispose()
    # buy 1.5 @100, sell 1.5 @101: +1.5 gross, less 0.2 commission
    assert got.json()["trades"][1]["pnl"] == 1.5 - 0.1


def test_a_batch_of_10000_trades_is_accepted(api):
    batch = [
        trade(k, trade_id=f"b{k}", execution_time=1714557600000 + k * 1000) for k in range(10_000)
    ]
    got = api.post(batch)
    assert got.status_code == 201, got.text[:500]
    assert got.json()["stored"] == 10_000
    assert count(api) == 10_000


def test_a_batch_with_three_bad_trades_lists_all_three_and_stores_nothing(api):
    batch = [trade(k) for k in range(10)]
    batch[2]["price"] = -3
    batch[5]["execution_time"] = "2024-05-01T10:05:00"  # no zone
    del batch[7]["symbol"]
    batch[7]["volume"] = "NaN"
    got = api.post(batch)
    assert got.status_code == 422
    assert got.headers["content-type"] == "application/problem+json"
    problem = got.json()
    assert problem["title"] == "Invalid trades"
    assert problem["detail"] == "4 problem(s) in 3 of 10 trade(s); nothing was stored"
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [
        (2, "price"), (5, "execution_time"), (7, "symbol"), (7, "volume"),
    ]  # fmt: skip
    reasons = [e["reason"] for e in problem["errors"]]
    assert reasons[0] == "Input should be greater than 0 (got -3)"
    assert reasons[2] == "required"
    assert "timezone" in reasons[1]
    assert count(api) == 0


def test_each_field_is_checked(api):
    cases = {
        "side": ("hold", "Input should be 'buy' or 'sell'"),
        "trade_id": ("", "at least 1 character"),
        "symbol": (" BTC", "white space"),
        "volume": (0, "greater than 0"),
        "commission": ("1e999", "finite number"),
        "execution_time": (1714557600, "before 1973 as epoch milliseconds"),
        "labels": ("breakout", "valid list"),
        "colour": ("red", "Extra inputs are not permitted"),
        "order_id": ("o\x00", "should match pattern"),  # PostgreSQL refuses NUL in text
    }
    for field, (value, reason) in cases.items():
        got = api.post(trade(0, **{field: value}))
        assert got.status_code == 422, field
        (error,) = got.json()["errors"]
        assert (error["index"], error["field"]) == (None, field)  # one trade: no index
        assert reason in error["reason"], (field, error)
    assert api.post(trade(0, side="SELL")).status_code == 201  # any case


def test_a_repeated_batch_is_refused_naming_its_ids_and_writes_nothing(api):
    batch = [trade(k) for k in range(4)]
    assert api.post(batch).status_code == 201
    again = api.post([*batch, trade(9)])
    assert again.status_code == 409
    problem = again.json()
    assert problem["title"] == "Duplicate trade ids"
    assert problem["detail"] == "duplicate trade id(s) 'p0', 'p1', 'p2', 'p3': nothing was stored"
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [
        (k, "trade_id") for k in range(4)
    ]
    assert count(api) == 4  # p9 not written either
    within = api.post([trade(20), trade(21), trade(20, price=1.0)])
    assert within.status_code == 409
    assert within.json()["errors"] == [
        {"index": 2, "field": "trade_id", "reason": "'p20' repeats an earlier trade's id"}
    ]
    assert count(api) == 4


def test_an_older_trade_of_a_symbol_is_a_conflict(api):
    assert api.post(trade(30)).status_code == 201
    older = api.post(trade(31, execution_time="2024-05-01T09:00:00Z"))
    assert older.status_code == 409
    assert "older than the account's last BTC/USDT trade" in older.json()["detail"]


def test_the_batch_limit_body_size_and_type_are_enforced(api):
    json_headers = api.headers("write") | {"content-type": "application/json"}
    huge = b"[" + b" " * (2 << 20) + b"]"  # over this app's 2 MB limit
    too_large = api.client.post("/api/v1/trades", headers=json_headers, content=huge)
    assert too_large.status_code == 413
    assert too_large.json()["detail"] == "the body is over the limit of 2,097,152 bytes"
    over = api.post([{"trade_id": str(k)} for k in range(10_001)])
    assert over.status_code == 422
    assert over.json()["errors"][0]["reason"] == ("a batch holds at most 10,000 trades, got 10,001")
    for body in ([], "text", 5):
        got = api.post(body)
        assert got.status_code == 422, body
        assert got.json()["errors"][0]["field"] == "body"
    not_json = api.client.post("/api/v1/trades", headers=json_headers, content=b"{trade")
    assert not_json.status_code == 422
    assert not_json.json()["detail"].startswith("not JSON")
    form = api.client.post("/api/v1/trades", headers=api.headers("write"), data={"a": "b"})
    assert form.status_code == 415
    assert count(api) == 0


def test_another_accounts_trades_are_not_found(api):
    got = api.post(trade(0, account_id="acc2"))
    assert got.status_code == 404
    assert got.json()["detail"] == "account 'acc2' not found"
    assert api.post(trade(0, account_id=ACCOUNT)).status_code == 201
    assert count(api) == 1
