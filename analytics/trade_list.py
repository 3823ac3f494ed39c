"""The trade list: the columns of the trades frame the engine writes and the metrics read.

>>> list(result.trades.columns) == list(TRADE_COLUMNS)
True

One row per closed trade, in this column order (:func:`analytics.backtest.run_backtest` builds
it; :func:`analytics.metrics.compute_metrics`, the panels and the exports read it). ``size`` is
signed (negative for a short); ``return_pct``, ``mae`` and ``mfe`` are fractions.
"""

from __future__ import annotations

TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "entry_bar",
    "exit_bar",
    "side",
    "size",
    "entry_price",
    "exit_price",
    "pnl",
    "return_pct",
    "commission",
    "duration",
    "exit_reason",
    "mae",
    "mfe",
)

__all__ = ["TRADE_COLUMNS"]
