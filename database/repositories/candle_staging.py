"""Staged candle imports: the bars of a large import wait in a staging table of its own,
``candle_import_<id>`` (one short transaction per chunk), until one transaction copies them
into candles; the staging table is dropped after that commit.

Why: SQLite has one write lock per file. Binding a million bars from Python takes seconds,
and a live feed waiting longer than its busy timeout fails with "database is locked". On
SQLite the staging table is a TEMP table: it lives in the import connection's own temporary
database, so staging takes no lock on the database file at all, writes nothing to its WAL
(no fsync, no checkpoint of bars that are dropped anyway) and vanishes with the connection
when the process dies. The merge is one ``INSERT ... SELECT`` the database runs on its own (no
Python per bar), a few times faster than the bind; only it holds the write lock. PostgreSQL
stages through binary COPY into an UNLOGGED table of its own (dropping it costs next to
nothing); its transactions never block readers, nor writers of other bars (MVCC, row locks).

``candle_imports`` names every import in progress with its owner: ``host:pid`` on SQLite (the
file is local), the server backend's pid and start time on PostgreSQL. An import whose owner is
gone (killed, crashed) is discarded by the next import: its staged rows were never visible.
A staging table without a registered import (the process died, or the drop failed, between the
merge's commit and the drop; on SQLite also one a version that staged in the file left there)
is dropped too.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Connection, text

from database.repositories._candle_io import (
    SQLITE_ROWS_PER_STATEMENT,
    WriteOutcome,
    _add_rowcount,
    _conflict_clause,
    _dbapi_cursor,
    pg_copy_payload,
)
from market.candles import CANDLE_COLUMNS

_COLUMNS = ", ".join(("ts", *CANDLE_COLUMNS))
_PREFIX = "candle_import_"
_SERIES = "FROM candles WHERE symbol = :symbol AND timeframe = :timeframe"
_STORED = (
    f"SELECT EXISTS (SELECT 1 {_SERIES}), "
    f"EXISTS (SELECT 1 {_SERIES} AND ts BETWEEN :first AND :last)"
)


def staging_table(import_id: str) -> str:
    """The staging table of an import (ids are uuid4 hex: safe in SQL as they are)."""
    if len(import_id) != 32 or not all(c in "0123456789abcdef" for c in import_id):
        raise ValueError(f"import id {import_id!r} is not a 32-digit hex token")
    return _PREFIX + import_id


def _create_staging(connection: Connection, table: str) -> None:
    columns = ", ".join(
        ("ts bigint NOT NULL", *(f"{c} double precision NOT NULL" for c in CANDLE_COLUMNS))
    )
    # no key: the bars were checked (sorted, unique) before staging, candles' key applies
    kind = "UNLOGGED" if connection.dialect.name == "postgresql" else "TEMP"
    connection.exec_driver_sql(f"CREATE {kind} TABLE {table} ({columns})")


def _owner(connection: Connection) -> str:
    if connection.dialect.name == "postgresql":
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        return f"pg:{pid}"
    return f"{socket.gethostname()}:{os.getpid()}"


def start_import(connection: Connection, symbol: str, timeframe: str) -> str:
    """Register an import owned by this process (PostgreSQL: this connection) and create its
    staging table; its id."""
    import_id = uuid.uuid4().hex
    _create_staging(connection, staging_table(import_id))
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
    table = staging_table(import_id)
    if connection.dialect.name == "postgresql":
        copy = f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT binary)"
        with _dbapi_cursor(connection, copy) as cursor:
            cursor.copy_expert(copy, pg_copy_payload(ts, columns), size=1 << 20)
        return
    # one float64 matrix, a row per bar: epoch-ms times are exact in float64 (below 2**53) and
    # the ts column's INTEGER affinity stores them as integers; each statement binds one flat
    # row of the matrix reshaped (a tuple per statement, none per bar)
    bars = np.column_stack([ts, *(columns[name] for name in CANDLE_COLUMNS)])
    per = SQLITE_ROWS_PER_STATEMENT
    whole = len(bars) // per * per
    if whole:
        statements = list(map(tuple, bars[:whole].reshape(-1, per * bars.shape[1]).tolist()))
        connection.exec_driver_sql(_sqlite_stage(table, per), statements)  # type: ignore[arg-type]
    if whole < len(bars):
        rest = tuple(bars[whole:].ravel().tolist())
        connection.exec_driver_sql(_sqlite_stage(table, len(bars) - whole), rest)


def _sqlite_stage(table: str, rows: int) -> str:
    row = "(" + ", ".join("?" * (1 + len(CANDLE_COLUMNS))) + ")"
    return f"INSERT INTO {table} ({_COLUMNS}) VALUES " + ", ".join([row] * rows)


def overlaps(connection: Connection, symbol: str, timeframe: str, first: int, last: int) -> bool:
    """Whether the series holds a bar in [first, last] (epoch ms)."""
    key = {"symbol": symbol, "timeframe": timeframe, "first": first, "last": last}
    return bool(connection.execute(text(_STORED), key).one()[1])


def merge(
    connection: Connection,
    import_id: str,
    symbol: str,
    timeframe: str,
    first: int,
    last: int,
) -> WriteOutcome:
    """Copy the import's staged bars into candles and unregister it, in the caller's
    transaction; ``drop_staging`` after the commit.

    No stored bar in [first, last]: a plain INSERT (a third of the cost of a merge); else an
    upsert that leaves unchanged bars untouched."""
    key = {"symbol": symbol, "timeframe": timeframe}
    any_stored, overlap = connection.execute(
        text(_STORED), {**key, "first": first, "last": last}
    ).one()
    statement = (
        f"INSERT INTO candles (symbol, timeframe, {_COLUMNS}) "
        f"SELECT :symbol, :timeframe, {_COLUMNS} FROM {staging_table(import_id)} "
        # a WHERE, so that SQLite reads ON CONFLICT as the upsert clause
        + (f"WHERE true {_conflict_clause()}" if overlap else "")
    )
    changed = connection.execute(text(statement), key).rowcount
    _unregister(connection, import_id)
    return WriteOutcome(_add_rowcount(0, changed), not any_stored)


def _unregister(connection: Connection, import_id: str) -> None:
    connection.execute(
        text("DELETE FROM candle_imports WHERE import_id = :import_id"), {"import_id": import_id}
    )


def drop_staging(connection: Connection, import_id: str) -> None:
    """Drop an import's staging table (in its own short transaction: it holds the lock)."""
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {staging_table(import_id)}")


def drop_merged(connection: Connection, import_id: str) -> None:
    """Drop a merged import's staging table (outside any transaction). SQLite: by closing the
    connection, which discards its TEMP database at once, where DROP TABLE would read every
    staged page to free it (a few tenths of a second for a million bars); the pool opens a
    new connection when one is needed."""
    if connection.dialect.name == "sqlite":
        connection.invalidate()
        return
    with connection.begin():
        drop_staging(connection, import_id)


def discard(connection: Connection, import_id: str) -> None:
    """Forget an import: unregister it and drop its staged bars."""
    _unregister(connection, import_id)
    drop_staging(connection, import_id)


def orphaned_staging(connection: Connection) -> list[str]:
    """Ids of staging tables whose import is not registered (it died after its merge);
    SQLite: this connection's TEMP ones and any in the file."""
    if connection.dialect.name == "postgresql":
        names = connection.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            f"AND left(tablename, {len(_PREFIX)}) = '{_PREFIX}'"
        ).scalars()
    else:
        names = connection.exec_driver_sql(
            " UNION ALL ".join(
                f"SELECT name FROM {schema} WHERE type = 'table' "
                f"AND substr(name, 1, {len(_PREFIX)}) = '{_PREFIX}'"
                for schema in ("sqlite_temp_master", "sqlite_master")
            )
        ).scalars()
    registered = set(connection.exec_driver_sql("SELECT import_id FROM candle_imports").scalars())
    ids = [name.removeprefix(_PREFIX) for name in names]
    return [i for i in ids if len(i) == 32 and i not in registered]


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
