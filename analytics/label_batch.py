"""The context and labels of many fills of one symbol at once: :func:`analytics.labels.fill_labels`
and :func:`analytics.market_context.fill_context` over columns.

>>> contexts, labels = annotate_columns(config, bar_ns, "BTC", fills, bars, bar_of, news)

The live tracker labels a batch of fills per symbol: each fill's bar is found in the symbol's
kept bars (:class:`analytics.labels.SymbolBars`), the distinct bars' snapshots and calendars
are spread into arrays once, and every rule is one numpy expression over the fills, the
labels a bit mask per fill (bit i: ``LABELS[i]``) turned into the tuple of names once per
distinct mask. The rule is the per-fill one, operation for operation in float64 (the same
IEEE results), times in int64 ns compared exactly with the config's bounds: the labels and the
context are those :func:`fill_labels` and :func:`fill_context` give, to the bit (tests hold the
two equal on random books and bars). Below :data:`MIN_COLUMNS` fills the per-fill rule runs
itself: numpy's fixed cost per expression is more than a few fills cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from analytics.label_config import LABELS, LabelConfig
from analytics.labels import Fill, FillRole, NewsCalendar, fill_labels
from analytics.market_context import CONTEXT_KEYS, BarSnapshot, fill_context
from analytics.sessions import DAY_NS, MINUTE_NS
from market.calendars import TradingCalendar

MIN_COLUMNS = 24  # fills of a symbol from which the column-wise form pays (measured: ~4.7 us a
# fill either way at 24; 1.1 us against 5 at 512)
NAN = float("nan")
_BIT = {name: 1 << k for k, name in enumerate(LABELS)}
_INT64 = np.iinfo(np.int64)


class FillColumns(NamedTuple):
    """Fills of one symbol, one entry per fill: time (int64 ns, UTC), price, side sign (+1
    buy, -1 sell) and its role in its position (:class:`analytics.labels.FillRole`'s fields:
    ``opened``, ``trailing_median``, ``closed``, ``entry_price``, ``entry_ns``,
    ``direction``), and the exit reason its source recorded (None: none)."""

    time_ns: np.ndarray
    price: np.ndarray
    sign: np.ndarray
    opened: np.ndarray
    trailing_median: np.ndarray
    closed: np.ndarray
    entry_price: np.ndarray
    entry_ns: np.ndarray
    direction: np.ndarray
    reason: Sequence[str | None]


Bar = tuple[BarSnapshot | None, TradingCalendar]  # what SymbolBars.bar_at gives


def annotate_columns(
    config: LabelConfig,
    bar_ns: int,
    symbol: str,
    fills: FillColumns,
    bars: Sequence[Bar],
    bar_of: np.ndarray,
    news: NewsCalendar,
) -> tuple[list[dict[str, Any]], list[tuple[str, ...]]]:
    """(context, labels) of each fill of ``symbol``: ``bars`` the distinct bars the fills
    see (snapshot or None, calendar), ``bar_of`` each fill's index into them."""
    n = len(fills.time_ns)
    if n < MIN_COLUMNS:
        return _per_fill(config, bar_ns, symbol, fills, bars, bar_of, news)
    parts = annotate_parts(config, bar_ns, symbol, fills, bars, bar_of, news)
    return parts.contexts(), _names(parts.mask)


class ColumnAnnotation(NamedTuple):
    """:func:`annotate_columns`' result before it is made into a dict and a tuple per fill:
    per fill its labels' bit mask (bit i: ``LABELS[i]``), market session and distances to
    the Donchian high and low in ATRs; the bars they were read from."""

    config: LabelConfig
    bars: Sequence[Bar]
    bar_of: np.ndarray
    mask: np.ndarray  # int64
    session: list[str]
    to_high: np.ndarray
    to_low: np.ndarray

    def contexts(self, rows: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The context of each fill (of the fills ``rows`` only, when given)."""
        if rows is None:
            return _contexts(self.config, self.bars, self.bar_of, self.session, self.to_high,
                             self.to_low)  # fmt: skip
        session = [self.session[k] for k in rows.tolist()]
        return _contexts(self.config, self.bars, self.bar_of[rows], session, self.to_high[rows],
                         self.to_low[rows])  # fmt: skip

    def has_bar(self) -> np.ndarray:
        """Per fill, whether it was read against a bar (else its context is the session's)."""
        known = np.array([s is not None for s, _ in self.bars], dtype=bool)
        return known[self.bar_of] if len(known) else np.zeros(len(self.bar_of), dtype=bool)


def annotate_parts(
    config: LabelConfig, bar_ns: int, symbol: str, fills: FillColumns, bars: Sequence[Bar],
    bar_of: np.ndarray, news: NewsCalendar,
) -> ColumnAnnotation:  # fmt: skip
    """:func:`annotate_columns`' rule over columns, whatever the number of fills (the same
    labels and contexts as the per-fill rule, to the bit), kept as columns."""
    t = np.asarray(fills.time_ns, dtype=np.int64)
    price = np.asarray(fills.price, dtype=np.float64)
    sign = np.asarray(fills.sign, dtype=np.int64)
    snap = _snapshot_columns(bars, bar_of)
    session, at_open, at_close = _sessions(config, bars, bar_of, t)
    with np.errstate(all="ignore"):  # NaN while warming up (a zero ATR: inf, not an error)
        mask = _environment(config, snap, at_open, at_close)
        window = config.news
        before = int(window.minutes_before * MINUTE_NS)
        after = int(window.minutes_after * MINUTE_NS)
        mask |= np.where(news.near_many(symbol, t, before, after), _BIT["news_event"], 0)
        opened = np.asarray(fills.opened, dtype=np.float64) > 0
        mask |= np.where(opened, _entries(config, snap, sign, price, fills), 0)
        closed = np.asarray(fills.closed, dtype=np.float64) > 0
        mask |= np.where(closed, _exits(config, bar_ns, snap, t, price, fills), 0)
        to_high = (snap["donchian_high"] - price) / snap["atr"]
        to_low = (price - snap["donchian_low"]) / snap["atr"]
    enabled = sum(_BIT[name] for name in config.enabled if name in _BIT)
    return ColumnAnnotation(config, bars, bar_of, mask & enabled, session, to_high, to_low)


def label_names(mask: int) -> tuple[str, ...]:
    """A label bit mask as its labels' names in :data:`LABELS` order."""
    return _names(np.array([mask], dtype=np.int64))[0]


def _per_fill(*args: Any) -> tuple[list[dict[str, Any]], list[tuple[str, ...]]]:
    """The per-fill rule over the same arguments as :func:`annotate_columns`."""
    config, bar_ns, symbol, fills, bars, bar_of, news = args
    contexts, labels = [], []
    columns = (
        np.asarray(c).tolist()
        for c in (fills.time_ns, fills.price, fills.sign, fills.opened, fills.trailing_median,
                  fills.closed, fills.entry_price, fills.entry_ns, fills.direction, bar_of)
    )  # fmt: skip
    for t, price, sign, opened, median, closed, entry_price, entry_ns, direction, b, why in zip(
        *columns, fills.reason, strict=True
    ):
        snapshot, calendar = bars[b]
        fill = Fill("", symbol, "buy" if sign > 0 else "sell", price, 0.0, t, reason=why)
        role = FillRole(opened, median, closed, entry_price, entry_ns, direction)
        contexts.append(fill_context(snapshot, calendar, t, price, config))
        labels.append(fill_labels(config, bar_ns, snapshot, calendar, fill, role, news))
    return contexts, labels


_FIELDS = ("atr", "rsi", "bollinger_upper", "bollinger_lower", "momentum_atr", "donchian_high",
           "donchian_low")  # fmt: skip
_REGIME = {"high": _BIT["high_volatility"], "low": _BIT["low_volatility"]}
_TREND = {"uptrend": 1, "downtrend": -1}


def _snapshot_columns(bars: Sequence[Bar], bar_of: np.ndarray) -> dict[str, np.ndarray]:
    """Per fill, its bar's numbers (NaN without a bar), its regime's label bit, its trend
    (+1 up, -1 down, 0 otherwise) and whether it has a bar."""
    rows = []
    for snapshot, _ in bars:
        s = snapshot
        if s is None:
            rows.append((*[NAN] * len(_FIELDS), 0.0, 0.0, 0.0))
            continue
        rows.append((
            s.atr, s.rsi, s.bollinger_upper, s.bollinger_lower, s.momentum_atr, s.donchian_high,
            s.donchian_low, float(_REGIME.get(s.volatility_regime, 0)),
            float(_TREND.get(s.trend, 0)), 1.0,
        ))  # fmt: skip
    table = np.array(rows, dtype=np.float64).reshape(len(bars), len(_FIELDS) + 3)[bar_of]
    out = {name: table[:, k] for k, name in enumerate(_FIELDS)}
    out["regime_bit"] = table[:, len(_FIELDS)].astype(np.int64)
    out["trend"] = table[:, len(_FIELDS) + 1].astype(np.int64)
    out["has_bar"] = table[:, len(_FIELDS) + 2] > 0
    return out


def _sessions(
    config: LabelConfig, bars: Sequence[Bar], bar_of: np.ndarray, t: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per fill, its market session (:func:`analytics.sessions.market_session`) and whether
    it is in the session's first or last minutes (:func:`analytics.sessions.session_edges`),
    a calendar (usually one) at a time."""
    n = len(t)
    session = np.empty(n, dtype=object)
    at_open = np.zeros(n, dtype=bool)
    at_close = np.zeros(n, dtype=bool)
    minute = (t % DAY_NS) / MINUTE_NS
    calendars: dict[TradingCalendar, list[int]] = {}
    for b, (_, calendar) in enumerate(bars):
        calendars.setdefault(calendar, []).append(b)
    sessions = config.sessions
    for calendar, which in calendars.items():
        rows = np.flatnonzero(np.isin(bar_of, which)) if len(calendars) > 1 else slice(None)
        m = minute[rows]
        if calendar.session is None:
            since_open, length = m, 1440.0
            hour = m / 60.0
            names = np.full(len(m), sessions.utc_sessions[-1][1], dtype=object)
            for start, name in sessions.utc_sessions:
                names[hour >= start] = name
        else:
            open_m, close_m = calendar.session[0] * 60.0, calendar.session[1] * 60.0
            length = (close_m - open_m) % 1440.0 or 1440.0
            since_open = np.remainder(m - open_m, 1440.0)
            pre = (1440.0 - since_open) <= sessions.pre_market_minutes
            names = np.where(
                since_open < length, "regular", np.where(pre, "pre_market", "after_hours")
            ).astype(object)
        inside = since_open < length
        at_open[rows] = inside & (since_open < config.market_open_minutes)
        at_close[rows] = inside & (length - since_open <= config.market_close_minutes)
        session[rows] = names
    return session.tolist(), at_open, at_close


def _environment(
    config: LabelConfig, snap: dict[str, np.ndarray], at_open: np.ndarray, at_close: np.ndarray
) -> np.ndarray:
    mask = snap["regime_bit"].copy()
    mask |= np.where(at_open, _BIT["market_open"], 0)
    mask |= np.where(at_close, _BIT["market_close"], 0)
    return mask


def _entries(
    config: LabelConfig,
    snap: dict[str, np.ndarray],
    sign: np.ndarray,
    price: np.ndarray,
    fills: FillColumns,
) -> np.ndarray:
    """The entry labels' bits of each fill, as if each opened a position (the caller keeps
    those of the fills that did): :func:`analytics.labels._entry_behaviour` and the sizes."""
    buy, sell = sign > 0, sign < 0
    has = snap["has_bar"]
    trend = snap["trend"]
    mask = np.where(has & ((buy & (trend == 1)) | (sell & (trend == -1))),
                    _BIT["trend_following"], 0)  # fmt: skip
    mr = config.mean_reversion
    stretched = np.where(
        buy,
        (snap["rsi"] <= mr.oversold) | (price <= snap["bollinger_lower"]),
        (snap["rsi"] >= mr.overbought) | (price >= snap["bollinger_upper"]),
    )
    mask |= np.where(has & stretched, _BIT["mean_reversion"], 0)
    moving = sign * snap["momentum_atr"] >= config.momentum.min_move_atr
    mask |= np.where(has & moving, _BIT["momentum"], 0)
    beyond = config.breakout.beyond_atr
    margin = beyond * snap["atr"] if beyond else 0.0
    broke = (buy & (price > snap["donchian_high"] + margin)) | (
        sell & (price < snap["donchian_low"] - margin)
    )
    mask |= np.where(has & broke, _BIT["breakout"], 0)
    median = np.asarray(fills.trailing_median, dtype=np.float64)
    notional = np.asarray(fills.opened, dtype=np.float64) * price
    mask |= np.where(notional >= config.aggressive_min_vs_median * median,
                     _BIT["aggressive_entry"], 0)  # fmt: skip
    mask |= np.where(notional <= config.conservative_max_vs_median * median,
                     _BIT["conservative_entry"], 0)  # fmt: skip
    return mask


def _exits(
    config: LabelConfig,
    bar_ns: int,
    snap: dict[str, np.ndarray],
    t: np.ndarray,
    price: np.ndarray,
    fills: FillColumns,
) -> np.ndarray:
    """The exit labels' bits of each fill, as if each closed some of a position."""
    atr = snap["atr"]
    held = t - np.asarray(fills.entry_ns, dtype=np.int64)
    mask = np.where(_at_most(held, config.quick_exit_max_bars * bar_ns), _BIT["quick_exit"], 0)
    mask |= np.where(_at_least(held, config.hold_long_min_bars * bar_ns), _BIT["hold_long"], 0)
    direction = np.asarray(fills.direction, dtype=np.int64)
    gain = (price - np.asarray(fills.entry_price, dtype=np.float64)) * direction
    scalp = config.scalping
    quick = _at_most(held, scalp.max_hold_minutes * MINUTE_NS)
    mask |= np.where(quick & (np.abs(gain) <= scalp.max_move_atr * atr), _BIT["scalping"], 0)
    stop = config.stop_loss
    reason = fills.reason
    if isinstance(reason, list) and reason.count(None) == len(reason):  # no source's reason
        reasons = np.full(len(reason), None in stop.reasons, dtype=bool)
    else:
        reasons = np.array([why in stop.reasons for why in reason], dtype=bool)
    mask |= np.where(reasons | (-gain >= stop.loss_atr * atr), _BIT["stop_loss"], 0)
    return mask


def _at_most(held: np.ndarray, bound: float) -> np.ndarray:
    """``held <= bound`` for int64 ``held``, exact as Python compares an int with a float
    (numpy would round ``held`` to a float first)."""
    if bound != bound:
        return np.zeros(len(held), dtype=bool)
    if math.isinf(bound):
        return np.full(len(held), bound > 0)
    return held <= min(max(math.floor(bound), _INT64.min), _INT64.max)


def _at_least(held: np.ndarray, bound: float) -> np.ndarray:
    """``held >= bound`` for int64 ``held``, exact (see :func:`_at_most`)."""
    if bound != bound:
        return np.zeros(len(held), dtype=bool)
    if math.isinf(bound):
        return np.full(len(held), bound < 0)
    return held >= min(max(math.ceil(bound), _INT64.min), _INT64.max)


_MADE: dict[int, tuple[str, ...]] = {}


def _names(mask: np.ndarray) -> list[tuple[str, ...]]:
    """Each bit mask as its labels' names in :data:`LABELS` order."""
    made = _MADE
    out = []
    for value in mask.tolist():
        names = made.get(value)
        if names is None:
            names = made[value] = tuple(name for name in LABELS if value & _BIT[name])
        out.append(names)
    return out


def _contexts(
    config: LabelConfig,
    bars: Sequence[Bar],
    bar_of: np.ndarray,
    session: list[str],
    to_high: np.ndarray,
    to_low: np.ndarray,
) -> list[dict[str, Any]]:
    """Each fill's context: its bar's part, its session, its price level and distances."""
    near = config.price_level.near_atr
    high, low = np.abs(to_high), np.abs(to_low)
    known = ~(np.isnan(to_high) | np.isnan(to_low))
    level = np.where(
        ~known, None,
        np.where((high <= near) & (high < low), "resistance",
                 np.where((low <= near) & (low < high), "support", "neutral")),
    ).tolist()  # fmt: skip
    highs = np.where(np.isfinite(to_high), to_high, np.nan).astype(object)
    highs[~np.isfinite(to_high)] = None
    lows = np.where(np.isfinite(to_low), to_low, np.nan).astype(object)
    lows[~np.isfinite(to_low)] = None
    empty = dict.fromkeys(CONTEXT_KEYS)
    parts = [empty if s is None else s.context for s, _ in bars]
    out = []
    for b, where, lvl, h, lo in zip(
        bar_of.tolist(), session, level, highs.tolist(), lows.tolist(), strict=True
    ):
        context = parts[b].copy()
        context["market_session"] = where
        if bars[b][0] is not None:
            context["price_level"] = lvl
            context["to_high_atr"] = h
            context["to_low_atr"] = lo
        out.append(context)
    return out


__all__ = [
    "MIN_COLUMNS",
    "ColumnAnnotation",
    "FillColumns",
    "annotate_columns",
    "annotate_parts",
    "label_names",
]
