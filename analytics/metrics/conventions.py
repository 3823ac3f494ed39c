"""Metric conventions: the ``Convention`` dataclass, its named ``PRESETS``, periods per year and
the period returns a preset's ratios are computed from.

>>> get_convention("quantstats").periods_per_year
252
>>> period_returns(equity, "backtesting.py")  # daily returns of intraday or daily bars
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from analytics.metrics._calendar import _daily_last, _data_period, _weekend_share
from analytics.metrics._math import NAN


@dataclass(frozen=True)
class Convention:
    """How each metric is computed; ``PRESETS`` holds the named ones.

    >>> dataclasses.replace(PRESETS["quantstats"], periods_per_year=365).periods_per_year
    365
    """

    name: str
    # "period": return/risk ratios from per-period returns; "trade": from per-trade returns,
    # annualized by trades per year (freqtrade-like).
    risk_basis: Literal["period", "trade"]
    # None: inferred from the index as backtesting.py does (252 trading days, 365 with weekends).
    periods_per_year: int | None
    # Resample equity to calendar periods (day/week/month/year) before taking period returns.
    resample: bool
    # Delta degrees of freedom of every standard deviation (1 = sample, 0 = population).
    ddof: int
    # "geometric": annual return and volatility compound the geometric mean period return;
    # "arithmetic": mean * N and std * sqrt(N).
    annualization: Literal["geometric", "arithmetic"]
    # "calendar": years = index span / 365.25 days; "periods": years = #returns / N.
    cagr_years: Literal["calendar", "periods"]
    calmar_numerator: Literal["annual_return", "cagr"]
    # Beta from bar log returns (backtesting.py) or period simple returns (QuantStats).
    beta_returns: Literal["log", "simple"]
    # "total": Jensen alpha on total return; "annualized": (mean r - beta mean b) * N.
    alpha: Literal["total", "annualized"]
    var_confidence: float = 0.95


PRESETS: dict[str, Convention] = {
    "backtesting.py": Convention(
        name="backtesting.py",
        risk_basis="period",
        periods_per_year=None,
        resample=True,
        ddof=1,
        annualization="geometric",
        cagr_years="calendar",
        calmar_numerator="annual_return",
        beta_returns="log",
        alpha="total",
    ),
    "quantstats": Convention(
        name="quantstats",
        risk_basis="period",
        periods_per_year=252,
        resample=True,
        ddof=1,
        annualization="arithmetic",
        cagr_years="periods",
        calmar_numerator="cagr",
        beta_returns="simple",
        alpha="annualized",
    ),
    "trade": Convention(
        name="trade",
        risk_basis="trade",
        periods_per_year=365,
        resample=True,
        ddof=0,
        annualization="arithmetic",
        cagr_years="calendar",
        calmar_numerator="cagr",
        beta_returns="simple",
        alpha="annualized",
    ),
}


def get_convention(preset: str | Convention) -> Convention:
    """``get_convention("quantstats").periods_per_year == 252``; a Convention passes through."""
    if isinstance(preset, Convention):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(
            f"unknown metrics preset {preset!r}; expected one of {list(PRESETS)}"
        ) from None


def infer_periods_per_year(index: pd.Index) -> int | float:
    """Periods per year from a DatetimeIndex, backtesting.py's rule.

    >>> infer_periods_per_year(pd.bdate_range("2024-01-01", periods=300))
    252

    52 for weekly, 12 for monthly, 1 for yearly bars; otherwise 365 when weekend dates make up
    more than 60% of their 2/7 share, else 252. NaN without a DatetimeIndex.
    """
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return NAN
    days = _data_period(index).days
    weekends = _weekend_share(index) > 2 / 7 * 0.6
    return {7: 52, 31: 12, 365: 1}.get(days, 365 if weekends else 252)


def _resample_rule(index: pd.DatetimeIndex) -> str:
    return {7: "W", 31: "ME", 365: "YE"}.get(_data_period(index).days, "D")


def period_returns(equity: pd.Series, preset: str | Convention = "backtesting.py") -> pd.Series:
    """Per-period simple returns of an equity curve under the preset's resampling.

    >>> period_returns(equity).iloc[0]  # first day's return (the first bar has none)
    """
    conv = get_convention(preset)
    series = equity
    if conv.resample and isinstance(equity.index, pd.DatetimeIndex) and len(equity) > 1:
        rule = _resample_rule(equity.index)
        daily = _daily_last(equity) if rule == "D" else None
        series = daily if daily is not None else equity.resample(rule).last().dropna()
    return series.pct_change().dropna()
