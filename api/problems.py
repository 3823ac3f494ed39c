"""Errors as RFC 9457 problem details (``application/problem+json``), never a traceback.

>>> raise Problem(404, "Account not found", "account 'b' has no data for this token")

Every error of the API answers with ``type``, ``title``, ``status``, ``detail`` and, where
fields are at fault, ``errors``: one entry per problem, ``{"index", "field", "reason"}``
(``index``: the trade's position in a batch, None elsewhere). FastAPI's own validation errors
(a bad query or path parameter) and Starlette's (an unknown path, a wrong method) come out in
the same shape; any other exception is logged with its traceback and answered as a bare 500
problem naming nothing of the internals, except a database that is briefly unreachable
(refused or lost connections, an administrator shutdown, no pooled connection free:
database.errors.is_transient_failure): a 503 with ``Retry-After`` (the pool's pre-ping
replaces the dead connections, so the next request after the database is back succeeds).
``install`` also adds GET /api/v1/status (api/status.py: the database and Redis as seen now).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from database.errors import failure_reason, is_transient_failure

log = logging.getLogger("stratlens.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:stratlens:problem:"  # + a kind: a stable name, listed in docs/api.md
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    500: "Internal server error",
    503: "Service unavailable",
}
TYPES = {
    401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "invalid-request",
    500: "internal-error", 503: "unavailable",
}  # fmt: skip
MAX_REASON = 300  # a reason quoting a huge input stays readable
RETRY_AFTER_S = 1  # a database restart takes seconds: ask again soon


class FieldError(BaseModel):
    """One problem with one field: which trade (its index in the batch), which field, why."""

    index: int | None = Field(None, description="position of the trade in the batch")
    field: str = Field(description="the field at fault, dotted (`price`, `labels.2`, `body`)")
    reason: str


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = Field(default_factory=list)


class Problem(Exception):
    """Raise to answer with a problem: ``Problem(409, "Duplicate trade ids", detail, errors)``."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[FieldError] = (),
        *,
        title: str | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.title = title or TITLES.get(status, "Error")
        self.kind = kind or TYPES.get(status, "error")
        self.headers = headers

    def document(self) -> ProblemDetail:
        return ProblemDetail(
            type=TYPE_BASE + self.kind,
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.document().model_dump(mode="json"),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


def field_errors(errors: Iterable[dict[str, Any]], *, skip: int = 0) -> list[FieldError]:
    """pydantic's errors as FieldErrors: the first int of a location (after ``skip`` parts)
    is the trade's index, the rest the field."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))[skip:]
        index = loc.pop(0) if loc and isinstance(loc[0], int) else None
        field = ".".join(str(part) for part in loc) or "body"
        out.append(FieldError(index=index, field=field, reason=_reason(error)))
    return out


def _reason(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        return "required"
    if "input" in error and error.get("type") not in {"extra_forbidden"}:
        shown = repr(error["input"])
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        message = f"{message} (got {shown})"
    return message[:MAX_REASON]


def install(app: FastAPI) -> None:
    """The handlers turning every error into a problem document."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc.errors(), skip=1)  # loc starts with query / path / body
        shown = "; ".join(f"{e.field}: {e.reason}" for e in errors[:5])
        return Problem(422, f"invalid request: {shown}", errors).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        return Problem(exc.status_code, detail, headers=exc.headers).response()

    from api import status

    status.install(app)
    app.add_middleware(CatchAll)


def unavailable(exc: BaseException) -> Problem:
    """The 503 of a database that is briefly unreachable (the cause is logged, not shown)."""
    return Problem(
        503,
        "the database is unavailable right now; the request was not completed. Try again after"
        " Retry-After seconds (a POST of trades again: 409 names any already stored)",
        kind="database-unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class CatchAll:
    """ASGI middleware: an exception nothing else handled becomes a 500 problem (logged once
    here, with its traceback; the answer names nothing of it). Starlette's own handler for
    ``Exception`` would answer, then raise again to the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            transient = is_transient_failure(exc)
            if transient:  # expected while the database restarts: one line, no traceback
                log.warning("%s %s: database unavailable (%s)", scope.get("method"),
                            scope.get("path"), failure_reason(exc))  # fmt: skip
            else:
                log.error("%s %s failed", scope.get("method"), scope.get("path"), exc_info=exc)
            if started:  # the answer is under way: the server can only cut it
                raise
            problem = unavailable(exc) if transient else Problem(
                500, "the server failed to answer; the error is in its log"
            )  # fmt: skip
            await problem.response()(scope, receive, send)


__all__ = [
    "MEDIA_TYPE",
    "CatchAll",
    "FieldError",
    "Problem",
    "ProblemDetail",
    "field_errors",
    "install",
    "unavailable",
]
