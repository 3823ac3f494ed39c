"""What the routes share: the services on ``app.state``, the common query parameters and the
problem answers each route may give (for the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from api.models.common import PRINTABLE
from api.problems import MEDIA_TYPE, Problem, ProblemDetail
from services.tracking import TrackingService
from services.trade_api import TradeApi


# dependencies without I/O are async: FastAPI runs a sync one on the thread pool, a hop
# (a thread switch and the GIL handed over) per dependency per request
async def _tracking(request: Request) -> TrackingService:
    return request.app.state.tracking


async def _trades(request: Request) -> TradeApi:
    return request.app.state.trades


Tracking = Annotated[TrackingService, Depends(_tracking)]
Trades = Annotated[TradeApi, Depends(_trades)]

Strategy = Annotated[
    str | None,
    Query(
        min_length=1, max_length=128, pattern=PRINTABLE, description="only this strategy's trades"
    ),
]
Symbol = Annotated[str | None, Query(min_length=1, max_length=64, pattern=PRINTABLE)]
Capital = Annotated[
    float | None,
    Query(gt=0, le=1e15, description="starting capital (a paper account's own by default)"),
]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of the problems a route may answer with."""
    return {
        status: {
            "model": ProblemDetail,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
            "description": description,
        }
        for status, description in {
            400: "the body could not be read (not UTF-8 text)",
            401: "no token, or a malformed, unknown or revoked one",
            403: "the token's scope is too low",
            404: "the token does not reach this account, or it has no trades",
            409: "a trade id is stored already or repeated, or a trade is older than stored ones",
            413: "the request body is over the limit",
            415: "the body is not JSON",
            422: "invalid parameters or trades: every problem listed",
            500: "the server failed (details in its log, never here)",
        }.items()
        if status in statuses
    }


READ_PROBLEMS = problems(401, 404, 422, 500)


def utc(value: datetime | None) -> datetime | None:
    """A query time in UTC (naive: read as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ordered_span(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and start > end:
        raise Problem(422, f"start {start.isoformat()} is after end {end.isoformat()}")
