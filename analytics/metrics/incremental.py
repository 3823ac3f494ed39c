"""IncrementalMetrics: O(1) per bar and per trade, equal to the batch metrics on the same feed."""

from __future__ import annotations

import math

import pandas as pd

from analytics.metrics._calendar import _years
from analytics.metrics._math import NAN, _cagr_periods, _compound_vol, _div
from analytics.metrics.conventions import Convention, get_convention
from analytics.metrics.notes import mark_short_span


class _Sum:
    """Neumaier-compensated running sum, so long feeds keep batch precision."""

    __slots__ = ("comp", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.comp = 0.0

    def add(self, x: float) -> None:
        t = self.total + x
        if abs(self.total) >= abs(x):
            self.comp += (self.total - t) + x
        else:
            self.comp += (x - t) + self.total
        self.total = t

    @property
    def value(self) -> float:
        return self.total + self.comp


class _Welford:
    """Running count, mean and sum of squared deviations."""

    __slots__ = ("m2", "mean", "n")

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def var(self, ddof: int) -> float:
        return self.m2 / (self.n - ddof) if self.n > ddof else NAN


class IncrementalMetrics:
    """O(1) per bar and per trade; ``metrics()`` equals the batch functions on the same feed.

    >>> tracker = IncrementalMetrics("quantstats")
    >>> for time, value in equity.items():
    ...     tracker.add_bar(value, time)
    >>> tracker.add_trade(pnl=120.0, return_pct=0.012)
    >>> tracker.metrics()["Sharpe Ratio"]

    Period returns are bar-to-bar (no resampling), so it matches ``compute_metrics`` when each bar
    is one period (daily bars for the daily presets). Tracks: Return, Return (Ann.), Volatility
    (Ann.), CAGR, Sharpe, Sortino, Max. Drawdown, # Trades, Win Rate, Best/Worst/Avg. Trade,
    Profit Factor, Expectancy, SQN, Kelly.
    """

    def __init__(
        self,
        preset: str | Convention = "backtesting.py",
        *,
        periods_per_year: float | None = None,
        risk_free: float = 0.0,
    ) -> None:
        self.conv = get_convention(preset)
        self.periods_per_year = periods_per_year or self.conv.periods_per_year
        if self.conv.risk_basis == "period" and not self.periods_per_year:
            raise ValueError(f"preset {self.conv.name!r} needs periods_per_year for a live feed")
        if self.conv.risk_basis == "trade" and risk_free:
            raise ValueError("trade-based risk ratios with a risk-free rate are batch-only")
        self.risk_free = risk_free
        self._rf_period = (1 + risk_free) ** (1 / self.periods_per_year) - 1 if risk_free else 0.0
        self._first = self._last = self._peak = NAN
        self._first_time: pd.Timestamp | None = None
        self._last_time: pd.Timestamp | None = None
        self._max_dd = 0.0
        self._bars = 0
        # the return sample behind the risk ratios: bar returns, or trade returns
        self._r = _Welford()
        self._r_sum = _Sum()
        self._log_sum = _Sum()
        self._down_sq = _Sum()
        self._ruined = False
        # trades
        self._pnl = _Welford()
        self._ret_sum = _Sum()
        self._ret_log = _Sum()
        self._gain_ret, self._loss_ret = _Sum(), _Sum()
        self._win_pnl, self._loss_pnl = _Sum(), _Sum()
        self._wins = self._losses = 0
        self._best = self._worst = NAN

    def _add_sample(self, r: float) -> None:
        self._r.add(r)
        self._r_sum.add(r)
        if r <= -1:
            self._ruined = True
        else:
            self._log_sum.add(math.log1p(r))
        base = r - self._rf_period if self.conv.annualization == "arithmetic" else r
        if base < 0:
            self._down_sq.add(base * base)

    def add_bar(self, value: float, time: pd.Timestamp | None = None) -> None:
        """Feed the account value of the next bar."""
        if self._bars == 0:
            self._first = self._peak = value
            self._first_time = time
        else:
            if self.conv.risk_basis == "period":
                self._add_sample(value / self._last - 1)
            self._peak = max(self._peak, value)
            self._max_dd = max(self._max_dd, 1 - value / self._peak)
        self._last, self._last_time = value, time
        self._bars += 1

    def add_trade(self, pnl: float, return_pct: float) -> None:
        """Feed one closed trade: its pnl (currency) and return (fraction)."""
        self._pnl.add(pnl)
        self._ret_sum.add(return_pct)
        self._ret_log.add(math.log1p(return_pct) if return_pct > -1 else -math.inf)
        if return_pct > 0:
            self._gain_ret.add(return_pct)
        elif return_pct < 0:
            self._loss_ret.add(return_pct)
        if pnl > 0:
            self._wins += 1
            self._win_pnl.add(pnl)
        elif pnl < 0:
            self._losses += 1
            self._loss_pnl.add(pnl)
        self._best = return_pct if math.isnan(self._best) else max(self._best, return_pct)
        self._worst = return_pct if math.isnan(self._worst) else min(self._worst, return_pct)
        if self.conv.risk_basis == "trade":
            self._add_sample(return_pct)

    def _years(self) -> float:
        if self._first_time is None or self._last_time is None:
            return NAN
        return _years(self._first_time, self._last_time)

    def metrics(self) -> pd.Series:
        """The tracked metrics now, O(1)."""
        conv, n = self.conv, self._r.n
        years = self._years()
        big_n = self.periods_per_year if conv.risk_basis == "period" else _div(self._pnl.n, years)
        total = (self._last - self._first) / self._first if self._bars else NAN
        mean = self._r.mean if n else NAN
        var = self._r.var(conv.ddof)
        if conv.annualization == "geometric":
            g = NAN if self._ruined or not n else math.expm1(self._log_sum.value / n)
            annual = (1 + g) ** big_n - 1
            vol = _compound_vol(var, g, big_n)
            sharpe = _div(annual - self.risk_free, vol)
            downside = math.sqrt(self._down_sq.value / n) * math.sqrt(big_n) if n else NAN
            sortino = _div(annual - self.risk_free, downside)
        else:
            annual = mean * big_n
            vol = math.sqrt(var) * math.sqrt(big_n)
            sharpe = _div(mean - self._rf_period, math.sqrt(var)) * math.sqrt(big_n)
            downside = math.sqrt(self._down_sq.value / n) if n else NAN
            sortino = _div(mean - self._rf_period, downside) * math.sqrt(big_n)
        if conv.cagr_years == "calendar":
            cagr = (1 + total) ** (1 / years) - 1 if years else NAN
        else:
            cagr = _cagr_periods(1 + total, max(self._bars - 1, 0), big_n)
        n_trades = self._pnl.n
        win_rate = self._wins / n_trades if n_trades else NAN
        avg_win = self._win_pnl.value / self._wins if self._wins else NAN
        avg_loss = self._loss_pnl.value / self._losses if self._losses else NAN
        sqn = (
            math.sqrt(n_trades) * _div(self._pnl.mean, math.sqrt(self._pnl.var(1)))
            if n_trades > 1
            else NAN
        )
        stats = pd.Series(
            {
                "Return [%]": total * 100,
                "Return (Ann.) [%]": annual * 100,
                "Volatility (Ann.) [%]": vol * 100,
                "CAGR [%]": cagr * 100,
                "Sharpe Ratio": sharpe,
                "Sortino Ratio": sortino,
                "Max. Drawdown [%]": -self._max_dd * 100 if self._bars else NAN,
                "# Trades": n_trades,
                "Win Rate [%]": win_rate * 100,
                "Best Trade [%]": self._best * 100,
                "Worst Trade [%]": self._worst * 100,
                "Avg. Trade [%]": math.expm1(self._ret_log.value / n_trades) * 100
                if n_trades and self._ret_log.value > -math.inf
                else NAN,
                "Profit Factor": _div(self._gain_ret.value, -self._loss_ret.value),
                "Expectancy [%]": self._ret_sum.value / n_trades * 100 if n_trades else NAN,
                "SQN": sqn,
                "Kelly Criterion": win_rate - (1 - win_rate) / _div(avg_win, -avg_loss),
            },
            dtype=object,
            name=conv.name,
        )
        span = years if self._first_time is not None else _div(self._bars - 1, big_n)
        return mark_short_span(stats, span)
