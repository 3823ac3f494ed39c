"""GET /api/v1/status on SQLite and PostgreSQL, and the performance documents' memo: an answer
made for an account's stored trades is given again until a trade is added, then made anew
(equal to a fresh service's). The database down (503 with Retry-After) and Redis down: the
real processes of tests/reliability."""

from __future__ import annotations

from services.tracking import TrackingService
from tests.api.conftest import ACCOUNT


def test_status_says_the_database_answers_and_redis_is_off(api):
    answer = api.client.get("/api/v1/status")  # no token needed
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok", "database": {"state": "ok"},
        "redis": {"state": "off", "push": "this process only", "published": None, "lost": None},
    }  # fmt: skip


def test_a_summary_is_made_anew_once_a_trade_is_added(api, seeded):
    path = f"/api/v1/performance/{ACCOUNT}/summary"
    first = api.get(path).json()
    assert api.get(path).json() == first
    last = seeded[-1]
    posted = api.post({"trade_id": "memo-1", "symbol": last.symbol, "side": "buy",
                       "price": 100.0, "volume": 1.0,
                       "execution_time": last.execution_time.isoformat()})  # fmt: skip
    assert posted.status_code == 201, posted.text
    after = api.get(path).json()
    assert after["fills"] == first["fills"] + 1
    fresh = TrackingService(api.sessions).performance(ACCOUNT)
    assert after["open_positions"] == fresh["open_positions"] != first["open_positions"]
    assert after["periods"][0]["trade_summary"] == first["periods"][0]["trade_summary"]
