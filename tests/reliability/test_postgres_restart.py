"""PostgreSQL restarted under ingestion: while it is down the API answers 503 with
Retry-After (a problem document), it recovers by itself once the database is back (the same
server processes), and no acknowledged trade is lost or stored twice."""

from __future__ import annotations

import httpx2

from bench._api_servers import Gunicorn, app, token, wait_for
from tests.reliability._clients import Poster, check_batches, stored_ids
from tests.reliability.conftest import env_for

ACCOUNT = "rel"


def test_database_restart_answers_503_then_recovers_without_losing_a_trade(
    tmp_path, private_postgres
):
    url = private_postgres.create_database("app")
    env = env_for(tmp_path, url)
    app(env, "db", "upgrade")
    write = token(env, ACCOUNT, "write")
    with Gunicorn(env, workers=2, api_only=True) as server:
        pids = server.workers()
        poster = Poster(server.base, write, ACCOUNT, size=100).start()
        try:

            def acknowledged() -> int:
                return sum(o.status == 201 for o in poster.snapshot())

            wait_for(lambda: acknowledged() >= 5, 120, "5 batches stored before the stop")
            private_postgres.stop("fast")
            stopped = len(poster.snapshot())
            # the API answers: 503, Retry-After, a problem document
            down = wait_for(
                lambda: next((o for o in poster.snapshot()[stopped:] if o.status == 503), None),
                120, "a 503 while the database is down",
            )  # fmt: skip
            assert down.retry_after == "1"
            assert down.kind == "urn:stratlens:problem:database-unavailable"
            status = httpx2.get(server.base + "/api/v1/status", timeout=30)
            assert status.status_code == 503
            assert status.headers["retry-after"] == "1"
            assert status.json()["database"]["state"] == "unavailable"
            assert "Traceback" not in down.error
            assert "SELECT" not in down.error

            private_postgres.start()
            restarted = len(poster.snapshot())
            wait_for(
                lambda: sum(o.status == 201 for o in poster.snapshot()[restarted:]) >= 5,
                120, "5 batches stored after the restart",
            )  # fmt: skip
        finally:
            poster.stop()
        assert server.workers() == pids  # recovered in place: no worker restarted
        assert httpx2.get(server.base + "/api/v1/status", timeout=30).json()["database"] == {
            "state": "ok"
        }
        log = server.log()
    outcomes = poster.snapshot()
    statuses = {o.status for o in outcomes}
    assert statuses <= {201, 503, None}, [o for o in outcomes if o.status not in (201, 503)][:3]
    assert "Traceback" not in log, log[-3000:]
    stored = stored_ids(url, ACCOUNT)
    check_batches(outcomes, stored)
    acknowledged = {f"{o.prefix}-{k}" for o in outcomes if o.status == 201 for k in range(o.size)}
    assert acknowledged <= set(stored)
