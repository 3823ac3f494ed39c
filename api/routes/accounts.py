"""/api/v1/accounts/{account_id}/...: a paper account (its KPIs, positions, orders, fills,
deployments), its alerts, its transaction costs and its ML dataset (read scope; creating,
starting and stopping a deployment: write scope).

account, positions, orders, fills    services.trading_views.TradingViews (the Trading page's)
deployments (list, create, start,
stop)                                services.paper.PaperTrading (what `app.py paper` uses)
alerts                               services.alerts.AlertService
tca                                  services.tca.TCAService.account(...).report
dataset.parquet                      services.execution_ml.ExecutionMLService.dataset_bytes

The token's account is the paper account of the same name; another one: 404.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any, Literal

import orjson
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import ReadableAccount, Writer
from api.models.common import PRINTABLE, Number
from api.problems import Problem
from api.routes.deps import READ_PROBLEMS, problems
from services.paper import PaperError
from services.tracking import UnknownAccountError
from services.trading_views import (
    DeploymentView,
    FillView,
    OrderView,
    PositionView,
    TradingSnapshot,
)

router = APIRouter(prefix="/api/v1/accounts/{account_id}", tags=["accounts"],
                   responses=READ_PROBLEMS)  # fmt: skip


class AccountOut(BaseModel):
    """A paper account's KPIs now (docs/trading.md); fractions as fractions."""

    name: str
    status: str
    halt_reason: str | None
    starting_cash: float
    cash: float
    equity: float
    realised_pnl: float
    unrealised_pnl: float
    fees: float
    exposure: float
    exposure_pct: Number
    peak_equity: float
    drawdown_pct: Number
    max_drawdown_pct: Number
    return_pct: Number


class DeploymentIn(BaseModel):
    """A new deployment (stopped until started), as `app.py paper deploy` takes it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=PRINTABLE)
    strategy: str = Field(min_length=1, max_length=128, pattern=PRINTABLE)
    params: dict[str, Any] = Field(default_factory=dict, description="the strategy's parameters")
    symbol: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    timeframe: str = Field(min_length=1, max_length=16, pattern=PRINTABLE)
    settings: dict[str, Any] = Field(
        default_factory=dict, description="sizing, costs, stops and limits (docs/trading.md)"
    )


def _snapshot(request: Request, account_id: ReadableAccount) -> TradingSnapshot:
    found = request.app.state.trading_views.snapshot(account_id)
    if found is None:
        raise Problem(404, f"{account_id!r} is not a paper account", title="No paper account")
    return found


Snapshot = Annotated[TradingSnapshot, Depends(_snapshot)]


@router.get("/account", response_model=AccountOut)
def account(snapshot: Snapshot) -> Any:
    """The paper account's cash, equity, PnL, exposure and drawdown against its limit."""
    summary = snapshot.account
    return {**dataclasses.asdict(summary), "return_pct": summary.return_pct}


@router.get("/positions", response_model=list[PositionView])
def positions(snapshot: Snapshot) -> Any:
    """Open positions, marked at their last price."""
    return list(snapshot.positions)


@router.get("/orders", response_model=list[OrderView])
def orders(snapshot: Snapshot) -> Any:
    """Open orders."""
    return list(snapshot.open_orders)


@router.get("/fills", response_model=list[FillView])
def fills(snapshot: Snapshot) -> Any:
    """The newest fills (at most 200), newest first."""
    return list(snapshot.fills)


@router.get("/deployments", response_model=list[DeploymentView])
def deployments(snapshot: Snapshot) -> Any:
    """The account's deployments (removed ones left out)."""
    return list(snapshot.deployments)


def _paper_error(exc: PaperError) -> Problem:
    text = str(exc)
    status = 409 if "exists" in text or "running" in text or "halted" in text else 422
    return Problem(status, text)


@router.post(
    "/deployments", status_code=201, response_model=DeploymentView,
    responses=problems(400, 401, 403, 404, 409, 422, 500),  # 400: a body that is not UTF-8
)  # fmt: skip
def create_deployment(
    account_id: ReadableAccount, _caller: Writer, body: DeploymentIn, request: Request
) -> Any:
    """Deploy a strategy on the account (stopped: start it with .../start)."""
    paper = request.app.state.paper
    try:
        paper.deploy(
            body.name, account=account_id, strategy=body.strategy, params=body.params,
            symbol=body.symbol, timeframe=body.timeframe, settings=body.settings,
        )  # fmt: skip
    except (PaperError, ValueError) as exc:
        raise _paper_error(PaperError(str(exc))) from None
    return _deployment_of(request, account_id, body.name)


def _deployment_of(request: Request, account_id: str, name: str) -> DeploymentView:
    snapshot = request.app.state.trading_views.snapshot(account_id)
    for deployment in snapshot.deployments if snapshot is not None else ():
        if deployment.name == name:
            return deployment
    raise Problem(404, f"no deployment {name[:60]!r} in account {account_id!r}")


DeploymentName = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE)]


@router.post(
    "/deployments/{name}/{action}", response_model=DeploymentView,
    responses=problems(401, 403, 404, 409, 422, 500),
)  # fmt: skip
def start_or_stop(
    account_id: ReadableAccount,
    _caller: Writer,
    name: DeploymentName,
    action: Literal["start", "stop"],
    request: Request,
) -> Any:
    """Start or stop one of the account's deployments."""
    _deployment_of(request, account_id, name)  # another account's: 404
    try:
        request.app.state.paper.set_status(name, "running" if action == "start" else "stopped")
    except PaperError as exc:
        raise _paper_error(exc) from None
    return _deployment_of(request, account_id, name)


class AlertOut(BaseModel):
    id: int
    kind: str
    severity: str
    message: str
    created_at: Any
    account: str | None
    deployment: str | None
    symbol: str | None
    metric: str | None
    value: Number
    acknowledged_at: Any
    suppressed: int
    payload: dict[str, Any]


@router.get("/alerts", response_model=list[AlertOut])
def alerts(
    account_id: ReadableAccount,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="among the newest alerts")] = 200,
) -> Any:
    """The account's alerts among the newest ``limit`` stored, newest first."""
    stored = request.app.state.alerts.history(limit=limit)
    return [dataclasses.asdict(a) for a in stored if a.account == account_id]


def _json(document: Any) -> Response:
    def plain(value: Any) -> Any:
        if value is pd.NaT:
            return None
        if isinstance(value, pd.Timedelta):
            return value.total_seconds()
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return str(value)

    body = orjson.dumps(document, default=plain, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, media_type="application/json")


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.reset_index(drop=True).to_dict("records")


@router.get("/tca", responses={200: {"content": {"application/json": {}}}})
async def tca(account_id: ReadableAccount, request: Request) -> Response:
    """The account's transaction costs (docs/tca.md): per order, per round trip and the
    aggregates, as `app.py tca --json` (durations in seconds, undefined numbers null)."""
    try:
        outcome = await run_in_threadpool(request.app.state.tca.account, account_id)
    except UnknownAccountError:
        raise Problem(404, f"account {account_id!r} has no orders", title="No orders") from None
    report = outcome.report
    return _json({"account": account_id, "left_out": outcome.left_out,
                  "orders": _rows(report.orders), "round_trips": _rows(report.round_trips),
                  "aggregates": _rows(report.aggregates)})  # fmt: skip


PARQUET = "application/vnd.apache.parquet"


@router.get("/dataset.parquet", responses={200: {"content": {PARQUET: {}}}})
async def dataset(account_id: ReadableAccount, request: Request) -> Response:
    """The account's decision dataset (docs/dataset.md) as a Parquet file."""
    try:
        body = await run_in_threadpool(request.app.state.execution_ml.dataset_bytes, account_id)
    except UnknownAccountError:
        raise Problem(404, f"account {account_id!r} has no orders", title="No orders") from None
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", account_id)
    disposition = f'attachment; filename="{stem}.parquet"'
    return Response(body, media_type=PARQUET, headers={"Content-Disposition": disposition})


__all__ = ["router"]
