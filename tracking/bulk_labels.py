"""The market context and labels of a whole import at once, a column per field: what
:class:`tracking.annotator.MarketAnnotator` gives the same fills as a first batch (a fresh
annotator: a new process's import), without a record, a dict or a tuple per fill.

>>> texts = label_symbol(session, config, news, "BTC", t_ns, price, sign, roles, rows)

Per symbol, as the annotator starts it: its finest stored timeframe, the bars before its
first fill (the warm-up), then every bar up to its last fill read at once
(:class:`analytics.symbol_bars.FrameBars`) when there are many, else fed one at a time
(:class:`analytics.labels.SymbolBars`, in runs of at most ``KEEP_BARS``); the trailing entry
sizes of the account (one account per import, none before it); the rule over columns
(:func:`analytics.label_batch.annotate_parts`). The context and labels come out as the JSON
texts the trade table stores: a fill without a bar has its session's context, one text per
session; a fill with a bar its own. Tests hold every stored row equal to the tracker's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from analytics.label_batch import FillColumns, annotate_parts, label_names
from analytics.label_config import LabelConfig
from analytics.labels import NAN, NewsCalendar, SymbolBars
from analytics.market_context import CONTEXT_KEYS
from analytics.symbol_bars import FrameBars
from database.repositories.candles import CandleRepository
from database.repositories.trades import context_texts, label_texts
from market.candles import Candle
from market.timeframes import Timeframe
from tracking.annotator import CALENDAR_SPAN, FRAME_BARS, KEEP_BARS, NO_BARS, WARMUP_BARS

_OHLCV = ["open", "high", "low", "close", "volume"]


class Roles(NamedTuple):
    """Per fill (arrays in the import's order), its part in its position: the FIFO walk's
    (analytics.trade_batch.FillRoles' fields)."""

    opened: np.ndarray
    closed: np.ndarray
    entry_price: np.ndarray
    direction: np.ndarray
    entry_ns: np.ndarray


def label_symbol(
    session: Session,
    config: LabelConfig,
    news: NewsCalendar,
    symbol: str,
    t: np.ndarray,
    price: np.ndarray,
    sign: np.ndarray,
    roles: Roles,
    entries: list[float],
) -> tuple[list[str], list[str]]:
    """(context texts, label texts) of one symbol's fills of the import (times ``t`` in ns,
    in time order), as the annotator's first batch labels them; ``entries``: the notionals
    the account's stored fills of the symbol opened, in order."""
    bars = _start(session, config, symbol, int(t[0]), int(t.max()))
    opened = roles.opened
    medians = _medians(config, opened, price, entries)
    distinct, bar_of = bars.bars_at(t)
    fills = FillColumns(
        t, price, sign, opened, medians, roles.closed, roles.entry_price, roles.entry_ns,
        roles.direction, [None] * len(t),
    )  # fmt: skip
    parts = annotate_parts(config, bars.bar_ns, symbol, fills, distinct, bar_of, news)
    return _context_texts(parts), _label_texts(parts.mask)


class _Bars:
    """A symbol's bars as the annotator follows them from its first batch: the warm-up, then
    the bars up to the batch's last fill, at once or fed (see the module text)."""

    def __init__(
        self, bars: SymbolBars | FrameBars, bar: pd.Timedelta,
        pending: tuple[np.ndarray, list[tuple[float, ...]]] | None,
    ) -> None:  # fmt: skip
        self.bars = bars
        self.bar = bar
        self.bar_ns = bars.bar_ns
        self._pending = pending
        self.empty = False  # a symbol without stored bars: none is ever fed

    def bars_at(self, t: np.ndarray) -> tuple[list[Any], np.ndarray]:
        """The distinct bars the fills at times ``t`` see and each fill's index into them
        (MarketAnnotator._bars' rule)."""
        if self.empty:  # no bar ever: every fill sees the one bar-less answer
            found, _ = self.bars.bars_at(t[:1].tolist())
            return found, np.zeros(len(t), dtype=np.int64)
        if self._pending is None or not len(self._pending[0]):
            found, of = self.bars.bars_at(t.tolist())
            return found, np.array(of, dtype=np.int64)
        opens, values = self._pending
        order = np.argsort(t, kind="stable")
        ordered = t[order]
        need = np.searchsorted(opens + self.bar.value, ordered, side="right")
        bar_of = np.empty(len(t), dtype=np.int64)
        out: list[Any] = []
        start = fed = 0
        update = self.bars.update
        while start < len(ordered):
            stop = int(np.searchsorted(need, need[start] + KEEP_BARS - 1, side="right"))
            until = int(need[stop - 1])
            for open_ns, row in zip(opens[fed:until].tolist(), values[fed:until], strict=True):
                update(Candle(None, *row), open_ns)  # type: ignore[arg-type]
            fed = max(fed, until)
            got, of = self.bars.bars_at(ordered[start:stop].tolist())
            bar_of[order[start:stop]] = np.array(of, dtype=np.int64) + len(out)
            out.extend(got)
            start = stop
        return out, bar_of


def _start(session: Session, config: LabelConfig, symbol: str, first_ns: int, end_ns: int) -> _Bars:
    """MarketAnnotator._start, _reframe and _pending for a symbol not followed yet, whose
    batch's fills of it run from ``first_ns`` to ``end_ns``."""
    candles = CandleRepository(session)
    stored = candles.timeframes(symbol)
    timeframe = min(stored, key=lambda t: Timeframe.parse(t).delta) if stored else None
    if timeframe is None:
        none = SymbolBars(config, NO_BARS, history=None, keep_bars=KEEP_BARS)
        no_bars = _Bars(none, NO_BARS, None)
        no_bars.empty = True
        return no_bars
    bar = Timeframe.parse(timeframe).delta
    first = pd.Timestamp(first_ns, tz="UTC")
    warm_bars = int(min(_sample_bars(), max(WARMUP_BARS, -(-CALENDAR_SPAN // bar))))
    warm = candles.frame(symbol, timeframe, end=first - bar, last=warm_bars)
    last_open = None if warm.empty else warm.index[-1]
    first_open = None if warm.empty else warm.index[0]
    bars = SymbolBars(config, bar, history=warm, keep_bars=KEEP_BARS)
    end = pd.Timestamp(end_ns, tz="UTC") - bar  # the bars the batch reads: open <= end
    unfed = (end - last_open) // bar if last_open is not None else FRAME_BARS
    fed = (last_open - first_open) // bar if last_open is not None else 0
    if unfed >= max(FRAME_BARS, fed // 4):  # read at once (MarketAnnotator._reframe)
        whole = candles.frame(symbol, timeframe, start=first_open, end=end)
        if not whole.empty:
            return _Bars(FrameBars(config, bar, whole[_OHLCV], known_until=end), bar, None)
    if last_open is not None and last_open >= end:
        return _Bars(bars, bar, None)
    after = candles.frame(symbol, timeframe, end=end, after=last_open)
    opens = after.index.as_unit("ms").asi8 * 1_000_000
    values = list(zip(*(after[c].astype(float).tolist() for c in _OHLCV), strict=True))
    return _Bars(bars, bar, (opens, values))


def _sample_bars() -> int:
    from market.calendars import SAMPLE_BARS

    return int(SAMPLE_BARS)


def _context_texts(parts: Any) -> list[str]:
    """Each fill's context as stored: a fill without a bar has its session's (one text per
    session), one with a bar its own."""
    n = len(parts.mask)
    has = parts.has_bar()
    out: list[str] = [""] * n
    if has.any():
        rows = np.flatnonzero(has)
        for k, text in zip(rows.tolist(), context_texts(parts.contexts(rows)), strict=True):
            out[k] = text
    if not has.all():  # a context per session: {market_session: ...} and the null rest
        rows = np.flatnonzero(~has)
        codes, sessions = pd.factorize(np.array(parts.session, dtype=object)[rows])
        texts = np.array(
            context_texts([{**dict.fromkeys(CONTEXT_KEYS), "market_session": where}
                           for where in sessions]),
            dtype=object,
        )[codes]  # fmt: skip
        if len(rows) == n:
            return texts.tolist()
        for k, text in zip(rows.tolist(), texts.tolist(), strict=True):
            out[k] = text
    return out


def _label_texts(mask: np.ndarray) -> list[str]:
    """Each fill's labels as stored (JSON text), one text per distinct mask."""
    values, inverse = np.unique(mask, return_inverse=True)
    texts = label_texts([label_names(int(v)) for v in values.tolist()])
    return np.array(texts, dtype=object)[inverse.reshape(-1)].tolist()


def _medians(
    config: LabelConfig, opened: np.ndarray, price: np.ndarray, before: Sequence[float] = ()
) -> np.ndarray:
    """Per fill, the median notional of the account's earlier entries (NaN: too few, or the
    fill opened nothing): MarketAnnotator._medians' (its SortedWindow's median, warmed with
    the entries ``before``, as a rolling median: the same floats, tested)."""
    entries = config.entry_sizes
    out = np.full(len(opened), NAN)
    opening = np.flatnonzero(opened > 0)
    if not len(opening) or entries.min_history > entries.window:
        return out
    warm = list(before[-entries.window :]) if entries.window else []
    notional = pd.Series([*warm, *(opened[opening] * price[opening]).tolist()], dtype=float)
    rolling = notional.rolling(entries.window, min_periods=entries.min_history)
    out[opening] = rolling.median().shift(1).to_numpy()[len(warm) :]
    return out


__all__ = ["Roles", "label_symbol"]
