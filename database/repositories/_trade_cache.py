"""A columnar cache of an account's stored trades on local disk, grown as the account grows.

Trades are append-only and immutable (triggers refuse changes), so the rows of an account in a
range of row ids never change once committed. The cache of an account is a chain of Arrow IPC
files, each holding the fills frame's columns (``TradeRepository.frame``'s, labels as their
stored JSON text, without the whole market context) of the account's rows in a range of row
ids ``(after, last]``, with that range and its row count in its metadata: the base file (every
row up to its last, ids below 1 too; at a fixed name: :meth:`TradeFileCache.path`) and
segments after it, each named by its range. A read (``_trade_cache_sync.read_through``) maps
the longest chain of files from the base, then asks the database how many rows the account
has up to the chain's last row: when that is the chain's count, the chain is every row up to
there (each file's rows are rows of the account in its range, so as many rows as the
database has there are all of them); the rows after it are read from the database and
appended as a segment. When the count is not the chain's, the files are checked one by one:
those holding fewer rows than their range now has (a row committed late, out of id order,
on PostgreSQL) are deleted and the rows after the good ones read again. The writers append
too (``_trade_cache_sync``): the rows a transaction stored, once committed, when they are
provably all the account's rows in their range.

Segments are merged as they come (:meth:`TradeFileCache.append`): a file and the files after
it become one when it holds no more rows than they do together (a binary counter: a chain of
``n`` rows has at most ~log2(n) files and a row is rewritten ~log2(n) times, never the whole
account per batch). The database is told by its identity token (table ``database_identity``,
0014): a database rebuilt at the same path or URL has another one and never reads the files
of the one it replaced.

Texts are stored plain (``large_string``, pandas' own string storage) and files are mapped,
not read: a read of one file hands the columns to pandas in place. A file is never changed
once written (written to a temporary name and renamed into place), so a frame over a mapping
of it stays valid, and a file deleted while mapped stays readable to whoever maps it. A file
that cannot be read is ignored and deleted (logged); a directory that cannot be written only
costs speed. Where: beside the candle cache (``CANDLE_CACHE_DIR``'s setting, ``off`` turns
both off), in ``trades/``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import URL

from database.repositories._arrow_files import ArrowFileCache, beside_candles, discard

log = logging.getLogger(__name__)

FORMAT = "3"  # 1: texts dictionary-encoded; 2: one file per account, no range
_SUFFIX = ".trades.arrow"
_TEXT = ("trade_id", "strategy_id", "symbol", "side", "labels_text", "volatility_regime",
         "market_session", "source", "order_id")  # fmt: skip
_NUMBERS = ("price", "volume", "commission", "pnl", "cumulative_pnl")
SCHEMA = pa.schema(
    [
        *((name, pa.large_string()) for name in _TEXT),
        *((name, pa.float64()) for name in _NUMBERS),
        ("time", pa.int64()),
    ]
)
STRING_TYPES = {pa.large_string(): pd.StringDtype(na_value=np.nan)}  # texts: None where null
_STRINGS = STRING_TYPES


@dataclass(frozen=True)
class CacheFile:
    """One file of an account's chain: its rows ``(after, last]`` (``count`` of them)."""

    path: Path
    after: int
    last: int
    count: int
    table: pa.Table | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CachedTrades:
    """An account's rows up to ``last_id`` (``count`` of them), as a frame: the fills frame's
    columns with ``labels_text`` (the stored JSON) in place of the parsed labels; ``files``:
    the chain they were read from, in order."""

    frame: pd.DataFrame
    last_id: int
    count: int
    files: tuple[CacheFile, ...] = ()


class TradeFileCache(ArrowFileCache):
    """The trade cache files of one database, in one directory."""

    suffix = _SUFFIX
    memory_map = True  # the columns are read in place: texts and numbers without a copy
    what = "trade"
    fallback = "trades"

    def path(self, account: str, database: str) -> Path:
        """The base file of ``account`` (its rows up to a row) in the database whose identity
        token is ``database``; the segments after it are beside it (:meth:`files`)."""
        return self._path(database, account)

    def files(self, account: str, database: str) -> list[Path]:
        """Every file of the account's cache (the base, the segments), in no order."""
        base = self.path(account, database)
        stem = base.name[: -len(_SUFFIX)]
        try:
            names = [entry.name for entry in os.scandir(self.directory)]
        except OSError:
            return []
        return [self.directory / name for name in names
                if name.startswith(stem) and name.endswith(_SUFFIX)]  # fmt: skip

    def discard(self, account: str, database: str) -> None:
        """Delete every file of the account's cache."""
        for path in self.files(account, database):
            _remove(path)

    def scan(self, account: str, database: str) -> list[CacheFile]:
        """Every readable file of the account's cache, its table mapped. Unreadable files
        (damaged, of another format) are deleted; files gone meanwhile (merged by another
        process) are passed over."""
        expected = {"format": FORMAT, "account": account, "database": database}
        found: list[CacheFile] = []
        for path in self.files(account, database):
            read = self._read(path, expected)
            if read is None:
                if path.exists():  # unreadable or foreign: of no use to anyone
                    _remove(path)
                continue
            table, last, count = read
            after = int((table.schema.metadata or {}).get(b"after", b"0"))
            if after < last and table.schema.remove_metadata() == SCHEMA:
                found.append(CacheFile(path, after, last, count, table))
        return found

    def chain(self, account: str, database: str) -> list[CacheFile]:
        """The longest chain of the account's files from the base (the fewest files among
        equals), their tables mapped."""
        return _longest(self.scan(account, database))

    def load(self, account: str, database: str) -> CachedTrades | None:
        """The account's cached rows: the longest chain of its files from the base, or None."""
        files = self.chain(account, database)
        if not files:
            return None
        return loaded(files)

    def store(self, account: str, database: str, frame: pd.DataFrame, last_id: int) -> bool:
        """Write ``frame`` (the columns of :class:`CachedTrades`) as the account's rows up to
        ``last_id`` (the base file); False when the directory is not writable (logged once)."""
        return self.write(account, database, table_of(frame), 0, last_id)

    def write(self, account: str, database: str, table: pa.Table, after: int, last: int) -> bool:
        """Write ``table`` (:data:`SCHEMA`) as the account's rows ``(after, last]``."""
        path = self._named(account, database, after, last)
        return self._write(path, table, self._meta(account, database, after), last)

    def prepare(
        self, account: str, database: str, table: pa.Table, after: int, last: int
    ) -> Path | None:
        """:meth:`write`'s file under a temporary name (not a file of the cache yet): placed
        by :meth:`append` (``prepared``) or deleted by ``_arrow_files.discard``; None when
        the directory is not writable."""
        path = self._named(account, database, after, last)
        return self._prepare(path, table, self._meta(account, database, after), last)

    @staticmethod
    def _meta(account: str, database: str, after: int) -> dict[str, str]:
        return {"format": FORMAT, "account": account, "database": database, "after": str(after)}

    def _named(self, account: str, database: str, after: int, last: int) -> Path:
        path = self.path(account, database)
        if not after:
            return path
        return path.with_name(f"{path.name[: -len(_SUFFIX)]}.{after}-{last}{_SUFFIX}")

    def append(
        self, account: str, database: str, table: pa.Table, after: int, last: int,
        prepared: Path | None = None,
    ) -> bool:  # fmt: skip
        """Add ``table`` (:data:`SCHEMA`) as the account's rows ``(after, last]`` when it
        extends the chain (its last file ends at ``after``; the base when there is no chain
        and ``after`` is 0): files it contains are deleted, the chain's tail merged as it
        grows (see the module). ``prepared``: the file :meth:`prepare` wrote of ``table``,
        renamed into place (else deleted). False when nothing was written."""
        files = self.scan(account, database)
        chain = _longest(files)
        if after != (chain[-1].last if chain else 0) or last <= after:
            discard(prepared)
            return False  # it would not extend the chain: a reader fills the gap
        path = self._named(account, database, after, last)
        if prepared is not None:
            if not self._place(prepared, path):
                return False
        elif not self.write(account, database, table, after, last):
            return False
        for file in files:  # within the new file's range: never in a chain again
            if file.path != path and after <= file.after and file.last <= last:
                _remove(file.path)
        chain = [f for f in chain if f.path != path]
        chain.append(CacheFile(path, after, last, table.num_rows, table))
        try:
            _merge_tail(self, account, database, chain)
        except (OSError, pa.ArrowException) as exc:  # the segment is written: merging is speed
            log.warning("trade cache of %r not merged: %s", account, exc)
        return True

    def drop(self, files: Sequence[CacheFile]) -> None:
        """Delete ``files`` (proven wrong: fewer rows than the database holds in their range)."""
        for file in files:
            _remove(file.path)


def _longest(found: list[CacheFile]) -> list[CacheFile]:
    """The chain from the base reaching furthest, of the fewest files among those."""
    best: dict[int, list[CacheFile]] = {0: []}
    for file in sorted(found, key=lambda f: (f.after, -f.last)):
        before = best.get(file.after)
        if before is None:
            continue
        path = [*before, file]
        known = best.get(file.last)
        if known is None or len(path) < len(known):
            best[file.last] = path
    end = max(best)
    return best[end]


def _merge_tail(cache: TradeFileCache, account: str, database: str, files: list[CacheFile]) -> None:
    """Merge the chain's last files into one while the file before them holds no more rows
    than they do together."""
    if len(files) < 2:
        return
    start, rows = len(files) - 1, files[-1].count
    while start > 0 and files[start - 1].count <= rows:
        start -= 1
        rows += files[start].count
    if start == len(files) - 1:
        return
    merged = files[start:]
    table = pa.concat_tables([f.table for f in merged if f.table is not None])
    if table.num_rows != rows:
        return
    after, last = merged[0].after, merged[-1].last
    if cache.write(account, database, table, after, last):
        written = cache._named(account, database, after, last)
        for file in merged:
            if file.path != written:
                _remove(file.path)


def loaded(files: Sequence[CacheFile]) -> CachedTrades:
    """The rows of a chain of files as one frame (a single file's columns in place)."""
    tables = [f.table for f in files if f.table is not None]
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables).combine_chunks()
    frame = table.to_pandas(types_mapper=_STRINGS.get)  # texts: None where null
    return CachedTrades(frame, files[-1].last, sum(f.count for f in files), tuple(files))


def table_of(frame: pd.DataFrame) -> pa.Table:
    """The cache's columns of ``frame`` (the fills frame with ``labels_text``)."""
    arrays = {  # from_pandas: a missing text (None or NaN) is null
        name: pa.array(frame[name], type=pa.large_string(), from_pandas=True) for name in _TEXT
    }
    for name in _NUMBERS:
        arrays[name] = pa.array(frame[name].to_numpy(dtype="float64"))
    arrays["time"] = pa.array(
        pd.DatetimeIndex(frame["time"]).tz_convert("UTC").as_unit("ns").asi8, type=pa.int64()
    )
    return pa.Table.from_pydict(arrays, schema=SCHEMA)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def repeated_text(value: str, count: int) -> pd.api.extensions.ExtensionArray:
    """``value`` ``count`` times as the frame's text column holds it (the default text
    dtype, Arrow's large strings), made from its buffers: not a string per row."""
    data = value.encode()
    offsets = np.arange(count + 1, dtype=np.int64) * len(data)
    array = pa.LargeStringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(data * count)
    )
    return pa.table({"text": array}).to_pandas(types_mapper=_STRINGS.get)["text"].array


def text_column(values: Sequence[Any]) -> pd.api.extensions.ExtensionArray:
    """Texts (None: missing) as the frame's text column holds them, converted to Arrow's
    large strings at once; raises ``pa.ArrowInvalid`` or ``pa.ArrowTypeError`` for a value
    that is not a text (the caller converts those as pandas does)."""
    array = pa.array(values, type=pa.large_string())
    return pa.table({"text": array}).to_pandas(types_mapper=_STRINGS.get)["text"].array


def trade_cache_for(url: URL | str, env: Mapping[str, str] | None = None) -> TradeFileCache | None:
    """The trade cache of the database at ``url`` (beside its candle cache), or None if off."""
    return beside_candles(TradeFileCache, "trade_cache", url, env)


__all__ = [
    "SCHEMA", "CacheFile", "CachedTrades", "TradeFileCache", "loaded", "repeated_text",
    "table_of", "text_column", "trade_cache_for",
]  # fmt: skip
