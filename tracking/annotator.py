"""Market context and labels of new trades, from what was known at their execution.

>>> tracker = TradeTracker(sessions, annotator=MarketAnnotator(load_label_config()))

One :class:`analytics.labels.SymbolBars` per symbol follows its stored bars (its finest
stored timeframe), warmed up on the bars before the first trade seen, shared by every
account trading it. A trade's labels are :class:`analytics.labels.Labeller`'s rule
(``fill_context`` and ``fill_labels``), its position's part (what it opened and closed, at
which entry price and time) handed over by the tracker's column-wise FIFO pass
(:mod:`analytics.trade_batch`), and the trailing entry sizes kept per (account, symbol),
warmed from the tracker's history of the account: O(1) per trade, no read of the stored
fills. Each batch reads the bars closed by its last trade once; they are fed in time order up
to each trade's time, so a trade is read against the last bar closed at or before it (never a
later one), among the :data:`KEEP_BARS` latest. A symbol without stored bars gets a
context without market categories and only the labels fills alone decide (sizes, holding
times, stop reasons). The news calendar (``news_events``) is read once, at the first trade a
tracker labels: a calendar imported later is seen by trackers started after it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from analytics.label_config import LabelConfig
from analytics.labels import NAN, Fill, FillRole, NewsCalendar, SymbolBars, as_fill, fill_labels
from analytics.market_context import SortedWindow, fill_context
from database.records import TradeRecord
from database.repositories.candles import CandleRepository
from database.repositories.news import NewsRepository
from market.candles import Candle
from market.timeframes import Timeframe
from tracking.tracker import AccountHistory

WARMUP_BARS = 400  # the longest window of the default rules (ATR rank 100 on ATR 14, SMA 50)
CALENDAR_SPAN = pd.Timedelta(days=21)  # what the calendar (closed days, session) is read from
NO_BARS = pd.Timedelta(minutes=1)  # a Labeller needs a bar length even without bars
KEEP_BARS = 4096  # bars a trade may lag behind the newest bar fed (another account's trades)


@dataclass
class _Symbol:
    bars: SymbolBars
    timeframe: str | None  # None: the symbol has no stored bars
    bar: pd.Timedelta
    last_open: pd.Timestamp | None  # the last bar fed


class MarketAnnotator:
    """The tracker's annotator (see the module text)."""

    def __init__(self, config: LabelConfig | None = None, *, warmup_bars: int = WARMUP_BARS):
        from analytics.label_config import load_label_config

        self.config = config or load_label_config()
        self._warmup = warmup_bars
        self._news: NewsCalendar | None = None  # the news calendar, read at the first trade
        self._symbols: dict[str, _Symbol] = {}
        self._windows: dict[tuple[str, str], SortedWindow] = {}  # trailing entry sizes
        self._timeframes: dict[str, str | None] = {}

    def annotate(
        self,
        session: Session,
        records: list[TradeRecord],
        history: AccountHistory,
        roles: Sequence[tuple[float, float, float, int, int]],
    ) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        """(context, labels) of each record, in order (records of one account, in time order
        per symbol), given each one's role in its position (the tracker's FIFO pass:
        opened, closed, entry price, direction, entry ns) and the account's ``history``
        before them."""
        out: list[tuple[dict[str, Any], tuple[str, ...]]] = [({}, ())] * len(records)
        rows: dict[str, list[int]] = {}
        for k, record in enumerate(records):
            rows.setdefault(record.symbol, []).append(k)
        for symbol, ks in rows.items():
            follow = self._symbols.get(symbol)
            if follow is None:
                follow = self._symbols[symbol] = self._start(session, records[ks[0]])
            key = (history.account_id, symbol)
            sizes = self._windows.get(key)
            if sizes is None:
                sizes = self._windows[key] = self._window(session, key, history)
            opens, values = self._pending(session, follow, symbol, records[ks[-1]].execution_time)
            fed = 0
            for k in ks:
                record = records[k]
                if fed < len(opens):
                    fed = self._feed(follow, opens, values, fed, record.execution_time)
                out[k] = self._label(follow, sizes, record, roles[k])
        return out

    def forget(self, account: str) -> None:
        """Drop the account's trailing entry sizes (its trades were rolled back or written
        elsewhere): made again from the tracker's history when next needed."""
        for key in [k for k in self._windows if k[0] == account]:
            del self._windows[key]

    def _window(
        self, session: Session, key: tuple[str, str], history: AccountHistory
    ) -> SortedWindow:
        """The trailing entry sizes of an account and symbol, from the tracker's history
        (every entry's notional, in order: the window keeps the latest)."""
        if self._news is None:
            self._news = NewsCalendar(NewsRepository(session).frame())
        window = SortedWindow(self.config.entry_sizes.window)
        for value in history.entries.get(key[1], [])[-self.config.entry_sizes.window :]:
            window.push(value)
        return window

    def _label(
        self,
        follow: _Symbol,
        sizes: SortedWindow,
        record: TradeRecord,
        role: tuple[float, float, float, int, int],
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """One fill's (context, labels): :meth:`analytics.labels.Labeller.annotate`'s rule,
        its position's part (FIFO lots, trailing sizes) given by the tracker's pass."""
        fill = _fill(record)
        snapshot, calendar = follow.bars.bar_at(fill.time_ns)
        context = fill_context(snapshot, calendar, fill.time_ns, fill.price, self.config)
        opened, closed, entry_price, direction, entry_ns = role
        entries = self.config.entry_sizes
        median = sizes.median() if len(sizes) >= entries.min_history else NAN
        if opened > 0:
            sizes.push(opened * fill.price)
        made = FillRole(opened, median, closed, entry_price, entry_ns, direction)
        assert self._news is not None  # read with the account's first window
        labels = fill_labels(
            self.config, follow.bars.bar_ns, snapshot, calendar, fill, made, self._news
        )
        return context, labels

    def _warm_bars(self, bar: pd.Timedelta) -> int:
        """Enough bars for the rules' windows and for the calendar (three weeks of bars, at
        most the bars a calendar is ever read from)."""
        from market.calendars import SAMPLE_BARS

        return int(min(SAMPLE_BARS, max(self._warmup, -(-CALENDAR_SPAN // bar))))

    def _timeframe(self, session: Session, symbol: str) -> str | None:
        if symbol not in self._timeframes:
            stored = CandleRepository(session).timeframes(symbol)
            self._timeframes[symbol] = (
                min(stored, key=lambda t: Timeframe.parse(t).delta) if stored else None
            )
        return self._timeframes[symbol]

    def _start(self, session: Session, first: TradeRecord) -> _Symbol:
        timeframe = self._timeframe(session, first.symbol)
        bar = Timeframe.parse(timeframe).delta if timeframe else NO_BARS
        warm = None
        if timeframe is not None:
            # bars that closed by the first trade: open <= time - bar
            end = pd.Timestamp(first.execution_time) - bar
            warm = CandleRepository(session).frame(
                first.symbol, timeframe, end=end, last=self._warm_bars(bar)
            )
        bars = SymbolBars(self.config, bar, history=warm, keep_bars=KEEP_BARS)
        last_open = None if warm is None or warm.empty else warm.index[-1]
        return _Symbol(bars, timeframe, bar, last_open)

    def _pending(
        self, session: Session, follow: _Symbol, symbol: str, time: Any
    ) -> tuple[np.ndarray, list[tuple[float, ...]]]:
        """The bars closed by ``time`` not fed yet (one query per symbol and batch): open
        times (ns) and (open, high, low, close, volume) rows."""
        if follow.timeframe is None:
            return _NONE
        end = pd.Timestamp(time) - follow.bar
        if follow.last_open is not None and follow.last_open >= end:
            return _NONE
        bars = CandleRepository(session).bars_after(
            symbol, follow.timeframe, after=follow.last_open, end=end
        )
        if not len(bars):
            return _NONE
        opens = bars["ts"].astype(np.int64) * 1_000_000
        columns = [bars[c].astype(np.float64).tolist() for c in _OHLCV]
        return opens, list(zip(*columns, strict=True))

    @staticmethod
    def _feed(
        follow: _Symbol, opens: np.ndarray, values: list[tuple[float, ...]], fed: int, time: Any
    ) -> int:
        """Feed the pending bars from ``fed`` that closed by ``time``; the new count fed."""
        end_ns = pd.Timestamp(time).value - follow.bar.value
        stop = int(np.searchsorted(opens, end_ns, side="right"))
        for k in range(fed, stop):
            follow.bars.update(Candle(None, *values[k]), int(opens[k]))  # type: ignore[arg-type]
        if stop > fed:
            follow.last_open = pd.Timestamp(int(opens[stop - 1]), tz="UTC")
        return max(fed, stop)


_OHLCV = ("open", "high", "low", "close", "volume")
# a paper fill's trigger (trading.orders.FillEvent.trigger) as the stop_loss label's reason
_TRIGGER_REASON = {"stop": "stop_loss", "trailing_stop": "stop_loss"}


def _fill(record: TradeRecord) -> Fill:
    """The fill the labels read, with the exit reason its source recorded: ``reason`` in the
    record's context (an importer's), or the paper broker's stop triggers."""
    fill = as_fill(record)
    context = record.market_context
    reason = context.get("reason") or _TRIGGER_REASON.get(context.get("trigger"))
    return dataclasses.replace(fill, reason=reason) if isinstance(reason, str) else fill


_NONE: tuple[np.ndarray, list] = (np.empty(0, dtype=np.int64), [])

__all__ = ["CALENDAR_SPAN", "KEEP_BARS", "WARMUP_BARS", "MarketAnnotator"]
