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
from typing import Any

import numpy as np
import pandas as pd

from analytics.bar_ranks import window_ranks
from analytics.bar_snapshot import (
    CONTEXT_KEYS,
    NAN,
    BarSnapshot,
    bar_snapshot,
    snapshot_of,
)
from analytics.label_config import LabelConfig
from analytics.sessions import CalendarGrid, CalendarWindow, market_session
from indicators.registry import get as indicator
from market.calendars import ALWAYS_OPEN, TradingCalendar
from market.candles import Candle


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
        """:meth:`snapshot` of each position (>= 0), those not made yet at once: their ranks
        counted together, each column's values at them read in one go."""
        made, new = self._snapshots, [i for i in positions if i not in self._snapshots]
        if new:
            c = self.config
            slope, look, size = c.trend.slope_bars, c.momentum.lookback_bars, c.volume.window
            at = np.array(new, dtype=np.int64)
            volume = self.volume
            columns = (
                self.open_ns[at].tolist(), self.close[at].tolist(), volume[at].tolist(),
                self.atr[at].tolist(),
                window_ranks(self.share, at, c.volatility.rank_window).tolist(),
                self.sma[at].tolist(), _before(self.sma, at, slope),
                _before(self.close, at, look),
                [volume[max(0, i - size) : i].tolist() for i in new],
                *(a[at].tolist() for a in (self.rsi, self.bb_upper, self.bb_lower,
                                           self.dc_high, self.dc_low)),
            )  # fmt: skip
            rows = zip(*columns, strict=True)
            made.update(zip(new, (snapshot_of(c, *raw) for raw in rows), strict=True))
        return [made[i] for i in positions]

    def _snapshot(self, i: int) -> BarSnapshot:
        c = self.config
        slope, look, vol_w = c.trend.slope_bars, c.momentum.lookback_bars, c.volume.window
        return snapshot_of(
            c, int(self.open_ns[i]), float(self.close[i]), float(self.volume[i]),
            float(self.atr[i]), self._rank(i, c.volatility.rank_window), float(self.sma[i]),
            float(self.sma[i - slope]) if i >= slope else NAN,
            float(self.close[i - look]) if i >= look else NAN,
            self.volume[max(0, i - vol_w) : i].tolist(), float(self.rsi[i]),
            float(self.bb_upper[i]), float(self.bb_lower[i]), float(self.dc_high[i]),
            float(self.dc_low[i]),
        )  # fmt: skip

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
        return snapshot_of(self.config, *raw)


def _before(values: np.ndarray, at: np.ndarray, bars: int) -> list[float]:
    """Each position's value ``bars`` before it (NaN before the first)."""
    return np.where(at >= bars, values[np.maximum(at - bars, 0)], NAN).tolist()


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
