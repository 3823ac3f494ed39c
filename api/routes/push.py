"""WebSocket /ws/performance/{account_id}/trades, /metrics and /alerts: the account's new
trades (as stored: labels, pnl), its live summary after each batch and its alerts, pushed as
JSON text messages as they happen (services/push.py: in process, and through Redis from other
processes when REDIS_URL is set). The first message says the stream is live:
``{"channel", "account_id", "subscribed": true}``; /metrics then sends the current view.

The token comes as ``?token=`` (browsers cannot set headers on a WebSocket). The connection is
accepted, then closed with a code when refused, so that every client (a browser too) can read
why: 4401 no token or a malformed, unknown or revoked one; 4404 another account's stream (the
same as an account that does not exist); 4403 a scope below read (none today). A client that
falls ``queue_size`` messages behind is closed with 4008 ("too slow"); 1001 when the server
stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api.models.common import PRINTABLE
from services.push import Channel, PushHub, Subscription, metrics_message
from services.tokens import TokenService
from services.tracking import TrackingService, UnknownAccountError

router = APIRouter()

UNAUTHORIZED, FORBIDDEN, NOT_FOUND, TOO_SLOW, GOING_AWAY = 4401, 4403, 4404, 4008, 1001
CLOSE_TIMEOUT_S = 1.0  # a client that does not take the close frame is cut


async def _refusal(websocket: WebSocket, account_id: str, token: str | None) -> tuple[int, str]:
    """(0, '') when ``token`` may read ``account_id``'s streams, else the close code and why."""
    tokens: TokenService = websocket.app.state.tokens
    if not token:
        return UNAUTHORIZED, "this stream needs a token: ?token=<token> (app.py token create)"
    grant = await run_in_threadpool(tokens.authenticate, token)
    if grant is None:
        return UNAUTHORIZED, "the token is malformed, unknown or revoked"
    if grant.account_id != account_id:
        return NOT_FOUND, f"account {account_id[:60]!r} not found"
    if not grant.allows("read"):
        return FORBIDDEN, f"token {grant.token_id} has scope {grant.scope!r}: streams need 'read'"
    return 0, ""


async def _stream(websocket: WebSocket, account_id: str, channel: Channel, token: str | None):
    await websocket.accept()
    code, reason = await _refusal(websocket, account_id, token)
    if code:
        await websocket.close(code, reason)
        return
    hub: PushHub = websocket.app.state.push
    subscription = hub.subscribe(account_id, channel)
    try:  # from here on nothing is missed: the client may read what came before over REST
        await websocket.send_text(
            json.dumps({"channel": channel, "account_id": account_id, "subscribed": True})
        )
        if channel == "metrics":
            await _send_current_view(websocket, account_id)
        # a slow client's send may block on its full socket: the drop itself ends the wait
        tasks = [
            asyncio.create_task(_send(websocket, subscription)),
            asyncio.create_task(_drain(websocket)),
            asyncio.create_task(subscription.wait_dropped()),
        ]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in tasks:  # every outcome read: a client gone mid-send is no error
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if subscription.dropped is not None:
            code = GOING_AWAY if "stopping" in subscription.dropped else TOO_SLOW
            await _close(websocket, code, subscription.dropped)
    finally:
        hub.unsubscribe(subscription)


async def _send_current_view(websocket: WebSocket, account_id: str) -> None:
    """The account's live view on connecting (none for an account without trades yet)."""
    tracking: TrackingService = websocket.app.state.tracking
    try:
        view = await run_in_threadpool(tracking.live, account_id)
    except UnknownAccountError:
        return
    message = metrics_message(account_id, view, time.time(), initial=True)
    await websocket.send_text(message.decode())


async def _send(websocket: WebSocket, subscription: Subscription) -> None:
    while True:
        message = await subscription.get()
        if message is None:
            return
        await websocket.send_text(message)  # the hub decoded it once for every client


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code, reason), CLOSE_TIMEOUT_S)


AccountPath = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE)]
TokenQuery = Annotated[str | None, Query(max_length=256, description="a token of the account")]


@router.websocket("/ws/performance/{account_id}/trades")
async def trades(websocket: WebSocket, account_id: AccountPath, token: TokenQuery = None) -> None:
    """Each new trade of the account, as stored (labels, pnl), a message per committed batch."""
    await _stream(websocket, account_id, "trades", token)


@router.websocket("/ws/performance/{account_id}/metrics")
async def metrics(websocket: WebSocket, account_id: AccountPath, token: TokenQuery = None) -> None:
    """The account's live summary: on connecting, then after each committed batch."""
    await _stream(websocket, account_id, "metrics", token)


@router.websocket("/ws/performance/{account_id}/alerts")
async def alerts(websocket: WebSocket, account_id: AccountPath, token: TokenQuery = None) -> None:
    """Each alert stored for the account, and those of no account (a feed down)."""
    await _stream(websocket, account_id, "alerts", token)


__all__ = ["router"]
