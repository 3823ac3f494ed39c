"""Signals into the database in bulk, a column at a time, without a Python call chain per row.

What is stored per signal (migration 0003): ``strategy_config`` only when it differs from what
NULL reads back as (its run's config; ``{}`` without a run); metadata NULL when the signal has
none, typed when every signal of a new run has the same keys with float values (the keys once
on the run, ``signal_metadata_keys``; per signal ``signal_metadata_values``: its float64 values
little-endian, built for all rows by one numpy call), else JSON text in ``signal_metadata``; the
time, type, price, confidence and run id as typed values.

Signals come as :class:`SignalRecord` rows or as one :class:`SignalBlock` of columns (a run's
signals as the pipeline makes them: no Python object per signal at all).

- PostgreSQL: one binary ``COPY ... FROM STDIN (FORMAT binary)`` per chunk straight into the
  table (no text for the server to parse: times are int64 microseconds, prices float64, the
  typed metadata bytea, laid out by numpy); the run check is one statement trigger (0003; one
  pass over the new rows since 0005).
- SQLite: an executemany per chunk of multi-row INSERTs (``SQLITE_ROWS_PER_STATEMENT`` each);
  a value every row of the batch shares (strategy, symbol, timeframe, run, a shared config,
  NULL metadata) is bound once per statement as a numbered parameter that every row names,
  so only the time, type, price, confidence and metadata travel per row (a third less CPU
  than every column of every row: in Python's sqlite3 the per-parameter cost dominates).

Both run on the session's own connection, inside its transaction (nothing is committed here);
database errors surface as SQLAlchemy's (e.g. ``sqlalchemy.exc.IntegrityError``).
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.records import SignalBlock, SignalRecord
from database.repositories._columnar import json_texts, wall_texts
from database.repositories._common import bulk_dialect

SIGNAL_COLUMNS = (
    "strategy_name", "strategy_config", "symbol", "timeframe", "timestamp", "signal_type",
    "price", "confidence", "signal_metadata", "run_id", "signal_metadata_values",
)  # fmt: skip
SQLITE_ROWS_PER_STATEMENT = 500
"""Signals per SQLite INSERT statement (at most 11 parameters each: far below SQLite's limit of
32,766)."""

_PG_NUMBER_COLUMNS = ("timestamp", "price", "confidence", "signal_metadata_values")
PG_COLUMNS = (
    "strategy_name", "symbol", "timeframe", "signal_type", "run_id", "strategy_config",
    "signal_metadata", *_PG_NUMBER_COLUMNS,
)  # fmt: skip
"""The COPY's column order: the fixed-width fields last, laid out as one numpy block."""
_PG_FIELD_COUNT = len(PG_COLUMNS).to_bytes(2, "big")
_PG_NULL = b"\xff\xff\xff\xff"
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, no header extension
_PG_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # PostgreSQL's timestamps count from 2000-01-01 UTC
_COPY_BUFFER = 1 << 20

Signals = Sequence[SignalRecord] | SignalBlock


def metadata_keys(signals: Signals) -> tuple[str, ...] | None:
    """The keys to store typed for a new run's signals (once, on the run): every signal has
    metadata with exactly these keys, in this order, and float values; else None (JSON)."""
    if isinstance(signals, SignalBlock):
        columns = signals.metadata
        if columns and all(v.dtype.kind == "f" for v in columns.values()):
            return tuple(columns)
        return None
    if not signals:
        return None
    mappings = list(map(attrgetter("metadata"), signals))
    first = tuple(mappings[0])
    if not first or not all(type(k) is str for k in first):
        return None
    if not all(tuple(m) == first for m in mappings):
        return None
    for key in first:
        if set(map(type, map(itemgetter(key), mappings))) != {float}:
            return None
    return first


def insert_signals(
    session: Session,
    table: Table,
    signals: Signals,
    chunk_rows: int,
    *,
    run_id: int | None = None,
    run_config: Mapping[str, Any] | None = None,
    typed_keys: Sequence[str] | None = None,
) -> None:
    """Insert checked signals; ``run_id`` / ``run_config``: the new run they belong to (they
    carry none then), whose config is stored once on the run, not per signal; ``typed_keys``:
    the run's ``signal_metadata_keys`` (``metadata_keys``), None to store metadata as JSON."""
    if not len(signals):
        return
    connection = session.connection()
    preparer = connection.dialect.identifier_preparer
    dialect = bulk_dialect(connection, "the signal bulk insert")
    name = preparer.format_table(table)
    target = f"{name} ({', '.join(map(preparer.quote, PG_COLUMNS))})"
    keys = None if typed_keys is None else tuple(typed_keys)
    for start in range(0, len(signals), chunk_rows):
        if isinstance(signals, SignalBlock):
            columns = block_columns(signals, start, start + chunk_rows, run_id, run_config, keys)
        else:
            chunk = signals[start : start + chunk_rows]
            columns = signal_columns(chunk, run_id, run_config, keys)
        if dialect == "postgresql":
            _copy_binary(connection, target, columns)
        else:
            _insert_sqlite(connection, name, preparer.quote, columns)


def signal_columns(
    records: Sequence[SignalRecord],
    run_id: int | None,
    run_config: Mapping[str, Any] | None,
    typed_keys: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The stored values of ``SIGNAL_COLUMNS``: lists of str / JSON text / None, ``timestamp``
    a datetime64[us] array (UTC), ``price`` and ``confidence`` float64 arrays,
    ``signal_metadata_values`` a float64 array of one row per signal (``typed_keys``) or None."""
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
    if typed_keys is not None:
        columns["signal_metadata"] = [None] * n
        columns["signal_metadata_values"] = np.column_stack(
            [np.fromiter(map(itemgetter(k), metadata), np.float64, n) for k in typed_keys]
        )
    else:
        present = [row for row, m in enumerate(metadata) if m]
        texts: list[str | None] = [None] * n
        for row, text in zip(present, json_texts([metadata[r] for r in present]), strict=True):
            texts[row] = text
        columns["signal_metadata"] = texts
        columns["signal_metadata_values"] = None
    stamps = pd.to_datetime(list(map(attrgetter("timestamp"), records)), utc=True)
    columns["timestamp"] = stamps.as_unit("us").tz_localize(None).to_numpy()
    columns["price"] = np.fromiter(map(attrgetter("price"), records), np.float64, n)
    columns["confidence"] = np.fromiter(map(attrgetter("confidence"), records), np.float64, n)
    return columns


def block_columns(
    block: SignalBlock,
    start: int,
    stop: int,
    run_id: int | None,
    run_config: Mapping[str, Any] | None,
    typed_keys: tuple[str, ...] | None,
) -> dict[str, Any]:
    """``signal_columns`` of rows ``start:stop`` of a block (one config for every signal)."""
    stamps = block.timestamp[start:stop]
    n = len(stamps)
    (shared,) = _config_texts([block.strategy_config], [run_id], run_config)
    columns: dict[str, Any] = {
        "strategy_name": [block.strategy_name] * n,
        "symbol": [block.symbol] * n,
        "timeframe": [block.timeframe] * n,
        "signal_type": block.signal_type[start:stop].tolist(),
        "run_id": [run_id] * n,
        "strategy_config": [shared] * n,
        "timestamp": stamps.as_unit("us").tz_localize(None).to_numpy(),
        "price": block.price[start:stop],
        "confidence": block.confidence[start:stop],
    }
    metadata = {key: values[start:stop] for key, values in block.metadata.items()}
    if typed_keys is not None:
        columns["signal_metadata"] = [None] * n
        columns["signal_metadata_values"] = np.column_stack(
            [metadata[key].astype(np.float64) for key in typed_keys]
        )
    elif metadata:
        values = [v.tolist() for v in metadata.values()]
        rows = [dict(zip(metadata, row, strict=True)) for row in zip(*values, strict=True)]
        columns["signal_metadata"] = json_texts(rows)
        columns["signal_metadata_values"] = None
    else:
        columns["signal_metadata"] = [None] * n
        columns["signal_metadata_values"] = None
    return columns


def shared_config(signals: Signals) -> Mapping[str, Any] | None:
    """The one non-empty config every signal carries, or None (none, or not one for all)."""
    if isinstance(signals, SignalBlock):
        return signals.strategy_config or None
    configs = list(map(attrgetter("strategy_config"), signals))
    if not configs:
        return None
    texts = {id(c): json.dumps(dict(c)) if c else "{}" for c in configs}
    if len(set(texts.values())) != 1 or "{}" in texts.values():
        return None
    return configs[0]


def _config_texts(
    configs: list[Mapping[str, Any] | None],
    runs: list[int | None],
    run_config: Mapping[str, Any] | None,
) -> list[str | None]:
    """Each signal's config as stored: None when it reads back the same from NULL (the new
    run's signals' config ``run_config``, or {} for a signal without a run), else its JSON
    text (``json.dumps``, as before). An empty config means the run's (``{}`` when adding to
    an existing run, as it always did). Mappings are serialized once per object: one run's
    signals share one."""
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


def typed_blobs(values: np.ndarray | None, n: int) -> list[bytes | None]:
    """Each row's float64 values as little-endian bytes (None without typed metadata)."""
    if values is None:
        return [None] * n
    raw = np.ascontiguousarray(values, dtype="<f8").tobytes()
    width = len(raw) // n if n else 0
    return [raw[start : start + width] for start in range(0, len(raw), width)]


# -- SQLite -----------------------------------------------------------------------------------


def _insert_sqlite(
    connection: Connection, table: str, quote: Callable[[str], str], columns: dict[str, Any]
) -> None:
    values = dict(columns)
    values["timestamp"] = wall_texts(columns["timestamp"])
    values["price"] = columns["price"].tolist()
    values["confidence"] = columns["confidence"].tolist()
    values["signal_metadata_values"] = typed_blobs(
        columns["signal_metadata_values"], len(values["price"])
    )
    shared = [name for name in SIGNAL_COLUMNS if _one_value(values[name])]
    varying = [name for name in SIGNAL_COLUMNS if name not in shared]
    constants = tuple(values[name][0] for name in shared)
    n = len(values["price"])
    rows = list(zip(*(values[name] for name in varying), strict=True)) if varying else [()] * n
    names = ", ".join(map(quote, [*shared, *varying]))
    per = SQLITE_ROWS_PER_STATEMENT
    whole = len(rows) // per * per
    if whole:
        statements = [
            (*constants, *itertools.chain.from_iterable(rows[start : start + per]))
            for start in range(0, whole, per)
        ]
        many = (
            f"INSERT INTO {table} ({names}) VALUES {_sqlite_rows(len(shared), len(varying), per)}"
        )
        connection.exec_driver_sql(many, statements)  # type: ignore[arg-type]
    if whole < len(rows):
        rest = (*constants, *itertools.chain.from_iterable(rows[whole:]))
        rows_sql = _sqlite_rows(len(shared), len(varying), len(rows) - whole)
        connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES {rows_sql}", rest)


def _one_value(values: Any) -> bool:
    """Whether a column (list) holds one value for every row (bound once per statement)."""
    return isinstance(values, list) and values.count(values[0]) == len(values)


@lru_cache(maxsize=16)
def _sqlite_rows(shared: int, varying: int, rows: int) -> str:
    """``rows`` VALUES rows: ?1..?shared in each, then each row's own ``varying`` parameters.

    Those are plain ``?``: SQLite numbers each one after the largest before it (row r's k-th:
    shared + 1 + varying * r + k, as if written out), and only ``?NNN`` go in the list it
    searches for every ``?NNN`` it parses, so the statement is prepared in linear time (500
    rows of 13 written ``?NNN``: ~70 ms a prepare, on each connection's first use; plain:
    ~2 ms)."""
    row = "(" + ", ".join([*(f"?{k}" for k in range(1, shared + 1)), *["?"] * varying]) + ")"
    return ", ".join([row] * rows)


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
    """PostgreSQL's binary COPY of the signal columns in ``PG_COLUMNS`` order: per row a field
    count (int16), then each field as its length (int32, -1 for NULL) and its bytes, all
    big-endian (the typed metadata: its little-endian float64 bytes); text and json are their
    UTF-8 bytes. The fixed-width fields of every row (time, price, confidence, typed metadata)
    are one numpy block; a value repeated down a column (strategy, symbol, run, signal type)
    is encoded once; the rows are one ``bytes.join`` of the pieces."""
    n = len(columns["price"])
    values = columns["signal_metadata_values"]
    width = 0 if values is None else values.shape[1]
    layout = [("ts_len", ">i4"), ("ts", ">i8"), ("price_len", ">i4"), ("price", ">f8"),
              ("confidence_len", ">i4"), ("confidence", ">f8"), ("values_len", ">i4")]  # fmt: skip
    if width:
        layout.append(("values", "<f8", (width,)))
    block = np.empty(n, np.dtype(layout))
    block["ts_len"] = block["price_len"] = block["confidence_len"] = 8
    block["values_len"] = -1 if values is None else 8 * width
    micros = columns["timestamp"].astype("datetime64[us]").astype(np.int64) - _PG_EPOCH_US
    block["ts"] = micros
    block["price"] = columns["price"]
    block["confidence"] = columns["confidence"]
    if width:
        block["values"] = values
    raw = block.tobytes()
    size = block.dtype.itemsize
    numbers = [raw[start : start + size] for start in range(0, len(raw), size)]
    pieces: list[Iterable[bytes]] = [itertools.repeat(_PG_FIELD_COUNT, n)]
    for name in PG_COLUMNS[: -len(_PG_NUMBER_COLUMNS)]:
        pieces.append(_pieces(columns[name], _encode_int8 if name == "run_id" else _encode_text))
    pieces.append(numbers)
    rows = b"".join(itertools.chain.from_iterable(zip(*pieces, strict=True)))
    return b"".join((_PG_HEADER, rows, _PG_TRAILER))


def _encode_text(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(4, "big") + data


def _encode_int8(value: int) -> bytes:
    return b"\x00\x00\x00\x08" + value.to_bytes(8, "big", signed=True)


def _pieces(values: Sequence[Any], encode: Callable[[Any], bytes]) -> Iterable[bytes]:
    """Each value's field (length + bytes; NULL for None), a repeated value encoded once."""
    distinct = set(values)
    if len(distinct) == 1:  # a batch's strategy, symbol, timeframe, run: one value
        (value,) = distinct
        return itertools.repeat(_PG_NULL if value is None else encode(value), len(values))
    if len(distinct) <= 64:  # signal types
        fields = {v: _PG_NULL if v is None else encode(v) for v in distinct}
        return list(map(fields.__getitem__, values))
    return [_PG_NULL if v is None else encode(v) for v in values]
