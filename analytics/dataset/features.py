"""The features of each decision, from the bars closed by its time and nothing later.

>>> bars = bar_features(candles, bar_ns, settings)              # one symbol, every bar
>>> positions = last_closed(bars.open_ns, bar_ns, decision_ns)  # the bar each decision sees
>>> table = decision_features(bars, positions, decision_ns, side, quantity, settings)

**Strictly before** (docs/dataset.md): a decision at time t sees the bars that closed at or
before t, the last of them being the bar p with open + bar length <= t. Every bar-level
feature at p is computed from bars 0..p only (the indicators are TA-Lib's, which read no bar
after the one they are computed at; the rolling windows end at p), so the value a decision
gets is the value it would get from the history cut at its own time, which the truncation
test checks decision by decision. The forming bar, the decision's own bar, is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.dataset._kernels import trailing_rank_pct
from analytics.label_config import Sessions
from analytics.sessions import DAY_NS, MINUTE_NS, CalendarGrid
from indicators.registry import get as indicator
from market.calendars import ALWAYS_OPEN, TradingCalendar

BPS = 1e4
REGIMES = ("low", "medium", "high")


@dataclass(frozen=True)
class BarFeatures:
    """One symbol's bars with every bar-level feature (arrays of the bars' length)."""

    open_ns: np.ndarray
    bar_ns: int
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    returns_bps: dict[int, np.ndarray]  # horizon in bars -> close-to-close return
    rsi: np.ndarray
    atr: np.ndarray
    atr_pct: np.ndarray
    atr_rank_pct: np.ndarray
    regime: np.ndarray  # int8 code into REGIMES, -1 warming up
    volatility_bps: np.ndarray
    avg_volume: np.ndarray
    volume_z: np.ndarray
    to_high_atr: np.ndarray
    to_low_atr: np.ndarray
    bar_range_bps: np.ndarray


def bar_features(candles: pd.DataFrame, bar_ns: int, settings) -> BarFeatures:
    """Every bar-level feature of one symbol's bars (indexed by open time, in time order)."""
    s = settings
    open_ns = pd.DatetimeIndex(candles.index).as_unit("ns").asi8
    arrays = {c: candles[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close", "volume")}
    high, low, close, volume = arrays["high"], arrays["low"], arrays["close"], arrays["volume"]
    rsi = indicator("rsi").compute(arrays, {"timeperiod": s.rsi_period})["rsi"]
    atr = indicator("atr").compute(arrays, {"timeperiod": s.atr_period})["atr"]
    channel = indicator("donchian").compute(arrays, {"timeperiod": s.donchian_period})
    share = atr / close
    rank = trailing_rank_pct(share, s.rank_window)
    regime = np.full(len(close), -1, np.int8)
    known = ~np.isnan(rank)
    regime[known] = np.where(
        rank[known] >= s.high_percentile, 2, np.where(rank[known] <= s.low_percentile, 0, 1)
    )
    series = pd.Series(close)
    returns = {h: (series / series.shift(h) - 1.0).to_numpy() * BPS for h in s.return_horizons}
    one_bar = returns.get(1)
    if one_bar is None:
        one_bar = (series / series.shift(1) - 1.0).to_numpy() * BPS
    vol = pd.Series(volume)
    before = vol.shift(1).rolling(s.volume_window)  # the window of volumes before the bar
    mean, spread = before.mean().to_numpy(), before.std(ddof=0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(spread > 0, (volume - mean) / spread, np.nan)
        to_high = (channel["upper"] - close) / atr
        to_low = (close - channel["lower"]) / atr
    return BarFeatures(
        open_ns=open_ns,
        bar_ns=int(bar_ns),
        high=high,
        low=low,
        close=close,
        returns_bps=returns,
        rsi=rsi,
        atr=atr,
        atr_pct=100.0 * share,
        atr_rank_pct=rank,
        regime=regime,
        volatility_bps=pd.Series(one_bar).rolling(s.volatility_window).std(ddof=0).to_numpy(),
        avg_volume=vol.rolling(s.volume_window).mean().to_numpy(),
        volume_z=z,
        to_high_atr=to_high,
        to_low_atr=to_low,
        bar_range_bps=(high - low) / close * BPS,
    )


def last_closed(open_ns: np.ndarray, bar_ns: int, times_ns: np.ndarray) -> np.ndarray:
    """Per time, the position of the last bar closed at or before it (-1: none yet)."""
    return np.searchsorted(open_ns + bar_ns, times_ns, side="right") - 1


class CalendarMemo:
    """The :class:`analytics.sessions.CalendarGrid` of the last grid of open times asked,
    kept for the next symbol on the same grid (symbols of one venue usually share it): the
    calendar at a bar depends only on the open times of the window ending there, so a bar's
    calendar found for one symbol is never made again for another."""

    def __init__(self) -> None:
        self._grid: CalendarGrid | None = None

    def grid(self, open_ns: np.ndarray, bar_ns: int) -> CalendarGrid:
        """The grid of these open times (a new one for another grid)."""
        if self._grid is None or not self._grid.same(open_ns, bar_ns):
            self._grid = CalendarGrid(open_ns, bar_ns)
        return self._grid


def calendars_at(
    open_ns: np.ndarray,
    bar_ns: int,
    positions: np.ndarray,
    memo: CalendarMemo | None = None,
) -> tuple[np.ndarray, list[TradingCalendar]]:
    """The calendar each position's bars show (read from that bar and the ones before it, as
    analytics.market_context does): (a code per position into the list, the calendars;
    code 0, ALWAYS_OPEN, where no bar closed yet). Found by a
    :class:`analytics.sessions.CalendarGrid` (``memo``'s when it holds this grid). Bars of a
    day or longer have no session hours: one calendar, nothing found."""
    codes = np.zeros(len(positions), np.int64)
    wanted_mask = positions >= 0
    if bar_ns >= DAY_NS or not wanted_mask.any():
        return codes, [ALWAYS_OPEN]
    wanted = positions[wanted_mask]
    grid = (memo or CalendarMemo()).grid(open_ns, bar_ns)
    at = grid.at(wanted)
    distinct, inverse = np.unique(wanted, return_inverse=True)
    found: dict[TradingCalendar, int] = {ALWAYS_OPEN: 0}
    code = [found.setdefault(at[p], len(found)) for p in distinct.tolist()]
    codes[wanted_mask] = np.asarray(code, np.int64)[inverse.reshape(-1)]
    return codes, list(found)


def sessions_of(calendar: TradingCalendar, times_ns: np.ndarray, sessions: Sessions) -> np.ndarray:
    """:func:`analytics.sessions.market_session` over an array of times (object array)."""
    minute = (times_ns % DAY_NS) / MINUTE_NS
    if calendar.session is None:
        starts = np.array([start for start, _ in sessions.utc_sessions])
        names = np.array([name for _, name in sessions.utc_sessions], dtype=object)
        return names[np.searchsorted(starts, minute / 60.0, side="right") - 1]
    open_m, close_m = calendar.session[0] * 60.0, calendar.session[1] * 60.0
    length = (close_m - open_m) % 1440.0 or 1440.0
    since_open = np.mod(minute - open_m, 1440.0)
    until_open = 1440.0 - since_open
    return np.where(
        since_open < length,
        "regular",
        np.where(until_open <= sessions.pre_market_minutes, "pre_market", "after_hours"),
    ).astype(object)


def pick(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[p] per position, NaN where p < 0 (no bar closed yet)."""
    out = values[np.maximum(positions, 0)].astype(np.float64)
    out[positions < 0] = np.nan
    return out


def decision_features(
    bars: BarFeatures,
    positions: np.ndarray,
    decision_ns: np.ndarray,
    quantity: np.ndarray,
    settings,
    memo: CalendarMemo | None = None,
) -> dict[str, np.ndarray]:
    """The features of one symbol's decisions (docs/dataset.md, "Features"); ``memo``: the
    calendars found for an earlier symbol (:class:`CalendarMemo`)."""
    p = positions
    out: dict[str, np.ndarray] = {}
    out["feature_bar_close_ns"] = np.where(p >= 0, bars.open_ns[np.maximum(p, 0)] + bars.bar_ns, 0)
    for h in settings.return_horizons:
        out[f"ret_{h}b_bps"] = pick(bars.returns_bps[h], p)
    out["rsi"] = pick(bars.rsi, p)
    out["atr_pct"] = pick(bars.atr_pct, p)
    out["atr_rank_pct"] = pick(bars.atr_rank_pct, p)
    regime = np.where(p >= 0, bars.regime[np.maximum(p, 0)], -1).astype(np.int8)
    out["volatility_regime_code"] = regime
    out["volatility_bps"] = pick(bars.volatility_bps, p)
    out["volume_z"] = pick(bars.volume_z, p)
    out["to_high_atr"] = pick(bars.to_high_atr, p)
    out["to_low_atr"] = pick(bars.to_low_atr, p)
    out["bar_range_bps"] = pick(bars.bar_range_bps, p)
    avg_volume = pick(bars.avg_volume, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        participation = np.where(avg_volume > 0, quantity / avg_volume, np.nan)
    out["size_vs_avg_volume"] = participation
    out["impact_term_bps"] = out["volatility_bps"] * np.sqrt(participation)
    codes, calendars = calendars_at(bars.open_ns, bars.bar_ns, p, memo)
    session = np.empty(len(p), dtype=object)
    for code, calendar in enumerate(calendars):
        rows = np.flatnonzero(codes == code)
        if len(rows):
            session[rows] = sessions_of(calendar, decision_ns[rows], settings.sessions)
    out["market_session"] = session
    return out


def empty_features(n: int, settings) -> dict[str, np.ndarray]:
    """The arrays :func:`decision_features` fills, all missing (a decision without bars)."""
    out: dict[str, np.ndarray] = {"feature_bar_close_ns": np.zeros(n, np.int64)}
    for name in bar_feature_names(settings.return_horizons):
        out[name] = np.full(n, np.nan)
    out["volatility_regime_code"] = np.full(n, -1, np.int8)
    out["market_session"] = np.full(n, None, dtype=object)
    return out


def bar_feature_names(return_horizons: Sequence[int]) -> tuple[str, ...]:
    """The numeric features read from the bars, in the dataset's column order."""
    return (
        *(f"ret_{h}b_bps" for h in return_horizons),
        "rsi",
        "atr_pct",
        "atr_rank_pct",
        "volatility_bps",
        "volume_z",
        "to_high_atr",
        "to_low_atr",
        "bar_range_bps",
        "size_vs_avg_volume",
        "impact_term_bps",
    )


def feature_names(return_horizons: Sequence[int]) -> tuple[str, ...]:
    """The numeric features a model may learn from, in a fixed order."""
    return (*bar_feature_names(return_horizons), "side_sign", "hour", "weekday")
