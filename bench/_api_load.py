"""The issue 17 load: simulated dashboard sessions polling their live chart (the live page's
own callback requests, bench/live_tabs.py's Tab) and API requests at a fixed rate, against
one server for a while; every answer's status and time kept per route. Shared by
tests/reliability/test_load.py (no error, nothing lost) and bench/api.py --load (the p99s
against the goal).

API mix per second (``rate`` requests): 40 % GET summary and 40 % GET metrics (capital
10,000) of the account holding the stored trades, 10 % GET a page of its trades (at a random
cursor), 10 % POST a batch of 10 new trades (``writers`` accounts, each posting in time order,
one batch at a time). The GETs are sent on schedule whether or not earlier ones have
answered (open loop: a slow server shows as latency), up to 64 awaiting their answer; beyond
that the schedule waits, and the rate printed is the one achieved.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx2

from bench.live_tabs import Stats, Tab, tick_each_second

BATCH = 10
IN_FLIGHT = 64  # GETs awaiting their answer at most (beyond: the schedule waits)
T0_MS = 1_735_689_600_000  # 2025-01-01: after the seeded trades


@dataclass
class LoadReport:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # ms
    errors: list[str] = field(default_factory=list)
    acknowledged: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    tab_errors: list[str] = field(default_factory=list)
    tab_requests: int = 0
    api_requests: int = 0

    def lines(self) -> list[str]:
        import numpy as np

        errors = len(self.errors) + len(self.tab_errors)
        out = [f"{self.api_requests / self.seconds:.0f} API requests/s and "
               f"{self.tab_requests / self.seconds:.0f} page callbacks/s over "
               f"{self.seconds:.0f} s; errors: {errors}"]  # fmt: skip
        for route, values in sorted(self.latencies.items()):
            if not values:
                continue
            p50, p99 = np.percentile(values, [50, 99])
            out.append(f"  {route:24} n {len(values):6,}  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms"
                       f"  max {max(values):8.1f} ms")  # fmt: skip
        return out


def run_load(
    base: str,
    *,
    account: str,
    read: str,
    writers: dict[str, str],
    seconds: float,
    rate: int = 200,
    tabs: int = 50,
    stored: int = 0,
) -> LoadReport:
    """``tabs`` sessions open, then ``seconds`` of ticks and API requests; ``writers``:
    account -> write token; ``stored``: trades of ``account`` (random cursors below it)."""
    report = LoadReport(seconds)
    stats = Stats()
    stop = threading.Event()
    opened = threading.Barrier(tabs + 1)

    def session() -> None:
        tab = Tab(base, stats, panels_shown=False)
        try:
            tab.open()
        finally:
            opened.wait()
        tick_each_second(tab, stop)

    threads = [threading.Thread(target=session, daemon=True) for _ in range(tabs)]
    for thread in threads:
        thread.start()
    opened.wait()
    with stats.lock:  # the measured window starts once every page is open
        stats.tick_s.clear()
        stats.requests = 0
        opening_errors = list(stats.errors)
    try:
        asyncio.run(_api(base, account, read, writers, seconds, rate, stored, report))
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    with stats.lock:
        report.latencies["page: live tick"] = [s * 1000 for s in stats.tick_s]
        report.tab_requests = stats.requests
        report.tab_errors = opening_errors + stats.errors[len(opening_errors) :]
    return report


async def _api(
    base: str,
    account: str,
    read: str,
    writers: dict[str, str],
    seconds: float,
    rate: int,
    stored: int,
    report: LoadReport,
) -> None:
    limits = httpx2.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx2.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        read_headers = {"Authorization": f"Bearer {read}"}
        pending: set[asyncio.Task] = set()

        async def call(route: str, method: str, path: str, **kwargs) -> httpx2.Response | None:
            start = time.perf_counter()
            try:
                answer = await http.request(method, path, **kwargs)
            except httpx2.TransportError as exc:
                report.errors.append(f"{route}: {exc!r}")
                return None
            report.latencies[route].append((time.perf_counter() - start) * 1000)
            report.api_requests += 1
            if answer.status_code not in (200, 201):
                report.errors.append(f"{route}: {answer.status_code} {answer.text[:200]}")
            return answer

        summary = f"/api/v1/performance/{account}/summary"
        metrics = f"/api/v1/performance/{account}/metrics"
        trades = f"/api/v1/performance/{account}/trades"

        def get_one(k: int) -> asyncio.Task:
            if k % 10 < 4:
                work = call("GET summary", "GET", summary, headers=read_headers)
            elif k % 10 < 8:
                work = call("GET metrics", "GET", metrics, headers=read_headers,
                            params={"capital": 10_000})  # fmt: skip
            else:
                cursor = random.randrange(max(stored, 1))
                work = call("GET trades page", "GET", trades, headers=read_headers,
                            params={"cursor": cursor, "limit": 100})  # fmt: skip
            return asyncio.create_task(work)

        async def writer(name: str, token: str, every: float) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            n = 0
            next_at = time.monotonic() + random.random() * every
            end = time.monotonic() + seconds
            while next_at < end:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += every
                body = [
                    {"trade_id": f"{name}-{n}-{k}", "symbol": "LOAD", "price": 100.0 + k,
                     "side": ("buy", "sell")[k % 2], "volume": 1.0,
                     "execution_time": T0_MS + (n * BATCH + k) * 1000}
                    for k in range(BATCH)
                ]  # fmt: skip
                n += 1
                answer = await call("POST trades (10)", "POST", "/api/v1/trades", json=body,
                                    headers=headers)  # fmt: skip
                if answer is not None and answer.status_code == 201:
                    report.acknowledged[name].update(t["trade_id"] for t in body)

        posts_per_s = rate // 10
        writer_tasks = [
            asyncio.create_task(writer(name, token, len(writers) / posts_per_s))
            for name, token in writers.items()
        ]
        gets_per_s = rate - posts_per_s
        in_flight = asyncio.Semaphore(IN_FLIGHT)
        start = time.monotonic()
        k = 0
        while (now := time.monotonic() - start) < seconds:
            due = int(now * gets_per_s)
            while k < due and time.monotonic() - start < seconds:
                await in_flight.acquire()  # a server behind: fewer requests, said in the rate
                task = get_one(k)
                pending.add(task)
                task.add_done_callback(pending.discard)
                task.add_done_callback(lambda _task: in_flight.release())
                k += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*writer_tasks, *list(pending))
        report.seconds = time.monotonic() - start


def fetch_all_ids(base: str, account: str, read: str) -> list[str]:
    """Every trade id of ``account`` through GET .../trades, page after page."""
    ids: list[str] = []
    cursor = 0
    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {read}"},
                       timeout=120) as http:  # fmt: skip
        while cursor is not None:
            page = http.get(f"/api/v1/performance/{account}/trades",
                            params={"cursor": cursor, "limit": 1000})  # fmt: skip
            page.raise_for_status()
            document = page.json()
            ids.extend(t["trade_id"] for t in document["trades"])
            cursor = document["next_cursor"]
    return ids


__all__ = ["LoadReport", "fetch_all_ids", "run_load"]
