"""compute_metrics: every metric of one backtest (equity, trades, benchmark) under a preset."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.metrics._calendar import _datetime64, _years
from analytics.metrics._math import NAN, _cagr_periods, _div, _mean
from analytics.metrics.blocks import _drawdown_block, _risk_block, _trade_block, _win_loss_block
from analytics.metrics.conventions import (
    Convention,
    get_convention,
    infer_periods_per_year,
    period_returns,
)
from analytics.metrics.notes import mark_short_span


def _benchmark_values(benchmark: pd.Series | pd.DataFrame, index: pd.Index) -> pd.Series:
    series = benchmark["Close"] if isinstance(benchmark, pd.DataFrame) else benchmark
    if len(series) != len(index) or not series.index.equals(index):
        series = series.reindex(index).ffill()
    return series.astype(float)


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    *,
    benchmark: pd.Series | pd.DataFrame | None = None,
    preset: str | Convention = "backtesting.py",
    risk_free: float = 0.0,
    warmup_bars: int = 0,
) -> pd.Series:
    """All metrics of one backtest, keyed by name with unit.

    >>> s = compute_metrics(equity, trades, benchmark=ohlc, preset="quantstats", risk_free=0.02)
    >>> s["Return [%]"], s["Sharpe Ratio"], s["Profit Factor"]

    ``equity``: account value per bar (DatetimeIndex). ``trades``: the engine's trades frame
    (columns in ``TRADE_COLUMNS``; only pnl, return_pct, entry_bar, exit_bar, duration and
    commission are read). ``benchmark``: buy-and-hold equity or an OHLC frame (its Close).
    ``risk_free``: annual rate as a fraction. ``warmup_bars``: bars before the strategy could
    trade; Buy & Hold starts there, as in backtesting.py.
    """
    conv = get_convention(preset)
    values = equity.to_numpy(dtype=float)
    index = equity.index
    is_time = isinstance(index, pd.DatetimeIndex)
    n_trades = 0 if trades is None else len(trades)
    r_period = period_returns(equity, conv).to_numpy(dtype=float)
    big_n = period_n = conv.periods_per_year or infer_periods_per_year(index)
    years = _years(index[0], index[-1]) if is_time and len(index) else NAN

    if conv.risk_basis == "trade":
        sample = np.empty(0) if trades is None else trades["return_pct"].to_numpy(dtype=float)
        big_n = _div(n_trades, years)
    else:
        sample = r_period
    risk = _risk_block(sample, big_n, conv, risk_free)

    s: dict = {}
    s["Start"] = index[0] if len(index) else NAN
    s["End"] = index[-1] if len(index) else NAN
    s["Duration"] = s["End"] - s["Start"] if len(index) else NAN
    s["Equity Final [$]"] = float(values[-1])
    s["Equity Peak [$]"] = float(values.max())
    total = (values[-1] - values[0]) / values[0]
    s["Return [%]"] = total * 100
    s["Buy & Hold Return [%]"] = NAN
    s["Return (Ann.) [%]"] = risk.pop("Return (Ann.) [%]")
    s["Volatility (Ann.) [%]"] = risk.pop("Volatility (Ann.) [%]")
    if conv.cagr_years == "calendar":
        ratio = values[-1] / values[0]  # below 0 (equity through zero): no growth rate
        s["CAGR [%]"] = (ratio ** (1 / years) - 1) * 100 if years and ratio >= 0 else NAN
    else:
        s["CAGR [%]"] = _cagr_periods(1 + total, r_period.size, big_n) * 100
    s["Sharpe Ratio"] = risk.pop("Sharpe Ratio")
    s["Sortino Ratio"] = risk.pop("Sortino Ratio")
    s["Calmar Ratio"] = NAN
    s["Alpha [%]"] = NAN
    s["Beta"] = NAN
    s.update(
        _drawdown_block(
            values,
            _datetime64(index) if is_time else None,
            values.size - 1,
            conv,
            r=r_period,
            total=total,
            annual_pct=s["Return (Ann.) [%]"],
            cagr_pct=s["CAGR [%]"],
        )
    )
    s.update(_trade_block(trades, values.size, index if is_time else None))
    s.update(risk)
    s.update(_win_loss_block(r_period))

    if benchmark is not None and len(values) > 1:
        bench = _benchmark_values(benchmark, index)
        b = bench.to_numpy()
        s["Buy & Hold Return [%]"] = (b[-1] - b[warmup_bars]) / b[warmup_bars] * 100
        if conv.beta_returns == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                x, y = np.log(values[1:] / values[:-1]), np.log(b[1:] / b[:-1])
        else:
            pair = pd.DataFrame(
                {"x": period_returns(equity, conv), "y": period_returns(bench, conv)}
            ).dropna()
            x, y = pair["x"].to_numpy(), pair["y"].to_numpy()
        beta = NAN
        if x.size > 1:
            cov = np.cov(x, y)
            beta = _div(cov[0, 1], cov[1, 1])
        s["Beta"] = beta
        if conv.alpha == "total":
            rf_pct = risk_free * 100
            s["Alpha [%]"] = s["Return [%]"] - rf_pct - beta * (s["Buy & Hold Return [%]"] - rf_pct)
        else:
            s["Alpha [%]"] = (_mean(x) - beta * _mean(y)) * period_n * 100
    span = years if is_time else _div(r_period.size, period_n)
    return mark_short_span(pd.Series(s, dtype=object, name=conv.name), span)
