"""The live push (services/push.py, api/routes/push.py): WebSocket streams of an account's
trades, live summary and alerts, on SQLite and PostgreSQL. Tokens as ?token= (closed 4401,
4404); a trade posted through the API on /trades and /metrics; an alert of the alert center
on /alerts; a slow client dropped (4008) while a fast one receives everything; events of
another process through a real Redis (a second hub, and `app.py trades import` as a real
process); `app.py serve-api` as a real process with a websockets client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api import create_api
from database.session import make_engine, make_session_factory
from services.push import PushEvent, PushHub, publish_alerts_to_redis, push_channel
from services.tokens import TokenService
from tests.api.conftest import ACCOUNT, ROOT, Api
from trading.alerts import AlertCenter, AlertEvent

WITHIN_S = 60  # a generous bound for a loaded machine; the loops end as soon as it holds


def trade(k: int, side: str = "buy", **extra: Any) -> dict[str, Any]:
    return {"trade_id": f"p{k}", "symbol": "BTC/USDT", "side": side, "price": 100.0 + k,
            "volume": 1.0, "commission": 0.1,
            "execution_time": f"2024-03-01T{10 + k:02d}:00:00Z", **extra}  # fmt: skip


@contextmanager
def stream(api: Api, channel: str, who: str = "read", account: str = ACCOUNT) -> Iterator[Any]:
    """A client of the stream, once it is live (its first message)."""
    token = api.tokens[who]
    with api.client.websocket_connect(f"/ws/performance/{account}/{channel}?token={token}") as ws:
        hello = _received(ws)
        assert hello == {"channel": channel, "account_id": account, "subscribed": True}
        yield ws


def refused(api: Api, path: str) -> WebSocketDisconnect:
    with api.client.websocket_connect(path) as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    return closed.value


def test_a_stream_needs_a_token_of_the_account(api):
    bad = "slt_000000000000_" + "A" * 43
    for path in (f"/ws/performance/{ACCOUNT}/trades", f"/ws/performance/{ACCOUNT}/metrics?token=",
                 f"/ws/performance/{ACCOUNT}/alerts?token={bad}"):  # fmt: skip
        closed = refused(api, path)
        assert closed.code == 4401, path
        assert "token" in closed.reason
    other = refused(api, f"/ws/performance/{ACCOUNT}/trades?token={api.tokens['other']}")
    assert (other.code, other.reason) == (4404, f"account {ACCOUNT!r} not found")
    TokenService(api.sessions).revoke(api.tokens["read"].split("_")[1])
    assert refused(api, f"/ws/performance/{ACCOUNT}/trades?token={api.tokens['read']}").code == 4401


def _received(ws) -> dict[str, Any]:
    return json.loads(ws.receive_text())


def test_a_posted_batch_arrives_on_trades_and_metrics(api):
    assert api.post([trade(0), trade(1, "sell")]).status_code == 201
    with stream(api, "trades") as trades, stream(api, "metrics") as metrics:
        initial = _received(metrics)  # the live view on connecting: two fills, one trip
        assert initial["initial"] is True
        assert initial["summary"]["fills"] == 2
        assert initial["summary"]["trade_summary"]["trades"] == 1

        posted = api.post([trade(2, labels=["mine"]), trade(3, "sell")])
        assert posted.status_code == 201, posted.text
        message = _received(trades)
        assert message["channel"] == "trades"
        assert message["account_id"] == ACCOUNT
        stored = {t["trade_id"]: t for t in posted.json()["trades"]}
        assert [t["trade_id"] for t in message["trades"]] == ["p2", "p3"]
        for pushed in message["trades"]:
            want = stored[pushed["trade_id"]]
            assert pushed["labels"] == want["labels"]
            assert pushed["pnl"] == pytest.approx(want["pnl"])
            assert pushed["cumulative_pnl"] == pytest.approx(want["cumulative_pnl"])
        assert "mine" in message["trades"][0]["labels"]

        update = _received(metrics)
        assert update["initial"] is False
        summary = update["summary"]
        assert summary["fills"] == 4
        assert summary["trade_summary"]["trades"] == 2
        over_http = api.get(f"/api/v1/performance/{ACCOUNT}/summary").json()
        assert summary["trade_summary"] == over_http["periods"][0]["trade_summary"]


def test_an_alert_of_the_account_arrives_on_alerts(session_factory):
    tokens = TokenService(session_factory)
    token = tokens.create(ACCOUNT, "read").token
    center = AlertCenter(session_factory)
    try:
        app = create_api(session_factory, alert_center=center)
        with TestClient(app) as client:
            path = f"/ws/performance/{ACCOUNT}/alerts?token={token}"
            with client.websocket_connect(path) as ws:
                assert _received(ws)["subscribed"] is True
                # another account's alert is not shown; one of no account (a feed) is
                center.emit(AlertEvent("halt", "acc2 halted", account="acc2", severity="critical"))
                center.emit(AlertEvent("feed_down", "feed BTC down", symbol="BTC",
                                       severity="critical"))  # fmt: skip
                center.emit(AlertEvent("halt", "acc1 halted", account=ACCOUNT, deployment="d1",
                                       severity="critical"))  # fmt: skip
                first, second = _received(ws), _received(ws)
            app.state.tracking.tracker.close()
    finally:
        center.close()
    assert (first["account_id"], first["alert"]["kind"]) == (None, "feed_down")
    assert second["account_id"] == ACCOUNT
    assert second["alert"]["message"] == "acc1 halted"
    assert second["alert"]["deployment"] == "d1"
    assert second["alert"]["severity"] == "critical"


def _event(account: str, n: int, size: int = 10) -> PushEvent:
    message = json.dumps({"channel": "trades", "account_id": account, "n": n, "pad": "x" * size})
    return PushEvent("trades", account, message.encode(), "test")


def test_a_slow_client_is_dropped_while_a_fast_one_receives_every_event():
    async def scenario() -> tuple[list[int], str | None, list[bytes | None], dict]:
        hub = PushHub(queue_size=8)
        await hub.start()
        fast = hub.subscribe("a", "trades")
        slow = hub.subscribe("a", "trades")  # never read
        got: list[int] = []

        async def read_fast() -> None:
            while len(got) < 100:
                message = await fast.get()
                assert message is not None
                got.append(json.loads(message)["n"])

        def publish() -> None:  # from another thread, as the tracker's listener does
            for n in range(100):
                hub.publish([_event("a", n)])
                _wait(lambda n=n: len(got) > n, "the fast client read it")  # it keeps up

        reader = asyncio.create_task(read_fast())
        publisher = threading.Thread(target=publish)
        publisher.start()
        await asyncio.wait_for(reader, WITHIN_S)
        await asyncio.to_thread(publisher.join)
        reason = await asyncio.wait_for(slow.wait_dropped(), WITHIN_S)
        rest = [await slow.get()]
        stats = hub.stats()
        await hub.stop()
        return got, reason, rest, stats

    got, reason, rest, stats = asyncio.run(scenario())
    assert got == list(range(100))
    assert reason == "too slow: 8 messages behind"
    assert rest == [None]  # what it had queued is gone; its stream ends
    assert stats["dropped_clients"] == 1
    assert stats["clients"] == 1


SQLITE_ONLY = pytest.mark.parametrize("database_backend", ["sqlite"])  # no database at stake


@pytest.mark.slow
@SQLITE_ONLY
def test_a_slow_websocket_client_is_dropped_and_the_others_go_on(session_factory):
    """A real uvicorn server: the slow client (a raw socket with a small receive buffer that
    never reads) fills its connection, its queue fills and it is dropped; the fast client of
    the same account gets every event, and the slow one's connection ends."""
    import uvicorn
    import websockets.sync.client as ws_client

    token = TokenService(session_factory).create(ACCOUNT, "read").token
    app = create_api(session_factory, push_queue_size=4)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: server.started, "uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        path = f"/ws/performance/{ACCOUNT}/trades?token={token}"
        hub: PushHub = app.state.push
        with ws_client.connect(f"ws://127.0.0.1:{port}{path}", max_size=None) as fast, \
                _raw_websocket(port, path) as slow:  # fmt: skip
            assert json.loads(fast.recv(timeout=WITHIN_S))["subscribed"] is True
            _wait(lambda: hub.stats()["clients"] == 2, "both subscribed")
            count = 0
            while hub.stats()["dropped_clients"] == 0:
                assert count < 2_000, "the slow client was never dropped"
                hub.publish([_event(ACCOUNT, count, 64 << 10)])
                assert json.loads(fast.recv(timeout=WITHIN_S))["n"] == count
                count += 1
            assert count > 4  # its socket took some, then its queue of 4 filled
            for n in range(count, count + 20):  # the fast one goes on
                hub.publish([_event(ACCOUNT, n)])
                assert json.loads(fast.recv(timeout=WITHIN_S))["n"] == n
            slow.settimeout(WITHIN_S)
            received = _read_to_end(slow)  # the server ends the slow connection
            assert hub.stats()["clients"] == 1
        frames = list(_frames(received))
        assert len([f for f in frames if f[0] == 1]) < count  # it missed messages
        closes = [payload for opcode, payload in frames if opcode == 8]
        if closes:  # the close frame gets through only if the socket had room for it
            assert int.from_bytes(closes[0][:2], "big") in (4008, 1006, 1011)
    finally:
        server.should_exit = True
        thread.join(WITHIN_S)
        app.state.tracking.tracker.close()


@contextmanager
def _raw_websocket(port: int, path: str) -> Iterator[socket.socket]:
    """A WebSocket handshake on a plain socket that then reads nothing (a stalled client)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        yield sock
    finally:
        sock.close()


def _read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(opcode, payload) of the server's (unmasked) frames, complete ones only."""
    at = 0
    while at + 2 <= len(data):
        opcode, length, at = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if length >= 126:
            width = 2 if length == 126 else 8
            length, at = int.from_bytes(data[at : at + width], "big"), at + width
        if at + length > len(data):
            return
        yield opcode, data[at : at + length]
        at += length


def _wait(condition, what: str, within: float = WITHIN_S) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.01)  # polling a condition, not waiting a fixed time


@pytest.fixture
def redis_api(session_factory, redis_url) -> Iterator[Api]:
    tokens = TokenService(session_factory)
    made = {scope: tokens.create(ACCOUNT, scope).token for scope in ("read", "write")}
    app = create_api(session_factory, redis_url=redis_url)
    with TestClient(app) as client:
        assert app.state.push.wait_subscribed(WITHIN_S), app.state.push.stats()
        yield Api(client, session_factory, "", made)
    app.state.tracking.tracker.close()


@pytest.mark.redis
@SQLITE_ONLY
def test_an_event_of_another_hub_arrives_through_redis(redis_api, session_factory, redis_url):
    other = PushHub(push_channel(session_factory), redis_url=redis_url)  # another "process"

    async def publish() -> None:
        await other.start()
        await asyncio.to_thread(other.publish, [_event(ACCOUNT, 7)])
        await other.stop()

    with stream(redis_api, "trades") as ws:
        asyncio.run(publish())
        assert _received(ws)["n"] == 7
    assert redis_api.client.app.state.push.stats()["from_redis"] == 1


def _cli_env(database_url: str, redis_url: str) -> dict[str, str]:
    return os.environ | {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                         "LOAD_SAMPLE_DATA": "false", "LOG_LEVEL": "WARNING"}  # fmt: skip


def _csv(path: Path, ids: range) -> Path:
    rows = ["trade_id,symbol,side,price,volume,commission,timestamp,strategy_id"]
    rows += [f"c{k},ETH,{('buy', 'sell')[k % 2]},{50 + k},2,0.05,2024-04-01T{10 + k:02d}:00:00Z,imp"
             for k in ids]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.redis
@pytest.mark.slow
def test_a_trade_imported_by_another_process_arrives_through_redis(
    redis_api, database_url, redis_url, tmp_path
):
    with stream(redis_api, "trades") as trades, stream(redis_api, "metrics") as metrics:
        done = subprocess.run(
            [sys.executable, "app.py", "trades", "import", str(_csv(tmp_path / "t.csv", range(4))),
             "--format", "csv", "--account", ACCOUNT],
            cwd=ROOT, env=_cli_env(database_url, redis_url), capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        message = _received(trades)
        assert [t["trade_id"] for t in message["trades"]] == ["c0", "c1", "c2", "c3"]
        assert all(t["pnl"] is not None and "labels" in t for t in message["trades"])
        summary = _received(metrics)["summary"]  # computed by the importing process
        assert summary["fills"] == 4
        assert summary["trade_summary"]["trades"] == 2


@pytest.mark.redis
@pytest.mark.slow
def test_serve_api_pushes_the_trades_another_process_imports(tmp_path, redis_url):
    """`app.py serve-api` as a real process (REDIS_URL set), a websockets client with a token
    of `app.py token create`, `app.py trades import` as another process: the client gets the
    imported trades, then the live summary after them."""
    import httpx2
    import websockets.sync.client as ws_client
    from websockets.exceptions import ConnectionClosed

    from tests.api.test_server import (
        command,
        environment,
        free_port,
        interrupt,
        wait_until_answering,
    )

    data = tmp_path / "data"
    env = environment(data) | {"REDIS_URL": redis_url}
    assert command(data, "db", "upgrade").returncode == 0
    made = command(data, "token", "create", "--account", "desk", "--scope", "read")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    port, log = free_port(), tmp_path / "serve-api.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "app.py", "serve-api", "--api-only", "--port", str(port)],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = httpx2.Client(base_url=f"http://127.0.0.1:{port}")
    try:
        wait_until_answering(server, client, log)
        base = f"ws://127.0.0.1:{port}/ws/performance/desk"
        with (
            ws_client.connect(f"{base}/trades?token={token}") as trades,
            ws_client.connect(f"{base}/metrics?token={token}") as metrics,
        ):
            for ws in (trades, metrics):  # live once they say so
                assert json.loads(ws.recv(timeout=WITHIN_S))["subscribed"] is True
            channel = _channel(data / "stratlens.db")
            _wait(lambda: _subscribed(redis_url, channel), "serve-api listens to Redis")
            done = subprocess.run(
                [sys.executable, "app.py", "trades", "import",
                 str(_csv(tmp_path / "t.csv", range(6))), "--format", "csv", "--account", "desk"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            message = json.loads(trades.recv(timeout=WITHIN_S))
            assert [t["trade_id"] for t in message["trades"]] == [f"c{k}" for k in range(6)]
            summary = json.loads(metrics.recv(timeout=WITHIN_S))["summary"]
            assert (summary["fills"], summary["trade_summary"]["trades"]) == (6, 3)
        with (
            ws_client.connect(f"{base}/trades?token=nope") as bad,
            pytest.raises(ConnectionClosed) as refused,
        ):
            bad.recv(timeout=WITHIN_S)
        assert refused.value.rcvd.code == 4401
    finally:
        client.close()
        interrupt(server)
    assert server.returncode == 0, log.read_text()


def _channel(sqlite_file: Path) -> str:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    try:
        return push_channel(make_session_factory(engine))
    finally:
        engine.dispose()


def _subscribed(redis_url: str, channel: str) -> bool:
    """Whether a process listens on ``channel``."""
    client = redis.Redis.from_url(redis_url)
    try:
        return client.pubsub_numsub(channel)[0][1] > 0
    finally:
        client.close()


@pytest.mark.redis
@SQLITE_ONLY
def test_an_alert_of_the_external_runner_arrives_through_redis(
    redis_api, session_factory, redis_url
):
    center = AlertCenter(session_factory)  # as `app.py runner` holds it, in another process
    stop = publish_alerts_to_redis(center, redis_url, push_channel(session_factory))
    try:
        with stream(redis_api, "alerts") as ws:
            center.emit(AlertEvent("halt", "acc1 halted", account=ACCOUNT, severity="critical"))
            alert = _received(ws)["alert"]
        assert (alert["kind"], alert["message"]) == ("halt", "acc1 halted")
    finally:
        stop()
        center.close()


@pytest.mark.redis
@pytest.mark.slow
def test_the_live_view_is_computed_only_where_a_metrics_client_listens(
    redis_api, session_factory, redis_url
):
    """Two processes (two apps, one database, one Redis): the POST's process has no metrics
    client, so it computes no live view; the other, with one, computes it from the trades
    that reach it through Redis, stamped with the commit's time."""
    poster = create_api(session_factory, redis_url=redis_url)
    views: list[str] = []
    live = poster.state.tracking.live
    poster.state.tracking.live = lambda account, *a, **k: (
        views.append(account) or live(account, *a, **k)
    )
    with TestClient(poster) as client, stream(redis_api, "metrics") as metrics:
        assert poster.state.push.wait_subscribed(WITHIN_S)
        headers = {"Authorization": f"Bearer {redis_api.tokens['write']}"}
        before = time.time()
        posted = client.post("/api/v1/trades", json=[trade(0), trade(1, "sell")], headers=headers)
        assert posted.status_code == 201, posted.text
        update = _received(metrics)
        assert update["initial"] is False
        assert (update["summary"]["fills"], update["summary"]["trade_summary"]["trades"]) == (2, 1)
        assert before <= update["at"] <= time.time()  # the commit's time, not the view's
        assert views == []  # nobody listens for metrics on the poster
    poster.state.tracking.tracker.close()
