"""A symbol's bars known up front, read as :class:`analytics.labels.SymbolBars` reads them.

>>> bars = FrameBars(config, pd.Timedelta(minutes=1), candles)   # every bar, from the start
>>> snapshots, of = bars.bars_at(fill_times_ns)                  # == SymbolBars fed in turn

A replay over stored bars (``app.py paper replay``) knows every bar its fills will be read
against before the first one. Feeding them one at a time to a :class:`SymbolBars` costs a
few microseconds a bar (the indicators' incremental states, the calendar window), most of a
100,000-bar replay's labelling, for the few bars fills read. Here the indicators are computed
once over the whole frame (:class:`analytics.market_context.BarFrame`, equal to the
incremental form to the bit when both start at the same bar) and the calendar only at the
bars read (:func:`analytics.sessions.calendars_at`). A fill at time t still reads the last
bar closed at or before t and nothing later: every indicator at a bar depends only on the
bars up to it, from the frame's first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.label_config import LabelConfig
from analytics.market_context import BarFrame, BarSnapshot
from analytics.sessions import CalendarSweep
from market.calendars import ALWAYS_OPEN, TradingCalendar


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
        self._calendars: dict[int, TradingCalendar] = {}
        self._sweep = CalendarSweep(self._frame.open_ns, self.bar_ns)

    @property
    def last_open_ns(self) -> int | None:
        opens = self._frame.open_ns
        return int(opens[-1]) if len(opens) else None

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
        if self._calendar is None:
            missing = [i for i in wanted if i >= 0 and i not in self._calendars]
            if missing:
                self._calendars.update(self._sweep.at(missing))
        bars: list[tuple[BarSnapshot | None, TradingCalendar]] = []
        for i in wanted:
            if i < 0:
                bars.append((None, self._calendar or ALWAYS_OPEN))
            else:
                bars.append((self._frame.snapshot(i), self._calendar or self._calendars[i]))
        return bars, of.reshape(-1).tolist()


__all__ = ["FrameBars"]
