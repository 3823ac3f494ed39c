"""kill -9 of one of two workers while batches are posted: the other worker goes on answering,
and every batch is stored whole or not at all (its transaction dies with the worker)."""

from __future__ import annotations

import os
import signal

from bench._api_servers import Gunicorn, app, token, wait_for
from tests.reliability._clients import Poster, check_batches, stored_ids
from tests.reliability.conftest import env_for

CLIENTS = 4
SIZE = 1_000


def test_a_killed_worker_leaves_no_partial_batch_and_the_other_goes_on(tmp_path, postgres_url):
    env = env_for(tmp_path, postgres_url)
    app(env, "db", "upgrade")
    # one account per client: each posts its own batches in time order
    writes = [token(env, f"k{c}", "write") for c in range(CLIENTS)]
    with Gunicorn(env, workers=2, api_only=True) as server:
        victim, survivor = server.workers()
        posters = [
            Poster(server.base, writes[c], f"k{c}", size=SIZE, name=f"c{c}b").start()
            for c in range(CLIENTS)
        ]
        try:

            def acknowledged(after: int = 0) -> int:
                return sum(o.status == 201 for p in posters for o in p.snapshot()[after:])

            wait_for(lambda: acknowledged() >= 2 * CLIENTS, 180, "batches stored before the kill")
            os.kill(victim, signal.SIGKILL)
            marks = [len(p.snapshot()) for p in posters]
            # the survivor answers on (gunicorn's master also starts a new worker meanwhile)
            wait_for(
                lambda: sum(o.status == 201 for p, m in zip(posters, marks, strict=True)
                            for o in p.snapshot()[m:]) >= 2 * CLIENTS,
                180, "batches stored after the kill",
            )  # fmt: skip
            assert survivor in server.workers()
        finally:
            for poster in posters:
                poster.stop()
        assert httpx_ok(server.base)
    cut = sum(o.status is None for p in posters for o in p.snapshot())
    print(f"\nkill -9: {cut} batch(es) cut with the worker, the rest answered 201")
    for c, poster in enumerate(posters):
        outcomes = poster.snapshot()
        refused = [o for o in outcomes if o.status not in (201, None)]
        assert refused == [], refused[:3]  # only cut connections (the killed worker's)
        check_batches(outcomes, stored_ids(postgres_url, f"k{c}"))


def httpx_ok(base: str) -> bool:
    import httpx2

    return httpx2.get(base + "/api/v1/health", timeout=30).status_code == 200
