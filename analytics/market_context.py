"""The market context of a fill, from the bars closed by its time and nothing later.

>>> contexts = market_context(candles, pd.Timedelta(minutes=1), fills, load_label_config())
>>> contexts[0]["volatility_regime"], contexts[0]["atr_pct"], contexts[0]["atr_pct_rank"]
('high', 0.41, 93.0)

The bar a fill at time t sees is the last one that closed at or before t (open + bar <= t):
the forming bar is never read. Every indicator is taken at that bar over the bars before it
(TA-Lib's, through indicators/), and the session comes from the calendar those same bars show
(market/calendars.py's rule, read as of that bar: analytics.sessions.CalendarWindow), unless
a calendar is given. Two forms compute the same values to the bit: the batch one over a candle frame
(:class:`BarFrame`) and the incremental one, a candle at a time (:class:`BarStream`); both
hand their raw values to one :func:`bar_snapshot`.

Categories are None while their indicators warm up (JSON null: not enough history yet), and
numbers are None where undefined, so that a context is always valid JSON. The rules and
their defaults: docs/labels.md.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections import deque, namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics.bar_ranks import window_ranks
from analytics.label_config import LabelConfig
from analytics.sessions import CalendarGrid, CalendarWindow, market_session
from indicators.registry import get as indicator
from market.calendars import ALWAYS_OPEN, TradingCalendar
from market.candles import Candle

NAN = float("nan")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CONTEXT_KEYS = (
    "volatility_regime",
    "market_session",
    "trend",
    "volume_profile",
    "price_level",
    "bar_open",  # the open time (ISO, UTC) of the bar the context was read from
    "close",
    "atr",
    "atr_pct",
    "atr_pct_rank",
    "sma",
    "close_vs_sma_atr",
    "sma_slope_pct",
    "volume",
    "volume_z",
    "donchian_high",
    "donchian_low",
    "to_high_atr",
    "to_low_atr",
    "rsi",
    "bollinger_upper",
    "bollinger_lower",
    "momentum_atr",
)


@dataclass(frozen=True, slots=True)
class BarSnapshot:
    """What one closed bar says, all its indicators read; NaN where still warming up."""

    open_ns: int
    close: float
    atr: float
    atr_pct: float  # 100 x ATR / close
    atr_pct_rank: float  # percentile rank of the ATR share in its trailing window (0-100)
    volatility_regime: str | None
    sma: float
    close_vs_sma_atr: float
    sma_slope_pct: float
    trend: str | None
    volume: float
    volume_z: float
    volume_profile: str | None
    donchian_high: float
    donchian_low: float
    rsi: float
    bollinger_upper: float
    bollinger_lower: float
    momentum_atr: float  # close minus the close lookback_bars before, in ATRs
    context: dict[str, Any]  # this bar's part of a fill's context (JSON values), built once


class SortedWindow:
    """The last ``size`` values in arrival order and sorted: percentile rank in O(log n),
    median in O(1), each push O(n) memmove at worst (a C copy of a few hundred pointers)."""

    __slots__ = ("_arrival", "_size", "sorted")

    def __init__(self, size: int) -> None:
        self._size = size
        self._arrival: deque[float] = deque()
        self.sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._arrival)

    @property
    def size(self) -> int:
        return self._size

    @property
    def full(self) -> bool:
        return len(self._arrival) == self._size

    def push(self, value: float) -> None:
        self._arrival.append(value)
        bisect.insort(self.sorted, value)
        if len(self._arrival) > self._size:
            del self.sorted[bisect.bisect_left(self.sorted, self._arrival.popleft())]

    def clear(self) -> None:
        self._arrival.clear()
        self.sorted.clear()

    def median(self) -> float:
        values, n = self.sorted, len(self.sorted)
        if not n:
            return NAN
        mid = n // 2
        return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2.0


def rank_pct(ordered: list[float], current: float) -> float:
    """The percentile rank of ``current`` (one of ``ordered``, a sorted window): 100 x
    (values below + half the values equal, itself included) / their count, so that a window
    of equal values ranks 50 and a new maximum of 100 values 99.5."""
    below = bisect.bisect_left(ordered, current)
    equal = bisect.bisect_right(ordered, current) - below
    return 100.0 * (below + 0.5 * equal) / len(ordered)


def zscore(before: Sequence[float], size: int, current: float) -> float:
    """``current`` against the ``size`` values before it (population deviation; exactly
    rounded sums, so the batch and the incremental forms agree to the bit). ±inf when they
    are all equal and ``current`` is not; NaN until there are ``size`` of them."""
    if len(before) < size:
        return NAN
    mean = math.fsum(before) / size
    spread = math.sqrt(math.fsum([(v - mean) ** 2 for v in before]) / size)
    if spread == 0.0:
        return 0.0 if current == mean else math.copysign(math.inf, current - mean)
    return (current - mean) / spread


def bar_snapshot(
    config: LabelConfig,
    *,
    open_ns: int,
    close: float,
    volume: float,
    atr: float,
    atr_rank: float,
    sma: float,
    sma_before: float,
    close_before: float,
    volumes_before: Sequence[float],
    rsi: float,
    bollinger: tuple[float, float],
    donchian: tuple[float, float],
) -> BarSnapshot:
    """The snapshot of a bar from its raw indicator values: ``atr_rank`` the percentile rank
    of its ATR/close among the last rank_window (NaN: too few), ``sma_before`` the SMA
    slope_bars before, ``close_before`` the close lookback_bars before, ``volumes_before``
    the window volumes before this bar, ``bollinger`` (upper, lower), ``donchian`` (high,
    low)."""
    vol, trend_cfg, volume_cfg = config.volatility, config.trend, config.volume
    rank = atr_rank
    regime = None
    if rank == rank:
        regime = (
            "high"
            if rank >= vol.high_percentile
            else "low"
            if rank <= vol.low_percentile
            else "medium"
        )
    to_sma = (close - sma) / atr
    slope = 100.0 * (sma / sma_before - 1.0)
    trend = None
    if to_sma == to_sma and slope == slope:
        trend = "sideways"
        if to_sma > trend_cfg.band_atr and slope > 0:
            trend = "uptrend"
        elif to_sma < -trend_cfg.band_atr and slope < 0:
            trend = "downtrend"
    z = zscore(volumes_before, volume_cfg.window, volume)
    profile = None
    if z == z:
        profile = "high" if z >= volume_cfg.high_z else "low" if z <= volume_cfg.low_z else "medium"
    numbers = {
        "close": close,
        "atr": atr,
        "atr_pct": 100.0 * atr / close,
        "atr_pct_rank": rank,
        "sma": sma,
        "close_vs_sma_atr": to_sma,
        "sma_slope_pct": slope,
        "volume": volume,
        "volume_z": z,
        "donchian_high": donchian[0],
        "donchian_low": donchian[1],
        "rsi": rsi,
        "bollinger_upper": bollinger[0],
        "bollinger_lower": bollinger[1],
        "momentum_atr": (close - close_before) / atr,
    }
    context: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS)
    context.update(
        volatility_regime=regime,
        trend=trend,
        volume_profile=profile,
        bar_open=(EPOCH + timedelta(microseconds=open_ns // 1000)).isoformat(),
    )
    isfinite = math.isfinite
    context.update({key: v if isfinite(v) else None for key, v in numbers.items()})
    return BarSnapshot(
        open_ns=open_ns,
        volatility_regime=regime,
        trend=trend,
        volume_profile=profile,
        atr_pct_rank=rank,
        atr_pct=numbers["atr_pct"],
        close_vs_sma_atr=to_sma,
        sma_slope_pct=slope,
        volume_z=z,
        momentum_atr=numbers["momentum_atr"],
        close=close,
        atr=atr,
        sma=sma,
        volume=volume,
        donchian_high=donchian[0],
        donchian_low=donchian[1],
        rsi=rsi,
        bollinger_upper=bollinger[0],
        bollinger_lower=bollinger[1],
        context=context,
    )


def _indicator_params(config: LabelConfig) -> dict[str, dict[str, Any]]:
    mr = config.mean_reversion
    return {
        "atr": {"timeperiod": config.volatility.atr_period},
        "sma": {"timeperiod": config.trend.sma_period},
        "rsi": {"timeperiod": mr.rsi_period},
        "bbands": {
            "timeperiod": mr.bollinger_period,
            "nbdevup": mr.bollinger_stddev,
            "nbdevdn": mr.bollinger_stddev,
        },
        "donchian": {"timeperiod": config.price_level.donchian_period},
    }


class BarFrame:
    """The batch form: every indicator over a candle frame, a snapshot per bar on demand."""

    def __init__(self, candles: pd.DataFrame, bar: pd.Timedelta, config: LabelConfig) -> None:
        self.config = config
        self.bar_ns = int(pd.Timedelta(bar).value)
        self.open_ns = pd.DatetimeIndex(candles.index).as_unit("ns").asi8
        values = {c: candles[c].to_numpy(dtype=np.float64) for c in ("close", "volume")}
        self.close, self.volume = values["close"], values["volume"]
        params = _indicator_params(config)
        out = {name: indicator(name).compute(candles, p) for name, p in params.items()}
        self.atr = out["atr"]["atr"]
        self.share = self.atr / self.close
        self.sma = out["sma"]["sma"]
        self.rsi = out["rsi"]["rsi"]
        self.bb_upper, self.bb_lower = out["bbands"]["upper"], out["bbands"]["lower"]
        self.dc_high, self.dc_low = out["donchian"]["upper"], out["donchian"]["lower"]
        self._snapshots: dict[int, BarSnapshot] = {}
        self._grid: CalendarGrid | None = None

    def last_closed(self, times_ns: np.ndarray) -> np.ndarray:
        """Per time, the position of the last bar closed at or before it (-1: none yet)."""
        return np.searchsorted(self.open_ns + self.bar_ns, times_ns, side="right") - 1

    def snapshot(self, i: int) -> BarSnapshot:
        found = self._snapshots.get(i)
        if found is None:
            found = self._snapshots[i] = self._snapshot(i)
        return found

    def snapshots(self, positions: list[int]) -> list[BarSnapshot]:
        """:meth:`snapshot` of each position (>= 0), the ranks of those not made yet at once."""
        made, new = self._snapshots, [i for i in positions if i not in self._snapshots]
        ranks = window_ranks(self.share, np.array(new), self.config.volatility.rank_window)
        made.update((i, self._snapshot(i, r)) for i, r in zip(new, ranks.tolist(), strict=True))
        return [made[i] for i in positions]

    def _snapshot(self, i: int, rank: float | None = None) -> BarSnapshot:
        c = self.config
        rank_w, slope, look, vol_w = (c.volatility.rank_window, c.trend.slope_bars,
                                      c.momentum.lookback_bars, c.volume.window)  # fmt: skip
        return bar_snapshot(
            c,
            open_ns=int(self.open_ns[i]),
            close=float(self.close[i]),
            volume=float(self.volume[i]),
            atr=float(self.atr[i]),
            atr_rank=self._rank(i, rank_w) if rank is None else rank,
            sma=float(self.sma[i]),
            sma_before=float(self.sma[i - slope]) if i >= slope else NAN,
            close_before=float(self.close[i - look]) if i >= look else NAN,
            volumes_before=self.volume[max(0, i - vol_w) : i].tolist(),
            rsi=float(self.rsi[i]),
            bollinger=(float(self.bb_upper[i]), float(self.bb_lower[i])),
            donchian=(float(self.dc_high[i]), float(self.dc_low[i])),
        )

    def _rank(self, i: int, size: int) -> float:
        window = self.share[max(0, i - size + 1) : i + 1]
        if len(window) < size or np.isnan(window).any():
            return NAN
        return rank_pct(sorted(window.tolist()), float(self.share[i]))

    def calendars(self, positions: Sequence[int] | np.ndarray) -> dict[int, TradingCalendar]:
        """The calendar as of each bar position (read from that bar and the ones before;
        negative positions: none), found by one :class:`analytics.sessions.CalendarGrid`
        over the frame's open times, kept for the next call."""
        if self._grid is None:
            self._grid = CalendarGrid(self.open_ns, self.bar_ns)
        return self._grid.at(positions)


class BarStream:
    """The incremental form: ``update(candle)`` per closed bar returns its snapshot (O(1)).
    ``history`` (a candle frame, ascending): the bars it starts after, taken at once (each
    indicator's stream opened on the whole columns, the windows filled from their ends): the
    same state, to the bit, as when they were fed one at a time, for a fraction of the cost."""

    def __init__(
        self, config: LabelConfig, bar: pd.Timedelta, history: pd.DataFrame | None = None
    ) -> None:
        self.config = config
        self.bar_ns = int(pd.Timedelta(bar).value)
        n = 0 if history is None else len(history)
        columns = {
            c: np.empty(0) if not n else history[c].to_numpy(dtype=np.float64)  # type: ignore[index]
            for c in ("high", "low", "close", "volume")
        }
        params = _indicator_params(config)
        opened = {name: indicator(name).open(columns, p) for name, p in params.items()}
        self._states = {name: state for name, (state, _) in opened.items()}
        self._shares = SortedWindow(config.volatility.rank_window)
        self._smas: deque[float] = deque(maxlen=config.trend.slope_bars + 1)
        self._closes: deque[float] = deque(maxlen=config.momentum.lookback_bars + 1)
        self._volumes: deque[float] = deque(maxlen=config.volume.window + 1)
        self.calendar = CalendarWindow(pd.Timedelta(self.bar_ns))
        self.last_open_ns: int | None = None
        if not n:
            return
        assert history is not None
        opens = pd.DatetimeIndex(history.index).as_unit("ns").asi8
        close = columns["close"]
        share = opened["atr"][1]["atr"] / close
        # the ranked shares: those since the last NaN one (a NaN clears the window)
        nans = np.flatnonzero(share != share)
        begin = max(int(nans[-1]) + 1 if len(nans) else 0, n - self._shares.size)
        for value in share[begin:].tolist():
            self._shares.push(value)
        for window, values in (
            (self._smas, opened["sma"][1]["sma"]),
            (self._closes, close),
            (self._volumes, columns["volume"]),
        ):
            window.extend(values[max(0, n - window.maxlen) :].tolist())  # type: ignore[operator]
        self.calendar = CalendarWindow.of(opens, pd.Timedelta(self.bar_ns))
        self.last_open_ns = int(opens[-1])

    def update(self, candle: Candle, open_ns: int) -> BarSnapshot:
        return self.snapshot(self.update_raw(candle, open_ns))

    def update_raw(self, candle: Candle, open_ns: int) -> tuple:
        """Take one closed bar; its raw values (O(1), a few us): what :meth:`snapshot` turns
        into the bar's snapshot, later and only when a fill reads it (most bars none)."""
        if self.last_open_ns is not None and open_ns <= self.last_open_ns:
            raise ValueError(
                f"candle at {pd.Timestamp(open_ns, tz='UTC')} is not after the last one "
                f"({pd.Timestamp(self.last_open_ns, tz='UTC')}): candles come in time order"
            )
        states = self._states
        (atr,) = states["atr"].update(candle)
        (sma,) = states["sma"].update(candle)
        (rsi,) = states["rsi"].update(candle)
        upper, _, lower = states["bbands"].update(candle)
        high, _, low = states["donchian"].update(candle)
        self.last_open_ns = open_ns
        self.calendar.update(open_ns)
        close, volume = float(candle.close), float(candle.volume)
        share = atr / close
        shares = self._shares
        if share != share:  # the ATR's warm-up: a rank needs a whole window of numbers
            shares.clear()
        else:
            shares.push(share)
        smas, closes, volumes = self._smas, self._closes, self._volumes
        smas.append(sma)
        closes.append(close)
        before = tuple(volumes)  # the window's volumes before this bar
        volumes.append(volume)
        return (
            open_ns, close, volume, atr,
            rank_pct(shares.sorted, share) if shares.full else NAN,
            sma, smas[0] if len(smas) == smas.maxlen else NAN,
            closes[0] if len(closes) == closes.maxlen else NAN,
            before[1:] if len(before) == volumes.maxlen else before,
            rsi, upper, lower, high, low,
        )  # fmt: skip

    def update_many(
        self, opens: list[int], rows: Sequence[Sequence[float]], calendars: bool = False
    ) -> tuple[list[tuple], list[TradingCalendar] | None]:
        """:meth:`update_raw` of bars in turn (open times ``opens``, ascending; rows (open,
        high, low, close, volume)), column by column: the same raw values and state, to the
        bit, without a candle per bar; with ``calendars``, the calendar as of each bar."""
        states, last = self._states, self.last_open_ns
        handles = [getattr(states[k], "_stream", None) for k in ("atr", "sma", "rsi", "bbands")]
        if (
            None in handles
            or (last is not None and opens[0] <= last)
            or any(map(operator.ge, opens, opens[1:]))
        ):  # an indicator still warming up, or out of order: one at a time (update_raw's)
            raws, made, window = [], [], self.calendar
            for open_ns, row in zip(opens, rows, strict=True):
                raws.append(self.update_raw(Candle(None, *row), open_ns))  # type: ignore[arg-type]
                made.append(window.calendar())
            return raws, made if calendars else None
        _, highs, lows, closes, volumes = (list(map(float, c)) for c in zip(*rows, strict=True))
        atr_of, sma_of, rsi_of, bands_of = (h.update for h in handles)
        atrs = list(map(atr_of, highs, lows, closes))
        smas, rsis, bands = (list(map(f, closes)) for f in (sma_of, rsi_of, bands_of))
        channel = states["donchian"].update
        channels = [channel(_HighLow(h, lo)) for h, lo in zip(highs, lows, strict=True)]
        window, made = self.calendar, []
        for open_ns in opens:
            window.update(open_ns)
            calendars and made.append(window.calendar())  # type: ignore[func-returns-value]
        self.last_open_ns = opens[-1]
        shares, ranks = self._shares, []
        for atr, close in zip(atrs, closes, strict=True):
            share = atr / close
            if share != share:  # the ATR's warm-up: a rank needs a whole window of numbers
                shares.clear()
            else:
                shares.push(share)
            ranks.append(rank_pct(shares.sorted, share) if shares.full else NAN)
        # each bar's values some bars before it: from the windows kept and the new bars
        before = []
        for kept, new in ((self._smas, smas), (self._closes, closes), (self._volumes, volumes)):
            before.append(([*kept, *new], len(kept), kept.maxlen - 1))  # type: ignore[operator]
            kept.extend(new)
        (all_smas, p_sma, slope), (all_closes, p_close, look), (all_vols, p_vol, size) = before
        raws = [
            (
                open_ns, close, volume, atr, rank, sma,
                all_smas[p_sma + j - slope] if p_sma + j >= slope else NAN,
                all_closes[p_close + j - look] if p_close + j >= look else NAN,
                tuple(all_vols[max(0, p_vol + j - size) : p_vol + j]),
                rsi, band[0], band[2], ch[0], ch[2],
            )
            for j, (open_ns, close, volume, atr, rank, sma, rsi, band, ch) in enumerate(
                zip(opens, closes, volumes, atrs, ranks, smas, rsis, bands, channels, strict=True)
            )
        ]  # fmt: skip
        return raws, made if calendars else None

    def snapshot(self, raw: tuple) -> BarSnapshot:
        """The snapshot of a bar from :meth:`update_raw`'s values."""
        (open_ns, close, volume, atr, rank, sma, sma_before, close_before, volumes_before,
         rsi, upper, lower, high, low) = raw  # fmt: skip
        return bar_snapshot(
            self.config,
            open_ns=open_ns,
            close=close,
            volume=volume,
            atr=atr,
            atr_rank=rank,
            sma=sma,
            sma_before=sma_before,
            close_before=close_before,
            volumes_before=volumes_before,
            rsi=rsi,
            bollinger=(upper, lower),
            donchian=(high, low),
        )


_HighLow = namedtuple("_HighLow", "high low")  # what DonchianState reads of a candle


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def price_level(to_high_atr: float, to_low_atr: float, near_atr: float) -> str | None:
    """resistance within ``near_atr`` ATRs of the channel's high, support of its low (the
    nearer of the two when both); None while the channel or the ATR warms up."""
    if to_high_atr != to_high_atr or to_low_atr != to_low_atr:
        return None
    high, low = abs(to_high_atr), abs(to_low_atr)
    if high <= near_atr and high < low:
        return "resistance"
    if low <= near_atr and low < high:
        return "support"
    return "neutral"


def fill_context(
    snapshot: BarSnapshot | None,
    calendar: TradingCalendar,
    time_ns: int,
    price: float,
    config: LabelConfig,
) -> dict[str, Any]:
    """The context dict (keys :data:`CONTEXT_KEYS`) of a fill at ``time_ns`` and ``price``."""
    session = market_session(calendar, time_ns, config.sessions)
    if snapshot is None:
        out: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS)
        out["market_session"] = session
        return out
    s = snapshot
    to_high = (s.donchian_high - price) / s.atr
    to_low = (price - s.donchian_low) / s.atr
    out = s.context.copy()
    out["market_session"] = session
    out["price_level"] = price_level(to_high, to_low, config.price_level.near_atr)
    out["to_high_atr"] = _number(to_high)
    out["to_low_atr"] = _number(to_low)
    return out


def fill_times_ns(fills: pd.DataFrame) -> np.ndarray:
    """The fills' ``time`` column as int64 ns since the epoch (UTC; naive times are UTC)."""
    if "time" not in fills.columns:
        raise ValueError("fills: missing column 'time'")
    times = pd.DatetimeIndex(fills["time"])
    if times.tz is None:
        times = times.tz_localize("UTC")
    if times.hasnans:
        row = fills.index[np.asarray(times.isna())][0]
        raise ValueError(f"fills row {row!r}: time is missing")
    return times.tz_convert("UTC").as_unit("ns").asi8


def market_context(
    candles: pd.DataFrame,
    bar: pd.Timedelta,
    fills: pd.DataFrame,
    config: LabelConfig,
    *,
    calendar: TradingCalendar | None = None,
) -> list[dict[str, Any]]:
    """Per fill (in the frame's row order), its context from the bars of ``candles`` (one
    symbol, indexed by open time, UTC; each ``bar`` long) closed at or before its time.
    ``calendar``: the symbol's known calendar; None reads it from those bars."""
    frame = BarFrame(candles, bar, config)
    times = fill_times_ns(fills)
    if "price" not in fills.columns:
        raise ValueError("fills: missing column 'price'")
    prices = fills["price"].to_numpy(dtype=np.float64)
    positions = frame.last_closed(times)
    calendars = frame.calendars(positions) if calendar is None else {}
    return [
        fill_context(
            frame.snapshot(i) if i >= 0 else None,
            calendar or calendars.get(i, ALWAYS_OPEN),
            t,
            p,
            config,
        )
        for i, t, p in zip(positions.tolist(), times.tolist(), prices.tolist(), strict=True)
    ]


__all__ = [
    "CONTEXT_KEYS",
    "BarFrame",
    "BarSnapshot",
    "BarStream",
    "bar_snapshot",
    "fill_context",
    "market_context",
    "price_level",
]
