"""An account's round trips against a benchmark symbol: alpha/beta and the factor regression.

>>> fit_benchmark(sessions, trips, "SP500", capital=100_000.0)
BenchmarkFit(symbol='SP500', capital=100000.0, alpha_beta={...}, factors=..., error=None)

The attribution page and GET /performance/{account}/benchmark ask it through
``TrackingService.benchmark_fit`` (which supplies a paper account's own capital).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker


@dataclass(frozen=True)
class BenchmarkFit:
    """Alpha/beta (:func:`analytics.attribution.alpha_beta`'s dict) and the factor regression
    of the trips' daily returns against ``symbol``; ``error`` says why there is none."""

    symbol: str
    capital: float | None
    alpha_beta: dict[str, Any] = field(default_factory=dict)
    factors: pd.DataFrame = field(default_factory=pd.DataFrame)
    error: str | None = None


def fit_benchmark(
    sessions: sessionmaker[Session], trips: pd.DataFrame, symbol: str, capital: float | None
) -> BenchmarkFit:
    """Alpha/beta (empyrical's convention; 365 periods a year for a benchmark trading around
    the clock, else 252) and the factor regression of the trips' daily returns on ``capital``
    against ``symbol``'s stored bars."""
    from analytics.attribution import (
        alpha_beta,
        benchmark_returns,
        daily_pnl,
        daily_returns,
        factor_regression,
        market_factors,
    )

    if capital is None:
        error = "alpha and beta need daily returns: enter the account's capital"
        return BenchmarkFit(symbol, None, error=error)
    if not capital > 0:
        return BenchmarkFit(symbol, capital, error=f"capital {capital:g}: expected > 0")
    if not len(trips):
        return BenchmarkFit(symbol, capital, error="no closed round trip to measure")
    bars = benchmark_bars(sessions, symbol)
    if bars is None:
        return BenchmarkFit(symbol, capital, error=f"{symbol} has no stored bars")
    candles, always_open = bars
    per_year = 365 if always_open else 252
    returns = daily_returns(daily_pnl(trips), capital)
    try:
        factors = factor_regression(
            returns, market_factors(candles, periods_per_year=per_year)
        ).reset_index(names="term")
    except ValueError as exc:  # a constant or collinear factor over these days
        factors, error = pd.DataFrame(), str(exc)
    else:
        error = None
    fit = alpha_beta(returns, benchmark_returns(candles), periods_per_year=per_year)
    return BenchmarkFit(symbol, capital, fit, factors, error)


def benchmark_bars(
    sessions: sessionmaker[Session], symbol: str
) -> tuple[pd.DataFrame, bool] | None:
    """A benchmark's bars (1d when stored, else its finest timeframe; the analytics take each
    UTC day's last close) and whether it trades around the clock (its calendar read from the
    bars); None when it has no stored bars."""
    from database.repositories.candles import CandleRepository
    from market.calendars import infer_calendar
    from market.timeframes import Timeframe

    with sessions() as session:
        repo = CandleRepository(session)
        timeframes = [Timeframe.parse(t) for t in repo.timeframes(symbol)]
        if not timeframes:
            return None
        day = Timeframe.parse("1d")
        timeframe = day if day in timeframes else min(timeframes)
        candles = repo.frame(symbol, timeframe.label)
    return candles, infer_calendar(candles.index, timeframe.delta).always_open


__all__ = ["BenchmarkFit", "benchmark_bars", "fit_benchmark"]
