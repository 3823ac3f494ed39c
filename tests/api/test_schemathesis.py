"""Every operation of /api/openapi.json, fed by schemathesis (hypothesis) with the data its
schema allows, on a real database (SQLite and PostgreSQL) holding a seeded account: no answer
is a server error, each status is one the operation documents, and each body is what the
document says (response_schema_conformance). The token is an admin token of the seeded
account, which is also a paper account; a generated ``account_id`` is the seeded one, so that
the routes work on real trades rather than answer 404.

Each operation gets valid examples and invalid ones (schemathesis' negative mode). MAX_EXAMPLES
bounds the run (a couple of minutes on a busy 2-core machine for both backends).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_api
from services.paper import PaperTrading
from services.tokens import TokenService
from tests.api.conftest import ACCOUNT

MAX_EXAMPLES = 15  # per operation, mode and backend
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def findings(operation: Any, token: str) -> list[str]:
    """Run ``operation``'s examples, valid ones then invalid ones (schemathesis' negative
    mode: wrong types, missing fields, bodies that are not UTF-8); each mode's first failure."""
    found = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same examples on every run: a finding reproduces
            database=None,
        )
        def examples(case: Any) -> None:
            if case.path_parameters and "account_id" in case.path_parameters:
                case.path_parameters["account_id"] = ACCOUNT
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        try:
            examples()
        except Unsatisfiable:  # no parameter and no body: nothing can be invalid
            if mode is GenerationMode.POSITIVE:
                raise
        except Exception as exc:  # schemathesis' failure (or a group of them), with the request
            found.append(f"{operation.label} ({mode.value}): {exc}")
    return found


@pytest.mark.slow
def test_every_operation_answers_as_documented(session_factory, seeded):
    PaperTrading(session_factory).create_account(ACCOUNT, 10_000.0)
    token = TokenService(session_factory).create(ACCOUNT, "admin").token
    app = create_api(session_factory, max_request_bytes=2 << 20)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20  # every route of docs/api.md is in the document
    failed = [finding for op in operations for finding in findings(op, token)]
    assert not failed, "\n\n".join(failed)


def test_a_time_no_trade_can_hold_is_refused_by_name(api):
    """Schemathesis' first finding: an execution time past 2262 (epoch ms or ISO) was a 500
    (pandas' nanosecond timestamps end there); now a 422 naming the field."""
    far = [248_672_663_510_390, "9999-12-31T00:00:00Z", "1600-01-01T00:00:00Z"]
    for k, when in enumerate(far):
        body = {"trade_id": f"far{k}", "symbol": "BTC", "side": "buy", "price": 1.0,
                "volume": 1.0, "execution_time": when}  # fmt: skip
        answer = api.post(body)
        assert answer.status_code == 422, answer.text
        (error,) = answer.json()["errors"]
        assert error["field"] == "execution_time"
        assert "1677-09-22 to 2262-04-11" in error["reason"]


def test_every_write_operation_needs_write_scope(api):
    """Each POST, PUT, PATCH or DELETE of the document refuses a read token of the account
    (403) and a call without one (401), whatever its body."""
    document = api.client.get("/api/openapi.json").json()
    writes = [
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(writes) >= 3  # trades, deployments, their start and stop
    for method, path in writes:
        url = path.format(account_id="acc1", name="x", action="start")
        for who, status in (("read", 403), (None, 401)):
            headers = api.headers(who) if who else {}
            answer = api.client.request(method, url, headers=headers, json={})
            assert answer.status_code == status, f"{method.upper()} {url} ({who}): {answer.text}"


@pytest.mark.parametrize("preset", ["backtesting.py", "quantstats"])  # calendar-year CAGRs
def test_metrics_of_an_equity_through_zero(api, seeded, preset):
    """Schemathesis' second finding: a capital the losses exceed (the equity goes below 0)
    raised numpy's 'invalid value in power' on the CAGR (a 500 under warnings as errors); the
    growth rate of such an equity is undefined: null."""
    answer = api.get("/api/v1/performance/acc1/metrics", preset=preset, capital=0.025)
    assert answer.status_code == 200, answer.text
    metrics = answer.json()["periods"][0]["metrics"]
    assert metrics["Equity Final [$]"] < 0
    assert "CAGR [%]" in metrics
    assert metrics["CAGR [%]"] is None


def test_metrics_of_a_vanishing_capital(api, seeded):
    """Schemathesis' third finding (on PostgreSQL): capital=5e-324 made returns of x / 0 and
    numpy's 'invalid value in subtract' (a 500 under warnings as errors); the undefined
    figures are null."""
    answer = api.get("/api/v1/performance/acc1/metrics", capital=5e-324)
    assert answer.status_code == 200, answer.text
    metrics = answer.json()["periods"][0]["metrics"]
    assert metrics["Sharpe Ratio"] is None
