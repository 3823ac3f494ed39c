"""Rows as PostgreSQL's binary COPY format, made a column at a time.

The server parses the text format's every float, time and id: for 1,000,000 trades ~0.7 s of
its CPU (of ~5.6 s) went to reading text. The binary format hands it the values as it stores
them: an 8-byte float, a time as microseconds since 2000-01-01, a text's bytes. A stream is a
header, one tuple per row (a 16-bit field count, then per field its 32-bit byte length, -1
for NULL, and its bytes, all big-endian) and a trailer (-1 as 16 bits); see
https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4.

Each field becomes an Arrow binary column holding its length and bytes per row, made with
numpy and Arrow's kernels, and Arrow joins the columns row by row in C
(``binary_join_element_wise``): the chunk's bytes are the joined column's data buffer. No
Python runs per row.

The field types come from the table's definition in ``database.models`` (the one the
migrations build; a value of the wrong width is refused by the server, never stored wrong):
texts (``VARCHAR``, ``TEXT``), ``BIGINT``, ``INTEGER``, ``SMALLINT``, ``DOUBLE PRECISION``,
``TIMESTAMP WITH TIME ZONE``, ``JSONB`` (a version byte, 1, before the JSON text), ``JSON``,
``BOOLEAN``. A column is given as :mod:`._trade_io` takes it: a list (None: NULL) or a numpy
array (datetime64 UTC with NaT, float with NaN, int).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL's times count from 2000-01-01 UTC
_FIXED = {"BIGINT": ">i8", "INTEGER": ">i4", "SMALLINT": ">i2", "DOUBLE PRECISION": ">f8",
          "TIMESTAMP WITH TIME ZONE": ">i8", "BOOLEAN": "u1"}  # fmt: skip
_BINARY = pa.large_binary()  # 64-bit offsets: no chunk too large for them
_EMPTY = pa.scalar(b"", _BINARY)
_JSONB_VERSION = pa.scalar(b"\x01", _BINARY)
_NULL_CELL = pa.scalar(b"\xff\xff\xff\xff", _BINARY)  # length -1


class UnsupportedColumn(TypeError):
    """A column whose type the binary format here does not write (the caller uses text)."""


@cache
def field_types(table: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """Each column's PostgreSQL type name, from the model's table definition."""
    from sqlalchemy.dialects import postgresql

    import database.execution_models  # noqa: F401  (its tables into Base.metadata)
    from database.models import Base

    if table not in Base.metadata.tables:
        raise UnsupportedColumn(f"{table}: not a table of database.models")
    columns = Base.metadata.tables[table].c
    dialect = postgresql.dialect()
    out = []
    for name in names:
        kind = columns[name].type.compile(dialect=dialect)
        if kind.startswith("VARCHAR") or kind == "TEXT":
            kind = "TEXT"
        if kind not in _FIXED and kind not in ("TEXT", "JSON", "JSONB"):
            raise UnsupportedColumn(f"{table}.{name}: {kind} has no binary writer here")
        out.append(kind)
    return tuple(out)


def binary_rows(columns: Mapping[str, Any], names: Sequence[str], kinds: Sequence[str]) -> bytes:
    """The tuples of the rows ``columns`` (no header or trailer): b"" for no rows."""
    n = len(columns[names[0]])
    if not n:
        return b""
    count = pa.scalar(len(names).to_bytes(2, "big"), _BINARY)
    parts: list[Any] = [count]
    for name, kind in zip(names, kinds, strict=True):
        parts.extend(_field(columns[name], kind, n))
    joined = pc.binary_join_element_wise(*parts, _EMPTY)
    if isinstance(joined, pa.Scalar):  # every field one value in every row
        return joined.as_py() * n
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[joined.offset :][: n + 1]
    return joined.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def _field(column: Any, kind: str, n: int) -> list[Any]:
    """The field's parts: binary arrays (or scalars) that, joined, are its length and bytes."""
    if not isinstance(column, np.ndarray) and all(v is None for v in column):
        return [_NULL_CELL]  # NULL in every row (a column the rows do not have)
    if kind in _FIXED:
        values, null = _fixed_values(column, kind)
        return [_fixed_cells(values, null, np.dtype(_FIXED[kind]))]
    one = _one_text(column, n)
    if one is not None:  # the same text in every row (an account, a source): one scalar
        raw = (b"\x01" if kind == "JSONB" else b"") + one.encode()
        return [pa.scalar(len(raw).to_bytes(4, "big") + raw, _BINARY)]
    data, null = _texts(column)
    if kind == "JSONB":
        data = pc.binary_join_element_wise(_JSONB_VERSION, data, _EMPTY)
    lengths = pc.binary_length(data).to_numpy(zero_copy_only=False).astype(np.int32)
    if null is not None:
        lengths[null] = -1
        data = pc.if_else(pa.array(null), _EMPTY, data)
    return [_cells(lengths.astype(">i4").view(np.uint8), 4, n), data]


def _fixed_values(column: Any, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(values in the field's numpy type, NULL mask or None): what the text format would
    have sent, or ValueError where the server would have refused it."""
    if kind == "TIMESTAMP WITH TIME ZONE":
        times = np.asarray(column)
        if times.dtype.kind != "M":  # datetimes (naive ones are UTC, as everywhere here)
            times = pd.to_datetime(pd.Series(list(column), dtype=object), utc=True)
            times = times.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        null = np.isnat(times)
        micros = times.astype("datetime64[us]").view(np.int64) - _EPOCH_2000_US
        return micros, (null if null.any() else None)
    if isinstance(column, np.ndarray) and column.dtype.kind in "fiub":
        values = column
    else:
        values = np.array([np.nan if v is None else v for v in column], dtype=float)
    null = np.isnan(values) if values.dtype.kind == "f" else np.zeros(len(values), dtype=bool)
    if kind != "DOUBLE PRECISION" and values.dtype.kind == "f":
        whole = values[~null]
        if not np.array_equal(whole, np.trunc(whole)):
            raise ValueError(f"a {kind} column given values that are not whole numbers")
        values = np.where(null, 0, values)
    typed = values.astype(np.dtype(_FIXED[kind]).newbyteorder("="))
    return typed, (null if null.any() else None)


def _fixed_cells(values: np.ndarray, null: np.ndarray | None, dtype: np.dtype) -> pa.Array:
    """Per row: the 4-byte length and the value's bytes (only the length, -1, for NULL)."""
    n, width = len(values), dtype.itemsize
    cell = np.dtype([("length", ">i4"), ("value", dtype)])
    out = np.empty(n, dtype=cell)
    out["length"] = width
    out["value"] = values
    if null is None:
        return _cells(out.view(np.uint8), 4 + width, n)
    out["length"][null] = -1
    keep = np.ones((n, 4 + width), dtype=bool)
    keep[null, 4:] = False
    data = out.view(np.uint8).reshape(n, 4 + width)[keep]
    sizes = np.where(null, 4, 4 + width)
    return _cells(data, sizes, n)


def _cells(data: np.ndarray, size: int | np.ndarray, n: int) -> pa.Array:
    """A binary array over ``data``: element i is the next ``size`` (or ``size[i]``) bytes."""
    offsets = np.zeros(n + 1, dtype=np.int64)
    if np.ndim(size):
        np.cumsum(size, out=offsets[1:])
    else:
        offsets[1:] = np.arange(1, n + 1, dtype=np.int64) * int(size)
    return pa.Array.from_buffers(
        _BINARY, n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    )


def _one_text(column: Any, n: int) -> str | None:
    """The text every row of ``column`` holds, if one does (more than one row)."""
    if n < 2 or isinstance(column, np.ndarray):
        return None
    first = column[0]
    if isinstance(first, str) and column[n - 1] == first and column.count(first) == n:
        return first
    return None


def _texts(column: Any) -> tuple[pa.Array, np.ndarray | None]:
    """The texts' UTF-8 bytes as a binary array (b"" where NULL) and the NULL mask; a value
    that is not a text as its ``str``, as the text format writes it."""
    values = column.tolist() if isinstance(column, np.ndarray) else list(column)
    try:
        array = pa.array(values, pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array([None if v is None else str(v) for v in values], pa.large_string())
    array = array.cast(_BINARY)
    if not array.null_count:
        return array, None
    null = array.is_null().to_numpy(zero_copy_only=False)
    return array.fill_null(b""), null


__all__ = ["HEADER", "TRAILER", "UnsupportedColumn", "binary_rows", "field_types"]
