"""Rows into the database in bulk, given as columns: plain tuples straight to the driver (the
trades, the imported orders and their fills).

SQLAlchemy's executemany of dict rows costs ~25-35 us a row here (parameters built and each
value processed by its column type in Python); these paths hand the driver values built a
column at a time. A column is a list (None: NULL) or a numpy array: datetime64 (UTC; NaT:
NULL), float (NaN: NULL) or int.

- SQLite: an executemany per chunk of multi-row INSERTs (``ROWS_PER_STATEMENT`` each); the
  values every row of the batch shares (account, source, run) bound once per statement;
  times as the UTC wall-time text SQLAlchemy's SQLite DateTime writes (``YYYY-MM-DD
  HH:MM:SS.ffffff``), so rows read back alike whichever way they were written.
- PostgreSQL: a text-format COPY into the table (NULL is ``\\N``, so an empty text stays an
  empty text); the JSON columns are their JSON text (jsonb parses it), floats their shortest
  exact text and times ISO with a UTC offset; a column of one value made once. A batch in
  chunks is one COPY whose next chunk's text is made when the server has read the one before
  (:func:`copy_chunks`): the server stores a chunk while the next is made. A chunk that
  cannot be made cancels the COPY (nothing of it is stored) and its error is raised as it was.

Both run on the session's connection inside its transaction (nothing is committed here) and
keep the table's checks and unique keys: database errors surface as SQLAlchemy's (a repeated
trade id: ``sqlalchemy.exc.IntegrityError``).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.repositories._candle_io import _dbapi_cursor
from database.repositories._columnar import wall_texts
from database.repositories._common import bulk_dialect
from database.repositories._market_bars import store_bars
from database.repositories._pg_binary import (
    HEADER,
    TRAILER,
    UnsupportedColumn,
    binary_rows,
    field_types,
)
from database.repositories._signal_io import _one_value, _sqlite_rows

TRADE_COLUMNS = (
    "trade_id", "account_id", "strategy_id", "run_id", "symbol", "side", "price", "volume",
    "commission", "execution_time", "market_context", "labels", "pnl", "cumulative_pnl",
    "source", "order_id",
)  # fmt: skip
MAX_PARAMETERS = 10_000  # bound parameters per SQLite statement, far below its 32,766
ROWS_PER_STATEMENT = 500  # rows per SQLite INSERT at most (fewer for a wide row)
_NULL = "\\N"
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


BARS = "market_bars"  # a chunk's bar parts its contexts name (key -> text): not a column


def column_chunks(columns: Mapping[str, Any], rows: int) -> Iterator[dict[str, Any]]:
    """``columns`` (lists and arrays of one length) in chunks of ``rows`` rows, in order,
    each made when asked; the bar parts (:data:`BARS`) with the first."""
    n = len(columns["trade_id"])
    bars = columns.get(BARS)
    for start in range(0, n, rows):
        stop = start + rows
        chunk = {name: values[start:stop] for name, values in columns.items() if name != BARS}
        if start == 0 and bars:
            chunk[BARS] = bars
        yield chunk


def insert_trades(session: Session, columns: dict[str, Sequence[Any]]) -> None:
    """Insert the trades given as ``columns`` (every name of :data:`TRADE_COLUMNS`: lists of
    one value per trade; ``execution_time`` a datetime64[us] UTC array; the JSON columns
    already JSON text; ``market_bars``, when given: the bar parts their contexts name,
    ``_trade_context.context_texts``' key -> text)."""
    insert_trade_chunks(session, [columns])


def insert_trade_chunks(session: Session, chunks: Iterable[dict[str, Sequence[Any]]]) -> None:
    """Insert the trades of every chunk (each as :func:`insert_trades` takes them), made
    as they are needed: on PostgreSQL one COPY, a chunk made while the server stores the
    one before. The bar parts the chunks carry are stored after them, in the same
    transaction (no key ties a trade to its bar: the order does not matter)."""
    connection = session.connection()
    bars: dict[str, str] = {}

    def noted(chunks: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for chunk in chunks:
            given = chunk.get(BARS)
            if given:
                bars.update(given)
            yield chunk

    if bulk_dialect(connection, "storing trades") == "postgresql":
        copy_chunks(connection, "trades", TRADE_COLUMNS, noted(chunks))
    else:
        _insert_sqlite_chunks(connection, "trades", TRADE_COLUMNS, noted(chunks))
    store_bars(session, bars)


def insert_columns(
    session: Session, table: str, names: Sequence[str], columns: Mapping[str, Any]
) -> None:
    """Insert the rows given as ``columns`` (one list or array per name of ``names``, all of
    one length) into ``table``."""
    connection = session.connection()
    if bulk_dialect(connection, f"storing {table}") == "postgresql":
        _copy_postgresql(connection, table, names, columns)
    else:
        _insert_sqlite(connection, table, names, columns)


def _insert_sqlite(
    connection: Any, table: str, names: Sequence[str], columns: Mapping[str, Any]
) -> None:
    _run_sqlite(connection, _sqlite_statements(table, names, columns))


def _insert_sqlite_chunks(
    connection: Any, table: str, names: Sequence[str], chunks: Iterable[Mapping[str, Any]]
) -> None:
    """Every chunk's rows, in order; of several chunks, each one's statements made in a
    thread while SQLite stores the one before (its steps run without the interpreter's
    lock; a bulk import's 1,000,000 rows: ~0.9 s of values and parameters hidden under them).
    A chunk that cannot be made raises when its turn comes."""
    chunks = iter(chunks)
    first, second = next(chunks, None), next(chunks, None)
    if first is None or second is None:  # one chunk (a tracker's batch): no thread
        if first is not None:
            _insert_sqlite(connection, table, names, first)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="sqlite-rows") as making:
        made: Future[list[tuple[str, Any]]] = making.submit(_sqlite_statements, table, names, first)
        for chunk in itertools.chain([second], chunks):
            following = making.submit(_sqlite_statements, table, names, chunk)
            _run_sqlite(connection, made.result())
            made = following
        _run_sqlite(connection, made.result())


def _run_sqlite(connection: Any, statements: list[tuple[str, Any]]) -> None:
    for sql, parameters in statements:
        connection.exec_driver_sql(sql, parameters)


def _sqlite_statements(
    table: str, names: Sequence[str], columns: Mapping[str, Any]
) -> list[tuple[str, Any]]:
    """The INSERTs of the rows ``columns`` and their parameters (a list of tuples: an
    executemany; a tuple: one statement)."""
    out: list[tuple[str, Any]] = []
    values = {name: _sqlite_values(columns[name]) for name in names}
    n = len(values[names[0]])
    if not n:
        return out
    shared = [name for name in names if _one_value(values[name])]
    varying = [name for name in names if name not in shared]
    constants = tuple(values[name][0] for name in shared)
    # every row's varying values one after another (row-major), as the statements bind them
    flat = list(itertools.chain.from_iterable(zip(*(values[name] for name in varying),
                                                  strict=True)))  # fmt: skip
    width = len(varying)
    listed = ", ".join([*shared, *varying])
    per = max(1, min(ROWS_PER_STATEMENT, (MAX_PARAMETERS - len(shared)) // max(width, 1)))
    whole = n // per * per
    if whole:
        rows_sql = _sqlite_rows(len(shared), width, per)
        many = f"INSERT INTO {table} ({listed}) VALUES {rows_sql}"
        statements = [
            (*constants, *flat[start * width : (start + per) * width])
            for start in range(0, whole, per)
        ]
        out.append((many, statements))
    if whole < n:
        rest = (*constants, *flat[whole * width :])
        rows_sql = _sqlite_rows(len(shared), len(varying), n - whole)
        out.append((f"INSERT INTO {table} ({listed}) VALUES {rows_sql}", rest))
    return out


def _sqlite_values(column: Any) -> list[Any]:
    if not isinstance(column, np.ndarray):
        return list(column)
    if column.dtype.kind == "M":
        out = np.full(len(column), None, dtype=object)
        known = ~np.isnat(column)
        out[known] = wall_texts(column[known])
        return out.tolist()
    if column.dtype.kind == "f":
        out = column.astype(object)
        out[np.isnan(column)] = None
        return out.tolist()
    return column.tolist()


def _copy_postgresql(
    connection: Any, table: str, names: Sequence[str], columns: Mapping[str, Any]
) -> None:
    copy_chunks(connection, table, names, [columns])


def copy_chunks(
    connection: Any, table: str, names: Sequence[str], chunks: Iterable[Mapping[str, Any]]
) -> None:
    """One COPY of every chunk's rows (each chunk: one list or array per name), each chunk's
    rows made only when the server has read the one before: PostgreSQL stores a chunk while
    the next one is made. In the binary format (:mod:`._pg_binary`: the server parses no
    text) when every column's type has a writer there, else in the text format."""
    try:
        kinds = field_types(table, tuple(names))
    except UnsupportedColumn:
        kinds = None
    if kinds is None:
        statement = f"COPY {table} ({', '.join(names)}) FROM STDIN"
        parts: Iterator[bytes] = (_copy_text(chunk, names) for chunk in chunks)
    else:
        statement = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"
        parts = _binary_stream(binary_rows(chunk, names, kinds) for chunk in chunks)
    source = _CopySource(parts)
    if source.empty():
        return
    try:
        with _dbapi_cursor(connection, statement) as cursor:
            cursor.copy_expert(statement, source, size=1 << 20)
    except DBAPIError:
        if source.failed is not None:  # a chunk could not be made: the COPY was cancelled
            raise source.failed from None  # raised as making it raised it
        raise


def _binary_stream(rows: Iterator[bytes]) -> Iterator[bytes]:
    """The binary format's header, the chunks' tuples, its trailer (nothing without rows)."""
    first = next((part for part in rows if part), b"")
    if not first:
        return
    yield HEADER + first
    yield from rows
    yield TRAILER


class _CopySource(io.RawIOBase):
    """A file of the COPY text whose next chunk is made when it is read."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        super().__init__()
        self._parts = (part for part in parts if part)
        self._held = next(self._parts, b"")
        self.failed: BaseException | None = None

    def empty(self) -> bool:
        return not self._held

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._held:
            try:
                self._held = next(self._parts, b"")
            except BaseException as exc:
                self.failed = exc
                raise
        if size < 0 or size >= len(self._held):
            out, self._held = self._held, b""
            return out
        out, self._held = self._held[:size], self._held[size:]
        return out


def _copy_text(columns: Mapping[str, Any], names: Sequence[str]) -> bytes:
    texts = [_copy_texts(columns[name]) for name in names]
    if not texts[0]:
        return b""
    lines = "\n".join(map("\t".join, zip(*texts, strict=True)))
    return lines.encode() + b"\n"


def _copy_texts(column: Any) -> list[str]:
    """A column as COPY's text format: ``\\N`` for NULL, texts escaped, numbers exact."""
    if isinstance(column, np.ndarray):
        if column.dtype.kind == "M":
            stamps = np.datetime_as_string(column.astype("datetime64[us]"), unit="us")
            out = (stamps.astype(object) + "+00:00") if len(stamps) else stamps.astype(object)
            out[np.isnat(column)] = _NULL
            return out.tolist()
        if column.dtype.kind == "f":
            return _float_texts(column.tolist(), np.isnan(column))
        return list(map(str, column.tolist()))
    values = list(column)
    if len(values) > 1 and _one_value(values):  # one value in every row (an account...)
        return _copy_texts(values[:1]) * len(values)
    kinds = set(map(type, values)) - {type(None)}
    if kinds <= {float}:
        return _float_texts(values, np.array([v is None for v in values], dtype=bool))
    if kinds == {str}:
        null = None in values
        joined = "".join(v for v in values if v is not None) if null else "".join(values)
        if any(char in joined for char, _ in _ESCAPES):
            values = [None if v is None else _escaped(v) for v in values]
        return [_NULL if v is None else v for v in values] if null else values
    return [_NULL if v is None else _escaped(str(v)) for v in values]


def _float_texts(values: list[Any], null: np.ndarray) -> list[str]:
    """Floats as their shortest exact text (orjson's; repr for the few it writes as null)."""
    texts = orjson.dumps([0.0 if v is None else v for v in values]).decode()[1:-1].split(",")
    if not values:
        return []
    if "null" not in texts and not null.any():
        return texts
    for row in np.flatnonzero(np.array([t == "null" for t in texts]) | null).tolist():
        texts[row] = _NULL if null[row] else repr(float(values[row]))
    return texts


def _escaped(text: str) -> str:
    for char, escape in _ESCAPES:
        text = text.replace(char, escape)
    return text


__all__ = [
    "BARS",
    "TRADE_COLUMNS",
    "column_chunks",
    "copy_chunks",
    "insert_columns",
    "insert_trade_chunks",
    "insert_trades",
]
