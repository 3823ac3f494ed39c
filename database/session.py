"""Engines and session factories. Callers own transactions::

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:  # commits on success, rolls back on error
        CandleRepository(session).upsert("SP500", "1d", frame)

SQLite (the default, one process: a background writer thread plus request threads) runs in WAL
mode, so readers never block the writer nor the writer the readers; ``busy_timeout`` makes a
second writer wait instead of failing. SQLAlchemy emits ``BEGIN`` itself (the sqlite3 module's
legacy transaction handling would run SELECTs outside the transaction and break SAVEPOINTs).
A write transaction that reads before it writes and may race another writer should take the
write lock up front: ``make_session_factory(engine.execution_options(sqlite_begin="IMMEDIATE"))``.

How long a transaction waits for a lock another connection holds is per transaction too: the
execution option ``lock_wait_ms`` (:data:`LOCK_WAIT_OPTION`) sets SQLite's ``busy_timeout``
(default :data:`SQLITE_BUSY_TIMEOUT_MS`) or PostgreSQL's ``lock_timeout`` (default: none) for
it. A background writer that must not stall (a live feed) waits briefly, then keeps its work
and retries later (see ``is_transient_failure`` in database/errors.py)::

    with factory.begin() as session:
        session.connection(execution_options={LOCK_WAIT_OPTION: 500})
        ...
"""

from __future__ import annotations

import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import SingletonThreadPool, StaticPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
LOCK_WAIT_OPTION = "lock_wait_ms"
_BUSY_TIMEOUT_KEY = "stratlens_busy_timeout_ms"  # the connection's current busy_timeout
_SQLITE_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")
# a PostgreSQL engine's pool: kept open, and opened beyond for a burst (at most 20 a process:
# two web workers, the runner and the API's lookup pools stay under PostgreSQL's default
# max_connections of 100)
POOL_SIZE = 10
POOL_OVERFLOW = 10
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()  # every engine make_engine made


def make_engine(url: str | URL, **engine_kwargs: Any) -> Engine:
    """An Engine for a SQLite or PostgreSQL URL, configured for StratLens.

    SQLite: the file's folder is created, WAL journal (synchronous NORMAL), foreign keys on,
    busy timeout.
    PostgreSQL: connections are pinged before use (survives server restarts); the pool keeps
    ``POOL_SIZE`` connections open and opens up to ``POOL_OVERFLOW`` more for a burst (a
    served worker's threads: SQLAlchemy's 5 kept had every checkout past the fifth open and
    close a connection under the API's load test). psycopg2's
    executemany_mode stays SQLAlchemy's default: "values_plus_batch" (execute_batch for
    UPDATEs) made a backtest run's store twice as slow (bench/run_store.py: 367 -> 800 ms).
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, **engine_kwargs)
        _ENGINES.add(engine)
        return engine
    engine_kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in engine_kwargs:
        engine_kwargs.setdefault("pool_size", POOL_SIZE)
        engine_kwargs.setdefault("max_overflow", POOL_OVERFLOW)
    engine = create_engine(url, **engine_kwargs)
    if url.get_backend_name() == "postgresql":

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Any) -> None:
            wait = connection.get_execution_options().get(LOCK_WAIT_OPTION)
            if wait is not None:  # SET LOCAL: this transaction only
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = {_lock_wait(wait)}")

    _ENGINES.add(engine)
    return engine


def dispose_engines() -> None:
    """Close the pooled connections of every engine :func:`make_engine` made and that is
    still alive (a process ending: PostgreSQL's sessions end with their protocol's goodbye,
    SQLite's files are closed as the interpreter would close them)."""
    for engine in list(_ENGINES):
        engine.dispose()


def write_session_factory(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """A factory on the engine of ``sessions`` whose transactions take SQLite's write lock up
    front (``sqlite_begin="IMMEDIATE"``): for writes that read before they write while
    another thread writes (a live feed), which would otherwise fail at once as busy. An
    unbound factory is returned as it is."""
    bind = sessions.kw.get("bind")
    if bind is None:
        return sessions
    return make_session_factory(bind.execution_options(sqlite_begin="IMMEDIATE"))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; use ``with factory.begin() as session:``.

    ``expire_on_commit=False``: repositories return frozen records, and ORM objects a caller
    still holds after the commit stay readable without a new query.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def threads_connect_apart(bind: Any) -> bool:
    """Whether another thread reaches the same database through a connection of its own:
    not a SQLite database in memory (one connection shared by every thread, or one per
    thread, each its own database)."""
    return bind is not None and not isinstance(
        getattr(bind, "pool", None), SingletonThreadPool | StaticPool
    )


def _sqlite_engine(url: URL, **engine_kwargs: Any) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory and not url.query.get("uri"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **engine_kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN, see _on_begin
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            record.info[_BUSY_TIMEOUT_KEY] = SQLITE_BUSY_TIMEOUT_MS
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                _enable_wal(cursor)
                # in WAL mode NORMAL still survives a crash of the process (kill -9): only a
                # power cut may lose the last commits, never corrupt the file; FULL's fsync
                # per commit was most of a live bar's transaction (paper trading commits one
                # per closed candle)
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        mode = str(options.get("sqlite_begin", "DEFERRED")).upper()
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(f"sqlite_begin={mode!r}: expected one of {_SQLITE_BEGIN_MODES}")
        wait = _lock_wait(options.get(LOCK_WAIT_OPTION, SQLITE_BUSY_TIMEOUT_MS))
        if connection.info.get(_BUSY_TIMEOUT_KEY) != wait:  # pooled: set only on a change
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {wait}")
            connection.info[_BUSY_TIMEOUT_KEY] = wait
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _lock_wait(value: Any) -> int:
    """The ``lock_wait_ms`` option as whole milliseconds (it goes into SQL text: checked)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value < 2**31:
        raise ValueError(f"{LOCK_WAIT_OPTION}={value!r}: expected milliseconds from 1 to 2**31")
    return int(value)


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (a setting stored in the file, so usually already on)."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    # switching needs the file to itself and fails at once with "database is locked" instead
    # of waiting on busy_timeout, e.g. when several processes open a new database together
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
