"""Redis down under two workers with the pages: the pages and the API keep answering (the
chart cache falls back to each process's own, the push to each process's own clients), the
status and /debug/stats say Redis is down; once it is back, the push crosses processes again.
"""

from __future__ import annotations

import itertools
import json

import httpx2
from websockets.sync.client import connect

from bench._api_servers import Gunicorn, prepare, token, wait_for
from bench.live_tabs import Stats, Tab
from caching.shared import SharedCache
from tests.reliability._clients import batch
from tests.reliability.conftest import env_for

ACCOUNT = "rel"


def _every_worker_says(base: str, wanted) -> bool:
    """Eight status answers in a row satisfy ``wanted`` (gunicorn spreads new connections
    over the workers: each has answered with high probability)."""
    for _ in range(8):
        answer = httpx2.get(base + "/api/v1/status", timeout=30).json()
        if not wanted(answer):
            return False
    return True


def _push_arrives(base: str, read: str, write: str, counter) -> bool:
    """A trade posted (to any worker) reaches a WebSocket client (on any worker)."""
    url = base.replace("http", "ws", 1) + f"/ws/performance/{ACCOUNT}/trades?token={read}"
    with connect(url, open_timeout=60) as ws:
        assert json.loads(ws.recv(timeout=60))["subscribed"] is True
        k = next(counter)
        posted = httpx2.post(base + "/api/v1/trades", json=batch(ACCOUNT, f"p{k}", k, 1),
                             headers={"Authorization": f"Bearer {write}"}, timeout=60)  # fmt: skip
        assert posted.status_code == 201, posted.text
        try:
            while True:
                message = json.loads(ws.recv(timeout=5))
                if any(t["trade_id"] == f"p{k}-0" for t in message["trades"]):
                    return True
        except TimeoutError:
            return False


def _page_works(base: str) -> Tab:
    stats = Stats()
    tab = Tab(base, stats, panels_shown=True)
    tab.open()
    tab.tick()
    assert stats.errors == [], stats.errors[:3]
    assert stats.requests >= 5
    return tab


def test_pages_and_api_work_with_redis_down_and_push_crosses_again_once_back(
    tmp_path, postgres_url, private_redis
):
    env = env_for(tmp_path, postgres_url, private_redis.url, DEBUG_STATS="1")
    prepare(env)
    read, write = token(env, ACCOUNT, "read"), token(env, ACCOUNT, "write")
    auth = {"Authorization": f"Bearer {read}"}
    counter = itertools.count(1000, 10)  # a batch's times: k to k + 9
    with Gunicorn(env, workers=2) as server:
        base = server.base
        wait_for(lambda: _every_worker_says(base, lambda s: s["redis"]["state"] == "subscribed"),
                 120, "both workers subscribed to Redis")  # fmt: skip
        assert httpx2.get(base + "/api/v1/status", timeout=30).json()["status"] == "ok"
        _page_works(base)
        wait_for(lambda: _push_arrives(base, read, write, counter), 120, "a push through Redis")

        private_redis.stop()
        wait_for(lambda: _every_worker_says(base, lambda s: s["redis"]["state"].startswith("down")),
                 120, "both workers seeing Redis down")  # fmt: skip
        status = httpx2.get(base + "/api/v1/status", timeout=30).json()
        assert status["status"] == "degraded"
        assert status["redis"]["push"] == "this process only"
        assert status["database"] == {"state": "ok"}
        tab = _page_works(base)  # the chart cache falls back to the process's own

        # a view the worker answering has not drawn yet: drawing a series the first time reads
        # the chart cache (a view drawn before Redis stopped is kept by the worker's live track
        # and touches no cache: with both workers holding SP500 1d, Redis was never asked)
        views = itertools.cycle([("NASDAQ", "1w"), ("SP500", "1w"), ("NASDAQ", "1d")])

        def stats_say_down() -> bool:
            tab.values["symbol.value"], tab.values["timeframe.value"] = next(views)
            tab.call(tab.dep("price-chart.figure...chart-state", "symbol.value"), ["symbol.value"])
            stats = httpx2.get(base + "/debug/stats", timeout=30).json()
            return str(stats["chart_cache"]["redis"]).startswith("down")

        wait_for(stats_say_down, 120, "/debug/stats saying Redis is down", every=0.2)
        assert tab.stats.errors == [], tab.stats.errors[:3]
        posted = httpx2.post(base + "/api/v1/trades", json=batch(ACCOUNT, "down", next(counter), 3),
                             headers={"Authorization": f"Bearer {write}"}, timeout=60)  # fmt: skip
        assert posted.status_code == 201, posted.text
        summary = httpx2.get(base + f"/api/v1/performance/{ACCOUNT}/summary", headers=auth,
                             timeout=60)  # fmt: skip
        assert summary.status_code == 200
        assert summary.json()["fills"] >= 4

        private_redis.start()
        wait_for(lambda: _every_worker_says(base, lambda s: s["status"] == "ok"), 120,
                 "both workers subscribed again")  # fmt: skip
        wait_for(lambda: _push_arrives(base, read, write, counter), 120, "a push through Redis")
        assert "Traceback" not in server.log(), server.log()[-3000:]


def test_the_chart_cache_falls_back_in_process_while_redis_is_down(private_redis):
    cache = SharedCache.from_url(private_redis.url)
    try:
        cache.set("k", 1)
        assert (cache.get("k"), cache.stats().redis) == (1, "up")
        private_redis.stop()
        assert cache.get("k") is None  # Redis's copy is out of reach: a miss, not an error
        cache.set("k", 2)
        assert cache.get("k") == 2  # kept in process meanwhile
        assert cache.stats().redis.startswith("down: ")
        private_redis.start()

        def back() -> bool:
            cache.set("k", 3)
            return cache.stats().redis == "up"

        wait_for(back, 60, "the cache using Redis again", every=0.2)
        assert cache.get("k") == 3
    finally:
        cache.close()
