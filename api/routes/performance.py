"""GET /api/v1/performance/{account_id}/...: an account's performance, the numbers of
``app.py performance --json`` and ``app.py attribution --json`` (read scope).

summary, metrics, label-analysis,
history                            TrackingService.performance (per period; over all trades
                                   without metrics: the live state, a new trade its delta)
comparison                         TrackingService.comparison (two spans side by side)
trades                             the stored trades with their labels, a page at a time
pnl-curve                          realised PnL after each fill
attribution, risk-attribution,
pattern-analysis                   TrackingService.attribution
benchmark                          TrackingService.benchmark_fit (alpha/beta, factors)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.answers import KeptAnswers
from api.auth import ReadableAccount
from api.models.common import PRINTABLE, Clock, Dimension, Period, Preset
from api.models.performance import (
    AttributionResponse,
    BenchmarkResponse,
    ComparisonResponse,
    HistoryResponse,
    LabelAnalysisResponse,
    MetricsResponse,
    PatternAnalysisResponse,
    PnlCurveResponse,
    RiskAttributionResponse,
    SummaryResponse,
)
from api.models.trades import TradeOut, TradesPage
from api.problems import FieldError, Problem
from api.routes.deps import (
    READ_PROBLEMS,
    Capital,
    Strategy,
    Symbol,
    Tracking,
    Trades,
    ordered_span,
    utc,
)
from services.tracking import UnknownAccountError

T = TypeVar("T")
router = APIRouter(
    prefix="/api/v1/performance/{account_id}", tags=["performance"], responses=READ_PROBLEMS
)


def _of_account(compute: Callable[..., T], account_id: str, **query: Any) -> T:
    """``compute(account_id, **query)`` (a TrackingService query); 404 for an account
    without trades."""
    try:
        return compute(account_id, **query)
    except UnknownAccountError:
        raise Problem(404, f"account {account_id!r} has no trades yet", title="No trades") from None


async def _kept(
    request: Request,
    route: str,
    model: type[BaseModel],
    account_id: str,
    query: Hashable,
    compute: Callable[[], Any],
) -> Response:
    """``compute()``'s answer as ``model``'s JSON, kept until the account's next trade
    (api/answers.py); one hop to the thread pool for the lookup (and the computation)."""
    answers: KeptAnswers = request.app.state.answers
    body = await run_in_threadpool(answers.answer, route, model, account_id, query, compute)
    return Response(body, media_type="application/json")


@router.get("/summary", response_model=SummaryResponse)
async def summary(
    request: Request,
    account_id: ReadableAccount,
    tracking: Tracking,
    strategy: Strategy = None,
    period: Period = "all",
    capital: Capital = None,
) -> Any:
    """The trade summary per period (round trips exiting in it) and the open positions."""
    return await _kept(
        request, "summary", SummaryResponse, account_id, (strategy, period, capital),
        lambda: _of_account(
            tracking.performance, account_id, strategy=strategy, period=period,
            capital=capital, metrics=False,
        ),
    )  # fmt: skip


@router.get("/metrics", response_model=MetricsResponse)
async def metrics(
    request: Request,
    account_id: ReadableAccount,
    tracking: Tracking,
    strategy: Strategy = None,
    period: Period = "all",
    capital: Capital = None,
    preset: Annotated[Preset, Query(description="the metrics' convention")] = "quantstats",
) -> Any:
    """Every metric of the realised equity per period under a named convention
    (docs/metrics.md); empty without a capital."""
    return await _kept(
        request, "metrics", MetricsResponse, account_id, (strategy, period, capital, preset),
        lambda: _of_account(
            tracking.performance, account_id, strategy=strategy, period=period,
            capital=capital, preset=preset,
        ),
    )  # fmt: skip


@router.get("/label-analysis", response_model=LabelAnalysisResponse)
def label_analysis(
    account_id: ReadableAccount,
    tracking: Tracking,
    strategy: Strategy = None,
    period: Period = "all",
) -> Any:
    """Per label, per period: the round trips carrying it, their net PnL, win rate, average."""
    return _of_account(
        tracking.performance, account_id, strategy=strategy, period=period, metrics=False
    )


@router.get("/history", response_model=HistoryResponse)
def history(
    account_id: ReadableAccount,
    tracking: Tracking,
    strategy: Strategy = None,
    period: Period = "monthly",
    capital: Capital = None,
    preset: Annotated[Preset, Query(description="the metrics' convention")] = "quantstats",
) -> Any:
    """The performance per period (monthly by default): each period's trade summary,
    per-label performance and metrics."""
    return _of_account(
        tracking.performance, account_id, strategy=strategy, period=period, capital=capital,
        preset=preset,
    )  # fmt: skip


SpanEdge = Annotated[datetime, Query(description="ISO 8601; no zone: UTC")]


@router.get("/comparison", response_model=ComparisonResponse)
def comparison(
    account_id: ReadableAccount,
    tracking: Tracking,
    a_start: SpanEdge,
    a_end: SpanEdge,
    b_start: SpanEdge,
    b_end: SpanEdge,
    strategy: Strategy = None,
    capital: Capital = None,
    preset: Annotated[Preset, Query(description="the metrics' convention")] = "quantstats",
) -> Any:
    """Two spans side by side (``a`` and ``b``, each inclusive), each as a period of
    /history: the fills in it and the round trips exiting in it."""
    spans = {}
    for name, start, end in (("a", a_start, a_end), ("b", b_start, b_end)):
        start, end = utc(start), utc(end)
        ordered_span(start, end)
        spans[name] = (start, end)
    return _of_account(
        tracking.comparison, account_id, spans=spans, strategy=strategy, capital=capital,
        preset=preset,
    )  # fmt: skip


@router.get("/trades", response_model=TradesPage)
async def trades(
    request: Request,
    account_id: ReadableAccount,
    listing: Trades,
    strategy: Strategy = None,
    symbol: Symbol = None,
    label: Symbol = None,
    start: Annotated[datetime | None, Query(description="ISO 8601; no zone: UTC")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; no zone: UTC")] = None,
    cursor: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="next_cursor of the page before")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """The stored trades (fills) with their labels and market context, in recording order,
    a page at a time: pass each page's ``next_cursor`` as ``cursor``."""
    start, end = utc(start), utc(end)
    ordered_span(start, end)
    answers: KeptAnswers = request.app.state.answers

    def page() -> bytes:  # on one thread: the query, the page validated and encoded once
        rows = listing.page(
            account_id, after_id=cursor, limit=limit + 1, strategy_id=strategy, symbol=symbol,
            label=label, start=start, end=end,
        )  # fmt: skip
        shown = rows[:limit]
        items = [
            {**_fields(record), "id": row_id, "labels": list(record.labels)}
            for row_id, record in shown
        ]
        more = len(rows) > limit
        document = {"account_id": account_id, "trades": items,
                    "next_cursor": shown[-1][0] if more else None}  # fmt: skip
        return answers.encode(TradesPage, document)

    return Response(await run_in_threadpool(page), media_type="application/json")


_TRADE_FIELDS = tuple(TradeOut.model_fields.keys() - {"id", "labels"})


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _TRADE_FIELDS}


@router.get("/pnl-curve", response_model=PnlCurveResponse)
def pnl_curve(
    account_id: ReadableAccount,
    tracking: Tracking,
    strategy: Strategy = None,
    capital: Capital = None,
) -> Any:
    """Realised PnL after each fill (net of commissions, FIFO: docs/tracking.md); with a
    capital, the realised equity. Filtered on a strategy, the running sum of its fills."""
    fills = _of_account(tracking.fills, account_id, strategy=strategy)
    capital = capital if capital is not None else tracking.capital(account_id)
    pnl = fills["pnl"].to_numpy(float)
    running = np.cumsum(pnl) if strategy else fills["cumulative_pnl"].to_numpy(float)
    equity = running + capital if capital is not None else [None] * len(fills)
    points = [
        {"trade_id": t, "time": when, "symbol": s, "pnl": p, "cumulative_pnl": c, "equity": e}
        for t, when, s, p, c, e in zip(
            fills["trade_id"], fills["time"], fills["symbol"], pnl.tolist(), running.tolist(),
            list(equity), strict=True,
        )
    ]  # fmt: skip
    return {"account_id": account_id, "strategy_id": strategy, "capital": capital,
            "points": points}  # fmt: skip


ClockQuery = Annotated[Clock, Query(description="hour and weekday of the entry or the exit")]


def _attributed(
    account_id: ReadableAccount,
    tracking: Tracking,
    by: Dimension = "label",
    strategy: Strategy = None,
    clock: ClockQuery = "entry",
) -> dict[str, Any]:
    return _of_account(tracking.attribution, account_id, by=by, strategy=strategy, clock=clock)


Attributed = Annotated[dict[str, Any], Depends(_attributed)]


@router.get("/attribution", response_model=AttributionResponse)
def attribution(document: Attributed) -> Any:
    """PnL attribution by a dimension (docs/attribution.md#pnl-attribution)."""
    return document


@router.get("/risk-attribution", response_model=RiskAttributionResponse)
def risk_attribution(document: Attributed) -> Any:
    """Each group's share of the variance of daily PnL (docs/attribution.md#risk-attribution)."""
    return document


@router.get("/pattern-analysis", response_model=PatternAnalysisResponse)
def pattern_analysis(
    account_id: ReadableAccount, tracking: Tracking, strategy: Strategy = None
) -> Any:
    """Label pairs and label sets, noise flagged (docs/attribution.md#pattern-analysis)."""
    return _of_account(tracking.attribution, account_id, by="label", strategy=strategy)


@router.get("/benchmark", response_model=BenchmarkResponse)
def benchmark(
    account_id: ReadableAccount,
    tracking: Tracking,
    symbol: Annotated[
        str, Query(min_length=1, max_length=64, pattern=PRINTABLE, description="a stored symbol")
    ],
    strategy: Strategy = None,
    capital: Capital = None,
) -> Any:
    """Alpha and beta (empyrical's convention) and the factor regression of the account's
    daily returns against ``symbol`` (docs/attribution.md#alpha-and-beta)."""
    if tracking.benchmark_bars(symbol) is None:
        reason = f"{symbol!r} has no stored bars"
        raise Problem(422, reason, [FieldError(field="symbol", reason=reason)])
    fills = _of_account(tracking.fills, account_id, strategy=strategy)
    fit = tracking.benchmark_fit(tracking.trips(fills), account_id, symbol, capital)
    return {
        "account_id": account_id, "strategy_id": strategy, "symbol": symbol,
        "capital": fit.capital, "error": fit.error, **fit.alpha_beta,
        "factors": fit.factors.to_dict("records"),
    }  # fmt: skip


__all__ = ["router"]
