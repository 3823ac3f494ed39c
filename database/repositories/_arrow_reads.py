"""Rows read straight into Arrow columns, no Python object per value (a DBAPI's rows are a
tuple per row and an object per value, regrouped by column after), and the stored times
parsed a column at a time. The trades' reads (``_trade_copy``) and the executions'
(``_execution_io``) share them.

- PostgreSQL: :func:`copy_table`, ``COPY (query) TO STDOUT`` as CSV parsed by Arrow. Floats
  are written with ``extra_float_digits`` 3 (their exact text: the same double back whatever
  the session's setting) and times in the ISO ``DateStyle``, set for the copy only. A NULL is
  an unquoted empty field, an empty text a quoted one: read back as missing and as the empty
  text.
- SQLite: :func:`rows_table`, its rows through Python's ``sqlite3`` (the session's
  connection), regrouped into Arrow columns a chunk of rows at a time: no Python object
  outlives its chunk (1,000,000 rows regrouped at once held ~17 tuples of a million items,
  which the collector walked once it ran again: ~0.8 s), and its stored times are parsed here
  (:func:`stored_times`). Not through a driver that links its own copy of the SQLite library
  (ADBC's, say): two copies of SQLite in one process on one file lose each other's POSIX
  locks when one closes a descriptor (https://www.sqlite.org/howtocorrupt.html, 2.2.1); a
  runner reading its trades that way while it wrote failed with "disk I/O error"
  (tests/cli/test_paper_cli.py's kill -9 resume).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Select

from database.repositories._candle_io import _dbapi_cursor
from database.repositories._sqlite_columns import columns_of

log = logging.getLogger(__name__)

_COPY_BUFFER = 1 << 20
# the copy's own: floats' shortest exact texts, dates and times as ISO 8601 (Arrow parses them)
_SETTINGS = "SELECT set_config('extra_float_digits', %s, true), set_config('DateStyle', %s, true)"
_STORED_TIME_LENGTH = len("2024-01-31 23:59:59.999999")


def copy_table(
    connection: Connection, statement: Select, types: Mapping[str, pa.DataType]
) -> pa.Table:
    """The rows of ``statement`` (PostgreSQL through psycopg2; one column per name of
    ``types``, in order, of that Arrow type) copied as CSV and parsed by Arrow as they come
    (:func:`_parsed_as_copied`). An error of the copy is raised as SQLAlchemy's; a text Arrow
    cannot parse as asked as ``pa.ArrowInvalid`` (the caller decides: the trades read the
    rows instead)."""
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    with _dbapi_cursor(connection, str(compiled)) as cursor:
        query = cursor.mogrify(str(compiled), compiled.params)
        cursor.execute("SELECT current_setting('extra_float_digits'), current_setting('DateStyle')")
        settings = cursor.fetchone()
        cursor.execute(_SETTINGS, ("3", "ISO"))
        try:
            copy = b"COPY (" + query + b") TO STDOUT WITH (FORMAT csv)"
            return _parsed_as_copied(cursor, copy, types)
        finally:
            cursor.execute(_SETTINGS, settings)


def _parsed_as_copied(cursor: Any, copy: bytes, types: Mapping[str, pa.DataType]) -> pa.Table:
    """The COPY's CSV parsed by Arrow while it comes: psycopg2 writes it into a pipe from a
    thread and Arrow's streaming reader parses a block while the server makes the next (it
    spends ~1.1 s of its CPU on 1,000,000 trades; the parse, ~0.45 s of ours, was after it).
    The pipe is read to its end whatever the parse did, so the copy always ends; its error
    is raised before the parse's."""
    read_end, write_end = os.pipe()

    def copied() -> None:
        with open(write_end, "wb", buffering=_COPY_BUFFER) as sink:
            cursor.copy_expert(copy, sink)

    with (
        ThreadPoolExecutor(1, thread_name_prefix="copy-to-arrow") as copying,
        open(read_end, "rb", buffering=_COPY_BUFFER) as source,
    ):
        done = copying.submit(copied)
        try:
            if source.peek(1):  # Arrow refuses an empty CSV: no rows
                table = pacsv.open_csv(
                    source,
                    # one thread: a text may hold a line break, so blocks are not cut at any
                    # line end and the threads save no time
                    read_options=pacsv.ReadOptions(column_names=list(types), use_threads=False),
                    parse_options=pacsv.ParseOptions(newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types=dict(types), null_values=[""], strings_can_be_null=True,
                        quoted_strings_can_be_null=False,
                    ),
                ).read_all()  # fmt: skip
            else:
                table = pa.table({name: pa.array([], type=kind) for name, kind in types.items()})
        finally:
            while source.read(_COPY_BUFFER):  # what the parse left: the copy runs to its end
                pass
            done.result()  # the copy's error, raised before the parse's
    return table


def rows_table(
    connection: Connection, statement: Select, types: Mapping[str, pa.DataType]
) -> pa.Table:
    """The rows of ``statement`` through the connection's DBAPI cursor (one column per name
    of ``types``, in order: ``float64`` as ``numpy.asarray`` makes them, None as NaN;
    ``int64``; texts as Arrow's ``large_string``), a chunk of rows at a time
    (``_sqlite_columns.columns_of``). A value that is not of its column's kind raises
    ``pa.ArrowInvalid``, ``pa.ArrowTypeError``, ``TypeError`` or ``ValueError`` (the caller
    decides: the trades read the rows instead)."""
    result = connection.execute(statement)
    try:
        columns = columns_of(result.cursor, list(types.values()))
    finally:
        result.close()
    return pa.table(dict(zip(types, columns, strict=True)))


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


__all__ = ["copy_table", "rows_table", "stored_times", "utc_micros"]
