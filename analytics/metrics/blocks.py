"""The metric blocks: each computes one group of named metrics (risk and return ratios,
period wins and losses, drawdowns, trade statistics) as a dict, for compute_metrics and
returns_metrics to assemble."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from analytics.metrics._calendar import _ceil_to_resolution, _data_period
from analytics.metrics._math import (
    NAN,
    _compound_vol,
    _div,
    _drawdown,
    _drawdown_episodes,
    _geometric_mean,
    _longest_run,
    _mean,
    _moments,
    _std,
)
from analytics.metrics.conventions import Convention

_NORMAL = NormalDist()  # the standard normal (stdlib; scipy.stats alone took 0.65 s to import)


_RISK_KEYS = (
    "Return (Ann.) [%]",
    "Volatility (Ann.) [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Omega Ratio",
    "VaR 95% (Hist.) [%]",
    "VaR 95% (Param.) [%]",
    "CVaR 95% (Hist.) [%]",
    "CVaR 95% (Param.) [%]",
    "Tail Ratio",
    "Skew",
    "Kurtosis (Excess)",
)


def _risk_block(r: np.ndarray, n_per_year: float, conv: Convention, risk_free: float) -> dict:
    """Annualized return and volatility, Sharpe, Sortino, Omega, VaR/CVaR, tail, skew, kurtosis
    of one return sample (periods or trades)."""
    n, ddof, big_n = r.size, conv.ddof, n_per_year
    if not n or not big_n > 0:
        return dict.fromkeys(_RISK_KEYS, NAN)
    rf_period = (1 + risk_free) ** (1 / big_n) - 1 if risk_free else 0.0
    excess = r - rf_period if rf_period else r
    mu = float(r.mean())
    d = r - mu
    d2 = d * d
    # one pass of squared deviations serves variance, skew and kurtosis (numpy's var formula)
    var = float(d2.sum()) / (n - ddof) if n > ddof else NAN
    sd = math.sqrt(var)
    neg = np.minimum(excess, 0.0)
    downside_sq = float(np.dot(neg, neg))
    if conv.annualization == "geometric":
        g = _geometric_mean(r)
        annual = (1 + g) ** big_n - 1
        vol = _compound_vol(var, g, big_n)
        sharpe = _div(annual - risk_free, vol)
        sortino = _div(annual - risk_free, math.sqrt(downside_sq / n) * math.sqrt(big_n))
    else:
        annual = mu * big_n
        vol = sd * math.sqrt(big_n)
        # a constant shift leaves the deviation unchanged: sd is also the excess returns' sd
        sharpe = _div(mu - rf_period, sd) * math.sqrt(big_n)
        sortino = _div(mu - rf_period, math.sqrt(downside_sq / n)) * math.sqrt(big_n)
    gains = float(np.maximum(excess, 0.0).sum())
    losses = -float(neg.sum())
    alpha = 1 - conv.var_confidence
    q_low, q_high = np.quantile(r, [alpha, conv.var_confidence])
    cvar_hist = float(r[r <= q_low].mean())
    z = _NORMAL.inv_cdf(alpha) if 0 < alpha < 1 else NAN
    skew, kurt = _moments(d, d2, ddof)
    values = (
        annual * 100,
        vol * 100,
        sharpe,
        sortino,
        _div(gains, losses),
        float(q_low) * 100,
        (mu + sd * z) * 100,
        cvar_hist * 100,
        (mu - sd * _NORMAL.pdf(z) / alpha) * 100,
        abs(_div(q_high, q_low)),
        skew,
        kurt,
    )
    return dict(zip(_RISK_KEYS, values, strict=True))


def _win_loss_block(r: np.ndarray) -> dict:
    """QuantStats' period statistics: win rate over non-zero periods, payoff, profit factor."""
    up, down = r > 0, r < 0
    n_up, n_down = int(np.count_nonzero(up)), int(np.count_nonzero(down))
    gains, losses = float(np.maximum(r, 0.0).sum()), -float(np.minimum(r, 0.0).sum())
    win_rate = n_up / (n_up + n_down) if n_up + n_down else NAN
    payoff = _div(gains / n_up, losses / n_down) if n_up and n_down else NAN
    return {
        "Win Rate (Periods) [%]": win_rate * 100,
        "Best Period [%]": float(r.max()) * 100 if r.size else NAN,
        "Worst Period [%]": float(r.min()) * 100 if r.size else NAN,
        "Profit Factor (Periods)": _div(gains, losses),
        "Payoff Ratio (Periods)": payoff,
        "Kelly Criterion (Periods)": win_rate - _div(1 - win_rate, payoff),  # payoff 0: NaN
        "Max. Consecutive Winning Periods": _longest_run(up),
        "Max. Consecutive Losing Periods": _longest_run(down),
    }


def _drawdown_block(
    values: np.ndarray,
    times: np.ndarray | None,
    n_returns: int,
    conv: Convention,
    *,
    r: np.ndarray,
    total: float,
    annual_pct: float,
    cagr_pct: float,
) -> dict:
    """Calmar ratio, max/avg drawdown and durations, ulcer index and recovery factor of a value
    path, in the statistics' order. ``r``: its period returns; ``total``: its total return
    (fraction); ``annual_pct``, ``cagr_pct``: Return (Ann.) [%] and CAGR [%] (Calmar's numerator
    per preset)."""
    dd = _drawdown(values)
    max_dd = float(np.nan_to_num(dd.max())) if dd.size else NAN
    start, end, depth = _drawdown_episodes(dd)
    if times is not None and start.size:
        durations = pd.to_timedelta(times[end] - times[start])
        period = _data_period(pd.DatetimeIndex(times))
        max_dur = _ceil_to_resolution(durations.max(), period)
        avg_dur = _ceil_to_resolution(durations.mean(), period)
    elif start.size:
        durations_bars = end - start
        max_dur, avg_dur = int(durations_bars.max()), float(durations_bars.mean())
    else:
        max_dur = avg_dur = pd.NaT if times is not None else NAN
    ulcer = math.sqrt(float(np.dot(dd, dd)) / (n_returns - conv.ddof)) if n_returns > 1 else NAN
    numerator = annual_pct if conv.calmar_numerator == "annual_return" else cagr_pct
    recovery_total = r.sum() if conv.annualization == "arithmetic" else total
    return {
        "Calmar Ratio": _div(numerator / 100, max_dd),
        "Max. Drawdown [%]": -max_dd * 100,
        "Avg. Drawdown [%]": -float(depth.mean()) * 100 if depth.size else NAN,
        "Max. Drawdown Duration": max_dur,
        "Avg. Drawdown Duration": avg_dur,
        "Ulcer Index [%]": ulcer * 100,
        "Recovery Factor": _div(recovery_total, max_dd),
    }


def _exposed_bars(trades: pd.DataFrame) -> int:
    """Bars covered by at least one trade, entry to exit bar inclusive (overlaps counted once):
    the union of the intervals, merged in start order (per trade, not per bar)."""
    if not len(trades):
        return 0
    start = trades["entry_bar"].to_numpy(dtype=np.int64)
    end = trades["exit_bar"].to_numpy(dtype=np.int64)
    order = np.argsort(start, kind="stable")
    start, end = start[order], np.maximum.accumulate(end[order])
    # a new block starts where a trade begins after every earlier one has ended
    new_block = np.r_[True, start[1:] > end[:-1]]
    first = np.flatnonzero(new_block)
    last = np.r_[first[1:] - 1, start.size - 1]
    return int((end[last] - start[first] + 1).sum())


def _trade_block(trades: pd.DataFrame | None, n_bars: int, times: pd.Index | None) -> dict:
    """backtesting.py's trade statistics plus payoff ratio and streaks (in the frame's order)."""
    if trades is None:
        trades = pd.DataFrame({c: [] for c in ("pnl", "return_pct", "entry_bar", "exit_bar")})
    n = len(trades)
    pnl = trades["pnl"].to_numpy(dtype=float)
    ret = trades["return_pct"].to_numpy(dtype=float)
    exposure = _exposed_bars(trades) / n_bars * 100 if n_bars else NAN
    win_rate = float((pnl > 0).mean()) if n else NAN
    avg_win, avg_loss = _mean(pnl[pnl > 0]), _mean(pnl[pnl < 0])
    payoff = _div(avg_win, -avg_loss)
    if "duration" in trades and n:
        durations = pd.to_timedelta(trades["duration"])
        period = _data_period(times) if isinstance(times, pd.DatetimeIndex) else pd.NaT
        max_dur = _ceil_to_resolution(durations.max(), period)
        avg_dur = _ceil_to_resolution(durations.mean(), period)
    else:
        max_dur = avg_dur = pd.NaT
    commission = trades["commission"].sum() if "commission" in trades else NAN
    return {
        "Exposure Time [%]": exposure,
        "Commissions [$]": float(commission) if n else 0.0,
        "# Trades": n,
        "Win Rate [%]": win_rate * 100,
        "Best Trade [%]": float(ret.max()) * 100 if n else NAN,
        "Worst Trade [%]": float(ret.min()) * 100 if n else NAN,
        "Avg. Trade [%]": _geometric_mean(np.nan_to_num(ret)) * 100,
        "Max. Trade Duration": max_dur,
        "Avg. Trade Duration": avg_dur,
        "Profit Factor": _div(float(ret[ret > 0].sum()), -float(ret[ret < 0].sum())),
        "Expectancy [%]": _mean(ret) * 100,
        "SQN": math.sqrt(n) * _div(_mean(pnl), _std(pnl, 1)) if n else NAN,
        "Kelly Criterion": win_rate - _div(1 - win_rate, payoff),
        "Payoff Ratio": payoff,
        "Max. Consecutive Wins": _longest_run(pnl > 0),
        "Max. Consecutive Losses": _longest_run(pnl < 0),
    }
