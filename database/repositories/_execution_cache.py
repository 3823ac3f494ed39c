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
when its caller asks (``cached=True``: a session that has written nothing), and an import
(``ExecutionRepository.add``) writes the files itself once its transaction commits, from the
columns it stored, when the account's ids read back prove them to be the cached rows plus its
own (``executions._cache_stored``): the first read after an import reads no row.

Where: beside the candle cache (``CANDLE_CACHE_DIR``'s setting, ``off`` turns it off), in
``execution_cache/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import URL

from database.repositories._arrow_files import ArrowFileCache, beside_candles
from database.repositories._execution_io import utc_micros

FORMAT = "2"  # 1: repeated texts dictionary-encoded (decoded on every read)
_SUFFIX = ".executions.arrow"


@dataclass(frozen=True)
class CachedColumns:
    """An account's rows of one table up to ``last_id`` (``count`` of them), as columns;
    ``table_last_id``: the table's last row id seen before they were read (SQLite only, else
    None)."""

    columns: dict[str, Any]
    last_id: int
    count: int
    table_last_id: int | None = None


class ExecutionFileCache(ArrowFileCache):
    """The execution cache files of one database, in one directory."""

    suffix = _SUFFIX
    memory_map = True  # the columns are read in place: texts and numbers without a copy
    what = "execution"
    fallback = "orders"

    def path(self, table: str, account: str, database: str) -> Path:
        return self._path(database, table, account)

    def load(
        self, table: str, account: str, database: str, times: tuple[str, ...]
    ) -> CachedColumns | None:
        expected = {"format": FORMAT, "table": table, "account": account, "database": database}
        found = self._read(self.path(table, account, database), expected)
        if found is None:
            return None
        stored, last_id, count = found
        columns: dict[str, Any] = {}
        for field in stored.schema:
            column = stored.column(field.name).combine_chunks()
            if field.name in times:
                columns[field.name] = utc_micros(column.cast(pa.int64()))
            elif pa.types.is_string(field.type):
                columns[field.name] = column
            else:
                columns[field.name] = column.to_numpy(zero_copy_only=False)
        noted = (stored.schema.metadata or {}).get(b"table_last_id")
        return CachedColumns(columns, last_id, count, int(noted) if noted else None)

    def store(
        self,
        table: str,
        account: str,
        database: str,
        columns: Mapping[str, Any],
        last_id: int,
        table_last_id: int | None = None,
    ) -> bool:
        """Write ``columns`` (``read_columns``' kinds) as the account's rows of ``table`` up to
        ``last_id`` (and the table's last id seen before they were read, when given); False
        when the directory is not writable (logged once)."""
        arrays: dict[str, pa.Array] = {}
        for name, values in columns.items():
            if isinstance(values, pd.DatetimeIndex):
                arrays[name] = pa.array(values.as_unit("us"))
            elif isinstance(values, np.ndarray):
                arrays[name] = pa.array(values)
            else:  # texts as they are: a read hands them on without decoding them
                arrays[name] = values
        meta = {"format": FORMAT, "table": table, "account": account, "database": database}
        if table_last_id is not None:
            meta["table_last_id"] = str(table_last_id)
        return self._write(self.path(table, account, database), pa.table(arrays), meta, last_id)


def execution_cache_for(
    url: URL | str, env: Mapping[str, str] | None = None
) -> ExecutionFileCache | None:
    """The execution cache of the database at ``url`` (beside its candle cache), or None."""
    return beside_candles(ExecutionFileCache, "execution_cache", url, env)


__all__ = ["CachedColumns", "ExecutionFileCache", "execution_cache_for"]
