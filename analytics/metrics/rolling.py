"""Rolling metrics: annualized return, volatility, Sharpe and Sortino over a trailing window
(bars or a time offset); each last value equals the batch metric of that window."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analytics.metrics.conventions import Convention, get_convention, infer_periods_per_year


def _rolling_parts(
    returns: pd.Series, window: int | str, preset: str | Convention, periods_per_year: float | None
) -> tuple[Convention, float, pd.api.typing.Rolling]:
    conv = get_convention(preset)
    big_n = periods_per_year or conv.periods_per_year or infer_periods_per_year(returns.index)
    min_periods = window if isinstance(window, int) else 2
    return conv, big_n, returns.rolling(window, min_periods=min_periods)


def rolling_volatility(
    returns: pd.Series,
    window: int | str = 30,
    *,
    preset: str | Convention = "quantstats",
    periods_per_year: float | None = None,
) -> pd.Series:
    """Annualized volatility [%] over a trailing window (bars, or an offset such as "30D").

    >>> rolling_volatility(daily_returns, 30).iloc[-1]  # == returns_metrics(last 30)[...]
    """
    conv, big_n, roll = _rolling_parts(returns, window, preset, periods_per_year)
    if conv.annualization == "arithmetic":
        return roll.std(ddof=conv.ddof) * math.sqrt(big_n) * 100
    g = np.expm1(np.log1p(returns).rolling(window, min_periods=roll.min_periods).mean())
    var = roll.var(ddof=conv.ddof)
    return np.sqrt((var + (1 + g) ** 2) ** big_n - (1 + g) ** (2 * big_n)) * 100


def rolling_return(
    returns: pd.Series,
    window: int | str = 30,
    *,
    preset: str | Convention = "quantstats",
    periods_per_year: float | None = None,
) -> pd.Series:
    """Annualized return [%] over a trailing window, under the preset's annualization.

    >>> rolling_return(daily_returns, "30D")
    """
    conv, big_n, roll = _rolling_parts(returns, window, preset, periods_per_year)
    if conv.annualization == "arithmetic":
        return roll.mean() * big_n * 100
    log_mean = np.log1p(returns).rolling(window, min_periods=roll.min_periods).mean()
    return np.expm1(log_mean * big_n) * 100


def rolling_sharpe(
    returns: pd.Series,
    window: int | str = 30,
    *,
    preset: str | Convention = "quantstats",
    risk_free: float = 0.0,
    periods_per_year: float | None = None,
) -> pd.Series:
    """Sharpe ratio over a trailing window; the last value equals the batch Sharpe of the last
    ``window`` returns.

    >>> rolling_sharpe(daily_returns, 30, preset="backtesting.py", periods_per_year=252)
    """
    conv, big_n, roll = _rolling_parts(returns, window, preset, periods_per_year)
    if conv.annualization == "arithmetic":
        rf_period = (1 + risk_free) ** (1 / big_n) - 1 if risk_free else 0.0
        std = roll.std(ddof=conv.ddof)
        out = (roll.mean() - rf_period) / std.where(std != 0) * math.sqrt(big_n)
        return out
    annual = rolling_return(returns, window, preset=conv, periods_per_year=big_n) / 100
    vol = rolling_volatility(returns, window, preset=conv, periods_per_year=big_n) / 100
    return (annual - risk_free) / vol.where(vol != 0)


def rolling_sortino(
    returns: pd.Series,
    window: int | str = 30,
    *,
    preset: str | Convention = "quantstats",
    risk_free: float = 0.0,
    periods_per_year: float | None = None,
) -> pd.Series:
    """Sortino ratio over a trailing window (downside deviation over all periods in it).

    >>> rolling_sortino(daily_returns, 30)
    """
    conv, big_n, roll = _rolling_parts(returns, window, preset, periods_per_year)
    rf_period = (1 + risk_free) ** (1 / big_n) - 1 if risk_free else 0.0
    base = returns - rf_period if conv.annualization == "arithmetic" else returns
    down = (base.clip(upper=0.0) ** 2).rolling(window, min_periods=roll.min_periods).mean()
    downside = np.sqrt(down).where(down != 0)
    if conv.annualization == "arithmetic":
        return (roll.mean() - rf_period) / downside * math.sqrt(big_n)
    annual = rolling_return(returns, window, preset=conv, periods_per_year=big_n) / 100
    return (annual - risk_free) / (downside * math.sqrt(big_n))
