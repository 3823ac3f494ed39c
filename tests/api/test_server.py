"""`app.py serve-api` as a real process: uvicorn on a free port serving the pages and the API
in one ASGI app; a token made by `app.py token create`; trades posted and summarised over
HTTP equal to `app.py performance --json`; stopped by SIGINT. And the --api-only shape."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.api.conftest import ROOT

READY_WITHIN_S = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(data: Path) -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL")
    return {k: v for k, v in os.environ.items() if k not in drop} | {
        "STRATLENS_DATA_DIR": str(data), "FEEDS": "none", "LOAD_SAMPLE_DATA": "false",
        "LOG_LEVEL": "WARNING",
    }  # fmt: skip


def command(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", *args], cwd=ROOT, env=environment(data), capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip


def wait_until_answering(server: subprocess.Popen, client: httpx2.Client, log: Path) -> None:
    """Poll the health route until it answers 200; fail at once if the server exits."""
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"serve-api exited {server.returncode}: {log.read_text()}")
        try:
            if client.get("/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.05)  # not listening yet: poll again
    pytest.fail(f"serve-api did not answer within {READY_WITHIN_S} s")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx2.Client, Path]]:
    data = tmp_path / "data"
    assert command(data, "db", "upgrade").returncode == 0
    port = free_port()
    log = tmp_path / "serve-api.log"
    with log.open("w") as output:  # a file, not a pipe: a full pipe would stall the server
        server = subprocess.Popen(
            [sys.executable, "app.py", "serve-api", "--port", str(port)],
            cwd=ROOT, env=environment(data), stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = httpx2.Client(base_url=f"http://127.0.0.1:{port}")
    try:
        wait_until_answering(server, client, log)
        yield client, data
    finally:
        client.close()
        interrupt(server)
    assert server.returncode == 0, log.read_text()


def interrupt(server: subprocess.Popen) -> None:
    """Stop the server as Ctrl-C would (killed if it has not ended within 30 s)."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_the_pages_and_the_api_in_one_process(served):
    client, data = served
    made = command(data, "token", "create", "--account", "bot", "--scope", "write")
    assert made.returncode == 0, made.stderr
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    trades = [
        {"trade_id": f"f{k}", "symbol": "BTC/USDT", "side": ("buy", "sell")[k % 2],
         "price": 100.0 + (k % 4) * 3, "volume": 0.5, "commission": 0.02,
         "execution_time": f"2024-02-01T{10 + k:02d}:00:00Z"}
        for k in range(8)
    ]  # fmt: skip
    posted = client.post("/api/v1/trades", json=trades, headers=auth)
    assert posted.status_code == 201, posted.text
    assert posted.json()["stored"] == 8

    summary = client.get("/api/v1/performance/bot/summary", headers=auth)
    assert summary.status_code == 200, summary.text
    cli = command(data, "performance", "--account", "bot", "--json")
    want = json.loads(cli.stdout)["periods"][0]["trade_summary"]
    assert summary.json()["periods"][0]["trade_summary"] == want
    assert want["trades"] == 4

    assert client.get("/api/v1/performance/bot/summary").status_code == 401
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>StratLens</title>" in page.text
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/api/docs").status_code == 200


def test_the_api_only_shape_serves_no_pages(tmp_path):
    from fastapi.testclient import TestClient

    from cli.serve import asgi_app
    from config.settings import Settings

    settings = Settings.from_env(
        {"STRATLENS_DATA_DIR": str(tmp_path), "LOAD_SAMPLE_DATA": "false", "MAX_REQUEST_MB": "1"}
    )
    app = asgi_app(settings, api_only=True)
    try:
        with TestClient(app) as client:
            assert client.get("/api/v1/health").json() == {"status": "ok"}
            assert client.get("/").status_code == 404  # no pages mounted
            assert app.state.max_request_bytes == 1 << 20  # MAX_REQUEST_MB
    finally:
        app.state.tracking.tracker.close()
