"""``app.py serve-prod`` (``make serve``) as real processes: the supervisor, ``app.py runner`` and
gunicorn with two uvicorn workers, on a scratch PostgreSQL database and a Redis server of its
own on a free port. The pages and the API answer; a trade posted through one worker reaches
WebSocket clients on both (through Redis); /metrics sums every process; LOG_FORMAT=json logs;
a killed worker is replaced while the other answers; SIGTERM stops everything with 0; a child
that dies stops the rest and is named. REQUIRE_POSTGRES=1 / REQUIRE_REDIS=1 turn skips into
failures."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import psutil
import pytest
from websockets.sync.client import connect

from tests.api.conftest import ROOT
from tests.api.test_server import free_port

READY_WITHIN_S = 180  # two workers build the whole app on a busy 2-core machine
STOP_WITHIN_S = 60


def wait_for(what: str, condition: Callable[[], Any], within: float = READY_WITHIN_S) -> Any:
    """Poll ``condition`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {within:.0f} s")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own, on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not on PATH (REQUIRE_REDIS=1 forbids skipping)")
        pytest.skip("redis-server is not on PATH")
    import redis

    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_for("redis-server answering", answers, 30)
        yield url
    finally:
        client.close()
        server.terminate()
        server.wait(10)


@pytest.fixture
def postgres_url(postgres_server) -> Iterator[str]:
    """A scratch PostgreSQL database, not migrated (serve-prod migrates it)."""
    name = f"stratlens_prod_{uuid.uuid4().hex[:10]}"
    with postgres_server.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield postgres_server.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Stack:
    process: subprocess.Popen[Any]
    env: dict[str, str]
    log: Path
    base: str

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log records printed so far (stdout and stderr of every process)."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line) if line.startswith("{") else None)
            except ValueError:  # the line a process is writing right now
                continue
        return [record for record in out if record is not None]

    def children(self) -> dict[str, psutil.Process]:
        found = {}
        for child in psutil.Process(self.process.pid).children():
            command = " ".join(child.cmdline())
            found["gunicorn" if "gunicorn" in command else "runner"] = child
        return found

    def workers(self) -> set[int]:
        gunicorn = self.children().get("gunicorn")
        return {w.pid for w in gunicorn.children()} if gunicorn else set()

    def ready_workers(self) -> set[int]:
        """Workers alive whose app has started (their 'Application startup complete')."""
        started = {
            r["process"] for r in self.lines() if r["message"] == "Application startup complete."
        }
        return started & self.workers()

    def app(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "app.py", *args], cwd=ROOT, env=self.env, capture_output=True,
            text=True, timeout=120, check=False,
        )  # fmt: skip


def environment(tmp_path: Path, database_url: str, redis_url: str, **more: str) -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "TRADING_RUNNER")
    return {k: v for k, v in os.environ.items() if k not in drop} | {
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "PORT": str(free_port()),
        "WEB_CONCURRENCY": "2", "STRATLENS_DATA_DIR": str(tmp_path / "data"),
        "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "FEEDS": "DEMO:random_walk",
        "FEED_SPEED": "20", "FEED_UPDATES_PER_CANDLE": "1",
    } | more  # fmt: skip


def start(env: dict[str, str], log: Path) -> Stack:
    with log.open("w") as output:  # a file, not a pipe: a full pipe would stall the processes
        process = subprocess.Popen(
            [sys.executable, "app.py", "serve-prod"], cwd=ROOT, env=env, stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Stack(process, env, log, f"http://127.0.0.1:{env['PORT']}")


def stop(stack: Stack) -> int:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
    try:
        return stack.process.wait(STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(stack.process.pid).children(recursive=True):
            child.kill()
        stack.process.kill()
        stack.process.wait()
        pytest.fail(f"serve-prod did not stop within {STOP_WITHIN_S} s of SIGTERM")


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, redis_server: str) -> Iterator[Stack]:
    running = start(environment(tmp_path, postgres_url, redis_server), tmp_path / "serve.log")

    def both_ready() -> bool:
        if running.process.poll() is not None:
            pytest.fail(
                f"serve-prod exited {running.process.returncode}: {running.log.read_text()}"
            )
        return len(running.ready_workers()) == 2

    try:
        wait_for("two gunicorn workers started", both_ready)
        yield running
    finally:
        stop(running)


def metric(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in Prometheus' text exposition (labels in any order), or None."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if not head.startswith(name + "{") and head != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return None


def trade(k: int) -> dict[str, Any]:
    return {"trade_id": f"p{k}", "symbol": "BTC/USDT", "side": ("buy", "sell")[k % 2],
            "price": 100.0 + k, "volume": 0.5,
            "execution_time": f"2024-02-01T{10 + k:02d}:00:00Z"}  # fmt: skip


def ws_workers(stack: Stack, count: int) -> set[int]:
    """The workers that logged an accepted WebSocket, once ``count`` were."""
    accepted = [r["process"] for r in stack.lines() if "[accepted]" in r["message"]]
    return set(accepted) if len(accepted) >= count else set()


@pytest.mark.slow
def test_the_production_shape(stack: Stack):
    made = stack.app("token", "create", "--account", "bot", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    client = httpx2.Client(base_url=stack.base, timeout=30)

    page = client.get("/")  # a Dash page, through a worker's a2wsgi mount
    assert page.status_code == 200
    assert "<title>StratLens</title>" in page.text
    assert client.get("/_dash-layout").status_code == 200
    listed = client.get("/api/v1/performance/bot/trades", headers=auth)
    assert listed.status_code == 200
    assert listed.json()["trades"] == []
    assert client.get("/api/v1/performance/bot/trades").status_code == 401

    # WebSocket clients until both workers hold some (the kernel picks the worker)
    url = stack.base.replace("http", "ws") + f"/ws/performance/bot/trades?token={token}"
    with ExitStack() as opened:
        sockets: list[Any] = []
        while len(ws_workers(stack, len(sockets))) < 2:
            assert len(sockets) < 40, "40 WebSocket clients all landed on one worker"
            sockets.append(opened.enter_context(connect(url, open_timeout=30)))
            assert json.loads(sockets[-1].recv(30))["subscribed"] is True
            wait_for("the WebSocket's accept logged", lambda: ws_workers(stack, len(sockets)), 30)
        posted = client.post("/api/v1/trades", json=[trade(0), trade(1)], headers=auth)
        assert posted.status_code == 201, posted.text
        for ws in sockets:  # on both workers: one of them got it through Redis
            message = json.loads(ws.recv(30))
            assert [t["trade_id"] for t in message["trades"]] == ["p0", "p1"]
    assert "token=slt_" not in stack.log.read_text()  # the WebSocket's token is not logged

    # /metrics: every process's values (both workers and the runner) in one exposition
    text = client.get("/metrics").text
    assert metric(text, "stratlens_trades_ingested_total", source="api") == 2
    assert metric(text, "stratlens_http_request_duration_seconds_count", method="POST",
                  route="/api/v1/trades", status="201") == 1  # fmt: skip
    assert metric(text, "stratlens_http_request_duration_seconds_count", method="GET",
                  route="(pages)", status="200") >= 2  # fmt: skip
    # the feeds' states are written every FEED_STATE_EVERY_S (2 s) by each process: the first
    # candles can be counted before "live" is (CI once scraped in between)
    wait_for(
        "the runner's candles and lag, and the feed live, in /metrics",
        lambda: (
            (t := client.get("/metrics").text)
            and (metric(t, "stratlens_runner_candles_total", symbol="DEMO") or 0) > 0
            and metric(t, "stratlens_runner_lag_seconds", symbol="DEMO") is not None
            and metric(t, "stratlens_feed_state", symbol="DEMO", state="live") == 1
        ),
        60,
    )

    # the logs: JSON records from the supervisor's children; gunicorn's access log among them
    records = stack.lines()
    said = [r["message"] for r in records]
    assert any(m.startswith("Starting gunicorn") for m in said)  # gunicorn's first line too
    assert any(m.startswith("StratLens (production) on http://") for m in said)
    assert {"gunicorn.error", "uvicorn.access", "stratlens.runner"} <= {
        r["logger"] for r in records
    }
    access = [
        r for r in records if r["logger"] == "uvicorn.access" and r["path"] == "/api/v1/trades"
    ]
    assert access
    assert access[0]["method"] == "POST"
    assert access[0]["status"] == 201

    # the runner is its own process, alive; no worker trades (a worker that tried would have
    # met the runner's lease and said so)
    assert "is not run by this process" not in stack.log.read_text()
    children = stack.children()
    assert children["runner"].is_running()
    assert "runner" in children["runner"].cmdline()

    # kill -9 one worker: the other answers meanwhile, gunicorn starts a new one
    before = stack.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    for _ in range(10):  # new connections: each one is accepted by a live worker
        with httpx2.Client(base_url=stack.base, timeout=30) as fresh:
            assert fresh.get("/api/v1/health").status_code == 200
    replaced = wait_for(
        "gunicorn replacing the killed worker",
        lambda: len(ready := stack.ready_workers()) == 2 and victim not in ready and ready,
    )
    assert replaced - before  # a new pid
    client.close()

    # SIGTERM: everything stops, exit 0
    processes = [
        stack.process.pid,
        *(p.pid for p in psutil.Process(stack.process.pid).children(recursive=True)),
    ]
    started = time.monotonic()
    assert stop(stack) == 0, stack.log.read_text()[-3000:]
    assert time.monotonic() - started < STOP_WITHIN_S

    def gone() -> bool:  # a worker's last children may take a moment after its parent exits
        alive = []
        for pid in processes:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        return not alive

    wait_for("every process of serve-prod gone after SIGTERM", gone, within=STOP_WITHIN_S)


@pytest.mark.slow
def test_a_child_that_dies_stops_the_others_and_is_named(tmp_path, postgres_url, redis_server):
    env = environment(tmp_path, postgres_url, redis_server, WEB_CONCURRENCY="1", FEEDS="none",
                      LOG_FORMAT="text")  # fmt: skip
    running = start(env, tmp_path / "serve.log")
    try:
        runner = wait_for("the runner started", lambda: running.children().get("runner"))
        gunicorn = wait_for("gunicorn started", lambda: running.children().get("gunicorn"))
        runner.kill()
        code = running.process.wait(STOP_WITHIN_S)
    finally:
        stop(running)
    assert code == 1
    assert (
        f"runner (pid {runner.pid}) exited with code -9; stopped the others"
        in running.log.read_text()
    )
    assert not gunicorn.is_running() or gunicorn.status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize(
    ("database", "redis_url", "said"),
    [
        ("sqlite", "redis://127.0.0.1:6379/0", "is not PostgreSQL: make serve needs postgresql"),
        (
            "postgres",
            "redis://127.0.0.1:1/0",
            "Redis unreachable at REDIS_URL=redis://127.0.0.1:1/0",
        ),
        ("postgres", "", "REDIS_URL is unset: make serve needs Redis"),
    ],
)
def test_refusals_are_one_line(tmp_path, database, redis_url, said):
    url = (
        f"sqlite:///{tmp_path / 'x.db'}" if database == "sqlite"
        else "postgresql+psycopg2://postgres@127.0.0.1:5432/never_created_here"
    )  # fmt: skip
    env = environment(tmp_path, url, redis_url)
    done = subprocess.run(
        [sys.executable, "app.py", "serve-prod"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert said in done.stderr
    assert not (tmp_path / "x.db").exists()  # refused before anything was made
