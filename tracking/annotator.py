"""Market context and labels of new trades, from what was known at their execution.

>>> tracker = TradeTracker(sessions, annotator=MarketAnnotator(load_label_config()))

One :class:`analytics.labels.Labeller` per (account, symbol) follows the symbol's stored bars
(its finest stored timeframe) and the account's fills of that symbol: O(1) per trade. The
first trade of a pair warms it up on the bars before that trade (:data:`WARMUP_BARS`) and on
the account's stored fills of the symbol (positions and trailing sizes). Bars are fed in time
order up to each trade's time, so a trade is read against the last bar closed at or before it
(never a later one). A symbol without stored bars gets a context without market categories
and only the labels fills alone decide (sizes, holding times, stop reasons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from analytics.label_config import LabelConfig
from analytics.labels import Labeller
from database.records import TradeRecord
from database.repositories.candles import CandleRepository
from database.repositories.trades import TradeRepository
from market.timeframes import Timeframe
from tracking.tracker import AccountHistory

WARMUP_BARS = 400  # the longest window of the default rules (ATR rank 100 on ATR 14, SMA 50)
CALENDAR_SPAN = pd.Timedelta(days=21)  # what the calendar (closed days, session) is read from
NO_BARS = pd.Timedelta(minutes=1)  # a Labeller needs a bar length even without bars


@dataclass
class _Follower:
    labeller: Labeller
    timeframe: str | None  # None: the symbol has no stored bars
    last_open: pd.Timestamp | None  # the last bar fed


class MarketAnnotator:
    """The tracker's annotator (see the module text)."""

    def __init__(self, config: LabelConfig | None = None, *, warmup_bars: int = WARMUP_BARS):
        from analytics.label_config import load_label_config

        self.config = config or load_label_config()
        self._warmup = warmup_bars
        self._followers: dict[tuple[str, str], _Follower] = {}
        self._timeframes: dict[str, str | None] = {}

    def annotate(
        self, session: Session, records: list[TradeRecord], history: AccountHistory
    ) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        """(context, labels) of each record, in order (records of one account, in time order
        per symbol)."""
        out: list[tuple[dict[str, Any], tuple[str, ...]]] = [({}, ())] * len(records)
        rows: dict[str, list[int]] = {}
        for k, record in enumerate(records):
            rows.setdefault(record.symbol, []).append(k)
        for symbol, ks in rows.items():
            key = (history.account_id, symbol)
            follower = self._followers.get(key)
            if follower is None:
                follower = self._start(session, history.account_id, records[ks[0]])
                self._followers[key] = follower
            bars = self._pending(session, follower, symbol, records[ks[-1]].execution_time)
            fed = 0
            for k in ks:
                fed = self._feed(follower, bars, fed, records[k].execution_time)
                out[k] = follower.labeller.annotate(records[k])
        return out

    def forget(self, account: str) -> None:
        """Drop the account's followers (its trades were rolled back or written elsewhere)."""
        for key in [k for k in self._followers if k[0] == account]:
            del self._followers[key]

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

    def _start(self, session: Session, account: str, first: TradeRecord) -> _Follower:
        timeframe = self._timeframe(session, first.symbol)
        bar = Timeframe.parse(timeframe).delta if timeframe else NO_BARS
        warm = None
        if timeframe is not None:
            # bars that closed by the first trade: open <= time - bar
            end = pd.Timestamp(first.execution_time) - bar
            warm = CandleRepository(session).frame(
                first.symbol, timeframe, end=end, last=self._warm_bars(bar)
            )
        labeller = Labeller(self.config, bar, history=warm, keep_bars=64)
        stored = TradeRepository(session).frame(account, symbol=first.symbol)
        for fill in stored.to_dict("records"):
            labeller.remember(fill)
        last_open = None if warm is None or warm.empty else warm.index[-1]
        return _Follower(labeller, timeframe, last_open)

    def _pending(
        self, session: Session, follower: _Follower, symbol: str, time: Any
    ) -> pd.DataFrame | None:
        """The bars closed by ``time`` not fed yet (one query per symbol and batch)."""
        if follower.timeframe is None:
            return None
        end = pd.Timestamp(time) - Timeframe.parse(follower.timeframe).delta
        if follower.last_open is not None and follower.last_open >= end:
            return None
        return CandleRepository(session).frame(
            symbol, follower.timeframe, end=end, after=follower.last_open
        )

    @staticmethod
    def _feed(follower: _Follower, bars: pd.DataFrame | None, fed: int, time: Any) -> int:
        """Feed ``bars[fed:]`` that closed by ``time``; the new count fed."""
        if bars is None or fed >= len(bars):
            return fed
        assert follower.timeframe is not None
        end = pd.Timestamp(time) - Timeframe.parse(follower.timeframe).delta
        stop = int(bars.index.searchsorted(end, side="right"))
        for row in bars.iloc[fed:stop].itertuples():
            follower.labeller.update_candle(
                {"ts": row.Index, "open": row.open, "high": row.high, "low": row.low,
                 "close": row.close, "volume": row.volume}
            )  # fmt: skip
            follower.last_open = row.Index
        return max(fed, stop)


__all__ = ["CALENDAR_SPAN", "WARMUP_BARS", "MarketAnnotator"]
