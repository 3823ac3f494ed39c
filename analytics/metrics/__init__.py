"""Performance metrics of a backtest: one pure function per view, each under a named convention.

>>> stats = compute_metrics(equity, trades, benchmark=ohlc, preset="backtesting.py")
>>> stats["Sharpe Ratio"], stats["Max. Drawdown [%]"], stats["# Trades"]

Keys use backtesting.py's statistic names where one exists and carry their unit in the name.
A metric that is undefined (no trades, zero volatility, no losing trade...) is NaN, never a
sentinel number. Every formula and its convention per preset is listed in docs/metrics.md.

One package holds the formulas: ``conventions`` (presets, periods per year, period returns),
``summary`` (compute_metrics), ``returns`` (returns_metrics), ``rolling`` (rolling windows),
``incremental`` (IncrementalMetrics), ``blocks`` (the metric groups they share), ``_math`` and
``_calendar`` (small numeric and time helpers). ``TRADE_COLUMNS`` is the trade list's schema
(:mod:`analytics.trade_list`).
"""

from __future__ import annotations

from analytics.metrics.conventions import (
    PRESETS,
    Convention,
    get_convention,
    infer_periods_per_year,
    period_returns,
)
from analytics.metrics.incremental import IncrementalMetrics
from analytics.metrics.notes import notes
from analytics.metrics.returns import returns_metrics
from analytics.metrics.rolling import (
    rolling_return,
    rolling_sharpe,
    rolling_sortino,
    rolling_volatility,
)
from analytics.metrics.summary import compute_metrics
from analytics.trade_list import TRADE_COLUMNS

__all__ = [
    "PRESETS",
    "TRADE_COLUMNS",
    "Convention",
    "IncrementalMetrics",
    "compute_metrics",
    "get_convention",
    "infer_periods_per_year",
    "notes",
    "period_returns",
    "returns_metrics",
    "rolling_return",
    "rolling_sharpe",
    "rolling_sortino",
    "rolling_volatility",
]
