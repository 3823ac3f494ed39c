"""Prometheus metrics over HTTP: GET /metrics, and the request latency of every HTTP request.

>>> install(app)   # create_api does this: /metrics before the pages' mount, the timing middleware

The values are services.metrics' (every process's, under ``make serve``). /metrics answers as
/debug/stats does: this machine (a loopback client) as is, another one with an admin token
(``Authorization: Bearer``): 401 without a valid token, 403 below admin.

The latency's ``route`` label is the route's template (``/api/v1/performance/{account_id}/
summary``), ``(pages)`` for everything the mounted Dash app answers and ``(unmatched)`` for
what no route took: the label's values stay few whatever paths clients ask for.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import bearer, check_grant
from api.problems import Problem
from services.metrics import REQUEST_SECONDS, latest

METRICS_PATH = "/metrics"
PAGES = "(pages)"
UNMATCHED = "(unmatched)"

router = APIRouter()


@router.get(METRICS_PATH, include_in_schema=False)
def metrics(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Response:
    """Prometheus' text exposition of every process's metrics."""
    if not is_loopback(request.client.host if request.client else None):
        caller = check_grant(request, credentials)  # 401 without a valid token
        if not caller.allows("admin"):
            raise Problem(
                403,
                f"token {caller.token_id} has scope {caller.scope!r}: /metrics needs 'admin'",
                title="Insufficient scope",
            )
    body, content_type = latest()
    return Response(body, media_type=content_type)


def is_loopback(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False  # a unix socket or an unknown peer: treat as remote


def route_label(scope: Scope) -> str:
    """The template of the route that answered, or PAGES / UNMATCHED."""
    route = scope.get("route")
    if isinstance(route, Mount) or (route is None and "app_root_path" in scope):
        return PAGES  # FastAPI's router names no route for a mount; the mount's scope says it
    return getattr(route, "path", UNMATCHED)


class RequestTimer:
    """ASGI middleware: each HTTP request's time to its answer's last byte, by method, route
    and status (500 when the app failed before answering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            REQUEST_SECONDS.labels(
                method=scope["method"], route=route_label(scope), status=str(status)
            ).observe(time.perf_counter() - started)


def install(app: FastAPI) -> None:
    """GET /metrics on ``app`` and its requests timed."""
    app.include_router(router)
    app.add_middleware(RequestTimer)


__all__ = ["METRICS_PATH", "RequestTimer", "install", "is_loopback", "route_label"]
