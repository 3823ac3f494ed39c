"""A columnar cache of an account's stored trades on local disk, grown as the account grows.

Trades are append-only and immutable (triggers refuse changes), so the rows of an account up
to a row id never change once committed: one Arrow IPC file per (database, account) holds its
fills frame (``TradeRepository.frame``'s columns, without the whole market context) up to the
row id written in the file's metadata with the row count. A read asks the database for the
account's row count and reads only the rows after the cached id; when the counts add up the
frame is the cached rows followed by those, and the file is rewritten with them; when they do
not (rows gone), the file is ignored and rebuilt. The database is told by its identity token
(table ``database_identity``, a random token made with the schema, 0014): a database rebuilt
at the same path or URL has another one and never reads the files of the one it replaced. Only
committed rows may be cached: the repository uses the cache for reads in a session that has
written nothing (the services' query sessions), never inside a writing transaction.

Texts are stored plain (``large_string``, pandas' own string storage) and the file is mapped,
not read: a read hands the columns to pandas in place, with no decoding and no copy (format 1
dictionary-encoded the repeated texts and decoded them on every read). A file is never changed
once written (replaced by a rename), so a frame over a mapping of it stays valid.

Files are written to a temporary name and renamed into place; a file that cannot be read is
ignored (logged) and a directory that cannot be written only costs speed. Where: beside the
candle cache (``CANDLE_CACHE_DIR``'s setting, ``off`` turns both off), in ``trades/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import URL

from database.repositories._arrow_files import ArrowFileCache, beside_candles

FORMAT = "2"  # 1: repeated texts dictionary-encoded (decoded on every read)
_SUFFIX = ".trades.arrow"
_TEXT = ("trade_id", "strategy_id", "symbol", "side", "labels_text", "volatility_regime",
         "market_session", "source", "order_id")  # fmt: skip
_NUMBERS = ("price", "volume", "commission", "pnl", "cumulative_pnl")
STRING_TYPES = {pa.large_string(): pd.StringDtype(na_value=np.nan)}  # texts: None where null
_STRINGS = STRING_TYPES


@dataclass(frozen=True)
class CachedTrades:
    """An account's rows up to ``last_id`` (``count`` of them), as a frame: the fills frame's
    columns with ``labels_text`` (the stored JSON) in place of the parsed labels."""

    frame: pd.DataFrame
    last_id: int
    count: int


class TradeFileCache(ArrowFileCache):
    """The trade cache files of one database, in one directory."""

    suffix = _SUFFIX
    memory_map = True  # the columns are read in place: texts and numbers without a copy
    what = "trade"
    fallback = "trades"

    def path(self, account: str, database: str) -> Path:
        """The file of ``account`` in the database whose identity token is ``database``."""
        return self._path(database, account)

    def load(self, account: str, database: str) -> CachedTrades | None:
        expected = {"format": FORMAT, "account": account, "database": database}
        found = self._read(self.path(account, database), expected)
        if found is None:
            return None
        table, last_id, count = found
        frame = table.to_pandas(types_mapper=_STRINGS.get)  # texts: None where null
        return CachedTrades(frame, last_id, count)

    def store(self, account: str, database: str, frame: pd.DataFrame, last_id: int) -> bool:
        """Write ``frame`` (the columns of :class:`CachedTrades`) as the account's rows up to
        ``last_id``; False when the directory is not writable (logged once)."""
        arrays = {  # from_pandas: a missing text (None or NaN) is null
            name: pa.array(frame[name], type=pa.large_string(), from_pandas=True) for name in _TEXT
        }
        for name in _NUMBERS:
            arrays[name] = pa.array(frame[name].to_numpy(dtype="float64"))
        arrays["time"] = pa.array(
            pd.DatetimeIndex(frame["time"]).tz_convert("UTC").as_unit("ns").asi8,
            type=pa.int64(),
        )
        meta = {"format": FORMAT, "account": account, "database": database}
        return self._write(self.path(account, database), pa.table(arrays), meta, last_id)


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


__all__ = ["CachedTrades", "TradeFileCache", "repeated_text", "text_column", "trade_cache_for"]
