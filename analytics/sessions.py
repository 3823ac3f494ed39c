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
from collections.abc import Sequence

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

    @classmethod
    def of(cls, open_ns: np.ndarray, bar: pd.Timedelta, size: int = SAMPLE_BARS) -> CalendarWindow:
        """The window after the bars of ``open_ns`` (ascending) were applied in turn, made at
        once from the last ``size`` of them (all it keeps)."""
        window = cls(bar, size)
        kept = np.asarray(open_ns, dtype=np.int64)[-size:]
        if not len(kept):
            return window
        window._times.extend(kept.tolist())
        window._days = np.bincount((kept // DAY_NS + 3) % 7, minlength=7).tolist()
        window._minutes = np.bincount(kept % DAY_NS // MINUTE_NS, minlength=1440).tolist()
        span = int(kept[-1] - kept[0])
        window._spans = (
            len(kept) > 1, span >= MIN_DAYS * DAY_NS, span >= MIN_WEEKS * 7 * DAY_NS
        )  # fmt: skip
        window._session = window._calendar = None  # made when first asked
        return window

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
        if self._session is None and self._spans[1] and self._bar_ns < DAY_NS:
            self._session = (_hours(np.array(self._minutes), self._bar_ns),)
        hours = self._session[0] if self._session is not None else None
        return _calendar(self._bar_ns, self._spans, self._days, hours)


def _hours(minutes: np.ndarray, bar_ns: int) -> tuple[float, float] | None:
    """The session's hours read from the minutes of the day that hold bars (counts)."""
    present = np.flatnonzero(minutes) * MINUTE_NS
    stamps = pd.to_datetime(present, unit="ns", utc=True)
    return session_hours(pd.DatetimeIndex(stamps), pd.Timedelta(bar_ns))


def _calendar(
    bar_ns: int,
    spans: tuple[bool, bool, bool],
    days: Sequence[int],
    hours: tuple[float, float] | None,
) -> TradingCalendar:
    """The calendar of a window of bars: its spans (2 bars or more, MIN_DAYS, MIN_WEEKS),
    its bars per weekday and its session's hours (read when it spans MIN_DAYS)."""
    two_bars, spans_days, weeks = spans
    if not two_bars or bar_ns > DAY_NS:
        return ALWAYS_OPEN
    closed = tuple(d for d in range(7) if not days[d]) if weeks else ()
    session = hours if bar_ns < DAY_NS and spans_days else None
    if not closed and session is None:
        return ALWAYS_OPEN
    return TradingCalendar(closed, session)


class CalendarGrid:
    """:class:`CalendarWindow`'s calendar after chosen bars of one series of open times
    (ascending), without feeding every bar. The calendar can change only at a bar where a
    weekday or a minute of the day enters or leaves the window, or its span passes a
    threshold (:func:`calendar_events`, found once over the whole column when first asked);
    a bar's calendar is the one at the last such bar. That one is made once: the window's
    weekday and minute counts are moved to it a slice at a time (forward; a bar behind the
    last counted counts afresh), and a calendar is built again only when a weekday or minute
    may have gained its first bar or lost its last, or the spans changed."""

    def __init__(self, open_ns: np.ndarray, bar_ns: int, size: int = SAMPLE_BARS) -> None:
        self.open_ns = np.asarray(open_ns, dtype=np.int64)
        self.bar_ns, self._size = int(bar_ns), size
        self._day = (self.open_ns // DAY_NS + 3) % 7  # 1970-01-01 was a Thursday
        self._minute = self.open_ns % DAY_NS // MINUTE_NS
        self._events: np.ndarray | None = None  # the bars where the calendar may change
        self._known: dict[int, TradingCalendar] = {}  # an event bar -> its calendar
        self._days, self._minutes = np.zeros(7, np.int64), np.zeros(1440, np.int64)
        self._lo = self._hi = 0  # the bars counted: [lo, hi)
        self._last: TradingCalendar | None = None  # the calendar of the counts (None: to make)
        self._spans = (False, False, False)
        self._made: dict[tuple, TradingCalendar] = {}
        self._hours: dict[bytes, tuple[float, float] | None] = {}

    def same(self, open_ns: np.ndarray, bar_ns: int) -> bool:
        """Whether this is the grid of these open times and bar length."""
        return bar_ns == self.bar_ns and np.array_equal(self.open_ns, open_ns)

    def at(self, positions: Sequence[int] | np.ndarray) -> dict[int, TradingCalendar]:
        """The calendar after each bar of ``positions`` (negative ones: none)."""
        wanted = np.unique(np.asarray(positions, dtype=np.int64))
        wanted = wanted[wanted >= 0]
        if not len(wanted):
            return {}
        if self._events is None:
            self._events = np.flatnonzero(calendar_events(self.open_ns, self.bar_ns, self._size))
        events = self._events
        last = events[np.searchsorted(events, wanted, side="right") - 1].tolist()
        known = self._known
        for e in sorted(set(last) - known.keys()):
            known[e] = self._after(e)
        return {p: known[e] for p, e in zip(wanted.tolist(), last, strict=True)}

    def _after(self, i: int) -> TradingCalendar:
        days, minutes, day, minute = self._days, self._minutes, self._day, self._minute
        lo = max(0, i - self._size + 1)
        if i + 1 < self._hi or lo >= self._hi:  # behind, or past everything counted: afresh
            days[:], minutes[:] = 0, 0
            self._lo = self._hi = lo
            self._last = None
        hi, old = self._hi, self._lo
        if hi <= i:
            enter_d, enter_m = day[hi : i + 1], minute[hi : i + 1]
            if (days[enter_d] == 0).any() or (minutes[enter_m] == 0).any():
                self._last = None
            np.add.at(days, enter_d, 1)
            np.add.at(minutes, enter_m, 1)
        if old < lo:
            leave_d, leave_m = day[old:lo], minute[old:lo]
            np.subtract.at(days, leave_d, 1)
            np.subtract.at(minutes, leave_m, 1)
            if (days[leave_d] == 0).any() or (minutes[leave_m] == 0).any():
                self._last = None
        self._lo, self._hi = lo, i + 1
        span = int(self.open_ns[i] - self.open_ns[lo])
        spans = (i > lo, span >= MIN_DAYS * DAY_NS, span >= MIN_WEEKS * 7 * DAY_NS)
        if spans != self._spans:
            self._spans, self._last = spans, None
        if self._last is None:
            self._last = self._make(spans)
        return self._last

    def _make(self, spans: tuple[bool, bool, bool]) -> TradingCalendar:
        present_days = tuple(bool(d) for d in self._days)
        present_minutes = (self._minutes > 0).tobytes()
        key = (spans, present_days, present_minutes)
        calendar = self._made.get(key)
        if calendar is None:
            hours = None
            if spans[1] and self.bar_ns < DAY_NS:
                if present_minutes not in self._hours:
                    self._hours[present_minutes] = _hours(self._minutes, self.bar_ns)
                hours = self._hours[present_minutes]
            calendar = self._made[key] = _calendar(self.bar_ns, spans, present_days, hours)
        return calendar


def calendar_events(open_ns: np.ndarray, bar_ns: int, size: int) -> np.ndarray:
    """Per bar: may the calendar of a window of the last ``size`` bars change here? True
    where a weekday or a minute of the day gains its first bar in the window or loses its
    last, or the window's span passes two bars, MIN_DAYS or MIN_WEEKS (CalendarWindow's
    rebuild conditions; the first bar always)."""
    n = len(open_ns)
    index = np.arange(n)
    events = np.zeros(n, bool)
    events[:1] = True
    for key in ((open_ns // DAY_NS + 3) % 7, open_ns % DAY_NS // MINUTE_NS):
        order = np.argsort(key, kind="stable")
        same = key[order][1:] == key[order][:-1]
        before = np.full(n, -1, np.int64)
        before[order[1:]] = np.where(same, order[:-1], -1)
        after = np.full(n, n + size, np.int64)
        after[order[:-1]] = np.where(same, order[1:], n + size)
        events |= (before < 0) | (before < index - size)  # its count was 0 before this bar
        leaving = index - size  # the bar this one pushes out of the window
        out = leaving >= 0
        events[out] |= after[leaving[out]] > index[out]
    first = open_ns[np.maximum(index - size + 1, 0)]
    span = open_ns - first
    flags = (
        (index >= 1).astype(np.int8)
        + 2 * (span >= MIN_DAYS * DAY_NS)
        + 4 * (span >= MIN_WEEKS * 7 * DAY_NS)
    )
    events[1:] |= flags[1:] != flags[:-1]
    return events


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


__all__ = [
    "DAY_NS",
    "MINUTE_NS",
    "CalendarGrid",
    "CalendarWindow",
    "calendar_events",
    "market_session",
    "session_edges",
]
