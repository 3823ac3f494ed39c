"""A columnar cache of an account's imported orders and fills on local disk, grown as the
account grows: the trade cache's scheme (``_trade_cache``) for ``execution_orders`` and
``execution_fills``.

Both tables are append-only and immutable (triggers refuse changes), so an account's rows up
to a row id never change once committed: one Arrow IPC file per (database, table, account)
holds the columns ``_execution_io.read_columns`` gives (with the row id), up to the row id
written in its metadata with the row count. A read asks the database for the account's row
count and last id; when both match the file is the answer; when only newer rows were added it
reads those (``id > last``) and, if the counts add up, rewrites the file with them; otherwise
(a row committed late with a lower id, a database rebuilt) it reads everything again. Files
are keyed by the database's identity token (table ``database_identity``), written to a
temporary name and renamed into place; an unreadable file is ignored (logged), an unwritable
directory only costs speed. Only committed rows may be cached: the repository uses the cache
when its caller asks (``cached=True``: a session that has written nothing).

Where: beside the candle cache (``CANDLE_CACHE_DIR``'s setting, ``off`` turns it off), in
``execution_cache/``.
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
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
from sqlalchemy import URL

from database.repositories._candle_cache import cache_for
from database.repositories._execution_io import utc_micros

log = logging.getLogger(__name__)

FORMAT = "1"
_SUFFIX = ".executions.arrow"
_UNIQUE_TEXTS = ("order_id", "trade_id")  # the other texts repeat: dictionary-encoded


@dataclass(frozen=True)
class CachedColumns:
    """An account's rows of one table up to ``last_id`` (``count`` of them), as columns."""

    columns: dict[str, Any]
    last_id: int
    count: int


class ExecutionFileCache:
    """The execution cache files of one database, in one directory."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = directory
        self.identity = identity
        self._lock = threading.Lock()
        self._write_failed = False

    def path(self, table: str, account: str, database: str) -> Path:
        text = f"{self.identity}\0{database}\0{table}\0{account}"
        return self.directory / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}{_SUFFIX}"

    def load(
        self, table: str, account: str, database: str, times: tuple[str, ...]
    ) -> CachedColumns | None:
        path = self.path(table, account, database)
        try:
            stored = feather.read_table(path, memory_map=False)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            log.warning("ignoring execution cache file %s: unreadable (%s)", path, exc)
            return None
        meta = stored.schema.metadata or {}
        try:
            if (
                meta[b"format"].decode() != FORMAT
                or meta[b"table"].decode() != table
                or meta[b"account"].decode() != account
                or meta[b"database"].decode() != database
            ):
                return None
            last_id, count = int(meta[b"last_id"]), int(meta[b"count"])
        except (KeyError, ValueError):
            log.warning("ignoring execution cache file %s: no valid metadata", path)
            return None
        if stored.num_rows != count:
            log.warning("ignoring execution cache file %s: %d rows, %d said", path,
                        stored.num_rows, count)  # fmt: skip
            return None
        columns: dict[str, Any] = {}
        for field in stored.schema:
            column = stored.column(field.name).combine_chunks()
            if field.name in times:
                columns[field.name] = utc_micros(column.cast(pa.int64()))
            elif pa.types.is_dictionary(field.type) or pa.types.is_string(field.type):
                columns[field.name] = column.cast(pa.string())
            else:
                columns[field.name] = column.to_numpy(zero_copy_only=False)
        return CachedColumns(columns, last_id, count)

    def store(
        self, table: str, account: str, database: str, columns: Mapping[str, Any], last_id: int
    ) -> bool:
        """Write ``columns`` (``read_columns``' kinds) as the account's rows of ``table`` up to
        ``last_id``; False when the directory is not writable (logged once)."""
        arrays: dict[str, pa.Array] = {}
        for name, values in columns.items():
            if isinstance(values, pd.DatetimeIndex):
                arrays[name] = pa.array(values.as_unit("us"))
            elif isinstance(values, np.ndarray):
                arrays[name] = pa.array(values)
            else:
                arrays[name] = values if name in _UNIQUE_TEXTS else values.dictionary_encode()
        count = len(columns["id"])
        meta = {"format": FORMAT, "table": table, "account": account, "database": database,
                "last_id": str(last_id), "count": str(count)}  # fmt: skip
        frozen = pa.table(arrays).replace_schema_metadata(meta)
        final = self.path(table, account, database)
        temporary = self.directory / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            feather.write_feather(frozen, temporary, compression="uncompressed")
            os.replace(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            with self._lock:
                if not self._write_failed:
                    self._write_failed = True
                    log.warning("execution cache disabled for writing in %s (%s): orders are "
                                "read from the database", self.directory, exc)  # fmt: skip
            return False
        return True


_caches: dict[str, ExecutionFileCache | None] = {}
_caches_lock = threading.Lock()


def execution_cache_for(
    url: URL | str, env: Mapping[str, str] | None = None
) -> ExecutionFileCache | None:
    """The execution cache of the database at ``url`` (beside its candle cache), or None."""
    candles = cache_for(url, env)
    if candles is None:
        return None
    key = f"{candles.identity}\0{candles.directory}"
    with _caches_lock:
        if key not in _caches:
            _caches[key] = ExecutionFileCache(
                candles.directory.parent / "execution_cache", candles.identity
            )
        return _caches[key]


__all__ = ["CachedColumns", "ExecutionFileCache", "execution_cache_for"]
