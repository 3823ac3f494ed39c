"""Who may call the API: no token 401, another account's data 404 (the same answer as an
account that does not exist), a write with a read token 403; every error a problem document,
never a traceback; the OpenAPI document and the docs page."""

from __future__ import annotations

import logging

from services.tokens import TokenService
from tests.api.conftest import ACCOUNT

SUMMARY = f"/api/v1/performance/{ACCOUNT}/summary"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    return body


def performance_paths(api) -> list[str]:
    """Every GET route of an account: its performance, and its paper books, alerts, TCA and
    dataset."""
    document = api.client.get("/api/openapi.json").json()
    paths = [
        p for p, methods in document["paths"].items()
        if "{account_id}" in p and "get" in methods and "{name}" not in p
    ]  # fmt: skip
    assert len(paths) == 11 + 8
    return [p.replace("{account_id}", ACCOUNT) for p in paths]


QUERY = {"symbol": "BENCH", "a_start": "2024-01-01", "a_end": "2024-02-01",
         "b_start": "2024-02-01", "b_end": "2024-03-01"}  # fmt: skip


def test_every_route_needs_a_valid_token(api, seeded):
    for path in performance_paths(api):
        body = problem(api.client.get(path, params=QUERY), 401)
        assert "Bearer" in body["detail"]
    no_token = api.client.get(SUMMARY)
    assert no_token.headers["www-authenticate"] == 'Bearer realm="stratlens"'
    good = api.tokens["read"]
    for bad in (good[:-1], good + "A", good.replace("slt_", "xyz_"), "slt_0_0"):
        refused = api.client.get(SUMMARY, headers={"Authorization": f"Bearer {bad}"})
        assert problem(refused, 401)["detail"] == "the token is malformed, unknown or revoked"
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    basic = api.client.get(SUMMARY, headers={"Authorization": f"Basic {good}"})
    problem(basic, 401)
    assert problem(api.post({}, who="read"), 403)["title"] == "Insufficient scope"  # 403 first
    assert api.get(SUMMARY).status_code == 200


def test_a_revoked_token_is_refused_at_once(api, seeded):
    assert api.get(SUMMARY).status_code == 200
    TokenService(api.sessions).revoke(api.tokens["read"][4:16])
    problem(api.get(SUMMARY), 401)
    assert api.get(SUMMARY, who="write").status_code == 200  # the others still work


def test_another_accounts_data_is_not_found_like_no_account(api, seeded):
    for path in performance_paths(api):
        theirs = problem(api.get(path, who="other", **QUERY), 404)
        assert theirs["detail"] == f"account {ACCOUNT!r} not found"
    # acc2 exists (it has a token) and zzz does not: the same answer
    existing = problem(api.get("/api/v1/performance/acc2/summary"), 404)
    missing = problem(api.get("/api/v1/performance/zzz/summary"), 404)
    assert existing["detail"].replace("acc2", "zzz") == missing["detail"]
    assert problem(api.get("/api/v1/performance/acc2/trades"), 404)["errors"] == []


def test_a_write_needs_the_write_scope(api):
    trade = {"trade_id": "w1", "symbol": "BTC", "side": "buy", "price": 1, "volume": 1,
             "execution_time": "2024-01-01T00:00:00Z"}  # fmt: skip
    body = problem(api.post(trade, who="read"), 403)
    assert body["detail"].endswith("has scope 'read': this route needs 'write'")
    assert api.post(trade, who="write").status_code == 201
    assert api.post(trade | {"trade_id": "w2"}, who="admin").status_code == 201


def test_an_unexpected_failure_is_a_500_problem_without_internals(api, seeded, caplog, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("password=hunter2 in /secret/path.py")

    monkeypatch.setattr(api.client.app.state.tracking, "performance", broken)
    with caplog.at_level(logging.ERROR, logger="stratlens.api"):
        got = api.get(SUMMARY)
    body = problem(got, 500)
    assert "hunter2" not in got.text
    assert "Traceback" not in got.text
    assert body["detail"] == "the server failed to answer; the error is in its log"
    (record,) = [r for r in caplog.records if r.name == "stratlens.api"]
    assert record.exc_info is not None
    assert "GET /api/v1/performance/acc1/summary failed" in record.getMessage()


def test_unknown_paths_under_api_are_problems(api):
    assert problem(api.client.get("/api/v1/nothing"), 404)["detail"].startswith("no route")
    problem(api.client.delete("/api/v2/trades"), 404)


def test_the_openapi_document_and_the_docs_need_no_token(api):
    document = api.client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/api/v1/health", "/api/v1/status", "/api/v1/trades",
        *(f"/api/v1/performance/{{account_id}}/{name}" for name in (
            "summary", "metrics", "label-analysis", "trades", "pnl-curve", "attribution",
            "risk-attribution", "pattern-analysis", "benchmark", "history", "comparison",
        )),
        *(f"/api/v1/accounts/{{account_id}}/{name}" for name in (
            "account", "positions", "orders", "fills", "deployments", "deployments/{name}/{action}",
            "alerts", "tca", "dataset.parquet",
        )),
    }  # fmt: skip
    schemas = document["components"]["schemas"]
    assert {"TradeIn", "ProblemDetail", "SummaryResponse", "TradesPage"} <= set(schemas)
    assert schemas["TradeIn"]["additionalProperties"] is False
    post = document["paths"]["/api/v1/trades"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert body[1]["maxItems"] == 10_000
    assert {"201", "401", "403", "404", "409", "413", "415", "422", "500"} <= set(post["responses"])
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    docs = api.client.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert api.client.get("/api/v1/health").json() == {"status": "ok"}
