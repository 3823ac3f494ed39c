"""GET /api/v1/status (no token): what this server process sees of its parts now.

- ``database``: ``ok`` (a ``SELECT 1`` answered) or ``unavailable`` (then the answer is a
  503 with ``Retry-After``, as every route that needs the database answers meanwhile);
- ``redis``: ``off`` (no REDIS_URL), ``connecting``, ``subscribed`` or ``down: <why>`` (the
  push hub's subscription, services.push.PushHub); ``push`` says what the clients get:
  ``cross-process`` with Redis subscribed, ``this process only`` otherwise (each server still
  pushes the trades it records itself; other processes' events are missed until Redis is
  back);
- ``status``: ``ok``, ``degraded`` (Redis set but down: the API and the pages keep working)
  or ``unavailable`` (the database).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from database.errors import failure_reason, is_transient_failure

router = APIRouter(prefix="/api/v1", tags=["meta"])


def _database(request: Request) -> dict[str, Any]:
    sessions = request.app.state.tracking.sessions
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        if not is_transient_failure(exc):
            raise
        return {"state": "unavailable", "reason": failure_reason(exc)}
    return {"state": "ok"}


@router.get("/status")
def status(request: Request) -> JSONResponse:
    """The database and Redis as this server process sees them now (no token needed)."""
    database = _database(request)
    push = request.app.state.push.stats()
    redis_state = str(push.get("redis", "off"))
    redis = {
        "state": redis_state,
        "push": "cross-process" if redis_state == "subscribed" else "this process only",
        "published": push.get("redis_published"),
        "lost": push.get("redis_lost"),
    }
    if database["state"] != "ok":
        overall, code = "unavailable", 503
    elif redis_state.startswith("down") or redis_state == "connecting":
        overall, code = "degraded", 200
    else:
        overall, code = "ok", 200
    headers = {"Retry-After": "1"} if code == 503 else None
    return JSONResponse(
        {"status": overall, "database": database, "redis": redis}, code, headers=headers
    )


def install(app: FastAPI) -> None:
    app.include_router(router)


__all__ = ["install", "router"]
