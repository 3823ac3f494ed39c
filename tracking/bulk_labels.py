"""The market context and labels of a whole import at once, a column per field: what
:class:`tracking.annotator.MarketAnnotator` gives the same fills as a first batch (a fresh
annotator: a new process's import), without a record, a dict or a tuple per fill.

>>> texts = label_symbol(session, MarketAnnotator(config), news, "BTC", t_ns, price, sign,
...                      roles, entries, bars)

Per symbol, the bars its fills see come from the annotator itself
(:meth:`MarketAnnotator.bars_for`: its finest stored timeframe, the warm-up before its first
fill, then the bars up to its last fill read at once or fed one at a time); the trailing entry
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
from analytics.labels import NAN, NewsCalendar
from analytics.market_context import CONTEXT_KEYS
from database.repositories.trades import context_texts, label_texts
from tracking.annotator import MarketAnnotator


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
    annotator: MarketAnnotator,
    news: NewsCalendar,
    symbol: str,
    t: np.ndarray,
    price: np.ndarray,
    sign: np.ndarray,
    roles: Roles,
    entries: list[float],
    bars: dict[str, str],
) -> tuple[list[str], list[str]]:
    """(context texts, label texts) of one symbol's fills of the import (times ``t`` in ns,
    in time order), as ``annotator``'s first batch of them labels them (a fresh annotator:
    a new process's); ``entries``: the notionals the account's stored fills of the symbol
    opened, in order; the bars' parts the contexts name added to ``bars``."""
    config = annotator.config
    opened = roles.opened
    medians = _medians(config, opened, price, entries)
    bar_ns, distinct, bar_of = annotator.bars_for(session, symbol, t)
    fills = FillColumns(
        t, price, sign, opened, medians, roles.closed, roles.entry_price, roles.entry_ns,
        roles.direction, [None] * len(t),
    )  # fmt: skip
    parts = annotate_parts(config, bar_ns, symbol, fills, distinct, bar_of, news)
    return _context_texts(parts, bars), _label_texts(parts.mask)


def _context_texts(parts: Any, bars: dict[str, str]) -> list[str]:
    """Each fill's context as stored: a fill without a bar has its session's (one text per
    session), one with a bar its own."""
    n = len(parts.mask)
    has = parts.has_bar()
    out: list[str] = [""] * n
    if has.any():
        rows = np.flatnonzero(has)
        for k, text in zip(rows.tolist(), context_texts(parts.contexts(rows), bars), strict=True):
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
    """Each fill's labels as stored (JSON text), one text per distinct mask (found by
    hashing: np.unique's sort of 1,000,000 masks cost ~0.13 s)."""
    codes, values = pd.factorize(mask)
    texts = label_texts([label_names(int(v)) for v in values.tolist()])
    return np.array(texts, dtype=object)[codes].tolist()


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
