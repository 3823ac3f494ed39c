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

Files are written to a temporary name and renamed into place; a file that cannot be read is
ignored (logged) and a directory that cannot be written only costs speed. Where: beside the
candle cache (``CANDLE_CACHE_DIR``'s setting, ``off`` turns both off), in ``trades/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
from sqlalchemy import URL

from database.repositories._candle_cache import cache_for

log = logging.getLogger(__name__)

FORMAT = "1"
_SUFFIX = ".trades.arrow"
_TEXT = ("trade_id", "strategy_id", "symbol", "side", "labels_text", "volatility_regime",
         "market_session", "source", "order_id")  # fmt: skip
_NUMBERS = ("price", "volume", "commission", "pnl", "cumulative_pnl")


@dataclass(frozen=True)
class CachedTrades:
    """An account's rows up to ``last_id`` (``count`` of them), as a frame: the fills frame's
    columns with ``labels_text`` (the stored JSON) in place of the parsed labels."""

    frame: pd.DataFrame
    last_id: int
    count: int


class TradeFileCache:
    """The trade cache files of one database, in one directory."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = directory
        self.identity = identity
        self._lock = threading.Lock()
        self._write_failed = False

    def path(self, account: str, database: str) -> Path:
        """The file of ``account`` in the database whose identity token is ``database``."""
        text = f"{self.identity}\0{database}\0{account}"
        return self.directory / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}{_SUFFIX}"

    def load(self, account: str, database: str) -> CachedTrades | None:
        path = self.path(account, database)
        try:
            table = feather.read_table(path, memory_map=False)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            log.warning("ignoring trade cache file %s: unreadable (%s)", path, exc)
            return None
        meta = table.schema.metadata or {}
        try:
            if (
                meta[b"format"].decode() != FORMAT
                or meta[b"account"].decode() != account
                or meta[b"database"].decode() != database
            ):
                return None
            last_id, count = int(meta[b"last_id"]), int(meta[b"count"])
        except (KeyError, ValueError):
            log.warning("ignoring trade cache file %s: no valid metadata", path)
            return None
        if table.num_rows != count:
            log.warning(
                "ignoring trade cache file %s: %d rows, %d said", path, table.num_rows, count
            )
            return None
        for k, field in enumerate(table.schema):
            if pa.types.is_dictionary(field.type):  # texts again: None where null
                table = table.set_column(k, field.name, table.column(k).cast(pa.string()))
        frame = table.to_pandas(types_mapper={pa.string(): pd.StringDtype(na_value=np.nan)}.get)
        return CachedTrades(frame, last_id, count)

    def store(self, account: str, database: str, frame: pd.DataFrame, last_id: int) -> bool:
        """Write ``frame`` (the columns of :class:`CachedTrades`) as the account's rows up to
        ``last_id``; False when the directory is not writable (logged once)."""
        columns = {name: frame[name] for name in (*_TEXT, *_NUMBERS)}
        arrays = {
            # from_pandas: a missing text (None or NaN) is null
            name: pa.array(values, type=pa.string(), from_pandas=True).dictionary_encode()
            if name in ("strategy_id", "symbol", "side", "labels_text", "volatility_regime",
                        "market_session", "source")
            else pa.array(values, type=pa.string(), from_pandas=True)
            for name, values in columns.items()
            if name in _TEXT
        }  # fmt: skip
        for name in _NUMBERS:
            arrays[name] = pa.array(frame[name].to_numpy(dtype="float64"))
        arrays["time"] = pa.array(
            pd.DatetimeIndex(frame["time"]).tz_convert("UTC").as_unit("ns").asi8,
            type=pa.int64(),
        )
        meta = {"format": FORMAT, "account": account, "database": database,
                "last_id": str(last_id), "count": str(len(frame))}  # fmt: skip
        table = pa.table(arrays).replace_schema_metadata(meta)
        final = self.path(account, database)
        temporary = self.directory / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            feather.write_feather(table, temporary, compression="uncompressed")
            os.replace(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            with self._lock:
                if not self._write_failed:
                    self._write_failed = True
                    log.warning(
                        "trade cache disabled for writing in %s (%s): trades are read from the"
                        " database",
                        self.directory,
                        exc,
                    )
            return False
        return True


_caches: dict[str, TradeFileCache | None] = {}
_caches_lock = threading.Lock()


def trade_cache_for(url: URL | str, env: Mapping[str, str] | None = None) -> TradeFileCache | None:
    """The trade cache of the database at ``url`` (beside its candle cache), or None if off."""
    candles = cache_for(url, env)
    if candles is None:
        return None
    key = f"{candles.identity}\0{candles.directory}"
    with _caches_lock:
        if key not in _caches:
            _caches[key] = TradeFileCache(
                candles.directory.parent / "trade_cache", candles.identity
            )
        return _caches[key]


__all__ = ["CachedTrades", "TradeFileCache", "trade_cache_for"]
