"""Performance metrics of a backtest: one pure function per view, each under a named convention.

>>> stats = compute_metrics(equity, trades, benchmark=ohlc, preset="backtesting.py")
>>> stats["Sharpe Ratio"], stats["Max. Drawdown [%]"], stats["# Trades"]

Keys use backtesting.py's statistic names where one exists and carry their unit in the name.
A metric that is undefined (no trades, zero volatility, no losing trade...) is NaN, never a
sentinel number. Every formula and its convention per preset is listed in docs/metrics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd

NAN = float("nan")
_NORMAL = NormalDist()  # the standard normal (stdlib; scipy.stats alone took 0.65 s to import)

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


# --- small numeric kernels -------------------------------------------------------------------


def _div(a: float, b: float) -> float:
    """a / b, NaN when b is zero or NaN (an undefined ratio, never inf or a sentinel)."""
    if b == 0 or math.isnan(b):
        return NAN
    return float(a) / float(b)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else NAN


def _std(x: np.ndarray, ddof: int) -> float:
    return float(x.std(ddof=ddof)) if x.size > ddof else NAN


def _compound_vol(var: float, g: float, n_per_year: float) -> float:
    """Annualized volatility of compounded returns (backtesting.py, SSRN 3054517)."""
    x = (var + (1 + g) ** 2) ** n_per_year - (1 + g) ** (2 * n_per_year)
    # rounding can leave a zero variance a hair below zero
    return math.sqrt(max(x, 0.0)) if not math.isnan(x) else NAN


def _geometric_mean(r: np.ndarray) -> float:
    """Geometric mean return; NaN once any return loses everything (backtesting.py gives 0)."""
    if not r.size or np.any(r <= -1):
        return NAN
    return math.exp(np.log1p(r).sum() / r.size) - 1


def _moments(d: np.ndarray, d2: np.ndarray, ddof: int) -> tuple[float, float]:
    """Skew and excess kurtosis from deviations ``d`` and their squares; ddof=1 gives the
    bias-corrected (pandas) estimators."""
    n = d.size
    if n < 4:
        return NAN, NAN
    m2, m3, m4 = d2.sum() / n, np.dot(d2, d) / n, np.dot(d2, d2) / n
    if m2 == 0:
        return NAN, NAN
    g1, g2 = m3 / m2**1.5, m4 / m2**2 - 3
    if ddof == 0:
        return float(g1), float(g2)
    skew = g1 * math.sqrt(n * (n - 1)) / (n - 2)
    kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6)
    return float(skew), float(kurt)


def _longest_run(flags: np.ndarray) -> int:
    """Longest run of True: ``_longest_run(np.array([1, 1, 0, 1], bool)) == 2``."""
    if not flags.any():
        return 0
    padded = np.zeros(flags.size + 2, dtype=np.int8)
    padded[1:-1] = flags
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return int((edges[1::2] - edges[::2]).max())


def _drawdown(values: np.ndarray) -> np.ndarray:
    """Drawdown fraction from the running peak, >= 0 (0.25 = 25% below the peak)."""
    return 1 - values / np.maximum.accumulate(values)


def _drawdown_episodes(dd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, depth) of each drawdown: from a peak bar to the bar it is regained (or the
    last bar), as backtesting.py delimits them."""
    ends = np.flatnonzero(dd == 0)
    if not ends.size or ends[-1] != dd.size - 1:
        ends = np.r_[ends, dd.size - 1]
    start, end = ends[:-1], ends[1:]
    keep = end > start + 1
    start, end = start[keep], end[keep]
    if not start.size:
        return start, end, np.empty(0)
    # maximum over dd[start:end + 1]; the padded zero keeps end + 1 in bounds
    bounds = np.column_stack([start, end + 1]).ravel()
    depth = np.maximum.reduceat(np.r_[dd, 0.0], bounds)[::2]
    return start, end, depth


def _data_period(index: pd.DatetimeIndex) -> pd.Timedelta:
    # backtesting.py's rule: median spacing of the last 100 bars
    return pd.Series(index[-100:]).diff().dropna().median()


def _ceil_to_resolution(value: pd.Timedelta, period: pd.Timedelta) -> pd.Timedelta:
    if not isinstance(value, pd.Timedelta) or pd.isna(value) or pd.isna(period):
        return value
    return value.ceil(period.resolution_string)


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


_UNIT_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}


def _day_numbers(index: pd.DatetimeIndex) -> np.ndarray | None:
    """Days since 1970-01-01 of each timestamp, as integers, for a naive or UTC index (a day
    of another time zone starts at its local midnight: None, the caller asks pandas).

    Integer arithmetic on the stored instants: pandas' calendar fields cost ~17 ms per
    1,000,000 bars, this ~2 ms.
    """
    if index.tz is not None and str(index.tz) != "UTC":
        return None
    return index.asi8 // _UNIT_PER_DAY[index.unit]


def _weekend_share(index: pd.DatetimeIndex) -> float:
    """Share of timestamps on a Saturday or Sunday; for a sorted naive/UTC index counted per
    day (one modulo per day instead of per bar: 0.5 ms instead of 17 ms at 1,000,000 bars)."""
    days = _day_numbers(index)
    if days is None or not index.is_monotonic_increasing:
        return float((index.day_of_week >= 5).mean())
    last = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    per_day = np.diff(np.r_[-1, last])
    weekend = (days[last] + 3) % 7 >= 5  # 1970-01-01 was a Thursday (Monday = 0)
    return float(per_day[weekend].sum() / days.size)


def _daily_last(equity: pd.Series) -> pd.Series | None:
    """``equity.resample("D").last().dropna()`` for a sorted naive/UTC index without NaN: the
    last value of each calendar day that has one, labelled with the day's midnight. None when
    the fast path does not apply."""
    index = equity.index
    days = _day_numbers(index)
    values = equity.to_numpy(dtype=float)
    if days is None or np.isnan(values).any() or not index.is_monotonic_increasing:
        return None
    last = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    labels = pd.DatetimeIndex(
        (days[last] * _UNIT_PER_DAY[index.unit]).astype(f"datetime64[{index.unit}]")
    )
    if index.tz is not None:
        labels = labels.tz_localize(index.tz)
    return pd.Series(values[last], index=labels, name=equity.name)


# --- metric blocks ---------------------------------------------------------------------------


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
        "Kelly Criterion (Periods)": win_rate - (1 - win_rate) / payoff,
        "Max. Consecutive Winning Periods": _longest_run(up),
        "Max. Consecutive Losing Periods": _longest_run(down),
    }


def _drawdown_block(
    values: np.ndarray, times: np.ndarray | None, n_returns: int, conv: Convention
) -> tuple[dict, float]:
    """Max/avg drawdown and durations, ulcer index, of a value path; also max drawdown."""
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
    out = {
        "Max. Drawdown [%]": -max_dd * 100,
        "Avg. Drawdown [%]": -float(depth.mean()) * 100 if depth.size else NAN,
        "Max. Drawdown Duration": max_dur,
        "Avg. Drawdown Duration": avg_dur,
        "Ulcer Index [%]": ulcer * 100,
    }
    return out, max_dd


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
        "Kelly Criterion": win_rate - (1 - win_rate) / payoff,
        "Payoff Ratio": payoff,
        "Max. Consecutive Wins": _longest_run(pnl > 0),
        "Max. Consecutive Losses": _longest_run(pnl < 0),
    }


def _benchmark_values(benchmark: pd.Series | pd.DataFrame, index: pd.Index) -> pd.Series:
    series = benchmark["Close"] if isinstance(benchmark, pd.DataFrame) else benchmark
    if len(series) != len(index) or not series.index.equals(index):
        series = series.reindex(index).ffill()
    return series.astype(float)


def _years(start: pd.Timestamp, end: pd.Timestamp) -> float:
    span = end - start
    return (span.days + span.seconds / 86400) / 365.25


# --- public API ------------------------------------------------------------------------------


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
        s["CAGR [%]"] = ((values[-1] / values[0]) ** (1 / years) - 1) * 100 if years else NAN
    else:
        s["CAGR [%]"] = _cagr_periods(1 + total, r_period.size, big_n) * 100
    s["Sharpe Ratio"] = risk.pop("Sharpe Ratio")
    s["Sortino Ratio"] = risk.pop("Sortino Ratio")
    s["Calmar Ratio"] = NAN
    s["Alpha [%]"] = NAN
    s["Beta"] = NAN
    dd_stats, max_dd = _drawdown_block(
        values, _datetime64(index) if is_time else None, values.size - 1, conv
    )
    numerator = (
        s["Return (Ann.) [%]"] if conv.calmar_numerator == "annual_return" else s["CAGR [%]"]
    )
    s["Calmar Ratio"] = _div(numerator / 100, max_dd)
    s.update(dd_stats)
    recovery_total = r_period.sum() if conv.annualization == "arithmetic" else total
    s["Recovery Factor"] = _div(recovery_total, max_dd)
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
    return pd.Series(s, dtype=object, name=conv.name)


def _cagr_periods(wealth: float, n: int, n_per_year: float) -> float:
    if not n or wealth < 0:
        return NAN
    return wealth ** (n_per_year / n) - 1


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
    dd_stats, max_dd = _drawdown_block(values, times, r.size, conv)
    numerator = (
        s["Return (Ann.) [%]"] if conv.calmar_numerator == "annual_return" else s["CAGR [%]"]
    )
    s["Calmar Ratio"] = _div(numerator / 100, max_dd)
    s.update(dd_stats)
    recovery_total = r.sum() if conv.annualization == "arithmetic" else total
    s["Recovery Factor"] = _div(recovery_total, max_dd)
    s.update(risk)
    s.update(_win_loss_block(r))
    return pd.Series(s, dtype=object, name=conv.name)


# --- rolling windows -------------------------------------------------------------------------


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


# --- incremental tracker ---------------------------------------------------------------------


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
        return pd.Series(
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


__all__ = [
    "PRESETS",
    "TRADE_COLUMNS",
    "Convention",
    "IncrementalMetrics",
    "compute_metrics",
    "get_convention",
    "infer_periods_per_year",
    "period_returns",
    "returns_metrics",
    "rolling_return",
    "rolling_sharpe",
    "rolling_sortino",
    "rolling_volatility",
]


def _datetime64(index: pd.DatetimeIndex) -> np.ndarray:
    """Naive UTC datetime64 values: a tz-aware index's to_numpy() builds one Python object per
    bar (1.7 s at 1,000,000 bars); durations only need the instants."""
    return (index.tz_convert(None) if index.tz is not None else index).to_numpy()
