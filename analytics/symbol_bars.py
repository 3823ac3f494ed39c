"""A symbol's closed bars as the labels read them: one at a time, or known up front.

>>> bars = SymbolBars(config, pd.Timedelta(minutes=1), history=warm, keep_bars=4096)
>>> bars.update(candle, open_ns)                                 # live: O(1) per bar
>>> snapshots, of = bars.bars_at(fill_times_ns)
>>> whole = FrameBars(config, pd.Timedelta(minutes=1), candles)  # every bar, from the start
>>> snapshots, of = whole.bars_at(fill_times_ns)                 # == SymbolBars fed in turn

:class:`SymbolBars` follows a symbol's bars as they close (the incremental indicators,
:class:`analytics.market_context.BarStream`), keeping the latest ones' snapshots for the
fills that read them; a warm-up history is taken at once, in the state of feeding it in turn.

:class:`FrameBars` is for bars known before the fills that read them (a replay over stored
bars, a batch that reads many bars). Feeding them one at a time costs a few microseconds a
bar (the indicators' incremental states, the calendar window), most of a 100,000-bar
replay's labelling, for the few bars fills read. Here the indicators are computed once over
the whole frame (:class:`analytics.market_context.BarFrame`, equal to the incremental form
to the bit when both start at the same bar) and the calendar only at the bars read
(:class:`analytics.sessions.CalendarGrid`). A fill at time t still reads the last bar closed
at or before t and nothing later: every indicator at a bar depends only on the bars up to
it, from the frame's first.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.label_config import LabelConfig
from analytics.market_context import BarFrame, BarSnapshot, BarStream
from market.calendars import ALWAYS_OPEN, TradingCalendar
from market.candles import Candle

OHLCV = ("open", "high", "low", "close", "volume")  # a candle frame's columns, in order


class SymbolBars:
    """One symbol's closed bars as the labels read them: each bar's snapshot (indicators,
    calendar) kept for the ``keep_bars`` latest, O(1) per bar. Shared by the Labellers of
    every account trading the symbol (the bars' part does not depend on the account).
    ``history``: the bars it starts after, taken at once (:class:`BarStream`'s ``history``;
    the kept ones among them read from a :class:`BarFrame` over them when a fill first reads
    one): the same as :meth:`update_frame` with them, for a fraction of the cost."""

    def __init__(
        self,
        config: LabelConfig,
        bar: pd.Timedelta,
        *,
        calendar: TradingCalendar | None = None,
        history: pd.DataFrame | None = None,
        keep_bars: int = 64,
    ) -> None:
        self._calendar = calendar
        # the kept bars' close times (ascending, for a binary search) and (snapshot, calendar);
        # up to twice keep_bars are held, halved when full (amortised O(1) per bar)
        self._keep = keep_bars
        self._closes: list[int] = []
        # (the snapshot, the raw values it is made from or the position of a history bar
        # when first read; the calendar, None for a history bar's until first read)
        self._recent: list[tuple[BarSnapshot | tuple | int, TradingCalendar | None]] = []
        self._dropped = False
        self._history: BarFrame | None = None
        if history is None or not len(history):
            self._stream = BarStream(config, bar)
            self.bar_ns = self._stream.bar_ns
            return
        self._stream = BarStream(config, bar, history=history)
        self.bar_ns = self._stream.bar_ns
        frame = BarFrame(history, bar, config)
        self._history = frame
        kept = _kept(len(history), keep_bars)
        self._dropped = kept < len(history)
        start = len(history) - kept
        self._closes = (frame.open_ns[start:] + self.bar_ns).tolist()
        self._recent = [(i, calendar) for i in range(start, len(history))]

    @property
    def last_open_ns(self) -> int | None:
        return self._stream.last_open_ns

    def update_frame(self, bars: pd.DataFrame) -> None:
        """Apply closed bars (a candle frame indexed by open time), in order."""
        opens = pd.DatetimeIndex(bars.index).as_unit("ns").asi8.tolist()
        columns = (bars[c].to_numpy(dtype=np.float64).tolist() for c in OHLCV)
        for open_ns, (o, h, low, c, v) in zip(opens, zip(*columns, strict=True), strict=True):
            self.update(Candle(None, o, h, low, c, v), open_ns)  # type: ignore[arg-type]

    def update(self, candle: Candle, open_ns: int) -> None:
        # the bar's raw values: its snapshot is made when a fill first reads it (most bars
        # of a run are never read: making each one's was most of a bar's cost)
        raw = self._stream.update_raw(candle, open_ns)
        calendar = self._calendar or self._stream.calendar.calendar()
        if len(self._closes) >= 2 * self._keep:
            del self._closes[: self._keep], self._recent[: self._keep]
            self._dropped = True
        self._closes.append(open_ns + self.bar_ns)
        self._recent.append((raw, calendar))  # type: ignore[arg-type]

    def update_many(self, opens: list[int], rows: Sequence[Sequence[float]]) -> None:
        """:meth:`update` of bars in turn (open times ``opens``, rows (open, high, low, close,
        volume)), fed to the indicators column by column (:meth:`BarStream.update_many`)."""
        if not opens:
            return
        fixed = self._calendar
        raws, calendars = self._stream.update_many(opens, rows, calendars=fixed is None)
        closes, recent, keep, bar_ns = self._closes, self._recent, self._keep, self.bar_ns
        for open_ns, raw, calendar in zip(
            opens, raws, calendars or [fixed] * len(raws), strict=True
        ):
            if len(closes) >= 2 * keep:
                del closes[:keep], recent[:keep]
                self._dropped = True
            closes.append(open_ns + bar_ns)
            recent.append((raw, calendar))

    def bar_at(self, time_ns: int) -> tuple[BarSnapshot | None, TradingCalendar]:
        """The snapshot of the last bar closed at or before ``time_ns``, and its calendar."""
        return self._bar(bisect_right(self._closes, time_ns), time_ns)

    def bars_at(
        self, times_ns: Sequence[int]
    ) -> tuple[list[tuple[BarSnapshot | None, TradingCalendar]], list[int]]:
        """:meth:`bar_at` of many times: the distinct bars they see (snapshot, calendar) and
        each time's index into them."""
        closes, index = self._closes, {}
        bars: list[tuple[BarSnapshot | None, TradingCalendar]] = []
        of = []
        for time_ns in times_ns:
            k = bisect_right(closes, time_ns)
            j = index.get(k)
            if j is None:
                j = index[k] = len(bars)
                bars.append(self._bar(k, time_ns))
            of.append(j)
        return bars, of

    def _bar(self, k: int, time_ns: int) -> tuple[BarSnapshot | None, TradingCalendar]:
        """The kept bar before position ``k`` of the close times (0: none), for ``time_ns``."""
        if k:
            held, calendar = self._recent[k - 1]
            if isinstance(held, int):  # a history bar: read from the frame over them
                assert self._history is not None
                frame = self._history
                if calendar is None:
                    calendar = frame.calendars((held,))[held]
                held = frame.snapshot(held)
                self._recent[k - 1] = (held, calendar)
            elif isinstance(held, tuple):  # raw values: made into the snapshot once
                held = self._stream.snapshot(held)
                self._recent[k - 1] = (held, calendar)
            assert calendar is not None
            return held, calendar
        if self._dropped:
            oldest = pd.Timestamp(self._closes[0], tz="UTC")
            raise ValueError(
                f"fill at {pd.Timestamp(time_ns, tz='UTC')} is older than the bars kept "
                f"(the oldest closed at {oldest}); label it with label_fills"
            )
        return None, self._calendar or ALWAYS_OPEN


def _kept(fed: int, keep: int) -> int:
    """How many bars :meth:`SymbolBars.update` keeps after ``fed`` bars: up to twice
    ``keep``, halved (by ``keep``) when full before a bar is added."""
    if fed <= 2 * keep:
        return fed
    return keep + (fed - 2 * keep - 1) % keep + 1


class FrameBars:
    """:class:`analytics.labels.SymbolBars`' reads (``bar_ns``, ``bars_at``) over a candle
    frame (indexed by open time, ascending) given whole: the same snapshots and calendars as
    a SymbolBars that was given the frame's bars in order, each before the fills after it."""

    def __init__(
        self,
        config: LabelConfig,
        bar: pd.Timedelta,
        candles: pd.DataFrame,
        *,
        calendar: TradingCalendar | None = None,
        known_until: pd.Timestamp | None = None,
    ) -> None:
        self.candles = candles
        self._frame = BarFrame(candles, bar, config)
        self.bar_ns = self._frame.bar_ns
        self._closes = self._frame.open_ns + self.bar_ns
        self._calendar = calendar
        # every bar that opened by then is given (default: its last bar's open)
        self._known_ns = (
            int(pd.Timestamp(known_until).value) if known_until is not None
            else int(self._frame.open_ns[-1]) if len(self._frame.open_ns) else None
        )  # fmt: skip

    def covers(self, time_ns: int) -> bool:
        """Whether every bar a fill at ``time_ns`` may read (those opened by ``time_ns`` -
        bar) is given: ``known_until`` (default: the last bar's open) is not before it."""
        return self._known_ns is not None and time_ns - self.bar_ns <= self._known_ns

    def bars_at(
        self, times_ns: Sequence[int] | np.ndarray
    ) -> tuple[list[tuple[BarSnapshot | None, TradingCalendar]], list[int]]:
        """The distinct bars the times see (snapshot, calendar; None before the first bar
        closed) and each time's index into them."""
        times = np.asarray(times_ns, dtype=np.int64)
        if len(times) and not self.covers(int(times.max())):
            after = pd.Timestamp(int(times.max()), tz="UTC")
            raise ValueError(
                f"a fill at {after} may read a bar after those given (every one opened by"
                f" {pd.Timestamp(self._known_ns or 0, tz='UTC')})"
            )
        positions = np.searchsorted(self._closes, times, side="right") - 1
        distinct, of = np.unique(positions, return_inverse=True)
        wanted = distinct.tolist()
        calendars = self._frame.calendars(distinct) if self._calendar is None else {}
        bars: list[tuple[BarSnapshot | None, TradingCalendar]] = []
        read = iter(self._frame.snapshots([i for i in wanted if i >= 0]))
        for i in wanted:
            if i < 0:
                bars.append((None, self._calendar or ALWAYS_OPEN))
            else:
                bars.append((next(read), self._calendar or calendars[i]))
        return bars, of.reshape(-1).tolist()


__all__ = ["FrameBars", "SymbolBars"]
