"""When a market trades, as its bars show it: the closed weekdays and the daily session.

>>> calendar = infer_calendar(candles.index, pd.Timedelta(hours=1))   # a stock's hourly bars
>>> calendar.closed_days, calendar.session
((5, 6), (13.5, 21.0))
>>> calendar.closed_gaps(candles.index, pd.Timedelta(hours=1))[:1]    # (start, end) UTC
[(Timestamp('2024-01-05 21:00:00+0000', tz='UTC'), Timestamp('2024-01-08 13:30:00+0000', ...))]

Symbols carry no exchange metadata, so the calendar is read from the bars themselves (the
recent ones, :data:`SAMPLE_BARS` at most): a weekday on which no bar ever opens is closed
(stocks: Saturday and Sunday; FX: Saturday; crypto: none), and on intraday bars the longest
stretch of the day no bar covers, when at least :data:`MIN_CLOSED_HOURS` long, is outside the
session (stocks: the night; FX and crypto: none). Hours are UTC, as the charts draw them: a
session that moves with daylight saving time is the union of its summer and winter hours.

A market with closed days also closes on holidays, and its weekend may start and end inside
a day (FX: Friday 22:00 to Sunday 22:00): :meth:`TradingCalendar.closed_gaps` lists the gaps
of a series that hold a whole day without bars. A 24/7 market has none, so its data outages
stay visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from market.timeframes import to_epoch_ms

SAMPLE_BARS = 20_000  # the recent bars a calendar is read from
MIN_WEEKS = 2  # the span the closed weekdays are read from, at least
MIN_DAYS = 2  # the span the session is read from, at least
MIN_CLOSED_HOURS = 1.0  # a shorter daily stretch without bars is a gap in the data, not a night
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TradingCalendar:
    """``closed_days``: weekdays (0 Monday .. 6 Sunday) without trading, ascending;
    ``session``: (open, close) in UTC hours of the day (close < open: the session spans
    midnight UTC; close 0.0: it ends at midnight), None around the clock."""

    closed_days: tuple[int, ...] = ()
    session: tuple[float, float] | None = None

    @property
    def always_open(self) -> bool:
        return not self.closed_days and self.session is None

    def closed_gaps(
        self, index: pd.DatetimeIndex, bar: pd.Timedelta
    ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """The gaps of ``index`` (bar open times, ascending, UTC; each bar ``bar`` long) that
        hold at least one whole UTC day without a bar, as (end of the bar before, open of the
        bar after): weekends and holidays. Empty for a market without closed days (an outage
        is not a holiday)."""
        if not self.closed_days or len(index) < 2:
            return []
        ms = to_epoch_ms(index)
        ends = ms[:-1] + int(bar / pd.Timedelta(milliseconds=1))
        starts = ms[1:]
        first_midnight = -(-ends // _DAY_MS) * _DAY_MS  # the first at or after the gap's start
        positions = np.flatnonzero(first_midnight + _DAY_MS <= starts)
        return [
            (pd.Timestamp(int(ends[i]), unit="ms", tz="UTC"),
             pd.Timestamp(int(starts[i]), unit="ms", tz="UTC"))
            for i in positions.tolist()
        ]  # fmt: skip

    def is_closed(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        """Whether the market is closed all through [start, end) by its weekdays and session
        alone (a holiday is not: it is closed on a weekday the calendar calls open)."""
        a, b = pd.Timestamp(start).value // 1_000_000, pd.Timestamp(end).value // 1_000_000
        day = a // _DAY_MS * _DAY_MS
        while day < b:
            weekday = (day // _DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
            if weekday not in self.closed_days and not self._off_session(
                (max(a, day) - day) / _HOUR_MS, (min(b, day + _DAY_MS) - day) / _HOUR_MS
            ):
                return False
            day += _DAY_MS
        return True

    def _off_session(self, a: float, b: float) -> bool:
        """Whether the hours [a, b) of a day (0 <= a < b <= 24) are all outside the session."""
        if self.session is None:
            return False
        open_, close = self.session
        close = close or 24.0  # a session to midnight
        if open_ < close:
            return b <= open_ or a >= close
        return a >= close and b <= open_


ALWAYS_OPEN = TradingCalendar()


def infer_calendar(index: pd.DatetimeIndex, bar: pd.Timedelta) -> TradingCalendar:
    """The calendar the recent bars of ``index`` (open times, ascending, UTC; each ``bar``
    long) follow; around the clock when they are too few to tell (under :data:`MIN_WEEKS`
    for the weekdays, under :data:`MIN_DAYS` for the session) or a bar is longer than a day."""
    recent = index[-SAMPLE_BARS:]
    day = pd.Timedelta(days=1)
    if len(recent) < 2 or bar > day:
        return ALWAYS_OPEN
    span = recent[-1] - recent[0]
    closed: tuple[int, ...] = ()
    if span >= pd.Timedelta(weeks=MIN_WEEKS):
        open_days = set(np.unique(recent.day_of_week).tolist())
        closed = tuple(d for d in range(7) if d not in open_days)
    session = None
    if bar < day and span >= pd.Timedelta(days=MIN_DAYS):
        session = _session(recent, bar)
    return TradingCalendar(closed, session)


def _session(index: pd.DatetimeIndex, bar: pd.Timedelta) -> tuple[float, float] | None:
    """(open, close) hours around the longest stretch of the UTC day no bar covers, when it
    is at least MIN_CLOSED_HOURS long; None when bars cover the day round."""
    minute_of_day = np.unique((index.hour * 60 + index.minute).to_numpy())
    length = max(1, int(bar / pd.Timedelta(minutes=1)))
    covered = np.zeros(2 * 1440, dtype=bool)  # the day twice: a bar may run past midnight
    for start in minute_of_day.tolist():
        covered[start : start + length] = True
    covered = covered[:1440] | covered[1440:]
    if covered.all():
        return None
    # the longest circular run of minutes no bar covers: walk the day twice
    best_len, best_start, run = 0, 0, 0
    for minute, free in enumerate(np.r_[~covered, ~covered].tolist()):
        run = run + 1 if free else 0
        if run > best_len:
            best_len, best_start = run, minute - run + 1
    if best_len < MIN_CLOSED_HOURS * 60:
        return None
    close = (best_start % 1440) / 60
    reopen = ((best_start + best_len) % 1440) / 60
    return reopen, close
