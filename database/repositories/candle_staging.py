"""Staged candle imports: the bars of a large import wait in ``candle_import_staging`` (one
short transaction per chunk) until one transaction merges them into candles.

Why: SQLite has one write lock per file. Binding a million bars from Python takes seconds,
and a live feed waiting longer than its busy timeout fails with "database is locked". Staged,
the Python work happens in chunk transactions that each hold the lock briefly; the merge is
one ``INSERT ... SELECT`` the database runs on its own (no Python per bar), a few times faster
than the bind. PostgreSQL stages through binary COPY into an UNLOGGED table; its transactions
never block readers, nor writers of other bars (MVCC, row locks).

``candle_imports`` names every import in progress with its owner: ``host:pid`` on SQLite (the
file is local), the server backend's pid and start time on PostgreSQL. An import whose owner is
gone (killed, crashed) is discarded by the next import: its staged rows were never visible.
"""

from __future__ import annotations

import io
import os
import socket
import uuid
from datetime import UTC, datetime
from itertools import chain

import numpy as np
from sqlalchemy import Connection, text

from database.repositories._candle_io import (
    NATIVE_DTYPE,
    SQLITE_ROWS_PER_STATEMENT,
    WriteOutcome,
    _add_rowcount,
    _conflict_clause,
    _dbapi_cursor,
)
from market.candles import CANDLE_COLUMNS

_COLUMNS = ", ".join(("ts", *CANDLE_COLUMNS))
_ID_BYTES = 32
_PG_STAGED_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", f"S{_ID_BYTES}"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        *(item for name in CANDLE_COLUMNS for item in ((f"{name}_len", ">i4"), (name, ">f8"))),
    ]
)
_PG_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_COPY = f"COPY candle_import_staging (import_id, {_COLUMNS}) FROM STDIN (FORMAT binary)"
_SERIES = "FROM candles WHERE symbol = :symbol AND timeframe = :timeframe"
_STORED = (
    f"SELECT EXISTS (SELECT 1 {_SERIES}), "
    f"EXISTS (SELECT 1 {_SERIES} AND ts BETWEEN :first AND :last)"
)
_MERGE = (
    f"INSERT INTO candles (symbol, timeframe, {_COLUMNS}) "
    f"SELECT :symbol, :timeframe, {_COLUMNS} FROM candle_import_staging "
    "WHERE import_id = :import_id"
)


def _owner(connection: Connection) -> str:
    if connection.dialect.name == "postgresql":
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        return f"pg:{pid}"
    return f"{socket.gethostname()}:{os.getpid()}"


def start_import(connection: Connection, symbol: str, timeframe: str) -> str:
    """Register an import owned by this process (PostgreSQL: this connection); its id."""
    import_id = uuid.uuid4().hex
    connection.execute(
        text(
            "INSERT INTO candle_imports (import_id, symbol, timeframe, owner, started_at) "
            "VALUES (:import_id, :symbol, :timeframe, :owner, :started_at)"
        ),
        {
            "import_id": import_id,
            "symbol": symbol,
            "timeframe": timeframe,
            "owner": _owner(connection),
            "started_at": _started_at(connection),
        },
    )
    return import_id


def _started_at(connection: Connection) -> datetime | str:
    now = datetime.now(UTC)
    # SQLite stores UTC wall time as text, as UTCDateTime does
    return now.replace(tzinfo=None).isoformat(" ") if connection.dialect.name == "sqlite" else now


def stage(connection: Connection, import_id: str, ts: np.ndarray, columns: dict) -> None:
    """Write checked bars (epoch-ms ``ts``, float64 ``columns``) into the import's staging."""
    if connection.dialect.name == "postgresql":
        rows = np.empty(len(ts), dtype=_PG_STAGED_ROW)
        rows["fields"] = 2 + len(CANDLE_COLUMNS)
        rows["id_len"] = _ID_BYTES
        rows["id"] = import_id.encode()
        rows["ts_len"] = 8
        rows["ts"] = ts
        for name in CANDLE_COLUMNS:
            rows[f"{name}_len"] = 8
            rows[name] = columns[name]
        payload = io.BytesIO(b"".join((_PG_HEADER, rows.tobytes(), b"\xff\xff")))
        with _dbapi_cursor(connection, _PG_COPY) as cursor:
            cursor.copy_expert(_PG_COPY, payload, size=1 << 20)
        return
    bars = np.empty(len(ts), dtype=NATIVE_DTYPE)
    bars["ts"] = ts
    for name in CANDLE_COLUMNS:
        bars[name] = columns[name]
    rows = bars.tolist()
    per = SQLITE_ROWS_PER_STATEMENT
    whole = len(rows) // per * per
    if whole:
        statements = [
            (import_id, *chain.from_iterable(rows[i : i + per])) for i in range(0, whole, per)
        ]
        connection.exec_driver_sql(_sqlite_stage(per), statements)  # type: ignore[arg-type]
    if whole < len(rows):
        rest = (import_id, *chain.from_iterable(rows[whole:]))
        connection.exec_driver_sql(_sqlite_stage(len(rows) - whole), rest)


_SQLITE_STAGE: dict[int, str] = {}


def _sqlite_stage(rows: int) -> str:
    if rows not in _SQLITE_STAGE:
        fields = 1 + len(CANDLE_COLUMNS)
        values = ", ".join(
            "(?1, " + ", ".join(f"?{2 + fields * bar + k}" for k in range(fields)) + ")"
            for bar in range(rows)
        )
        _SQLITE_STAGE[rows] = (
            f"INSERT INTO candle_import_staging (import_id, {_COLUMNS}) VALUES {values}"
        )
    return _SQLITE_STAGE[rows]


def merge(
    connection: Connection,
    import_id: str,
    symbol: str,
    timeframe: str,
    first: int,
    last: int,
) -> WriteOutcome:
    """Move the import's staged bars into candles (in the caller's transaction) and forget it.

    No stored bar in [first, last]: a plain INSERT (a third of the cost of a merge); else an
    upsert that leaves unchanged bars untouched."""
    key = {"symbol": symbol, "timeframe": timeframe}
    any_stored, overlap = connection.execute(
        text(_STORED), {**key, "first": first, "last": last}
    ).one()
    # the SELECT has a WHERE, so SQLite reads ON CONFLICT as the upsert clause
    statement = f"{_MERGE} {_conflict_clause()}" if overlap else _MERGE
    changed = connection.execute(text(statement), {**key, "import_id": import_id}).rowcount
    discard(connection, import_id)
    return WriteOutcome(_add_rowcount(0, changed), not any_stored)


def discard(connection: Connection, import_id: str) -> None:
    """Delete an import's staged bars and its registration."""
    params = {"import_id": import_id}
    connection.execute(
        text("DELETE FROM candle_import_staging WHERE import_id = :import_id"), params
    )
    connection.execute(text("DELETE FROM candle_imports WHERE import_id = :import_id"), params)


def abandoned_imports(connection: Connection) -> list[str]:
    """Imports whose owner is gone: a killed or crashed process, a closed PostgreSQL session."""
    imports = connection.execute(
        text("SELECT import_id, owner, started_at FROM candle_imports")
    ).all()
    if connection.dialect.name == "postgresql":
        alive = {
            f"pg:{pid}": started
            for pid, started in connection.exec_driver_sql(
                "SELECT pid, backend_start FROM pg_stat_activity"
            )
        }
        # the same pid of a backend started after the import is another session
        return [i for i, owner, at in imports if owner not in alive or alive[owner] > at]
    host = socket.gethostname()
    gone = []
    for import_id, owner, _at in imports:
        owner_host, _, pid = owner.rpartition(":")
        if owner_host == host and not _process_alive(int(pid)):
            gone.append(import_id)
    return gone


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
