"""Imported orders and fills out of the database as columns, without a Python object per row
(no ORM instance, no SQLAlchemy Row).

- SQLite: the query's rows straight from the DBAPI cursor, turned into one tuple per column;
  times are the stored UTC wall-time text, parsed a column at a time.
- PostgreSQL: ``COPY (query) TO STDOUT (FORMAT csv)``, parsed by pyarrow's CSV reader in one
  step; times are sent as epoch microseconds (``extract(epoch ...)`` is exact numeric), NULL
  is an unquoted empty field and an empty text a quoted one, so neither is taken for the
  other.

Either way the rows come back unsorted and the caller sorts them (numpy, by time then id):
no sort in the database.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import BigInteger, ColumnElement, Select, Table, cast, extract, select
from sqlalchemy.orm import Session

from database.gc_pause import collector_paused
from database.repositories._candle_io import _dbapi_cursor

_COPY_BUFFER = 1 << 20
_STORED_TIME_LENGTH = len("2024-01-31 23:59:59.999999")


def read_columns(
    session: Session,
    table: Table,
    names: Sequence[str],
    where: ColumnElement[bool],
    *,
    times: Collection[str],
    numbers: Collection[str],
    integers: Collection[str] = (),
) -> dict[str, Any]:
    """The rows of ``table`` matching ``where`` as one column per name of ``names``: numbers
    float64 arrays (NaN for NULL), ``integers`` int64 arrays, ``times`` datetime64[us, UTC]
    (NaT for NULL), the others Arrow string arrays (null for NULL; :func:`text_column`
    makes them the column pandas would)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _read_postgresql(connection, table, names, where, times, numbers, integers)
    statement = select(*(table.c[name] for name in names)).where(where)
    with collector_paused():
        values = fetched_columns(connection.execute(statement), len(names))
    out: dict[str, Any] = {}
    for name, column in zip(names, values, strict=True):
        if name in numbers:
            out[name] = np.array(column, dtype=np.float64)
        elif name in integers:
            out[name] = np.array(column, dtype=np.int64)
        elif name in times:
            out[name] = _stored_times(column)
        else:
            out[name] = pa.array(column, type=pa.string())
    return out


def _stored_times(texts: Sequence[str | None]) -> pd.DatetimeIndex:
    """SQLite's stored times (UTC wall-time texts) as :func:`_utc` parses them. The texts
    SQLAlchemy writes, ``YYYY-MM-DD HH:MM:SS.ffffff``, are parsed by Arrow (about six times
    faster than pandas, the same instants); any other shape, or no time at all, by pandas."""
    values = pa.array(texts, type=pa.string())
    bounds = pc.min_max(pc.utf8_length(values))  # of the texts there are (nulls skipped)
    if bounds["min"].as_py() == _STORED_TIME_LENGTH == bounds["max"].as_py():
        with contextlib.suppress(pa.ArrowInvalid):
            return utc_micros(values.cast(pa.timestamp("us")).cast(pa.int64()))
    return _utc(np.array(texts, dtype=object))


def fetched_columns(result: Any, width: int) -> list[tuple[Any, ...]]:
    """The rows of ``result`` (``width`` columns) regrouped by column, from the DBAPI cursor's
    tuples: no Row objects, no per-value type processing (with the collector paused: a tuple
    per row)."""
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]


def text_column(values: pa.Array) -> Any:
    """Texts as pandas makes a column of them: its string dtype (NaN where NULL) when there
    is a text, else (every value NULL, or none) Python objects (None)."""
    if values.null_count == len(values):
        return values.to_pylist()
    return values.to_pandas(types_mapper={pa.string(): pd.StringDtype(na_value=np.nan)}.get)


def _utc(texts: np.ndarray) -> pd.DatetimeIndex:
    # as pandas parses them: microseconds, or seconds when there is no time at all
    return pd.to_datetime(texts, utc=True, format="ISO8601")


def utc_micros(micros: pa.Array) -> pd.DatetimeIndex:
    """Epoch microseconds (int64, null for NULL) as the times pandas parses their text to."""
    if micros.null_count == len(micros):  # the unit pandas gives when there is no time
        return _utc(np.full(len(micros), None, dtype=object))
    values = micros.fill_null(np.iinfo(np.int64).min).to_numpy().astype(np.int64)
    return pd.DatetimeIndex(values.view("datetime64[us]")).tz_localize("UTC")


def _read_postgresql(
    connection: Any,
    table: Table,
    names: Sequence[str],
    where: ColumnElement[bool],
    times: Collection[str],
    numbers: Collection[str],
    integers: Collection[str],
) -> dict[str, Any]:
    selected = [
        cast(extract("epoch", table.c[name]) * 1_000_000, BigInteger).label(name)
        if name in times
        else table.c[name]
        for name in names
    ]
    statement: Select[Any] = select(*selected).where(where)
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    with _dbapi_cursor(connection, str(compiled)) as cursor:
        query = cursor.mogrify(str(compiled), compiled.params).decode()
        sink = io.BytesIO()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT (FORMAT csv)", sink, size=_COPY_BUFFER)
    types = {
        name: pa.float64() if name in numbers else pa.int64() if name in (*integers, *times)
        else pa.string()
        for name in names
    }  # fmt: skip
    if sink.tell():
        sink.seek(0)
        parsed = pa_csv.read_csv(
            sink,
            read_options=pa_csv.ReadOptions(column_names=list(names)),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, null_values=[""], strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )  # fmt: skip
    else:
        parsed = pa.table({name: pa.array([], type=kind) for name, kind in types.items()})
    out: dict[str, Any] = {}
    for name in names:
        column = parsed.column(name)
        if name in numbers:
            out[name] = column.to_numpy().astype(np.float64)
        elif name in integers:
            out[name] = column.to_numpy().astype(np.int64)
        elif name in times:
            out[name] = utc_micros(column)
        else:
            out[name] = column.combine_chunks()
    return out


__all__ = ["read_columns", "text_column", "utc_micros"]
