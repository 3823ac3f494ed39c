"""Candle bars in and out of the database as columns, without a Python object per bar.

Reading: PostgreSQL sends the query's rows through ``COPY (...) TO STDOUT (FORMAT binary)``,
parsed in one step with a big-endian numpy structured dtype; SQLite's rows go straight from
the DBAPI cursor into a numpy structured array (no SQLAlchemy Row, no per-column lists).
Writing: SQLite runs an executemany (chunk_rows bars a call) of one multi-row INSERT of up to
SQLITE_ROWS_PER_STATEMENT bars, the symbol and timeframe bound once per statement (half the
CPU time of one row per statement: the per-statement and per-parameter costs dominate in
Python's sqlite3); PostgreSQL copies the
bars in binary into a temporary table, then one ``INSERT ... SELECT`` (from BULK_MIN_ROWS bars:
fewer, e.g. the live feed's one closed bar, go as one INSERT ... SELECT FROM unnest(arrays) per
chunk, without a temporary table). The bulk PostgreSQL path first takes a transaction lock on
the series and asks whether any stored bar lies in the batch's time span: if none does (an
import of new history), the bars are copied straight into candles, each row with the series
key (no temporary table, no INSERT, no ``ON CONFLICT``: PostgreSQL's speculative insertion
costs per row); otherwise they are merged from the temporary table.
Every write reports how many bars it inserted or changed, and whether the batch is now the
whole series (the caller's cache can then keep it without reading it back).
Both run on the session's own connection, inside its transaction (nothing is committed here),
and database errors surface as SQLAlchemy's (e.g. ``sqlalchemy.exc.IntegrityError``).

ADBC's SQLite driver was measured and left out: it links its own copy of SQLite, and two
copies in one process do not see each other's POSIX locks (sqlite.org/howtocorrupt.html 2.2.1).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from hashlib import sha256
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.repositories._common import bulk_dialect
from market.candles import CANDLE_COLUMNS

BULK_MIN_ROWS = 1_000
"""From this many bars a PostgreSQL upsert goes through COPY and a temporary table."""
SQLITE_ROWS_PER_STATEMENT = 100
"""Bars per SQLite INSERT statement (6 parameters each, far below SQLite's limit of 32,766)."""

NATIVE_DTYPE = np.dtype([("ts", "<i8"), *((name, "<f8") for name in CANDLE_COLUMNS)])
"""One bar as SQLite's cursor gives it: ts (epoch ms) and the five float64 columns."""

# PostgreSQL's binary COPY: a 19-byte header, per row a field count (int16) then each field as
# length (int32) + value, all big-endian; a trailer of -1 (int16). Every candle field is NOT NULL.
_PG_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_PG_HEADER = _PG_SIGNATURE + bytes(8)  # flags 0, no header extension
_PG_TRAILER = b"\xff\xff"
_PG_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        *(item for name in CANDLE_COLUMNS for item in ((f"{name}_len", ">i4"), (name, ">f8"))),
    ]
)
_PG_FIELDS = 1 + len(CANDLE_COLUMNS)
_COPY_BUFFER = 1 << 20
_PG_SERIES_LOCK = 0x534C_4344  # advisory lock namespace (int4) of the candle series' writers
_BATCH_TABLE = "stratlens_candle_batch"
_COLUMN_LIST = ", ".join(("ts", *CANDLE_COLUMNS))
_KEY = "symbol, timeframe, ts"


def _conflict_clause() -> str:
    """ON CONFLICT DO UPDATE that leaves an unchanged bar untouched (no dead row, no page write)."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in CANDLE_COLUMNS)
    changed = " OR ".join(f"candles.{c} <> excluded.{c}" for c in CANDLE_COLUMNS)
    return f"ON CONFLICT ({_KEY}) DO UPDATE SET {updates} WHERE {changed}"


@cache
def _sqlite_upsert(rows: int) -> str:
    """INSERT of ``rows`` bars: ?1 symbol, ?2 timeframe, then ts and the columns of each bar."""
    fields = range(_PG_FIELDS)
    values = ", ".join(
        "(?1, ?2, " + ", ".join(f"?{3 + _PG_FIELDS * bar + k}" for k in fields) + ")"
        for bar in range(rows)
    )
    return (
        f"INSERT INTO candles (symbol, timeframe, {_COLUMN_LIST}) VALUES {values} "
        + _conflict_clause()
    )


_PG_CREATE_BATCH = (
    f"CREATE TEMPORARY TABLE {_BATCH_TABLE} (ts bigint NOT NULL, "
    + ", ".join(f"{c} double precision NOT NULL" for c in CANDLE_COLUMNS)
    + ") ON COMMIT DROP"
)
_PG_COPY_BATCH = f"COPY {_BATCH_TABLE} ({_COLUMN_LIST}) FROM STDIN (FORMAT binary)"
_PG_INSERT_BATCH = (
    f"INSERT INTO candles (symbol, timeframe, {_COLUMN_LIST}) "
    f"SELECT %(symbol)s, %(timeframe)s, {_COLUMN_LIST} FROM {_BATCH_TABLE}"
)
_PG_MERGE_BATCH = f"{_PG_INSERT_BATCH} {_conflict_clause()}"
_SERIES = "FROM candles WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s"
_PG_STORED = (
    f"SELECT EXISTS (SELECT 1 {_SERIES}), "
    f"EXISTS (SELECT 1 {_SERIES} AND ts BETWEEN %(first)s AND %(last)s)"
)
_SQLITE_COUNT = "SELECT count(*) FROM candles WHERE symbol = ? AND timeframe = ?"
# each array as one text literal: psycopg2 would send a list as ARRAY[...] of one expression
# per value, ten times slower to parse
_PG_MERGE_ARRAYS = (
    f"INSERT INTO candles (symbol, timeframe, {_COLUMN_LIST}) "
    f"SELECT %(symbol)s, %(timeframe)s, {_COLUMN_LIST} FROM unnest(%(ts)s::bigint[], "
    + ", ".join(f"%({c})s::double precision[]" for c in CANDLE_COLUMNS)
    + f") AS bars ({_COLUMN_LIST}) {_conflict_clause()}"
)


def read_bars(session: Session, statement: Select[Any]) -> np.ndarray:
    """The rows of ``statement`` (selecting ts and the candle columns) as a NATIVE_DTYPE array."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return _read_postgresql(connection, statement)
    result = connection.execute(statement)
    try:  # the DBAPI cursor's tuples go into the array one by one; no list of rows is kept
        return np.fromiter(result.cursor, dtype=NATIVE_DTYPE)  # type: ignore[attr-defined]
    finally:
        result.close()


@dataclass(frozen=True)
class WriteOutcome:
    """What an upsert did: bars inserted or changed (None: unknown), and whether the bars
    written are now the whole stored series."""

    changed: int | None
    whole_series: bool


def upsert_bars(
    session: Session,
    symbol: str,
    timeframe: str,
    ts: np.ndarray,
    columns: dict[str, np.ndarray],
    *,
    chunk_rows: int,
) -> WriteOutcome:
    """Insert or update checked bars (epoch-ms ``ts``, float64 ``columns``) of one series."""
    connection = session.connection()
    dialect = bulk_dialect(connection, "the candle upsert")
    if dialect == "postgresql" and len(ts) >= BULK_MIN_ROWS:
        return _copy_postgresql(connection, symbol, timeframe, ts, columns)
    if dialect == "sqlite":
        changed = _upsert_sqlite(connection, symbol, timeframe, ts, columns, chunk_rows)
    else:
        changed = 0
        key = {"symbol": symbol, "timeframe": timeframe}
        for start in range(0, len(ts), chunk_rows):
            window = slice(start, start + chunk_rows)
            arrays = {c: _pg_array_literal(columns[c][window]) for c in CANDLE_COLUMNS}
            arrays["ts"] = _pg_array_literal(ts[window])
            result = connection.exec_driver_sql(_PG_MERGE_ARRAYS, {**key, **arrays})
            changed = _add_rowcount(changed, result.rowcount)
    whole = False
    if dialect == "sqlite" and changed == len(ts) >= BULK_MIN_ROWS:
        # every bar given is stored as given: the series is exactly them if it holds no other
        stored = connection.exec_driver_sql(_SQLITE_COUNT, (symbol, timeframe)).scalar()
        whole = stored == len(ts)
    return WriteOutcome(changed, whole)


def _upsert_sqlite(
    connection: Connection,
    symbol: str,
    timeframe: str,
    ts: np.ndarray,
    columns: dict[str, np.ndarray],
    chunk_rows: int,
) -> int | None:
    """Multi-row INSERTs, one executemany per chunk; the bars inserted or changed."""
    bars = np.empty(len(ts), dtype=NATIVE_DTYPE)
    bars["ts"] = ts
    for name in CANDLE_COLUMNS:
        bars[name] = columns[name]
    per = max(1, min(SQLITE_ROWS_PER_STATEMENT, chunk_rows))
    changed: int | None = 0
    for start in range(0, len(bars), chunk_rows):
        rows = bars[start : start + chunk_rows].tolist()  # tuples (int, float, ...) at C speed
        whole = len(rows) // per * per
        if whole:
            statements = [
                (symbol, timeframe, *chain.from_iterable(rows[i : i + per]))
                for i in range(0, whole, per)
            ]
            result = connection.exec_driver_sql(_sqlite_upsert(per), statements)  # type: ignore[arg-type]
            changed = _add_rowcount(changed, result.rowcount)
        if whole < len(rows):
            rest = (symbol, timeframe, *chain.from_iterable(rows[whole:]))
            result = connection.exec_driver_sql(_sqlite_upsert(len(rows) - whole), rest)
            changed = _add_rowcount(changed, result.rowcount)
    return changed


def _add_rowcount(total: int | None, rowcount: int | None) -> int | None:
    if total is None or rowcount is None or rowcount < 0:
        return None  # the driver did not say: count it as changed
    return total + rowcount


def _pg_array_literal(values: np.ndarray) -> str:
    # repr() of a Python float is its shortest exact round-trip text
    return "{" + ",".join(map(repr, values.tolist())) + "}"


def _copy_postgresql(
    connection: Connection,
    symbol: str,
    timeframe: str,
    ts: np.ndarray,
    columns: dict[str, np.ndarray],
) -> WriteOutcome:
    """Binary COPY straight into candles when no stored bar lies in the batch's span, else into
    a temporary table merged by one INSERT ... SELECT ... ON CONFLICT."""
    key = {"symbol": symbol, "timeframe": timeframe}
    # writers of one series take turns, so "no stored bar in the span" stays true until commit
    digest = sha256(f"{symbol}\0{timeframe}".encode()).digest()
    connection.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(%(space)s, %(series)s)",
        {"space": _PG_SERIES_LOCK, "series": int.from_bytes(digest[:4], "big", signed=True)},
    )
    span = {**key, "first": int(ts[0]), "last": int(ts[-1])}
    any_stored, overlap = connection.exec_driver_sql(_PG_STORED, span).one()
    if not overlap:  # new bars only: straight into candles, each row with its series key
        copy = f"COPY candles (symbol, timeframe, {_COLUMN_LIST}) FROM STDIN (FORMAT binary)"
        with _dbapi_cursor(connection, copy) as cursor:
            cursor.copy_expert(
                copy, pg_copy_payload(ts, columns, symbol, timeframe), size=_COPY_BUFFER
            )
        return WriteOutcome(len(ts), not any_stored)
    connection.exec_driver_sql(_PG_CREATE_BATCH)
    with _dbapi_cursor(connection, _PG_COPY_BATCH) as cursor:
        cursor.copy_expert(_PG_COPY_BATCH, pg_copy_payload(ts, columns), size=_COPY_BUFFER)
    changed = connection.exec_driver_sql(_PG_MERGE_BATCH, key).rowcount
    connection.exec_driver_sql(f"DROP TABLE {_BATCH_TABLE}")  # a second upsert in this txn
    return WriteOutcome(_add_rowcount(0, changed), not any_stored)


def pg_copy_payload(
    ts: np.ndarray, columns: dict[str, np.ndarray], *key: str, chunk_rows: int = 1 << 16
) -> CopyStream:
    """Bars as PostgreSQL's binary COPY: ``key`` (symbol, timeframe: constant text fields, the
    same in every row) if given, then ts and the candle columns; a stream that makes each
    ``chunk_rows`` bars' bytes as the COPY asks for them (:class:`CopyStream`)."""
    texts = [value.encode() for value in key]
    layout = np.dtype(
        [
            ("fields", ">i2"),
            *(
                item
                for k, raw in enumerate(texts)
                for item in ((f"key{k}_len", ">i4"), (f"key{k}", f"S{len(raw)}"))
            ),
            *_PG_ROW.descr[1:],
        ]
    )

    def chunks() -> Iterator[bytes]:
        yield _PG_HEADER
        for start in range(0, len(ts), chunk_rows):
            part = slice(start, start + chunk_rows)
            rows = np.empty(len(ts[part]), dtype=layout)
            rows["fields"] = len(texts) + _PG_FIELDS
            for k, raw in enumerate(texts):
                rows[f"key{k}_len"] = len(raw)
                rows[f"key{k}"] = raw
            rows["ts_len"] = 8
            rows["ts"] = ts[part]
            for name in CANDLE_COLUMNS:
                rows[f"{name}_len"] = 8
                rows[name] = columns[name][part]
            yield rows.tobytes()
        yield _PG_TRAILER

    return CopyStream(chunks())


class CopyStream:
    """The file psycopg2's ``copy_expert`` reads a COPY's data from, made chunk by chunk as it
    reads: PostgreSQL parses and stores the rows of a chunk (in its own process) while the
    next one is made, and the whole payload never sits in memory at once (a 1,000,000-bar
    COPY was one 87 MB buffer, built before the first byte left). ``read`` gives the next
    chunk whatever size it is asked for (psycopg2 sends what it gets; b"" ends the COPY)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b"")

    def getvalue(self) -> bytes:
        """Everything not read yet (tests and tools that want the bytes whole)."""
        return b"".join(self._chunks)


def _read_postgresql(connection: Connection, statement: Select[Any]) -> np.ndarray:
    compiled = statement.compile(dialect=connection.dialect)
    with _dbapi_cursor(connection, str(compiled)) as cursor:
        query = cursor.mogrify(str(compiled), compiled.params).decode()
        sink = io.BytesIO()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT (FORMAT binary)", sink, size=_COPY_BUFFER)
    return _parse_pg_binary(sink.getbuffer())


def _parse_pg_binary(data: memoryview) -> np.ndarray:
    if bytes(data[: len(_PG_SIGNATURE)]) != _PG_SIGNATURE:
        raise ValueError("COPY returned no PostgreSQL binary header")
    offset = len(_PG_SIGNATURE) + 4
    offset += 4 + int.from_bytes(data[offset : offset + 4], "big")  # header extension
    body = len(data) - offset - len(_PG_TRAILER)
    if body % _PG_ROW.itemsize or bytes(data[-len(_PG_TRAILER) :]) != _PG_TRAILER:
        raise ValueError("COPY returned rows of an unexpected layout")
    rows = np.frombuffer(data, dtype=_PG_ROW, count=body // _PG_ROW.itemsize, offset=offset)
    lengths = [rows["ts_len"], *(rows[f"{name}_len"] for name in CANDLE_COLUMNS)]
    if not ((rows["fields"] == _PG_FIELDS).all() and all((n == 8).all() for n in lengths)):
        raise ValueError("COPY returned a NULL or a field of an unexpected width")
    bars = np.empty(len(rows), dtype=NATIVE_DTYPE)
    for name in NATIVE_DTYPE.names or ():
        bars[name] = rows[name]
    return bars


@contextmanager
def _dbapi_cursor(connection: Connection, statement: str) -> Iterator[Any]:
    """A cursor of the session's DBAPI connection; its errors raised as SQLAlchemy's."""
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
    finally:
        cursor.close()
