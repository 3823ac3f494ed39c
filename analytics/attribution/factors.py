"""Skill or market: alpha and beta against a benchmark, and a regression of daily returns on
market factors (docs/attribution.md#alpha-and-beta, #factor-regression, #market-factors).

>>> returns = daily_returns(daily_pnl(trips), starting_equity=10_000)
>>> alpha_beta(returns, benchmark_returns(sp500))          # empyrical's convention
{'convention': 'empyrical', 'alpha': 0.031, 'beta': 0.42, ...}
>>> factor_regression(returns, market_factors(sp500))      # coef, std_err, t_stat, r_squared
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

EMPYRICAL = "empyrical"
FACTOR_COLUMNS = ("coef", "std_err", "t_stat", "r_squared", "adj_r_squared", "n")
VOLATILITY_WINDOW = 20  # days of returns behind the trailing realised volatility
MOMENTUM_WINDOW = 20  # days behind the trailing return


# -- daily series ---------------------------------------------------------------------------


def daily_returns(daily_pnl: pd.Series, starting_equity: float) -> pd.Series:
    """Daily returns on the start-of-day equity: r_t = pnl_t / (E_0 + pnl_1 + ... + pnl_t-1).

    >>> daily_returns(pd.Series([100.0, -55.0]), 1000.0).tolist()
    [0.1, -0.05]

    From realised PnL (:func:`~analytics.attribution.daily_pnl`): an open position counts on
    the day it closes.
    """
    if not (starting_equity > 0):
        raise ValueError(f"starting_equity={starting_equity!r}: expected > 0")
    before = starting_equity + daily_pnl.cumsum().shift(1, fill_value=0.0)
    return (daily_pnl / before).rename("return")


def daily_closes(candles: pd.DataFrame) -> pd.Series:
    """The last close of each UTC day that has bars (daily bars pass through unchanged)."""
    if "close" not in candles.columns:
        raise ValueError("benchmark candles: missing column 'close'")
    if not isinstance(candles.index, pd.DatetimeIndex):
        raise ValueError("benchmark candles: expected a DatetimeIndex (bar open times)")
    index = candles.index
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    close = pd.Series(candles["close"].to_numpy(float), index=index).dropna()
    return close.groupby(close.index.floor("D")).last()


def benchmark_returns(candles: pd.DataFrame) -> pd.Series:
    """Close-to-close simple returns of the benchmark per UTC day: c_t / c_t-1 - 1."""
    return daily_closes(candles).pct_change().iloc[1:].rename("benchmark")


# -- alpha and beta -------------------------------------------------------------------------


def _aligned(returns: Sequence | pd.Series, benchmark: Sequence | pd.Series) -> tuple:
    """Paired values: Series joined on their index (days in both), arrays by position; a pair
    with a NaN on either side is dropped."""
    if isinstance(returns, pd.Series) and isinstance(benchmark, pd.Series):
        both = pd.concat([returns.rename("r"), benchmark.rename("b")], axis=1, join="inner")
        r, b = both["r"].to_numpy(float), both["b"].to_numpy(float)
    else:
        r, b = np.asarray(returns, dtype=float), np.asarray(benchmark, dtype=float)
        if r.ndim != 1 or r.shape != b.shape:
            raise ValueError(
                f"returns {r.shape} and benchmark_returns {b.shape}: expected two 1-d series "
                "of one length (or two pandas Series, joined on their index)"
            )
    keep = ~(np.isnan(r) | np.isnan(b))
    return r[keep], b[keep]


def alpha_beta(
    returns: Sequence | pd.Series,
    benchmark_returns: Sequence | pd.Series,
    *,
    periods_per_year: float = 252,
    risk_free: float = 0.0,
) -> dict:
    """Alpha and beta under empyrical's convention (empyrical.alpha_beta, to 1e-9):

    beta = cov(r, b) / var(b) over the paired periods;
    alpha = (1 + mean((r - rf) - beta (b - rf)))^N - 1, N = ``periods_per_year`` (252 for a
    market's trading days, 365 for 24/7 markets), rf = (1 + ``risk_free``)^(1/N) - 1 the
    per-period rate of the annual ``risk_free`` (empyrical takes rf per period).

    >>> alpha_beta(strategy_daily, sp500_daily)["beta"]

    NaN under two paired periods or when var(b) < 1e-30 (empyrical's threshold). The dict
    names its convention and holds the observations used.
    """
    r, b = _aligned(returns, benchmark_returns)
    n = int(r.size)
    rf = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    beta = alpha = alpha_per_period = math.nan
    if n >= 2:
        centred = b - b.mean()
        variance = float(centred @ centred) / n
        if variance >= 1e-30:
            beta = float(centred @ r) / n / variance
        alpha_per_period = float(np.mean((r - rf) - beta * (b - rf)))
        alpha = (1.0 + alpha_per_period) ** periods_per_year - 1.0
    return {
        "convention": EMPYRICAL,
        "alpha": alpha,
        "beta": beta,
        "alpha_per_period": alpha_per_period,
        "periods_per_year": periods_per_year,
        "risk_free": risk_free,
        "risk_free_per_period": rf,
        "observations": n,
    }


# -- factors --------------------------------------------------------------------------------


def market_factors(
    benchmark_candles: pd.DataFrame,
    *,
    volatility_window: int = VOLATILITY_WINDOW,
    momentum_window: int = MOMENTUM_WINDOW,
    periods_per_year: float = 252,
) -> pd.DataFrame:
    """Daily factors from a benchmark's candles, one row per UTC day with bars:

    - ``market``: the benchmark's return of the day, c_t / c_t-1 - 1 (the return factor,
      contemporaneous as in CAPM);
    - ``volatility``: the change of trailing realised volatility known before the day,
      v_t-1 - v_t-2, v_s = std(returns of the ``volatility_window`` days to s, ddof 1) x
      sqrt(``periods_per_year``);
    - ``momentum``: the trailing return known before the day, c_t-1 / c_t-1-m - 1,
      m = ``momentum_window``.

    Volatility and momentum use closes before day t only (a changed close of day t or later
    leaves them as they were). Warm-up rows are NaN; the regression drops them.
    """
    for name, value in (
        ("volatility_window", volatility_window),
        ("momentum_window", momentum_window),
    ):
        if not (isinstance(value, int) and value >= 2):
            raise ValueError(f"{name}={value!r}: expected an integer >= 2")
    close = daily_closes(benchmark_candles)
    market = close.pct_change()
    realised = market.rolling(volatility_window).std(ddof=1) * math.sqrt(periods_per_year)
    frame = pd.DataFrame(
        {
            "market": market,
            "volatility": realised.shift(1) - realised.shift(2),
            "momentum": close.shift(1) / close.shift(1 + momentum_window) - 1.0,
        }
    )
    frame.index.name = "day"
    return frame


def factor_regression(daily_returns: pd.Series, factors: pd.DataFrame) -> pd.DataFrame:
    """OLS of daily returns on the factors with an intercept, over the days both have (rows
    with a NaN dropped). One row per term (``intercept``, then each factor): ``coef``,
    ``std_err`` (classical: s^2 (X'X)^-1, s^2 = RSS / (n - k)), ``t_stat`` = coef / std_err;
    the model's ``r_squared``, ``adj_r_squared`` and ``n`` repeated on each row.

    >>> factor_regression(returns, market_factors(sp500)).loc["market", "t_stat"]

    NaN statistics when n <= k (k = factors + 1); a constant or collinear factor is refused.
    """
    if not isinstance(factors, pd.DataFrame) or factors.shape[1] == 0:
        raise ValueError("factors: expected a DataFrame with at least one factor column")
    names = [str(c) for c in factors.columns]
    if "intercept" in names or len(set(names)) != len(names):
        raise ValueError(f"factors: columns {names}: expected distinct names, not 'intercept'")
    y_name = "__daily_return__"
    data = factors.set_axis(names, axis=1).join(daily_returns.rename(y_name), how="inner")
    data = data.astype(float).replace([np.inf, -np.inf], np.nan).dropna()
    y = data[y_name].to_numpy()
    x = np.column_stack([np.ones(len(data)), data[names].to_numpy()])
    n, k = x.shape
    terms = pd.Index(["intercept", *names], name="term")
    out = pd.DataFrame(np.nan, index=terms, columns=list(FACTOR_COLUMNS))
    out["n"] = n
    if n <= k:
        return out
    for name in names:
        if np.ptp(data[name].to_numpy()) == 0:
            raise ValueError(f"factor {name!r} is constant over the {n} days: no slope to fit")
    if np.linalg.matrix_rank(x) < k:
        raise ValueError(f"factors {names} are collinear over the {n} days: no unique fit")
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    residual = y - x @ coef
    rss = float(residual @ residual)
    dof = n - k
    std_err = np.sqrt(rss / dof * np.diag(np.linalg.inv(x.T @ x)))
    tss = float(((y - y.mean()) ** 2).sum())
    r_squared = 1.0 - rss / tss if tss > 0 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        out["t_stat"] = np.where(std_err > 0, coef / std_err, np.nan)
    out["coef"] = coef
    out["std_err"] = std_err
    out["r_squared"] = r_squared
    out["adj_r_squared"] = 1.0 - (1.0 - r_squared) * (n - 1) / dof
    return out
