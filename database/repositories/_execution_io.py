"""Imported orders and fills out of the database as columns, without a Python object per row
(no ORM instance, no SQLAlchemy Row).

- SQLite: the query's rows straight from the DBAPI cursor, turned into one tuple per column;
  times are the stored UTC wall-time text, parsed a column at a time.
- PostgreSQL: ``COPY (query) TO STDOUT (FORMAT csv)``, parsed by pyarrow's CSV reader in one
  step (``_arrow_reads.copy_table``, shared with the trades' read; a text it cannot parse
  raises); times are sent as epoch microseconds (``extract(epoch ...)`` is exact numeric).

Either way the rows come back unsorted and the caller sorts them (numpy, by time then id):
no sort in the database.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import BigInteger, ColumnElement, Table, cast, extract, select
from sqlalchemy.orm import Session

from database.gc_pause import collector_paused
from database.repositories._arrow_reads import copy_table, stored_times, utc_micros


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
            out[name] = stored_times(column)
        else:
            out[name] = pa.array(column, type=pa.string())
    return out


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
    types = {
        name: pa.float64() if name in numbers else pa.int64() if name in (*integers, *times)
        else pa.string()
        for name in names
    }  # fmt: skip
    parsed = copy_table(connection, select(*selected).where(where), types)
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
