"""A trade's market context as the trades table stores it, and back.

The annotator's context (every key of :data:`CONTEXT_KEYS`, first and in that order:
analytics.market_context.CONTEXT_KEYS, a test holds them equal) is stored compact, marked by
the key :data:`COMPACT_CONTEXT` whose value names the key set:

- key set 1: the context without its null entries (~40 bytes without bars instead of ~420);
- key set 2, a context read against a bar: the fill's own part (:data:`FILL_KEYS`, its
  source's keys after CONTEXT_KEYS) and :data:`BAR_REF`, the key of the bar's part in
  ``market_bars`` (migration 0018): the bar's part (:data:`BAR_KEYS`: its indicators, ~550
  bytes) is stored once, not once per fill of that bar. The key is the digest of the bar
  part's text (BLAKE2b, 128 bits, hex): the same bar read the same way is one row whichever
  writer stores it (``INSERT ... ON CONFLICT DO NOTHING`` in the trades' transaction).

Read back (:func:`context_of`) either is the same dict, keys in the same order. A context of
any other shape (a source's own, an empty one) is stored as it is; one holding a key named
COMPACT_CONTEXT of its own is wrapped (marker 0). Key set 2 is written only where the writer
stores the bars too (``bars`` given to :func:`context_texts`); set 1 stays readable.

The stream's contexts (bench/tracking.py --only stream, ~2,000 bars a 10,000-fill batch): ~2.8 us
a fill to make against ~1.9 us for key set 1, and ~230 bytes of jsonb stored against ~760
(PostgreSQL stores such a batch in ~11 us a row against ~19).
"""

from __future__ import annotations

import contextlib
import hashlib
import operator
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

CONTEXT_KEYS = (
    "volatility_regime", "market_session", "trend", "volume_profile", "price_level",
    "bar_open", "close", "atr", "atr_pct", "atr_pct_rank", "sma", "close_vs_sma_atr",
    "sma_slope_pct", "volume", "volume_z", "donchian_high", "donchian_low", "to_high_atr",
    "to_low_atr", "rsi", "bollinger_upper", "bollinger_lower", "momentum_atr",
)  # fmt: skip
COMPACT_CONTEXT = "_compact"
BAR_REF = "_bar"
# the fill's own part (its session, price level and distances; the regime too: the database
# extracts it and the session from the stored text, _trade_rows reads them at its start)
FILL_KEYS = ("volatility_regime", "market_session", "price_level", "to_high_atr", "to_low_atr")
BAR_KEYS = tuple(key for key in CONTEXT_KEYS if key not in FILL_KEYS)
_WIDTH = len(CONTEXT_KEYS)
_BAR_VALUES = operator.itemgetter(*BAR_KEYS)
_FILL_VALUES = operator.itemgetter(*FILL_KEYS)
# the bars' parts made, by their values (held: the identity check below stays sound), for the
# groups that follow (a stream's next group meets most of the same bars); emptied when full
_MADE: dict[tuple[Any, ...], tuple[tuple[Any, ...], str, str]] = {}
_MADE_AT_MOST = 10_000


def json_text(value: Any) -> str:
    """``value`` as JSON text (numpy values as their numbers)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def bar_key(body: str) -> str:
    """The key of a bar part's JSON text: its BLAKE2b digest, 128 bits, hex."""
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


def context_texts(contexts: Iterable[Any], bars: dict[str, str] | None = None) -> list[str]:
    """Each market context as the JSON text the trades table stores. ``bars``: the writer
    stores bar parts too (:func:`store_bars`, in the trades' transaction): the annotator's
    contexts read against a bar are key set 2 and their bars' (key, text) added to it."""
    keys, width, marker = CONTEXT_KEYS, _WIDTH, COMPACT_CONTEXT
    dumps, numpy = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    bar_values, fill_values, is_ = _BAR_VALUES, _FILL_VALUES, operator.is_
    made = _MADE
    out = []
    for context in contexts:
        if tuple(context)[:width] != keys or marker in context:
            if marker in context:  # a source's own key of that name: wrapped
                context = {marker: 0, "context": context}
            out.append(json_text(context))
            continue
        if bars is not None and context["bar_open"] is not None and BAR_REF not in context:
            values = bar_values(context)
            try:
                seen = made.get(values)
            except TypeError:  # a value that does not hash (a list): the bar made anew
                seen = None
            # the same objects (every fill of a bar shares them): the same text; values only
            # equal (0 and 0.0, -0.0 and 0.0) may not write alike: their own text and key
            if seen is None or not all(map(is_, values, seen[0])):
                body = dumps(dict(_present(BAR_KEYS, values)), option=numpy).decode()
                seen = (values, bar_key(body), body)
                if len(made) >= _MADE_AT_MOST:
                    made.clear()
                with contextlib.suppress(TypeError):
                    made[values] = seen
            bars[seen[1]] = seen[2]
            regime, session, level, to_high, to_low = fill_values(context)
            kept = {}  # FILL_KEYS' order, without nulls
            if regime is not None:
                kept["volatility_regime"] = regime
            if session is not None:
                kept["market_session"] = session
            if level is not None:
                kept["price_level"] = level
            if to_high is not None:
                kept["to_high_atr"] = to_high
            if to_low is not None:
                kept["to_low_atr"] = to_low
            if len(context) > width:  # the source's keys after CONTEXT_KEYS, as they are
                kept.update(list(context.items())[width:])
            kept[BAR_REF] = seen[1]
            kept[marker] = 2
            out.append(dumps(kept, option=numpy).decode())
            continue
        if len(context) == width:  # the annotator's alone
            try:
                full = None not in context.values()  # nothing to leave out: stored as it is
            except ValueError:  # a value that does not compare (an array): the long way
                full = False
            if full:
                out.append(dumps(context, option=numpy).decode())
                continue
            kept = {k: v for k, v in context.items() if v is not None}
        else:  # the source's keys after CONTEXT_KEYS kept as they are, null or not
            items = list(context.items())
            kept = {k: v for k, v in items[:width] if v is not None}
            kept.update(items[width:])
        kept[marker] = 1  # key set 1: CONTEXT_KEYS
        out.append(dumps(kept, option=numpy).decode())
    return out


def _present(names: tuple[str, ...], values: tuple[Any, ...]) -> Iterable[tuple[str, Any]]:
    return ((name, value) for name, value in zip(names, values, strict=True) if value is not None)


def context_of(stored: Any = None, bars: Mapping[str, Mapping[str, Any]] | None = None) -> dict:
    """A stored market context as it was recorded: a compact one with its null entries
    back, CONTEXT_KEYS first and in order, then the source's keys in their stored order.
    ``bars``: the bar parts (key -> parsed) of key set 2's contexts (:func:`bar_parts`)."""
    if not stored:
        return {} if stored is None else dict(stored)
    marker = stored.get(COMPACT_CONTEXT)
    if marker not in (1, 2):
        return dict(stored["context"] if marker == 0 else stored)
    out: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS)
    if marker == 2:
        key = stored[BAR_REF]
        bar = None if bars is None else bars.get(key)
        if bar is None:
            raise LookupError(f"market context: its bar {key!r} is not in market_bars")
        out.update(bar)
        out.update(stored)
        del out[BAR_REF]
    else:
        out.update(stored)
    del out[COMPACT_CONTEXT]
    return out


def bar_refs(contexts: Iterable[Any]) -> set[str]:
    """The bar keys the stored (parsed) contexts of key set 2 name."""
    return {
        c[BAR_REF]
        for c in contexts
        if isinstance(c, dict) and c.get(COMPACT_CONTEXT) == 2 and BAR_REF in c
    }


__all__ = [
    "BAR_KEYS",
    "BAR_REF",
    "COMPACT_CONTEXT",
    "CONTEXT_KEYS",
    "FILL_KEYS",
    "bar_key",
    "bar_refs",
    "context_of",
    "context_texts",
    "json_text",
]
