"""The live push's latency: from a trade's commit to its receipt on WebSocket clients (issue 17,
goal p99 <= 100 ms), with 1 and 50 clients, in process and through Redis.

    python bench/api.py [--trades 200] [--clients 1,50] [--redis redis://127.0.0.1:6379/15]

Setup: a fresh SQLite database in a temporary folder, `app.py serve-api --api-only` as real
processes (FEEDS=none), N websockets clients on /ws/performance/bench/trades with a read token.
Each trade is POSTed (one trade a request, acknowledged after commit); the next one only once
every client has it, so the figure is the latency of one event, not of a queue.

- in process: the clients and the POSTs on the same server; the event goes from the tracker's
  listener to the clients' queues through the hub's loop.
- via Redis: the clients on server A, the POSTs on server B (both with REDIS_URL): B's listener
  publishes, A's hub delivers.

Latency = the client's clock at receipt - the message's ``at`` (the listener's clock right after
the commit; one machine, one clock). The POST's own round trip (request to 201) is given too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx2
import numpy as np
import websockets.asyncio.client as ws_client

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 100.0
ACCOUNT = "bench"


def _env(data: Path, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"STRATLENS_DATA_DIR": str(data), "FEEDS": "none", "LOAD_SAMPLE_DATA": "false",
            "LOG_LEVEL": "WARNING"}  # fmt: skip
    return env | ({"REDIS_URL": redis_url} if redis_url else {})


def _app(data: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "app.py", *args], cwd=ROOT, env=_env(data, None), capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(stack: ExitStack, data: Path, redis_url: str | None) -> str:
    port = _free_port()
    log = (data / f"serve-{port}.log").open("w")
    stack.callback(log.close)
    server = subprocess.Popen(
        [sys.executable, "app.py", "serve-api", "--api-only", "--port", str(port)],
        cwd=ROOT, env=_env(data, redis_url), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack.callback(server.wait, 30)
    stack.callback(server.terminate)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"serve-api exited: {(data / f'serve-{port}.log').read_text()}")
        try:
            if httpx2.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return base
        except httpx2.TransportError:
            time.sleep(0.05)  # not listening yet
    raise SystemExit("serve-api did not start")


async def _measure(
    clients_on: str, post_to: str, read: str, write: str, clients: int, trades: int, first: int
) -> tuple[list[float], list[float]]:
    """Latencies (ms) of every receipt, and of every POST."""
    url = clients_on.replace("http", "ws", 1) + f"/ws/performance/{ACCOUNT}/trades?token={read}"
    received: list[list[float]] = [[] for _ in range(clients)]
    counts = [0] * clients
    arrived = asyncio.Condition()

    async def listen(k: int, ws) -> None:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            received[k].append((now - message["at"]) * 1000)
            async with arrived:
                counts[k] += len(message["trades"])
                arrived.notify_all()

    sockets = [await ws_client.connect(url, max_size=None) for _ in range(clients)]
    for ws in sockets:  # each stream is live once it says so
        assert json.loads(await ws.recv())["subscribed"] is True
    readers = [asyncio.create_task(listen(k, ws)) for k, ws in enumerate(sockets)]
    posts: list[float] = []
    headers = {"Authorization": f"Bearer {write}"}
    async with httpx2.AsyncClient(base_url=post_to, headers=headers, timeout=60) as http:
        for n in range(trades):
            k = first + n
            trade = {"trade_id": f"b{k}", "symbol": "BTC", "side": ("buy", "sell")[k % 2],
                     "price": 100.0 + k % 7, "volume": 1.0,
                     "execution_time": 1_704_067_200_000 + k * 60_000}  # fmt: skip
            start = time.perf_counter()
            answer = await http.post("/api/v1/trades", json=trade)
            posts.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 201, answer.text
            async with arrived:
                await asyncio.wait_for(
                    arrived.wait_for(lambda n=n: min(counts) >= n + 1), timeout=60
                )
    for ws in sockets:
        await ws.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return [x for each in received for x in each], posts


def _line(name: str, latencies: list[float], posts: list[float]) -> str:
    p50, p99 = np.percentile(latencies, [50, 99])
    verdict = "meets" if p99 <= GOAL_MS else "MISSES"
    return (
        f"{name:34} receipts {len(latencies):6,}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
        f"  max {max(latencies):7.1f} ms  ({verdict} the {GOAL_MS:.0f} ms goal)"
        f"  | POST p50 {statistics.median(posts):6.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades", type=int, default=200)
    parser.add_argument("--clients", default="1,50")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    print(f"live push: {args.trades} trades, one a POST, each awaited by every client; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        data = Path(folder)
        _app(data, "db", "upgrade")
        read = _app(data, "token", "create", "--account", ACCOUNT, "--scope", "read")
        write = _app(data, "token", "create", "--account", ACCOUNT, "--scope", "write")
        first = 0
        local = _serve(stack, data, None)
        for clients in counts:
            latencies, posts = asyncio.run(
                _measure(local, local, read, write, clients, args.trades, first)
            )
            first += args.trades
            print(_line(f"in process, {clients} client(s)", latencies, posts))
        if args.no_redis:
            return 0
        a, b = _serve(stack, data, args.redis), _serve(stack, data, args.redis)
        for clients in counts:
            latencies, posts = asyncio.run(_measure(a, b, read, write, clients, args.trades, first))
            first += args.trades
            print(_line(f"via Redis (B -> A), {clients} client(s)", latencies, posts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
