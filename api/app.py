"""create_api: the REST API as a FastAPI app over the database's sessions (docs/api.md).

>>> api = create_api(sessions)                    # the routes under /api/v1, docs at /api/docs
>>> uvicorn.run(with_pages(api, dash_app.server)) # api/asgi.py: the Dash pages at / too

Routes: ``api.metrics`` (GET /metrics, Prometheus), ``api.routes.performance`` (GET, read
scope), ``api.routes.trades`` (POST, write scope) and ``api.routes.push`` (the WebSockets
under /ws, fed by services.push.PushHub, which the app starts and stops with itself); tokens:
``api.auth``; errors: ``api.problems`` (RFC 9457, never a traceback). The OpenAPI 3 document
is made from the pydantic models at /api/openapi.json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.orm import Session, sessionmaker

from api import metrics, problems
from api.answers import KeptAnswers
from api.models.trades import TradeIn
from api.problems import Problem, ProblemDetail
from api.routes import accounts, performance, push, trades
from services.alerts import AlertService
from services.execution_ml import ExecutionMLService
from services.metrics import count_ingested, export_feed_states
from services.paper import PaperTrading
from services.push import DEFAULT_QUEUE, PushHub, push_channel
from services.tca import TCAService
from services.tokens import TokenService
from services.tracking import TrackingService
from services.trade_api import TradeApi
from services.trading_views import TradingViews

DOCS_URL = "/api/docs"
OPENAPI_URL = "/api/openapi.json"
DEFAULT_MAX_REQUEST_BYTES = 8 << 20  # Settings.max_request_mb's default

meta = APIRouter(prefix="/api/v1", tags=["meta"])


@meta.get("/health")
def health() -> dict[str, str]:
    """Whether the API answers (no token needed)."""
    return {"status": "ok"}


def create_api(
    sessions: sessionmaker[Session],
    *,
    tracking: TrackingService | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    redis_url: str | None = None,
    alert_center: Any = None,
    push_queue_size: int = DEFAULT_QUEUE,
    paper: PaperTrading | None = None,
    market: Any = None,
) -> FastAPI:
    """The API over ``sessions``; ``tracking``: share a process's TrackingService (its tracker
    keeps each account's state), else a new one. The live push follows ``tracking``'s tracker
    and ``alert_center`` (trading.alerts.AlertCenter) and, with ``redis_url``, every other
    process of the database through Redis. ``paper``: the process's PaperTrading (its runner
    answers a deployment's start and stop at once), else one over ``sessions``. ``market``
    (services.live.LiveMarket): the feeds whose states /metrics shows (api/metrics.py)."""
    tracking = tracking or TrackingService(sessions)
    # an account's first summary does not wait for its live state's first read (minutes at
    # 1,000,000 trades): answered from the stored trades meanwhile (TrackingService)
    tracking.read_in_background = True
    hub = PushHub(push_channel(sessions), redis_url=redis_url, queue_size=push_queue_size)
    answers = KeptAnswers(sessions.kw["bind"])

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        stops = [hub.follow(tracking), count_ingested(tracking.tracker)]
        if market is not None:
            stops.append(export_feed_states(market))
        if alert_center is not None:
            stops.append(hub.follow_alerts(alert_center))
        try:
            yield
        finally:
            for stop in stops:
                stop()
            await hub.stop()
            answers.close()

    app = FastAPI(
        title="StratLens API",
        version="1",
        summary="Performance analytics of tracked trades, and trade ingestion",
        docs_url=DOCS_URL,
        openapi_url=OPENAPI_URL,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.tracking = tracking
    app.state.push = hub
    app.state.trades = TradeApi(tracking, sessions)
    app.state.tokens = TokenService(sessions)
    app.state.answers = answers
    app.state.trading_views = TradingViews(sessions)
    app.state.paper = paper or PaperTrading(sessions)
    app.state.alerts = AlertService(sessions)
    app.state.tca = TCAService(sessions)
    app.state.execution_ml = ExecutionMLService(sessions)
    app.state.max_request_bytes = max_request_bytes
    problems.install(app)
    metrics.install(app)  # GET /metrics (before the pages' mount) and the request timer
    app.include_router(meta)
    app.include_router(performance.router)
    app.include_router(trades.router)
    app.include_router(accounts.router)
    app.include_router(push.router)

    @app.api_route(
        "/api/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    def unknown(rest: str) -> None:
        """Under /api, an unknown path is a problem, never the pages' catch-all."""
        raise Problem(404, f"no route /api/{rest} (see {DOCS_URL})")

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the schemas the hand-written request body and the problem
    answers refer to."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (TradeIn, ProblemDetail):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    app.openapi_schema = document
    return document


__all__ = ["DOCS_URL", "OPENAPI_URL", "create_api"]
