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

import functools
import operator
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from analytics.label_batch import FillColumns, annotate_columns
from analytics.label_config import LabelConfig
from analytics.labels import NAN, NewsCalendar, SymbolBars
from analytics.market_context import SortedWindow
from analytics.symbol_bars import OHLCV, FrameBars
from analytics.trade_batch import FillRoles, time_ns
from database.records import TradeRecord
from database.repositories.candles import CANDLES, CandleRepository
from database.repositories.news import NewsRepository
from market.candles import Candle
from market.timeframes import Timeframe
from tracking.tracker import AccountHistory

WARMUP_BARS = 400  # the longest window of the default rules (ATR rank 100 on ATR 14, SMA 50)
CALENDAR_SPAN = pd.Timedelta(days=21)  # what the calendar (closed days, session) is read from
NO_BARS = pd.Timedelta(minutes=1)  # a Labeller needs a bar length even without bars
KEEP_BARS = 4096  # bars a trade may lag behind the newest bar fed (another account's trades)
FRAME_BARS = 2048  # a batch that reads at least this many bars not fed yet reads them at once


@dataclass
class _Symbol:
    bars: SymbolBars | FrameBars  # FrameBars: a batch's bars read at once (see _reframe)
    timeframe: str | None  # None: the symbol has no stored bars
    bar: pd.Timedelta
    last_open: pd.Timestamp | None  # the last bar fed (of a FrameBars, its last bar)
    first_open: pd.Timestamp | None  # the first bar its indicators started on


class MarketAnnotator:
    """The tracker's annotator (see the module text)."""

    def __init__(
        self,
        config: LabelConfig | None = None,
        *,
        warmup_bars: int = WARMUP_BARS,
        frame_bars: int = FRAME_BARS,
    ) -> None:
        from analytics.label_config import load_label_config

        self.config = config or load_label_config()
        self._warmup = warmup_bars
        self._frame_bars = frame_bars
        self._news: NewsCalendar | None = None  # the news calendar, read at the first trade
        self._symbols: dict[str, _Symbol] = {}
        self._windows: dict[tuple[str, str], SortedWindow] = {}  # trailing entry sizes
        self._timeframes: dict[str, str | None] = {}
        self._expected: dict[str, tuple[str, pd.DataFrame]] = {}
        # per symbol, its latest closed bars one after another (timeframe, bar, bars): closed
        self._closed: dict[str, tuple[str, pd.Timedelta, deque[Candle]]] = {}

    def expect(self, symbol: str, timeframe: str, candles: pd.DataFrame | None) -> None:
        """Say which stored bars of ``symbol`` the coming trades are read against, all of
        them known now (a replay over stored bars); None forgets them. If ``timeframe`` is
        the symbol's finest stored one, and the symbol is not followed yet, they are read
        computed at once (:class:`analytics.symbol_bars.FrameBars`): the same context and
        labels as feeding them one at a time, without the per-bar cost. After the last of
        them the symbol is followed bar by bar from the stored bars, continuing their state."""
        if candles is None or not len(candles):
            self._expected.pop(symbol, None)
        elif symbol not in self._symbols:
            self._expected[symbol] = (timeframe, candles)

    def closed(self, symbol: str, timeframe: str, candle: Candle) -> None:
        """A bar of ``symbol`` in ``timeframe`` closed and is stored (the live runner's, in
        order): kept, and the bars kept are fed now when they are the ones after the last
        fed of a symbol followed bar by bar in that timeframe, one after another (as a batch
        would read and feed them: the same bars, in the same order). Anything else (a gap
        between them, another timeframe, a rewind) is left to the batches' reading."""
        kept = self._closed.get(symbol)
        if (
            kept is None
            or kept[0] != timeframe
            or not kept[2]
            or candle.ts != kept[2][-1].ts + kept[1]
        ):  # the first, or not the bar after the last kept: kept from this one on
            kept = self._closed[symbol] = (
                timeframe,
                Timeframe.parse(timeframe).delta,
                deque(maxlen=KEEP_BARS),
            )
        bars = kept[2]
        bars.append(candle)
        follow = self._symbols.get(symbol)
        if (
            follow is None
            or follow.timeframe != timeframe
            or follow.last_open is None
            or not isinstance(follow.bars, SymbolBars)
        ):
            return
        while bars and bars[0].ts <= follow.last_open:
            bars.popleft()
        if not bars or bars[0].ts != follow.last_open + follow.bar:
            return
        update = follow.bars.update
        for bar in bars:
            row = (bar.open, bar.high, bar.low, bar.close, bar.volume)
            update(Candle(None, *map(float, row)), bar.ts.value)  # type: ignore[arg-type]
        follow.last_open = bars[-1].ts
        bars.clear()

    def annotate(
        self,
        session: Session,
        records: Sequence[TradeRecord],
        histories: Mapping[str, AccountHistory],
        roles: FillRoles,
    ) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        """(context, labels) of each record, in order (a batch of any accounts, each one's
        records in time order per symbol), given each one's role in its position (the
        tracker's FIFO pass, arrays in the records' order) and each account's history
        before them."""
        out: list[tuple[dict[str, Any], tuple[str, ...]]] = [({}, ())] * len(records)
        if self._news is None:
            self._news = NewsCalendar(NewsRepository(session).frame())
        rows: dict[str, list[int]] = {}
        for k, symbol in enumerate(map(_SYMBOL, records)):
            rows.setdefault(symbol, []).append(k)
        times = np.fromiter(map(time_ns, map(_TIME, records)), np.int64, len(records))
        prices = np.fromiter(map(_PRICE, records), np.float64, len(records))
        index = {symbol: np.array(ks, dtype=np.int64) for symbol, ks in rows.items()}
        firsts = self._firsts(records, [s for s in rows if s not in self._symbols])
        ends = {}
        for symbol in rows:
            if symbol not in self._symbols:
                first = time_ns(firsts[symbol].execution_time)
                self._symbols[symbol] = self._start(session, symbol, first)
            ends[symbol] = int(times[index[symbol]].max())
            self._reframe(session, symbol, self._symbols[symbol], ends[symbol])
        pending = self._pending(session, ends)
        for symbol, ks in rows.items():
            made = self._symbol(
                session, self._symbols[symbol], symbol, records, ks, index[symbol], times,
                prices, histories, roles, pending.get(symbol, _NONE),
            )  # fmt: skip
            for k, value in zip(ks, zip(*made, strict=True), strict=True):
                out[k] = value
        return out

    def _symbol(
        self,
        session: Session,
        follow: _Symbol,
        symbol: str,
        records: Sequence[TradeRecord],
        ks: list[int],
        rows: np.ndarray,
        times: np.ndarray,
        prices: np.ndarray,
        histories: Mapping[str, AccountHistory],
        roles: FillRoles,
        pending: tuple[np.ndarray, list[tuple[float, ...]]],
    ) -> tuple[list[dict[str, Any]], list[tuple[str, ...]]]:
        """(contexts, labels) of the batch's records ``ks`` (``rows``) of ``symbol``, given
        the bars closed by its last one not fed yet."""
        t, price = times[rows], prices[rows]
        opened = roles.opened[rows]
        medians = self._medians(session, symbol, records, ks, opened, price, histories)
        bars, bar_of = self._bars(follow, t, *pending)
        mine = [records[k] for k in ks]
        side = np.where(np.array(list(map(_SIDE, mine))) == "buy", 1, -1).astype(np.int64)
        reasons = list(map(_reason, mine)) if any(map(_CONTEXT, mine)) else [None] * len(ks)
        fills = FillColumns(
            t, price, side, opened, medians, roles.closed[rows], roles.entry_price[rows],
            roles.entry_ns[rows], roles.direction[rows], reasons,
        )  # fmt: skip
        assert self._news is not None  # read at the first batch
        return annotate_columns(
            self.config, follow.bars.bar_ns, symbol, fills, bars, bar_of, self._news
        )

    def _medians(
        self,
        session: Session,
        symbol: str,
        records: Sequence[TradeRecord],
        ks: list[int],
        opened: np.ndarray,
        price: np.ndarray,
        histories: Mapping[str, AccountHistory],
    ) -> np.ndarray:
        """Per record, the median notional of its account's earlier entries of ``symbol``
        (NaN: too few, or the record opened nothing: no rule reads it then); the entries
        join the trailing windows."""
        entries = self.config.entry_sizes
        out = np.full(len(ks), NAN)
        windows = self._windows
        for j in np.flatnonzero(opened > 0).tolist():
            account = records[ks[j]].account_id
            sizes = windows.get((account, symbol))
            if sizes is None:
                key = (account, symbol)
                sizes = windows[key] = self._window(session, key, histories[account])
            if len(sizes) >= entries.min_history:
                out[j] = sizes.median()
            sizes.push(float(opened[j]) * float(price[j]))
        return out

    def _bars(
        self, follow: _Symbol, t: np.ndarray, opens: np.ndarray, values: list[tuple[float, ...]]
    ) -> tuple[list[tuple[Any, Any]], np.ndarray]:
        """The distinct bars the fills at times ``t`` see and each fill's index into them:
        the pending bars (``opens``, ``values``) fed first (in runs of at most
        :data:`KEEP_BARS` bars, earliest fills first, so that a fill's bar is still kept when
        it is read)."""
        if follow.timeframe is None:  # no bar ever: every fill sees the one bar-less answer
            bars, _ = follow.bars.bars_at(t[:1].tolist())
            return bars, np.zeros(len(t), dtype=np.int64)
        if not len(opens):
            bars, of = follow.bars.bars_at(t.tolist())
            return bars, np.array(of, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        ordered = t[order]
        need = np.searchsorted(opens + follow.bar.value, ordered, side="right")
        bar_of = np.empty(len(t), dtype=np.int64)
        bars: list[tuple[Any, Any]] = []
        start = fed = 0
        while start < len(ordered):
            stop = int(np.searchsorted(need, need[start] + KEEP_BARS - 1, side="right"))
            fed = self._feed(follow, opens, values, fed, int(need[stop - 1]))
            got, of = follow.bars.bars_at(ordered[start:stop].tolist())
            bar_of[order[start:stop]] = np.array(of, dtype=np.int64) + len(bars)
            bars.extend(got)
            start = stop
        return bars, bar_of

    def _firsts(self, records: Sequence[TradeRecord], symbols: list[str]) -> dict[str, Any]:
        """The record each new symbol's bars are warmed up to: its first one of the first
        account (in the batch's order) trading it, as when accounts were labelled in turn."""
        if not symbols:
            return {}
        wanted = set(symbols)
        by_account: dict[str, list[TradeRecord]] = {}
        for record in records:
            if record.symbol in wanted:
                by_account.setdefault(record.account_id, []).append(record)
        firsts: dict[str, TradeRecord] = {}
        for account_records in by_account.values():
            for record in account_records:
                firsts.setdefault(record.symbol, record)
        return firsts

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
        window = SortedWindow(self.config.entry_sizes.window)
        for value in history.entries.get(key[1], [])[-self.config.entry_sizes.window :]:
            window.push(value)
        return window

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

    def bars_for(
        self, session: Session, symbol: str, t: np.ndarray
    ) -> tuple[int, list[tuple[Any, Any]], np.ndarray]:
        """One symbol's fills at times ``t`` (ns, the first the earliest) as a batch of their
        own: (the bar length in ns, the distinct bars they see, each fill's index into them),
        the symbol followed as :meth:`annotate` follows it (started at its first fill, its
        bars read at once or the pending ones fed). The column-wise import's bars."""
        follow = self._symbols.get(symbol)
        if follow is None:
            follow = self._symbols[symbol] = self._start(session, symbol, int(t[0]))
        end = int(t.max())
        self._reframe(session, symbol, follow, end)
        pending = self._pending(session, {symbol: end}).get(symbol, _NONE)
        bars, bar_of = self._bars(follow, t, *pending)
        return follow.bars.bar_ns, bars, bar_of

    def _start(self, session: Session, symbol: str, first_ns: int) -> _Symbol:
        """A symbol followed from its first trade (at ``first_ns``): its warm-up bars."""
        timeframe = self._timeframe(session, symbol)
        bar = Timeframe.parse(timeframe).delta if timeframe else NO_BARS
        warm = None
        if timeframe is not None:
            # bars that closed by the first trade: open <= time - bar
            end = pd.Timestamp(first_ns, tz="UTC") - bar
            warm = CandleRepository(session).frame(
                symbol, timeframe, end=end, last=self._warm_bars(bar)
            )
        last_open = None if warm is None or warm.empty else warm.index[-1]
        first_open = None if warm is None or warm.empty else warm.index[0]
        known = self._expected.pop(symbol, None)
        if known is not None and known[0] == timeframe and last_open is not None:
            candles = known[1]
            if (
                candles.index[0] <= last_open + bar
                and first_ns < (candles.index[-1] + 2 * bar).value
            ):
                # the stored bars after the warm-up, all known: nothing left to read
                after = candles.loc[candles.index > last_open, list(OHLCV)]
                whole = pd.concat([warm[list(OHLCV)], after])  # type: ignore[index]
                frame = FrameBars(self.config, bar, whole)
                return _Symbol(frame, timeframe, bar, whole.index[-1], first_open)
        bars = SymbolBars(self.config, bar, history=warm, keep_bars=KEEP_BARS)
        return _Symbol(bars, timeframe, bar, last_open, first_open)

    def _reframe(self, session: Session, symbol: str, follow: _Symbol, end_ns: int) -> None:
        """Read a symbol's bars at once, or one at a time again, for a batch whose last
        trade of it is at ``end_ns``, continuing the same state either way: bars given at
        once (FrameBars) that end before it go on one at a time from where they end
        (SymbolBars opened on them: the state of feeding them in turn); a symbol followed one
        bar at a time whose batch reads at least ``frame_bars`` bars not fed yet (and a
        quarter of those fed: each switch reads them all again) reads them with every bar
        since its first at once, from the stored bars (the same ones it was fed)."""
        if follow.timeframe is None:
            return
        bars, bar = follow.bars, follow.bar
        if isinstance(bars, FrameBars):
            if bars.covers(end_ns):
                return
            follow.bars = SymbolBars(self.config, bar, history=bars.candles, keep_bars=KEEP_BARS)
        end = pd.Timestamp(end_ns, tz="UTC") - bar  # the bars it reads: open <= end
        last, first = follow.last_open, follow.first_open
        unfed = (end - last) // bar if last is not None else self._frame_bars
        fed = (last - first) // bar if last is not None and first is not None else 0
        if unfed < max(self._frame_bars, fed // 4):
            return
        whole = CandleRepository(session).frame(symbol, follow.timeframe, start=first, end=end)
        if whole.empty:
            return
        follow.bars = FrameBars(self.config, bar, whole[list(OHLCV)], known_until=end)
        follow.last_open, follow.first_open = whole.index[-1], whole.index[0]

    def _pending(
        self, session: Session, ends: dict[str, int]
    ) -> dict[str, tuple[np.ndarray, list[tuple[float, ...]]]]:
        """Per symbol, the stored bars closed by its time in ``ends`` (ns) not fed yet: open
        times (ns) and (open, high, low, close, volume) rows; one query for the batch."""
        wanted = []
        for symbol, end_ns in ends.items():
            follow = self._symbols[symbol]
            if follow.timeframe is None or isinstance(follow.bars, FrameBars):
                continue
            end = pd.Timestamp(end_ns, tz="UTC") - follow.bar  # the bars with open <= end
            if follow.last_open is not None and follow.last_open >= end:
                continue
            after = None if follow.last_open is None else follow.last_open.value // _MS
            wanted.append((symbol, follow.timeframe, end.value // _MS, after))
        found: list[Any] = []
        for part in range(0, len(wanted), _SERIES_PER_QUERY):
            series = wanted[part : part + _SERIES_PER_QUERY]
            params: dict[str, Any] = {}
            for k, (symbol, timeframe, end_ms, after_ms) in enumerate(series):
                params.update({f"s{k}": symbol, f"f{k}": timeframe, f"e{k}": end_ms})
                if after_ms is not None:
                    params[f"a{k}"] = after_ms
            shape = tuple(after_ms is not None for *_, after_ms in series)
            found.extend(session.execute(_pending_statement(shape), params).all())
        if not found:
            return {}
        symbols, ts, *columns = zip(*found, strict=True)
        opens = np.array(ts, dtype=np.int64) * 1_000_000
        values = list(zip(*(map(float, c) for c in columns), strict=True))
        out: dict[str, tuple[np.ndarray, list[tuple[float, ...]]]] = {}
        rows: dict[str, list[int]] = {}
        for k, symbol in enumerate(symbols):
            rows.setdefault(symbol, []).append(k)
        for symbol, ks in rows.items():
            out[symbol] = (opens[ks], [values[k] for k in ks])
        return out

    @staticmethod
    def _feed(
        follow: _Symbol, opens: np.ndarray, values: list[tuple[float, ...]], fed: int, stop: int
    ) -> int:
        """Feed the pending bars from ``fed`` up to ``stop`` (excluded); the new count fed."""
        if stop > fed:
            follow.bars.update_many(opens[fed:stop].tolist(), values[fed:stop])  # type: ignore[union-attr]
            follow.last_open = pd.Timestamp(int(opens[stop - 1]), tz="UTC")
        return max(fed, stop)


# a paper fill's trigger (trading.orders.FillEvent.trigger) as the stop_loss label's reason
_TRIGGER_REASON = {"stop": "stop_loss", "trailing_stop": "stop_loss"}


def _reason(record: TradeRecord) -> str | None:
    """The exit reason the labels read: ``reason`` in the record's context (an importer's),
    or the paper broker's stop triggers."""
    context = record.market_context
    if not context:
        return None
    reason = context.get("reason") or _TRIGGER_REASON.get(context.get("trigger"))
    return reason if isinstance(reason, str) else None


_SYMBOL, _TIME, _PRICE, _SIDE, _CONTEXT = (
    operator.attrgetter(name)
    for name in ("symbol", "execution_time", "price", "side", "market_context")
)
_NONE: tuple[np.ndarray, list] = (np.empty(0, dtype=np.int64), [])
_MS = 1_000_000  # ns per ms: the candles' open times are stored in epoch ms
_SERIES_PER_QUERY = 200  # 800 bound parameters at most: far below SQLite's limit


@functools.lru_cache(maxsize=256)
def _pending_statement(shape: tuple[bool, ...]) -> Any:
    """The bars of several series within (after, end], ascending by open time: one
    ``(symbol, timeframe, ts <= end[, ts > after])`` condition per series (``shape``: which
    have an ``after``), each an index range of (symbol, timeframe, ts)."""
    either = " OR ".join(
        f"(symbol = :s{k} AND timeframe = :f{k} AND ts <= :e{k}"
        + (f" AND ts > :a{k})" if after else ")")
        for k, after in enumerate(shape)
    )
    return text(
        f"SELECT symbol, ts, {', '.join(OHLCV)} FROM {CANDLES.name} WHERE {either} ORDER BY ts"
    )


__all__ = ["CALENDAR_SPAN", "KEEP_BARS", "WARMUP_BARS", "MarketAnnotator"]
