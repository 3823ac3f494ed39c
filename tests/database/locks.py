"""Another connection holding a database's write lock, for the tests of a busy database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url


@contextmanager
def write_lock(database_url: str) -> Iterator[None]:
    """Another connection holding the candles table's write lock until the block ends:
    SQLite's BEGIN IMMEDIATE (the whole file), PostgreSQL's LOCK TABLE ... EXCLUSIVE (readers
    go on, writers wait)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(url.database, isolation_level=None, check_same_thread=False)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("LOCK TABLE candles IN EXCLUSIVE MODE")
            yield
            connection.rollback()
    finally:
        engine.dispose()
