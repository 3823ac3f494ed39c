"""The trade cache's columns (``_trade_cache.SCHEMA``) of rows as a writer gives them to the
database (``_trade_io.TRADE_COLUMNS``), equal to what a read of those rows gives back:

- texts as given (a value that is not a text raises :class:`Uncacheable`: the database would
  store its own rendering of it);
- numbers as float64, missing ones NaN; SQLite stores -0.0 as 0.0, so does this there;
- times: the UTC microseconds given, as nanoseconds;
- ``volatility_regime`` and ``market_session``: the top-level key of the stored context's
  JSON text, as the database's JSON operators give it (a text value, None when absent or
  null); read from the text's start where the annotator's compact shape puts them, else
  parsed (any other value raises :class:`Uncacheable`);
- labels: the JSON text given (SQLite keeps it as it is); PostgreSQL gives back its jsonb's
  own rendering, which :func:`jsonb_texts` asks it for once per distinct text.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from database.repositories._trade_cache import SCHEMA

_TEXTS = ("trade_id", "strategy_id", "symbol", "side")
_NUMBERS = ("price", "volume", "commission", "pnl", "cumulative_pnl")
_KEYS = ("volatility_regime", "market_session")
# a compact context (trades.CONTEXT_KEYS' order): the regime first, then the session
_VALUE = r'"(?P<v>[^"\\]*)"[,}]'  # a text without escapes, then the next key or the end
_AT_START = {
    "volatility_regime": r'^\{"volatility_regime":' + _VALUE,
    "market_session": r'^\{(?:"volatility_regime":"[^"\\]*",)?"market_session":' + _VALUE,
}
_JSONB_BATCH = 500
_JSONB_KNOWN_AT_MOST = 100_000
_COMPACT = "_compact"  # trades.COMPACT_CONTEXT (a test holds them equal)
_HELD = ("trade_id", "strategy_id", "symbol", "side", "labels", "market_context", "source",
         "order_id", *_NUMBERS, "execution_time", *_KEYS)  # fmt: skip
CONVERTED_FROM = 1024  # a chunk of this many rows is converted at once (else when written)
_PARSED_UP_TO = 256  # contexts parsed one by one up to this many, else matched column-wise
_REPEATS_AT_LEAST = 4  # contexts parsed once per distinct text when each repeats this often


class Uncacheable(ValueError):
    """A value whose stored form may not be the one given."""


class ChunkRows:
    """One chunk of a writer's columns (as given to the database, held by reference), as the
    cache's columns once needed (:meth:`of`: converted once for all its accounts). A large
    chunk is converted at once and its columns let go."""

    def __init__(self, chunk: Mapping[str, Any], sqlite: bool, *, held: bool = False) -> None:
        self._chunk: dict[str, Any] | None = {n: chunk[n] for n in _HELD if n in chunk}
        self._sqlite = sqlite
        self._table: pa.Table | None = None
        self._rendered = sqlite  # PostgreSQL: the labels as its jsonb renders them, once asked
        self._groups: dict[str, np.ndarray] | None = None
        accounts = chunk["account_id"]
        self.rows = n = len(accounts)
        first = accounts[0] if n else None
        if not isinstance(first, str):
            raise Uncacheable("an account that is not a text")
        if isinstance(accounts, list) and accounts.count(first) == n:
            self.counts = {first: n}
        else:
            codes, names = pd.factorize(np.asarray(accounts, dtype=object))
            if not all(isinstance(name, str) for name in names):
                raise Uncacheable("an account that is not a text")
            order = np.argsort(codes, kind="stable")
            bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
            self._groups = {name: order[bounds[k] : bounds[k + 1]]
                            for k, name in enumerate(names.tolist())}  # fmt: skip
            self.counts = {name: len(rows) for name, rows in self._groups.items()}
        self.labels: set[str] = set() if sqlite else set(chunk["labels"]) - {None}
        if n >= CONVERTED_FROM and not held:  # held: converted only if ever needed
            self._convert()

    def of(self, account: str) -> pa.Table:
        """The rows of ``account``, in order, as the cache holds them (raises
        :class:`Uncacheable`, or pyarrow's error, for a value it cannot hold as stored)."""
        if self._table is None:
            self._convert()
        assert self._table is not None
        if not self._rendered:
            self._table, self._rendered = _jsonb_rendered(self._table), True
        if self._groups is None:
            return self._table
        return self._table.take(self._groups[account])

    def _convert(self) -> None:
        assert self._chunk is not None
        self._table, self._chunk = cache_table(self._chunk, self._sqlite), None


def cache_table(chunk: Mapping[str, Any], sqlite: bool) -> pa.Table:
    """The rows of ``chunk`` (the writer's columns) as the cache holds them once stored."""
    n = len(chunk["trade_id"])
    arrays: dict[str, Any] = {name: _texts(chunk[name]) for name in _TEXTS}
    arrays["labels_text"] = _texts(chunk["labels"])
    given = [name for name in _KEYS if name in chunk]  # the writer's (from the contexts' dicts)
    for name in given:
        arrays[name] = _texts(chunk[name])
    if len(given) < len(_KEYS):
        read = _context_columns(_texts(chunk["market_context"]), set(_KEYS) - set(given))
        arrays.update(read)
    arrays["source"] = _texts(chunk["source"])
    arrays["order_id"] = _texts(chunk["order_id"])
    for name in _NUMBERS:
        values = np.asarray(chunk[name], dtype=np.float64)
        arrays[name] = pa.array(values + 0.0 if sqlite else values)  # SQLite: -0.0 is 0.0
    times = np.asarray(chunk["execution_time"])
    if times.dtype != np.dtype("datetime64[us]") or np.isnat(times).any():
        raise Uncacheable("execution times not as UTC microseconds")
    arrays["time"] = pa.array(times.view(np.int64) * 1000, type=pa.int64())
    table = pa.Table.from_pydict(arrays, schema=SCHEMA)
    if table.num_rows != n:
        raise Uncacheable("columns of different lengths")
    return table


def context_values(contexts: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Each market context's (``volatility_regime``, ``market_session``) as the database
    extracts them from the stored JSON (trades._context_texts: a context holding the key
    ``_compact`` is stored wrapped, its keys one level down): a column each."""
    regimes, sessions = [], []
    for context in contexts:
        if _COMPACT in context:
            regimes.append(None)
            sessions.append(None)
        else:
            regimes.append(context.get("volatility_regime"))
            sessions.append(context.get("market_session"))
    return regimes, sessions


def _texts(values: Any) -> pa.Array:
    try:
        return pa.array(values, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise Uncacheable(str(exc)) from None


def _context_columns(contexts: pa.Array, keys: set[str]) -> dict[str, pa.Array]:
    """The top-level ``keys`` of each JSON context text, as the database extracts them.
    Contexts repeat (a bar's, a session's): when they do, each distinct text is parsed once
    and its values taken per row (1,000,000 imported fills: ~0.05 s against ~0.5 s for the
    regular expressions, which stay for texts that mostly differ)."""
    if len(contexts) > _PARSED_UP_TO:
        encoded = contexts.dictionary_encode()
        distinct = encoded.dictionary
        if len(distinct) * _REPEATS_AT_LEAST <= len(contexts):
            texts = distinct.to_pylist()
            return {
                key: pa.array(_parsed(texts, key), type=pa.large_string()).take(encoded.indices)
                for key in keys
            }
    return {key: _context_values(contexts, key) for key in keys}


def _context_values(contexts: pa.Array, key: str) -> pa.Array:
    """The top-level ``key`` of each JSON context text, as the database extracts it."""
    if len(contexts) <= _PARSED_UP_TO:  # a few: parsed (each pyarrow call costs ~20 us)
        return pa.array(_parsed(contexts.to_pylist(), key), type=pa.large_string())
    found = pc.struct_field(pc.extract_regex(contexts, _AT_START[key]), "v")
    missing = np.flatnonzero(pc.is_null(found).to_numpy(zero_copy_only=False))
    if not len(missing):
        return found
    # not at the start: absent (None) unless the text names it somewhere or escapes a char
    others = contexts.take(missing)
    named = pc.or_(pc.match_substring(others, f'"{key}"'), pc.match_substring(others, "\\"))
    rows = missing[named.fill_null(False).to_numpy(zero_copy_only=False)]
    if not len(rows):
        return found
    values = found.to_pylist()
    for row, value in zip(rows.tolist(), _parsed(contexts.take(rows).to_pylist(), key),
                          strict=True):  # fmt: skip
        values[row] = value
    return pa.array(values, type=pa.large_string())


def _parsed(contexts: list[str | None], key: str) -> list[str | None]:
    out = []
    for context in contexts:
        parsed = orjson.loads(context) if context is not None else None
        value = parsed.get(key) if isinstance(parsed, dict) else None
        if value is not None and not isinstance(value, str):
            raise Uncacheable(f"a {key} that is not a text")
        out.append(value)
    return out


_jsonb_lock = threading.Lock()
_jsonb_known: dict[str, str] = {}  # a label text -> its jsonb rendering (one per process)


def jsonb_known(session: Session, texts: set[str]) -> None:
    """Ask PostgreSQL for its jsonb rendering of the label texts it has not rendered for this
    process yet (a few a batch, most known)."""
    with _jsonb_lock:
        unknown = sorted(texts - _jsonb_known.keys())
    for start in range(0, len(unknown), _JSONB_BATCH):
        part = unknown[start : start + _JSONB_BATCH]
        made = session.execute(
            text(
                "SELECT CAST(CAST(x AS jsonb) AS text) FROM unnest(CAST(:texts AS text[]))"
                " WITH ORDINALITY AS u(x, n) ORDER BY n"
            ),
            {"texts": part},
        ).scalars()
        with _jsonb_lock:
            if len(_jsonb_known) > _JSONB_KNOWN_AT_MOST:  # labels are few: this is not them
                _jsonb_known.clear()
            _jsonb_known.update(zip(part, made, strict=True))


def _jsonb_rendered(table: pa.Table) -> pa.Table:
    """``table`` with its labels as PostgreSQL renders their jsonb (:func:`jsonb_known`)."""
    encoded = table.column("labels_text").combine_chunks().dictionary_encode()
    with _jsonb_lock:
        known = _jsonb_known
        try:
            rendered = [None if v is None else known[v] for v in encoded.dictionary.to_pylist()]
        except KeyError:
            raise Uncacheable("a label text PostgreSQL was not asked to render") from None
    mapped = pa.array(rendered, type=pa.large_string()).take(encoded.indices)
    return table.set_column(table.schema.get_field_index("labels_text"), "labels_text", mapped)


__all__ = ["CONVERTED_FROM", "ChunkRows", "Uncacheable", "cache_table", "context_values",
           "jsonb_known"]  # fmt: skip
