"""GET summary and metrics answered from kept JSON (api/answers.py): the same bytes FastAPI
makes of the route's document for its response model, kept until the account's next trade
(whichever process stores it), never older than the stored trades."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from api.models.performance import MetricsResponse, SummaryResponse
from services.tracking import TrackingService
from tests.api.conftest import ACCOUNT, seed_trades

SUMMARY = f"/api/v1/performance/{ACCOUNT}/summary"
METRICS = f"/api/v1/performance/{ACCOUNT}/metrics"
QUERIES = [
    (SUMMARY, SummaryResponse, {}),
    (SUMMARY, SummaryResponse, {"period": "monthly", "strategy": "s1"}),
    (METRICS, MetricsResponse, {"capital": 10_000}),
    (METRICS, MetricsResponse, {"capital": 5_000, "preset": "trade", "period": "weekly"}),
]


def _expected(api, model, params: dict) -> dict:
    """The route's document as FastAPI answered it before: the model's JSON of
    TrackingService.performance (a fresh service: no memo, no live state)."""
    query = {"strategy": None, "period": "all", "capital": None} | params
    if model is SummaryResponse:
        query["metrics"] = False
    document = TrackingService(api.sessions).performance(ACCOUNT, **query)
    return json.loads(model.model_validate(document).model_dump_json(by_alias=True))


def test_kept_answers_equal_the_documents_and_follow_new_trades(api, seeded):
    answers = api.client.app.state.answers
    first = {}
    for path, model, params in QUERIES:
        answer = api.get(path, **params)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == _expected(api, model, params)
        first[(path, str(params))] = answer.content
    hits = answers.hits
    for path, _model, params in QUERIES:  # asked again: the same bytes, from memory
        assert api.get(path, **params).content == first[(path, str(params))]
    assert answers.hits == hits + len(QUERIES)
    # a trade stored by another process (its own service): every kept answer is stale
    later = [
        replace(r, trade_id=f"late{k}", execution_time=r.execution_time + timedelta(days=400))
        for k, r in enumerate(seed_trades(n_trips=2, seed=9))
    ]
    TrackingService(api.sessions).tracker.record_many(later)
    for path, model, params in QUERIES:
        answer = api.get(path, **params)
        assert answer.json() == _expected(api, model, params)
    assert api.get(SUMMARY).json()["fills"] == len(seeded) + len(later)


def test_an_account_without_trades_is_still_a_404(api):
    answer = api.get(SUMMARY)
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"account {ACCOUNT!r} has no trades yet"


def test_a_page_of_trades_is_the_models_json(api, seeded):
    from api.models.trades import TradeOut, TradesPage
    from database.repositories.trade_pages import TradePages

    with api.sessions() as session:
        rows = TradePages(session).page(ACCOUNT, after_id=3, limit=51, label="breakout")
    names = TradeOut.model_fields.keys() - {"id", "labels"}
    items = [
        TradeOut(id=row_id, **{n: getattr(r, n) for n in names}, labels=list(r.labels))
        for row_id, r in rows[:50]
    ]
    more = rows[49][0] if len(rows) > 50 else None
    want = TradesPage(account_id=ACCOUNT, trades=items, next_cursor=more)
    answer = api.get(f"/api/v1/performance/{ACCOUNT}/trades", cursor=3, limit=50, label="breakout")
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads(want.model_dump_json(by_alias=True))
    assert answer.json()["trades"]  # the account has labelled trades
