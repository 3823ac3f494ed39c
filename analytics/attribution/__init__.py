"""Attribution of round trips: where the PnL and its risk come from, skill or market.

>>> pnl_attribution(trips, "label")                 # count, net PnL, share, win rate, averages
>>> risk_attribution(trips, "symbol")               # contributions to var(daily PnL)
>>> alpha_beta(daily_returns(daily_pnl(trips), 10_000), benchmark_returns(sp500))
>>> factor_regression(returns, market_factors(sp500))
>>> pattern_analysis(trips, min_count=30)           # label combinations, noise flagged
>>> state = AttributionState(size_edges=(1000.0, 5000.0)); state.add(trip); state.table("hour")

Pure: frames in, frames out (``trips``: the frame of :func:`analytics.round_trips.round_trips`
with optional ``labels``, ``volatility_regime`` and ``market_session`` columns). Every formula
and convention is named in docs/attribution.md. Modules: ``groups`` (which group a trip is in),
``pnl`` (PnL tables, live state), ``risk`` (daily PnL, variance contributions), ``factors``
(alpha/beta, factor regression), ``patterns`` (label combinations).
"""

from __future__ import annotations

from analytics.attribution.factors import (
    EMPYRICAL,
    alpha_beta,
    benchmark_returns,
    daily_closes,
    daily_returns,
    factor_regression,
    market_factors,
)
from analytics.attribution.groups import (
    ALL,
    DIMENSIONS,
    NO_LABEL,
    UNKNOWN,
    WEEKDAYS,
    size_edges,
    size_labels,
)
from analytics.attribution.patterns import pattern_analysis
from analytics.attribution.pnl import PNL_COLUMNS, AttributionState, pnl_attribution
from analytics.attribution.risk import RISK_COLUMNS, daily_pnl, risk_attribution

__all__ = [
    "ALL",
    "DIMENSIONS",
    "EMPYRICAL",
    "NO_LABEL",
    "PNL_COLUMNS",
    "RISK_COLUMNS",
    "UNKNOWN",
    "WEEKDAYS",
    "AttributionState",
    "alpha_beta",
    "benchmark_returns",
    "daily_closes",
    "daily_pnl",
    "daily_returns",
    "factor_regression",
    "market_factors",
    "pattern_analysis",
    "pnl_attribution",
    "risk_attribution",
    "size_edges",
    "size_labels",
]
