"""Performance panel: KPI cards, equity/drawdown/volume chart, return distribution, monthly
returns and the trade table of one backtest.

>>> stats = compute_metrics(result.equity, result.trades, benchmark=result.benchmark)
>>> kpi_cards(kpi_values(stats, result.settings.cash), id_prefix="perf")
>>> performance_figure(result.equity, result.trades, benchmark=result.benchmark, theme=DARK)
>>> monthly_heatmap_figure(monthly_returns_table(result.equity), theme=LIGHT)

Pure functions: frames in, plotly figures and dash components out; no callbacks here.
Times are drawn in UTC. Each metric's formula is in ``FORMULAS`` and, in full, in
docs/metrics.md under the anchor ``metric_slug(name)``.

``formulas`` (FORMULAS, metric_slug), ``kpis`` (format_metric, the KPI cards), ``figures``
(equity, drawdown, volume, returns distribution, monthly heatmap), ``trade_table`` (the trade
grid); the figures' shared look is :mod:`components.charts.style`.
"""

from __future__ import annotations

from components.panels.performance.figures import (
    MAX_LINE_POINTS,
    MONTHS,
    drawdown_pct,
    monthly_heatmap_figure,
    monthly_returns_table,
    performance_figure,
    returns_distribution_figure,
    traded_volume,
    volume_period,
    x_values,
)
from components.panels.performance.formulas import (
    FORMULAS,
    METRICS_DOC,
    NET_PNL,
    Formula,
    metric_slug,
)
from components.panels.performance.kpis import (
    KPI_KEYS,
    KPI_LABELS,
    MISSING,
    Kpi,
    format_metric,
    kpi_cards,
    kpi_style,
    kpi_values,
)
from components.panels.performance.trade_table import (
    price_decimals,
    trade_grid,
    trade_table_columns,
    trade_table_records,
    trade_table_style,
)

__all__ = [
    "FORMULAS",
    "KPI_KEYS",
    "KPI_LABELS",
    "MAX_LINE_POINTS",
    "METRICS_DOC",
    "MISSING",
    "MONTHS",
    "NET_PNL",
    "Formula",
    "Kpi",
    "drawdown_pct",
    "format_metric",
    "kpi_cards",
    "kpi_style",
    "kpi_values",
    "metric_slug",
    "monthly_heatmap_figure",
    "monthly_returns_table",
    "performance_figure",
    "price_decimals",
    "returns_distribution_figure",
    "trade_grid",
    "trade_table_columns",
    "trade_table_records",
    "trade_table_style",
    "traded_volume",
    "volume_period",
    "x_values",
]
