"""Sessions: the calendar a symbol's bars show as of each bar, and where a time falls in it.

>>> window = CalendarWindow(pd.Timedelta(hours=1))
>>> for open_ns in candles.index.as_unit("ns").asi8: window.update(open_ns)
>>> window.calendar()                                  # == infer_calendar(candles.index, bar)
TradingCalendar(closed_days=(5, 6), session=(14.5, 21.0))
>>> market_session(window.calendar(), time_ns, config.sessions)
'regular'

A market with session hours (read from intraday bars by market/calendars.py) has
``regular`` within them, ``pre_market`` in the configured minutes before the open and
``after_hours`` otherwise; a market without (24/7, or bars of a day or longer, from which no
hours can be read) has the configured UTC sessions (europe, america, asia by default). The
calendar's closed weekdays are not looked at: a fill on one is rare, and a session that
opens on Sunday evening UTC (FX) would be ruled out wrongly.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

from analytics.label_config import Sessions
from market.calendars import ALWAYS_OPEN, MIN_DAYS, MIN_WEEKS, SAMPLE_BARS, TradingCalendar
from market.calendars import _session as session_hours

MINUTE_NS = 60_000_000_000
DAY_NS = 1440 * MINUTE_NS


class CalendarWindow:
    """:func:`market.calendars.infer_calendar` kept up to date one bar at a time: the same
    calendar as ``infer_calendar(index[:i + 1], bar)`` after the bar i, in O(1) per bar. It
    is built again only when something it depends on changed: a weekday or a minute of the
    day that gains its first bar or loses its last, or the span passing MIN_DAYS or
    MIN_WEEKS (the session's hours are read again only when the set of minutes changed)."""

    __slots__ = (
        "_bar_ns",
        "_calendar",
        "_days",
        "_minutes",
        "_session",
        "_size",
        "_spans",
        "_times",
    )

    def __init__(self, bar: pd.Timedelta, size: int = SAMPLE_BARS) -> None:
        self._bar_ns = int(pd.Timedelta(bar).value)
        self._size = size
        self._times: deque[int] = deque()
        self._days = [0] * 7
        self._minutes = [0] * 1440
        self._spans = (False, False, False)  # (2 bars or more, MIN_DAYS, MIN_WEEKS spanned)
        self._session: tuple[tuple[float, float] | None] | None = None  # None: to read again
        self._calendar: TradingCalendar | None = ALWAYS_OPEN  # None: to build again

    def update(self, open_ns: int) -> None:
        """Apply the next bar (its open time in ns)."""
        times = self._times
        times.append(open_ns)
        self._count(open_ns, 1)
        if len(times) > self._size:
            self._count(times.popleft(), -1)
        span = times[-1] - times[0]
        spans = (len(times) > 1, span >= MIN_DAYS * DAY_NS, span >= MIN_WEEKS * 7 * DAY_NS)
        if spans != self._spans:
            self._spans, self._calendar = spans, None

    def _count(self, open_ns: int, step: int) -> None:
        day = (open_ns // DAY_NS + 3) % 7  # 1970-01-01 was a Thursday
        minute = open_ns % DAY_NS // MINUTE_NS
        days, minutes = self._days, self._minutes
        before = days[day]
        days[day] = before + step
        if before == 0 or before + step == 0:
            self._calendar = None
        before = minutes[minute]
        minutes[minute] = before + step
        if before == 0 or before + step == 0:
            self._session = self._calendar = None

    def calendar(self) -> TradingCalendar:
        """The calendar as of the last bar applied."""
        if self._calendar is None:
            self._calendar = self._build()
        return self._calendar

    def _build(self) -> TradingCalendar:
        two_bars, days, weeks = self._spans
        bar = self._bar_ns
        if not two_bars or bar > DAY_NS:
            return ALWAYS_OPEN
        closed = tuple(d for d in range(7) if not self._days[d]) if weeks else ()
        session = None
        if bar < DAY_NS and days:
            if self._session is None:
                present = np.flatnonzero(np.array(self._minutes)) * MINUTE_NS
                minutes = pd.to_datetime(present, unit="ns", utc=True)
                self._session = (session_hours(pd.DatetimeIndex(minutes), pd.Timedelta(bar)),)
            session = self._session[0]
        if not closed and session is None:
            return ALWAYS_OPEN
        return TradingCalendar(closed, session)


def market_session(calendar: TradingCalendar, time_ns: int, sessions: Sessions) -> str:
    """regular / pre_market / after_hours for a calendar with session hours; else the UTC
    session (config ``utc_sessions``) the time falls in."""
    minute = time_ns % DAY_NS / MINUTE_NS
    if calendar.session is None:
        hour = minute / 60.0
        name = sessions.utc_sessions[-1][1]  # the last one runs past midnight to the first
        for start, session in sessions.utc_sessions:
            if hour >= start:
                name = session
        return name
    since_open, length = _session_position(calendar.session, minute)
    if since_open < length:
        return "regular"
    until_open = 1440.0 - since_open
    return "pre_market" if until_open <= sessions.pre_market_minutes else "after_hours"


def session_edges(
    calendar: TradingCalendar, time_ns: int, open_minutes: float, close_minutes: float
) -> tuple[bool, bool]:
    """(in the first ``open_minutes`` of the session, in its last ``close_minutes``); the UTC
    day stands for the session of a calendar without session hours."""
    minute = time_ns % DAY_NS / MINUTE_NS
    since_open, length = (
        (minute, 1440.0)
        if calendar.session is None
        else _session_position(calendar.session, minute)
    )
    if since_open >= length:
        return False, False
    return since_open < open_minutes, length - since_open <= close_minutes


def _session_position(session: tuple[float, float], minute: float) -> tuple[float, float]:
    """(minutes since the session opened, modulo a day; the session's length in minutes)."""
    open_m, close_m = session[0] * 60.0, session[1] * 60.0
    length = (close_m - open_m) % 1440.0 or 1440.0
    return (minute - open_m) % 1440.0, length


__all__ = ["DAY_NS", "MINUTE_NS", "CalendarWindow", "market_session", "session_edges"]
