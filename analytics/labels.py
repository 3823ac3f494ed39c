"""Automatic trade labels: what kind of trade each fill was, from what was known when it executed.

>>> config = load_label_config()
>>> label_fills(fills, candles, pd.Timedelta(days=1), config, news=calendar_frame)
[('trend_following', 'market_open'), ('quick_exit', 'stop_loss'), ...]
>>> labeller = Labeller(config, pd.Timedelta(days=1), history=candles)   # live: O(1) per call
>>> labeller.update_candle(closed_candle)
>>> labeller.annotate(fill)            # (market context dict, labels)

Every label of :data:`LABELS`, with its rule, inputs and default thresholds, is in
docs/labels.md. A fill's labels read only what existed at its time: the bars closed at or
before it (analytics/market_context.py), the fills before it (its account's position, FIFO,
and its trailing entry sizes) and the fill itself. Entry labels (trend_following,
mean_reversion, momentum, breakout, aggressive_entry, conservative_entry) go to a fill that
opens or adds to a position, or flips it; exit labels (scalping, quick_exit, hold_long,
stop_loss) to a fill that closes some of one; environment labels to every fill.

Two forms give the same labels (tested after every fill): :func:`label_fills` over a fills
frame and :class:`Labeller`, fed closed candles and fills one at a time. The fills of one
call (or one Labeller) are those of the symbol the candles are of.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics.label_config import LABELS, LabelConfig, load_label_config
from analytics.market_context import (
    BarFrame,
    BarSnapshot,
    SortedWindow,
    fill_context,
    fill_times_ns,
)
from analytics.round_trips import EPSILON, PositionLedger, check_fills
from analytics.sessions import MINUTE_NS, session_edges
from analytics.symbol_bars import OHLCV, SymbolBars
from market.calendars import ALWAYS_OPEN, TradingCalendar
from market.candles import Candle

NAN = float("nan")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Fill:
    """The fields of a fill the labels read."""

    account_id: str
    symbol: str
    side: str
    price: float
    volume: float
    time_ns: int
    commission: float = 0.0
    trade_id: str = ""
    strategy_id: str = ""
    reason: str | None = None  # the exit reason, when the source records one


@dataclass(frozen=True, slots=True)
class FillRole:
    """What a fill did to its position. ``opened``: the volume it opened or added;
    ``trailing_median``: the median notional of the earlier entries (NaN: too few);
    ``closed``: the volume it closed, at ``entry_price`` (the FIFO lots' mean price) of a
    position of ``direction`` (+1 long, -1 short) opened at ``entry_ns``."""

    opened: float
    trailing_median: float
    closed: float = 0.0
    entry_price: float = NAN
    entry_ns: int = 0
    direction: int = 0


class FillBook:
    """Each (account, symbol) position as FIFO lots (analytics.round_trips.PositionLedger,
    as the round trips are rebuilt) and its trailing entry sizes."""

    def __init__(self, config: LabelConfig) -> None:
        self._config = config
        self._ledgers: dict[tuple[str, str], PositionLedger] = {}
        self._sizes: dict[tuple[str, str], SortedWindow] = {}

    def apply(self, fill: Fill) -> FillRole:
        key = (fill.account_id, fill.symbol)
        ledger = self._ledgers.get(key)
        if ledger is None:
            ledger = self._ledgers[key] = PositionLedger(*key)
            self._sizes[key] = SortedWindow(self._config.entry_sizes.window)
        sign = 1 if fill.side == "buy" else -1
        closing = ledger.side == -sign
        closed, entry_price, entry_ns, direction = 0.0, NAN, 0, ledger.side
        if closing:
            assert ledger.trip is not None
            entry_ns = ledger.trip.entry_time.value
            closed, entry_price = _fifo_cost(ledger.lots, fill.volume)
        time = pd.Timestamp(fill.time_ns, tz="UTC")
        ledger.apply(
            fill.trade_id,
            fill.strategy_id,
            fill.side,
            fill.price,
            fill.volume,
            fill.commission,
            time,
        )
        opened = 0.0
        if ledger.side == sign:
            assert ledger.trip is not None
            opened = ledger.trip.entry_qty if closing else fill.volume
        sizes = self._sizes[key]
        median = sizes.median() if len(sizes) >= self._config.entry_sizes.min_history else NAN
        if opened > 0:
            sizes.push(opened * fill.price)
        return FillRole(opened, median, closed, entry_price, entry_ns, direction if closing else 0)


def _fifo_cost(lots: deque[list[float]], volume: float) -> tuple[float, float]:
    """(volume closed, its mean entry price) when ``volume`` closes the oldest ``lots`` first."""
    left, closed, cost = volume, 0.0, 0.0
    for quantity, price in lots:
        if left <= EPSILON * volume:
            break
        q = min(quantity, left)
        closed += q
        cost += q * price
        left -= q
    return closed, cost / closed


class NewsCalendar:
    """The user's event calendar: ``news`` has ``time`` (UTC; naive is UTC) and ``title``,
    and may have ``symbol`` (an event without one concerns every symbol)."""

    def __init__(self, news: pd.DataFrame | None) -> None:
        self._events: dict[str | None, list[int]] = {}
        self._merged: dict[str, list[int]] = {}
        if news is None or news.empty:
            return
        missing = [c for c in ("time", "title") if c not in news.columns]
        if missing:
            raise ValueError(f"news: missing column(s) {missing}; expected time, title[, symbol]")
        times = fill_times_ns(news)
        symbols = news["symbol"].tolist() if "symbol" in news.columns else [None] * len(news)
        for t, symbol in zip(times.tolist(), symbols, strict=True):
            key = symbol if isinstance(symbol, str) and symbol else None
            self._events.setdefault(key, []).append(t)

    def near(self, symbol: str, time_ns: int, before_ns: int, after_ns: int) -> bool:
        """Whether an event of ``symbol`` (or of every symbol) lies in [time - after,
        time + before]: the fill is up to ``after`` past it or up to ``before`` ahead of it."""
        if not self._events:
            return False
        events = self._of(symbol)
        i = bisect.bisect_left(events, time_ns - after_ns)
        return i < len(events) and events[i] <= time_ns + before_ns

    def near_many(
        self, symbol: str, times_ns: np.ndarray, before_ns: int, after_ns: int
    ) -> np.ndarray:
        """:meth:`near` of each time (int64 ns) at once."""
        if not self._events:
            return np.zeros(len(times_ns), dtype=bool)
        events = np.asarray(self._of(symbol), dtype=np.int64)
        if not len(events):
            return np.zeros(len(times_ns), dtype=bool)
        i = np.searchsorted(events, times_ns - after_ns, side="left")
        found = events[np.minimum(i, len(events) - 1)]
        return (i < len(events)) & (found <= times_ns + before_ns)

    def _of(self, symbol: str) -> list[int]:
        """The event times (ns, ascending) of ``symbol`` and of every symbol."""
        events = self._merged.get(symbol)
        if events is None:
            both = self._events.get(None, []) + self._events.get(symbol, [])
            events = self._merged[symbol] = sorted(both)
        return events


def fill_labels(
    config: LabelConfig,
    bar_ns: int,
    snapshot: BarSnapshot | None,
    calendar: TradingCalendar,
    fill: Fill,
    role: FillRole,
    news: NewsCalendar,
) -> tuple[str, ...]:
    """The labels of one fill (in :data:`LABELS` order), from the bar it sees, the calendar,
    what it did to its position and the news calendar."""
    found: set[str] = set()
    s = snapshot
    if s is not None:
        regime = s.volatility_regime
        if regime == "high":
            found.add("high_volatility")
        elif regime == "low":
            found.add("low_volatility")
    at_open, at_close = session_edges(
        calendar, fill.time_ns, config.market_open_minutes, config.market_close_minutes
    )
    if at_open:
        found.add("market_open")
    if at_close:
        found.add("market_close")
    window = config.news
    if news.near(
        fill.symbol,
        fill.time_ns,
        int(window.minutes_before * MINUTE_NS),
        int(window.minutes_after * MINUTE_NS),
    ):
        found.add("news_event")
    sign = 1 if fill.side == "buy" else -1
    price = fill.price
    if role.opened > 0:
        if s is not None:
            found.update(_entry_behaviour(config, s, sign, price))
        median = role.trailing_median
        notional = role.opened * price
        if notional >= config.aggressive_min_vs_median * median:
            found.add("aggressive_entry")
        if notional <= config.conservative_max_vs_median * median:
            found.add("conservative_entry")
    if role.closed > 0:
        atr = s.atr if s is not None else NAN
        held = fill.time_ns - role.entry_ns
        if held <= config.quick_exit_max_bars * bar_ns:
            found.add("quick_exit")
        if held >= config.hold_long_min_bars * bar_ns:
            found.add("hold_long")
        gain = (price - role.entry_price) * role.direction  # per unit, positive: a profit
        scalp = config.scalping
        if held <= scalp.max_hold_minutes * MINUTE_NS and abs(gain) <= scalp.max_move_atr * atr:
            found.add("scalping")
        stop = config.stop_loss
        if fill.reason in stop.reasons or -gain >= stop.loss_atr * atr:
            found.add("stop_loss")
    enabled = config.enabled
    return tuple(name for name in LABELS if name in found and name in enabled)


def _entry_behaviour(config: LabelConfig, s: BarSnapshot, sign: int, price: float) -> list[str]:
    """The behavioural labels of an entry of ``sign`` (+1 buy) at ``price``."""
    out = []
    if s.trend == ("uptrend" if sign > 0 else "downtrend"):
        out.append("trend_following")
    mr = config.mean_reversion
    if sign > 0:
        stretched = s.rsi <= mr.oversold or price <= s.bollinger_lower
    else:
        stretched = s.rsi >= mr.overbought or price >= s.bollinger_upper
    if stretched:
        out.append("mean_reversion")
    if sign * s.momentum_atr >= config.momentum.min_move_atr:
        out.append("momentum")
    beyond = config.breakout.beyond_atr
    margin = beyond * s.atr if beyond else 0.0  # no ATR needed for a bare channel break
    if (sign > 0 and price > s.donchian_high + margin) or (
        sign < 0 and price < s.donchian_low - margin
    ):
        out.append("breakout")
    return out


def _reason(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def label_fills(
    fills: pd.DataFrame,
    candles: pd.DataFrame,
    bar: pd.Timedelta,
    config: LabelConfig | None = None,
    *,
    news: pd.DataFrame | None = None,
    calendar: TradingCalendar | None = None,
) -> list[tuple[str, ...]]:
    """The labels of each fill of ``fills`` (the fills frame of one symbol; an optional
    ``reason`` column holds exit reasons), in its row order. ``candles``: that symbol's bars
    (open time index, UTC), each ``bar`` long; ``news``: the user's event calendar
    (time, title[, symbol]); ``calendar``: the symbol's known calendar (None: read from the
    bars closed by each fill)."""
    return annotate_fills(fills, candles, bar, config, news=news, calendar=calendar)[1]


def annotate_fills(
    fills: pd.DataFrame,
    candles: pd.DataFrame,
    bar: pd.Timedelta,
    config: LabelConfig | None = None,
    *,
    news: pd.DataFrame | None = None,
    calendar: TradingCalendar | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[str, ...]]]:
    """(contexts, labels) of each fill, in its row order, in one pass: what
    :func:`analytics.market_context.market_context` and :func:`label_fills` give."""
    config = config or load_label_config()
    ordered = check_fills(fills.reset_index(drop=True))  # the index: row positions
    symbols = sorted(set(ordered["symbol"]))
    if len(symbols) > 1:
        raise ValueError(f"fills: one symbol per call (the candles'), got {symbols}")
    frame = BarFrame(candles, bar, config)
    times = fill_times_ns(ordered)
    positions = frame.last_closed(times).tolist()
    calendars = frame.calendars(positions) if calendar is None else {}
    book, events = FillBook(config), NewsCalendar(news)
    n = len(ordered)
    reasons = ordered["reason"].tolist() if "reason" in ordered.columns else [None] * n
    text = [ordered[c].astype(str).tolist() for c in ("account_id", "symbol", "trade_id")]
    numbers = [
        ordered[c].to_numpy(dtype=np.float64).tolist() for c in ("price", "volume", "commission")
    ]
    rows = zip(
        ordered.index.tolist(),
        *text,
        ordered["side"].tolist(),
        *numbers,
        ordered["strategy_id"].astype(str).tolist(),
        times.tolist(),
        positions,
        reasons,
        strict=True,
    )
    contexts: list[dict[str, Any]] = [{}] * n
    labels: list[tuple[str, ...]] = [()] * n
    for row, account, symbol, trade, side, price, volume, fee, strategy, t, i, why in rows:
        fill = Fill(account, symbol, side, price, volume, t, fee, trade, strategy, _reason(why))
        snapshot = frame.snapshot(i) if i >= 0 else None
        cal = calendar or calendars.get(i, ALWAYS_OPEN)
        contexts[row] = fill_context(snapshot, cal, t, price, config)
        role = book.apply(fill)
        labels[row] = fill_labels(config, frame.bar_ns, snapshot, cal, fill, role, events)
    return contexts, labels


class Labeller:
    """Context and labels live: ``update_candle`` with each closed bar, ``annotate`` (or
    ``label``, ``context``) with each fill, both O(1). Equal to :func:`market_context` and
    :func:`label_fills` over the same candles and fills.

    A fill is read against the last bar closed at or before its time among (at least) the
    ``keep_bars`` latest, so a fill that comes in after a later candle is still labelled as of
    its time; one older than all of them is refused. ``history``: candles to warm up on. ``bars``: a
    :class:`SymbolBars` shared with other accounts' Labellers (then fed by its owner, not
    through this Labeller; ``history``, ``calendar`` and ``keep_bars`` are its own).
    """

    def __init__(
        self,
        config: LabelConfig | None,
        bar: pd.Timedelta,
        *,
        calendar: TradingCalendar | None = None,
        news: pd.DataFrame | None = None,
        history: pd.DataFrame | None = None,
        keep_bars: int = 64,
        bars: SymbolBars | None = None,
    ) -> None:
        self.config = config or load_label_config()
        self._bars = bars or SymbolBars(
            self.config, bar, calendar=calendar, history=history, keep_bars=keep_bars
        )
        self._bar_ns = self._bars.bar_ns
        self._book = FillBook(self.config)
        self._news = NewsCalendar(news)

    def update_candle(self, candle: Candle | pd.Series | Mapping[str, Any]) -> None:
        """Apply a closed bar: a Candle, a candle frame's row (its name the open time) or a
        mapping with ``ts`` (or ``time``) and open, high, low, close, volume."""
        if isinstance(candle, Candle):
            self._bars.update(candle, _ns(candle.ts))
            return
        ts = candle.get("ts", candle.get("time"))
        if ts is None and isinstance(candle, pd.Series):
            ts = candle.name
        if ts is None:
            raise ValueError("candle: no open time (ts, time, or a frame row's name)")
        values = [float(candle[c]) for c in OHLCV]
        self._bars.update(Candle(pd.Timestamp(ts), *values), _ns(ts))

    def _bar_at(self, time_ns: int) -> tuple[BarSnapshot | None, TradingCalendar]:
        return self._bars.bar_at(time_ns)

    def context(self, fill: Any) -> dict[str, Any]:
        """The market context of ``fill`` (no state changes)."""
        f = as_fill(fill)
        snapshot, calendar = self._bar_at(f.time_ns)
        return fill_context(snapshot, calendar, f.time_ns, f.price, self.config)

    def annotate(self, fill: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
        """(context, labels) of the next fill (a mapping with the fills frame's columns, or
        a TradeRecord); it joins its account's position and trailing sizes."""
        f = as_fill(fill)
        snapshot, calendar = self._bar_at(f.time_ns)
        context = fill_context(snapshot, calendar, f.time_ns, f.price, self.config)
        role = self._book.apply(f)
        labels = fill_labels(self.config, self._bar_ns, snapshot, calendar, f, role, self._news)
        return context, labels

    def label(self, fill: Any) -> tuple[str, ...]:
        """The labels of the next fill (see :meth:`annotate`)."""
        return self.annotate(fill)[1]

    def remember(self, fill: Any) -> None:
        """Join an earlier fill (already labelled, e.g. read back from the database) to the
        account's position and trailing sizes, without labelling it: a restarted tracker
        warms up on the stored fills."""
        self._book.apply(as_fill(fill))


def _ns(ts: Any) -> int:
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value)


def as_fill(fill: Any) -> Fill:
    """A Fill from a mapping with the fills frame's columns (a dict, a frame row) or an
    object with those attributes (a TradeRecord: ``execution_time`` for ``time``)."""
    if isinstance(fill, Fill):
        return fill
    when = getattr(fill, "execution_time", None)
    if isinstance(when, datetime) and when.tzinfo is not None:  # a TradeRecord: checked
        return Fill(
            fill.account_id, fill.symbol, fill.side, float(fill.price), float(fill.volume),
            (when - _EPOCH) // _MICROSECOND * 1000, float(fill.commission or 0.0),
            fill.trade_id, fill.strategy_id, _reason(getattr(fill, "reason", None)),
        )  # fmt: skip
    if isinstance(fill, Mapping | pd.Series):
        get = fill.get
    else:

        def get(key: str, default: Any = None) -> Any:
            return getattr(fill, key, default)

    time = get("time", None)
    if time is None:
        time = get("execution_time", None)
    missing = [k for k in ("account_id", "symbol", "side", "price", "volume") if get(k) is None]
    if time is None or missing:
        raise ValueError(f"fill: missing {missing + ([] if time is not None else ['time'])}")
    commission = get("commission", 0.0)
    return Fill(
        str(get("account_id")),
        str(get("symbol")),
        str(get("side")),
        float(get("price")),
        float(get("volume")),
        _ns(time),
        0.0 if commission is None or commission != commission else float(commission),
        str(get("trade_id", "") or ""),
        str(get("strategy_id", "") or ""),
        _reason(get("reason", None)),
    )


__all__ = [
    "LABELS",
    "Fill",
    "FillBook",
    "FillRole",
    "Labeller",
    "NewsCalendar",
    "SymbolBars",
    "annotate_fills",
    "as_fill",
    "fill_labels",
    "label_fills",
]
