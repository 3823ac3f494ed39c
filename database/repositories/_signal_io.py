"""Signals into the database in bulk, a column at a time, without a Python call chain per row.

What is stored per signal (migration 0003): ``strategy_config`` only when it differs from what
NULL reads back as (its run's config; ``{}`` without a run), ``signal_metadata`` only when the
signal has some (else NULL), the time, type, price, confidence and run id as typed values.

- PostgreSQL: one binary ``COPY ... FROM STDIN (FORMAT binary)`` per chunk straight into the
  table, the payload laid out by numpy (no text for the server to parse: times are int64
  microseconds, prices float64); the run check is one statement trigger (migration 0003).
- SQLite: executemany of plain tuples, ``SQLITE_ROWS`` rows per INSERT statement.

Both run on the session's own connection, inside its transaction (nothing is committed here);
database errors surface as SQLAlchemy's (e.g. ``sqlalchemy.exc.IntegrityError``).
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.records import SignalRecord
from database.repositories._columnar import json_texts, wall_texts
from database.repositories._common import chunks

SIGNAL_COLUMNS = (
    "strategy_name", "strategy_config", "symbol", "timeframe", "timestamp", "signal_type",
    "price", "confidence", "signal_metadata", "run_id",
)  # fmt: skip
SQLITE_ROWS = 99  # rows per INSERT: 990 parameters, within any SQLite's limit of 999

_TEXT = ("strategy_name", "strategy_config", "symbol", "timeframe", "signal_type",
         "signal_metadata")  # fmt: skip
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
_PG_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's timestamps count from 2000-01-01 UTC
_COPY_BUFFER = 1 << 20


def insert_signals(
    session: Session,
    table: Table,
    records: Sequence[SignalRecord],
    chunk_rows: int,
    *,
    run_id: int | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> None:
    """Insert checked records; ``run_id`` / ``run_config``: the new run they belong to (records
    carry none then), whose config is stored once on the run, not per signal."""
    if not records:
        return
    connection = session.connection()
    preparer = connection.dialect.identifier_preparer
    target = (
        f"{preparer.format_table(table)} "
        f"({', '.join(preparer.quote(name) for name in SIGNAL_COLUMNS)})"
    )
    dialect = connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"the signal bulk insert is not implemented for {dialect}")
    for chunk in chunks(records, chunk_rows):
        columns = signal_columns(chunk, run_id, run_config)
        if dialect == "postgresql":
            _copy_binary(connection, target, columns)
        else:
            _insert_sqlite(connection, target, columns)


def signal_columns(
    records: Sequence[SignalRecord],
    run_id: int | None,
    run_config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The stored values of ``SIGNAL_COLUMNS``: lists of str / JSON text / None, ``timestamp``
    a datetime64[us] array (UTC), ``price`` and ``confidence`` float64 arrays."""
    n = len(records)
    columns: dict[str, Any] = {
        name: list(map(attrgetter(name), records))
        for name in ("strategy_name", "symbol", "timeframe", "signal_type")
    }
    runs = [run_id] * n if run_id is not None else list(map(attrgetter("run_id"), records))
    columns["run_id"] = runs
    columns["strategy_config"] = _config_texts(
        list(map(attrgetter("strategy_config"), records)), runs, run_config
    )
    metadata = list(map(attrgetter("metadata"), records))
    present = [row for row, m in enumerate(metadata) if m]
    texts: list[str | None] = [None] * n
    for row, text in zip(present, json_texts([metadata[r] for r in present]), strict=True):
        texts[row] = text
    columns["signal_metadata"] = texts
    stamps = pd.to_datetime(list(map(attrgetter("timestamp"), records)), utc=True)
    columns["timestamp"] = stamps.as_unit("us").tz_localize(None).to_numpy()
    columns["price"] = np.fromiter(map(attrgetter("price"), records), np.float64, n)
    columns["confidence"] = np.fromiter(map(attrgetter("confidence"), records), np.float64, n)
    return columns


def _config_texts(
    configs: list[Mapping[str, Any] | None],
    runs: list[int | None],
    run_config: Mapping[str, Any] | None,
) -> list[str | None]:
    """Each signal's config as stored: None when it reads back the same from NULL (the new
    run's config, or {} for a signal without a run), else its JSON text (``json.dumps``, as
    before). An empty config means the run's (``{}`` when adding to an existing run, as it
    always did). Mappings are serialized once per object: one run's signals share one."""
    shared = None if run_config is None else json.dumps(dict(run_config))
    texts: dict[int, str] = {}
    out: list[str | None] = []
    for config, run in zip(configs, runs, strict=True):
        if not config:
            text = "{}" if shared is None else shared
        elif (text := texts.get(id(config))) is None:
            text = texts[id(config)] = json.dumps(dict(config))
        # NULL reads as the new run's config, or {} without a run
        same = text == shared if shared is not None else (run is None and text == "{}")
        out.append(None if same else text)
    return out


# -- SQLite -----------------------------------------------------------------------------------


def _insert_sqlite(connection: Connection, target: str, columns: dict[str, Any]) -> None:
    values = dict(columns)
    values["timestamp"] = wall_texts(columns["timestamp"])
    values["price"] = columns["price"].tolist()
    values["confidence"] = columns["confidence"].tolist()
    rows = list(zip(*(values[name] for name in SIGNAL_COLUMNS), strict=True))
    # statements inserting SQLITE_ROWS rows each: a third faster than a row per statement
    row = f"({', '.join('?' * len(SIGNAL_COLUMNS))})"
    whole = len(rows) - len(rows) % SQLITE_ROWS
    if whole:
        flat = list(itertools.chain.from_iterable(rows[:whole]))
        step = SQLITE_ROWS * len(SIGNAL_COLUMNS)
        groups = [tuple(flat[start : start + step]) for start in range(0, len(flat), step)]
        many = f"INSERT INTO {target} VALUES {', '.join([row] * SQLITE_ROWS)}"
        connection.exec_driver_sql(many, groups)  # type: ignore[arg-type]
    if whole < len(rows):
        connection.exec_driver_sql(f"INSERT INTO {target} VALUES {row}", rows[whole:])


# -- PostgreSQL -------------------------------------------------------------------------------


def _copy_binary(connection: Connection, target: str, columns: dict[str, Any]) -> None:
    statement = f"COPY {target} FROM STDIN (FORMAT binary)"
    payload = io.BytesIO(pg_binary_rows(columns))
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(statement, payload, size=_COPY_BUFFER)
    except dbapi.Error as exc:
        # the same IntegrityError etc. an INSERT would raise through SQLAlchemy
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
    finally:
        cursor.close()


def pg_binary_rows(columns: dict[str, Any]) -> bytes:
    """PostgreSQL's binary COPY of the signal columns (``SIGNAL_COLUMNS`` order): per row a
    field count (int16), then each field as its length (int32, -1 for NULL) and its bytes, all
    big-endian; text and json are their UTF-8 bytes. Laid out with numpy, a field at a time."""
    n = len(columns["price"])
    fields: list[tuple[np.ndarray, np.ndarray | None, bytes | None]] = []  # lengths, fixed, blob
    for name in SIGNAL_COLUMNS:
        if name in _TEXT:
            lengths, blob = _utf8(columns[name])
            fields.append((lengths, None, blob))
        elif name == "run_id":
            runs = columns[name]
            missing = np.fromiter((r is None for r in runs), bool, n)
            ids = np.fromiter((0 if r is None else r for r in runs), np.int64, n)
            fields.append((np.where(missing, -1, 8).astype(np.int64), ids.astype(">i8"), None))
        elif name == "timestamp":
            micros = columns[name].astype("datetime64[us]").astype(np.int64) - _PG_EPOCH_US
            fields.append((np.full(n, 8, np.int64), micros.astype(">i8"), None))
        else:
            fields.append((np.full(n, 8, np.int64), columns[name].astype(">f8"), None))
    sizes = 2 + sum(4 + np.maximum(lengths, 0) for lengths, _, _ in fields)
    starts = np.empty(n, np.int64)
    starts[0] = len(_PG_HEADER)
    np.cumsum(sizes[:-1], out=starts[1:])
    starts[1:] += len(_PG_HEADER)
    total = len(_PG_HEADER) + int(sizes.sum()) + len(_PG_TRAILER)
    buffer = np.empty(total, np.uint8)
    buffer[: len(_PG_HEADER)] = np.frombuffer(_PG_HEADER, np.uint8)
    buffer[-len(_PG_TRAILER) :] = np.frombuffer(_PG_TRAILER, np.uint8)
    _put(buffer, starts, np.full(n, len(SIGNAL_COLUMNS), ">i2"))
    at = starts + 2
    for lengths, fixed, blob in fields:
        _put(buffer, at, lengths.astype(">i4"))
        at = at + 4
        data = np.maximum(lengths, 0)
        if fixed is not None:
            present = lengths >= 0
            _put(buffer, at[present], fixed[present])
        elif blob:
            # each row's bytes go to its place: source offsets shifted by (target - source)
            sources = np.concatenate(([0], np.cumsum(data)[:-1]))
            shift = np.repeat(at - sources, data)
            buffer[shift + np.arange(len(blob))] = np.frombuffer(blob, np.uint8)
        at = at + data
    return buffer.tobytes()


def _put(buffer: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
    """Write each big-endian value at its offset (offsets need not be aligned)."""
    width = values.dtype.itemsize
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(-1, width)
    buffer[offsets[:, None] + np.arange(width)] = raw


def _utf8(values: list[str | None]) -> tuple[np.ndarray, bytes]:
    """Byte lengths (-1 for None) and the concatenated UTF-8 bytes of a text column."""
    distinct = set(values)
    if len(distinct) == 1:  # a batch's strategy, symbol and timeframe: one value
        (value,) = distinct
        if value is None:
            return np.full(len(values), -1, np.int64), b""
        encoded = value.encode()
        return np.full(len(values), len(encoded), np.int64), encoded * len(values)
    if len(distinct) <= 16:  # signal types
        codes = {v: None if v is None else v.encode() for v in distinct}
        pieces = [codes[v] for v in values]
    else:
        pieces = [None if v is None else v.encode() for v in values]
    lengths = np.fromiter((-1 if p is None else len(p) for p in pieces), np.int64, len(pieces))
    return lengths, b"".join(p for p in pieces if p is not None)
