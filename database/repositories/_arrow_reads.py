"""Rows read straight into Arrow columns, no Python object per value (a DBAPI's rows are a
tuple per row and an object per value, regrouped by column after), and the stored times
parsed a column at a time. The trades' reads (``_trade_copy``) and the executions'
(``_execution_io``) share them.

- PostgreSQL: :func:`copy_table`, ``COPY (query) TO STDOUT`` as CSV parsed by Arrow. Floats
  are written with ``extra_float_digits`` 3 (their exact text: the same double back whatever
  the session's setting) and times in the ISO ``DateStyle``, set for the copy only. A NULL is
  an unquoted empty field, an empty text a quoted one: read back as missing and as the empty
  text.
- SQLite: :func:`sqlite_table`, the ADBC SQLite driver (``adbc-driver-sqlite``, optional)
  stepping the query in C on a read-only connection of its own, so for committed rows only.
  It infers a column's type from its values: one batch of every row makes it see them all
  (a column NULL in its first rows and a text later is a text); a column of another type
  than asked (a number stored where a text is asked) refuses the read.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Select

from database.repositories._candle_io import _dbapi_cursor

log = logging.getLogger(__name__)

_COPY_BUFFER = 1 << 20
# the copy's own: floats' shortest exact texts, dates and times as ISO 8601 (Arrow parses them)
_SETTINGS = "SELECT set_config('extra_float_digits', %s, true), set_config('DateStyle', %s, true)"
_ONE_BATCH = str(1 << 30)  # ADBC SQLite's rows per batch: all (a billion), types from all
_BUSY_MS = 5_000  # an ADBC SQLite connection's wait for a lock (a writer's checkpoint, say)
_PART_ROWS = 250_000  # SQLite: rows read per thread at least (a read of many split by row id)
_STORED_TIME_LENGTH = len("2024-01-31 23:59:59.999999")


def copy_table(
    connection: Connection, statement: Select, types: Mapping[str, pa.DataType]
) -> pa.Table:
    """The rows of ``statement`` (PostgreSQL through psycopg2; one column per name of
    ``types``, in order, of that Arrow type) copied as CSV and parsed by Arrow. An error of
    the copy is raised as SQLAlchemy's; a text Arrow cannot parse as asked as
    ``pa.ArrowInvalid`` (the caller decides: the trades read the rows instead)."""
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    sink = io.BytesIO()
    with _dbapi_cursor(connection, str(compiled)) as cursor:
        query = cursor.mogrify(str(compiled), compiled.params)
        cursor.execute("SELECT current_setting('extra_float_digits'), current_setting('DateStyle')")
        settings = cursor.fetchone()
        cursor.execute(_SETTINGS, ("3", "ISO"))
        try:
            copy = b"COPY (" + query + b") TO STDOUT WITH (FORMAT csv)"
            cursor.copy_expert(copy, sink, size=_COPY_BUFFER)
        finally:
            cursor.execute(_SETTINGS, settings)
    if not sink.tell():
        return pa.table({name: pa.array([], type=kind) for name, kind in types.items()})
    sink.seek(0)
    return pacsv.read_csv(
        sink,
        # one thread: a text may hold a line break, so blocks are not cut at any line end and
        # the threads save no time (1,000,000 trades: ~0.42 s of CPU against ~0.60)
        read_options=pacsv.ReadOptions(column_names=list(types), use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=dict(types), null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )  # fmt: skip


def sqlite_table(
    connection: Connection,
    statement: Select,
    types: Mapping[str, pa.DataType],
    parts: Sequence[Select] = (),
) -> pa.Table | None:
    """The committed rows of ``statement`` in a SQLite file read by the ADBC SQLite driver,
    one column per name of ``types`` (an all-NULL column made that type); None when the
    driver is not installed, the database is not a file, the read fails (the database busy,
    say) or a column holds values of another type. ``parts``: statements each giving a share
    of the rows, read side by side on connections of their own (the driver steps SQLite
    without the interpreter's lock) and joined in their order, in place of ``statement``."""
    try:
        import adbc_driver_manager
        import adbc_driver_sqlite.dbapi as adbc_sqlite
    except ImportError:
        return None
    url = connection.engine.url
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query:
        return None
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        return None
    uri = path.as_uri() + "?mode=ro"
    dialect = connection.dialect

    def read(part: Select) -> pa.Table:
        compiled = part.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        values = []
        for name in compiled.positiontup or ():
            process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            value = compiled.params[name]
            values.append(process(value) if process else value)
        with adbc_sqlite.connect(uri) as adbc, adbc.cursor() as cursor:
            # readers opening a WAL file side by side wait for each other (else "locked")
            cursor.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ONE_BATCH})
            cursor.execute(str(compiled), values)
            return cursor.fetch_arrow_table()

    try:
        if len(parts) > 1:
            with ThreadPoolExecutor(len(parts), thread_name_prefix="sqlite-read") as pool:
                tables = list(pool.map(read, parts))
        else:
            tables = [read(statement)]
    except (adbc_driver_manager.Error, OSError, pa.ArrowException) as exc:
        log.debug("rows not read by ADBC (%s): read by the session", exc)
        return None
    columns = []
    for k, (name, kind) in enumerate(types.items()):
        chunks = []
        for table in tables:
            column = _as_kind(table.column(k), kind)
            if column is None:
                log.debug("rows not read by ADBC (%s is %s): read by the session", name,
                          table.column(k).type)  # fmt: skip
                return None
            chunks.extend(column.chunks)
        columns.append(pa.chunked_array(chunks, type=kind).combine_chunks())
    return pa.table(columns, names=list(types))


def _as_kind(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray | None:
    """``column`` as ``kind``: as it is, all NULL (the driver's int64), or a text as a large
    text; else None."""
    if column.type == kind:
        return column
    if column.null_count == len(column):
        return pa.chunked_array([pa.nulls(len(column), type=kind)])
    if pa.types.is_string(column.type) and pa.types.is_large_string(kind):
        return column.cast(kind)
    return None


def sqlite_parts(count: int) -> int:
    """Into how many shares a read of ``count`` SQLite rows is split, each on a thread."""
    return max(1, min(os.cpu_count() or 1, 4, count // _PART_ROWS))


def stored_times(texts: Sequence[str | None] | pa.Array) -> pd.DatetimeIndex:
    """SQLite's stored times (UTC wall-time texts) as pandas parses them (ISO 8601). The
    texts SQLAlchemy writes, ``YYYY-MM-DD HH:MM:SS.ffffff``, are parsed by Arrow (about six
    times faster than pandas, the same instants); any other shape, or no time at all, by
    pandas."""
    values = texts if isinstance(texts, pa.Array) else pa.array(texts, type=pa.string())
    bounds = pc.min_max(pc.utf8_length(values))  # of the texts there are (nulls skipped)
    if bounds["min"].as_py() == _STORED_TIME_LENGTH == bounds["max"].as_py():
        with contextlib.suppress(pa.ArrowInvalid):
            return utc_micros(values.cast(pa.timestamp("us")).cast(pa.int64()))
    objects = values.to_numpy(zero_copy_only=False) if isinstance(texts, pa.Array) else texts
    return _utc(np.array(objects, dtype=object))


def _utc(texts: np.ndarray) -> pd.DatetimeIndex:
    # as pandas parses them: microseconds, or seconds when there is no time at all
    return pd.to_datetime(texts, utc=True, format="ISO8601")


def utc_micros(micros: pa.Array) -> pd.DatetimeIndex:
    """Epoch microseconds (int64, null for NULL) as the times pandas parses their text to."""
    if micros.null_count == len(micros):  # the unit pandas gives when there is no time
        return _utc(np.full(len(micros), None, dtype=object))
    values = micros.fill_null(np.iinfo(np.int64).min).to_numpy().astype(np.int64)
    return pd.DatetimeIndex(values.view("datetime64[us]")).tz_localize("UTC")


__all__ = [
    "copy_table", "sqlite_parts", "sqlite_table", "stored_times", "utc_micros",
]  # fmt: skip
