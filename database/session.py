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
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def make_engine(url: str | URL, **engine_kwargs: Any) -> Engine:
    """An Engine for a SQLite or PostgreSQL URL, configured for StratLens.

    SQLite: the file's folder is created, WAL journal, foreign keys on, busy timeout.
    PostgreSQL: connections are pinged before use (survives server restarts).
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **engine_kwargs)
    engine_kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **engine_kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; use ``with factory.begin() as session:``.

    ``expire_on_commit=False``: repositories return frozen records, and ORM objects a caller
    still holds after the commit stay readable without a new query.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


def _sqlite_engine(url: URL, **engine_kwargs: Any) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory and not url.query.get("uri"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **engine_kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN, see _on_begin
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                _enable_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = str(connection.get_execution_options().get("sqlite_begin", "DEFERRED")).upper()
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(f"sqlite_begin={mode!r}: expected one of {_SQLITE_BEGIN_MODES}")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


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
