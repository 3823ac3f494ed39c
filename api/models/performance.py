"""What the performance routes answer: the numbers of ``app.py performance --json`` and
``app.py attribution --json`` (services.tracking.TrackingService), typed.

Conventions of each number: docs/tracking.md (trade summary, labels, metrics) and
docs/attribution.md (attribution, risk, patterns, alpha/beta, factors).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.models.common import Clock, Dimension, MetricValue, Number, Period, Preset


class TradeSummary(BaseModel):
    """Round trips exiting in the period (docs/tracking.md#performance-summary)."""

    trades: int
    winning: int
    losing: int
    breakeven: int
    win_rate: Number
    net_pnl: Number
    gross_profit: Number
    gross_loss: Number
    avg_win: Number
    avg_loss: Number
    avg_trade: Number
    largest_win: Number
    largest_loss: Number
    profit_factor: Number
    fees: Number
    avg_holding_s: Number


class LabelStats(BaseModel):
    """The round trips carrying one label."""

    trades: int
    net_pnl: Number
    win_rate: Number
    avg_pnl: Number


class PeriodSpan(BaseModel):
    period: str = Field(description="`all`, or the period's name (`2024-01`, `2024-01-08/...`)")
    start: str | None = Field(description="ISO 8601, UTC; null for `all`")
    end: str | None = Field(description="ISO 8601, UTC (the period's last instant)")
    fills: int


class PeriodSummary(PeriodSpan):
    trade_summary: TradeSummary


class PeriodMetrics(PeriodSpan):
    metrics: dict[str, MetricValue] = Field(
        description="compute_metrics under the convention (docs/metrics.md); empty without a"
        " capital. Durations in seconds, times ISO 8601"
    )


class PeriodLabels(PeriodSpan):
    labels: dict[str, LabelStats]


class AccountQuery(BaseModel):
    account_id: str
    strategy_id: str | None = Field(description="the strategy filtered on; null: every one")


class SummaryResponse(AccountQuery):
    period: Period
    capital: Number = Field(description="a paper account's starting cash, or ?capital=")
    fills: int
    open_positions: dict[str, float] = Field(description="net quantity per symbol still open")
    periods: list[PeriodSummary]


class MetricsResponse(AccountQuery):
    period: Period
    capital: Number
    convention: Preset
    periods: list[PeriodMetrics]


class LabelAnalysisResponse(AccountQuery):
    period: Period
    periods: list[PeriodLabels]


class PnlPoint(BaseModel):
    trade_id: str
    time: datetime
    symbol: str
    pnl: Number = Field(description="realised by this fill, net of its commission")
    cumulative_pnl: Number = Field(description="running sum of the fills shown")
    equity: Number = Field(description="capital + cumulative_pnl; null without a capital")


class PnlCurveResponse(AccountQuery):
    capital: Number
    points: list[PnlPoint]


class AttributionRow(BaseModel):
    """docs/attribution.md#pnl-attribution"""

    group: str
    trades: int
    wins: int
    win_rate: Number
    net_pnl: Number
    pnl_share: Number
    avg_net_pnl: Number
    avg_return: Number


class RiskRow(BaseModel):
    """docs/attribution.md#risk-attribution"""

    group: str
    contribution: Number
    variance_share: Number
    std_daily_pnl: Number
    correlation: Number
    net_pnl: Number


class PatternRow(BaseModel):
    """docs/attribution.md#pattern-analysis"""

    kind: Literal["pair", "set"]
    labels: str
    trades: int
    wins: int
    win_rate: Number
    net_pnl: Number
    avg_net_pnl: Number
    std_net_pnl: Number
    t_stat: Number
    noise: bool


class FactorRow(BaseModel):
    """docs/attribution.md#factor-regression"""

    term: str
    coef: Number
    std_err: Number
    t_stat: Number
    r_squared: Number
    adj_r_squared: Number
    n: int


class Attributed(AccountQuery):
    by: Dimension
    clock: Clock
    trips: int = Field(description="round trips attributed")


class AttributionResponse(Attributed):
    pnl: list[AttributionRow] = Field(description="one row per group, the `all` row last")


class RiskAttributionResponse(Attributed):
    risk: list[RiskRow]


class PatternAnalysisResponse(AccountQuery):
    trips: int
    patterns: list[PatternRow]


class BenchmarkResponse(AccountQuery):
    """Alpha and beta in empyrical's convention and the factor regression of the account's
    daily returns against a stored symbol (docs/attribution.md#alpha-and-beta)."""

    symbol: str
    capital: Number
    error: str | None = Field(None, description="why there is no fit (no capital, no trips...)")
    convention: str | None = None
    alpha: Number = None
    beta: Number = None
    alpha_per_period: Number = None
    periods_per_year: int | None = None
    risk_free: Number = None
    risk_free_per_period: Number = None
    observations: int | None = None
    factors: list[FactorRow] = Field(default_factory=list)


class PeriodPerformance(PeriodSpan):
    """One period whole: its trade summary, per-label performance and metrics."""

    trade_summary: TradeSummary
    labels: dict[str, LabelStats]
    metrics: dict[str, MetricValue]


class HistoryResponse(AccountQuery):
    period: Period
    capital: Number
    convention: Preset
    periods: list[PeriodPerformance]


class ComparisonResponse(AccountQuery):
    capital: Number
    convention: Preset
    periods: list[PeriodPerformance] = Field(
        description="`a` then `b`: the fills in each span, the round trips exiting in it"
    )
