"""returns_metrics: the period-based metrics of a bare returns series (QuantStats-style)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics.metrics._calendar import _datetime64
from analytics.metrics._math import _cagr_periods
from analytics.metrics.blocks import _drawdown_block, _risk_block, _win_loss_block
from analytics.metrics.conventions import Convention, get_convention, infer_periods_per_year
from analytics.metrics.notes import mark_short_span


def returns_metrics(
    returns: pd.Series | np.ndarray,
    *,
    preset: str | Convention = "quantstats",
    risk_free: float = 0.0,
    periods_per_year: float | None = None,
) -> pd.Series:
    """Period-based metrics of a bare returns series (QuantStats-style).

    >>> returns_metrics(daily_returns, preset="quantstats")["Sharpe Ratio"]

    NaNs are dropped first. The value path starts at 1 one period before the first return, so
    a first-period loss is a drawdown. Without a DatetimeIndex durations are in periods.
    """
    conv = get_convention(preset)
    series = returns if isinstance(returns, pd.Series) else pd.Series(np.asarray(returns))
    series = series.dropna()
    r = series.to_numpy(dtype=float)
    big_n = periods_per_year or conv.periods_per_year or infer_periods_per_year(series.index)
    if math.isnan(big_n):
        raise ValueError("periods_per_year is needed: the preset infers it from a DatetimeIndex")
    values = np.r_[1.0, np.cumprod(1 + r)]
    times = None
    if isinstance(series.index, pd.DatetimeIndex) and len(series) > 1:
        stamps = _datetime64(series.index)
        times = np.r_[stamps[:1] - (stamps[1] - stamps[0]), stamps]
    total = values[-1] - 1
    risk = _risk_block(r, big_n, conv, risk_free)
    s: dict = {
        "Return [%]": total * 100,
        "Return (Ann.) [%]": risk.pop("Return (Ann.) [%]"),
        "Volatility (Ann.) [%]": risk.pop("Volatility (Ann.) [%]"),
        "CAGR [%]": _cagr_periods(1 + total, r.size, big_n) * 100,
        "Sharpe Ratio": risk.pop("Sharpe Ratio"),
        "Sortino Ratio": risk.pop("Sortino Ratio"),
    }
    s.update(
        _drawdown_block(
            values,
            times,
            r.size,
            conv,
            r=r,
            total=total,
            annual_pct=s["Return (Ann.) [%]"],
            cagr_pct=s["CAGR [%]"],
        )
    )
    s.update(risk)
    s.update(_win_loss_block(r))
    return mark_short_span(pd.Series(s, dtype=object, name=conv.name), r.size / big_n)
