"""The sessions of the trading runner's per-bar transactions, and SQLite's WAL checkpoints
off their path.

>>> bars = BarSessions(sessions)
>>> with bars.factory.begin() as session:   # a closed candle's transaction
...     store.write(session, [outcome])
>>> bars.checkpoint()                        # the runner's background loop, every 0.5 s

SQLite (a file): a commit that finds the write-ahead log past 1,000 pages checkpoints it
there and then, copying the pages into the database file and syncing both (1-20 ms on this
disk, once every ~25 of the runner's bars: their p99). The runner's bars therefore commit
through an engine of their own whose connections never checkpoint automatically
(``wal_autocheckpoint = 0``); the runner's background loop checkpoints (PASSIVE: it waits
for nobody, a commit meanwhile goes on) every ``request_poll_s``, and a bar's commit does it
itself when no checkpoint ran for ``OVERDUE_S`` (a runner whose loop does not run). A
checkpoint moves committed pages only: what is durable and when is unchanged (WAL with
``synchronous = NORMAL``, database/session.py). Other connections of the process keep
SQLite's automatic checkpoints.

PostgreSQL: :meth:`BarSessions.transaction` runs on an engine of its own whose connection
is in autocommit mode and not pinged at checkout; the transaction is opened by the text of
its first statement (``BEGIN`` leads the batch write, database/repositories/
trading_batch.py: :data:`OPENS_TRANSACTION`) and committed by a ``COMMIT`` statement: two
round trips a bar fewer than psycopg2's own ``BEGIN`` and SQLAlchemy's ``SELECT 1`` at
checkout. A connection found dead fails the bar's first statement (nothing was written):
the runner writes the bar again once on a new connection (TradingRunner._commit).

An in-memory SQLite or an unbound factory: the runner's write sessions as they are;
:meth:`BarSessions.checkpoint` does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from database.repositories.trading_batch import OPENS_TRANSACTION
from database.session import make_engine, make_session_factory, write_session_factory

log = logging.getLogger("stratlens.runner")

OVERDUE_S = 5.0  # a bar's commit checkpoints itself when none ran for this long


class BarSessions:
    """See the module docstring."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.factory = write_session_factory(sessions)
        self._engine: Engine | None = None
        self._explicit: sessionmaker[Session] | None = None  # PostgreSQL: BEGIN in the text
        self._lock = threading.Lock()
        self._last = time.monotonic()
        bind = sessions.kw.get("bind")
        if isinstance(bind, Engine) and bind.dialect.name == "sqlite" and _is_file(bind):
            engine = make_engine(bind.url)
            event.listen(engine, "connect", _no_autocheckpoint)
            self._engine = engine
            self.factory = make_session_factory(engine.execution_options(sqlite_begin="IMMEDIATE"))
        elif isinstance(bind, Engine) and bind.dialect.name == "postgresql":
            self._pg = _explicit_engine(bind)
            self._explicit = make_session_factory(self._pg)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits at the end (rolls back on an exception): a closed
        candle's transaction (see the module docstring for PostgreSQL's)."""
        if self._explicit is None:
            with self.factory.begin() as session:
                yield session
            return
        with self._explicit.begin() as session:
            connection = session.connection()
            if _in_transaction(connection):  # left open by a failed ROLLBACK: never joined
                connection.exec_driver_sql("ROLLBACK")
            info = connection.info  # the DBAPI connection's (kept: read after a failure)
            info[OPENS_TRANSACTION] = True
            try:
                yield session
                if _in_transaction(connection):
                    connection.exec_driver_sql("COMMIT")
            except BaseException:
                try:
                    if _in_transaction(connection):
                        connection.exec_driver_sql("ROLLBACK")
                except Exception:  # a lost connection: nothing to roll back (the next checks)
                    log.debug("trading runner: no ROLLBACK on a lost connection", exc_info=True)
                raise
            finally:
                info.pop(OPENS_TRANSACTION, None)

    def checkpoint(self) -> None:
        """Copy the committed WAL pages into the database file (PASSIVE), if SQLite."""
        if self._engine is None or not self._lock.acquire(blocking=False):
            return
        try:
            raw = self._engine.raw_connection()  # autocommit: no BEGIN around the pragma
            try:
                raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
            finally:
                raw.close()
            self._last = time.monotonic()
        finally:
            self._lock.release()

    def after_commit(self) -> None:
        """A bar committed: checkpoint now if the background loop has not for a while."""
        if self._engine is not None and time.monotonic() - self._last > OVERDUE_S:
            self.checkpoint()

    def close(self) -> None:
        if self._explicit is not None:
            self._explicit = None
            _release(self._pg)
        if self._engine is not None:
            try:
                self.checkpoint()
            except Exception:  # the next connection's automatic checkpoint does it
                log.exception("trading runner: the last WAL checkpoint failed")
            self._engine.dispose()


# PostgreSQL: one autocommit engine per engine of the runners' sessions, shared by its
# BarSessions (many runners of one process, as bench/runner.py's naive way, would otherwise
# each keep connections open), disposed when the last of them closes
_EXPLICIT: dict[int, list[Any]] = {}  # id(bind engine) -> [autocommit engine, users]
_EXPLICIT_LOCK = threading.Lock()


def _explicit_engine(bind: Engine) -> Engine:
    with _EXPLICIT_LOCK:
        entry = _EXPLICIT.get(id(bind))
        if entry is None:
            engine = make_engine(
                bind.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_size=1,
                max_overflow=4,
            )  # fmt: skip
            event.listen(engine, "before_cursor_execute", _begin_first)
            entry = _EXPLICIT[id(bind)] = [engine, 0, bind]  # the bind kept: its id stays its
        entry[1] += 1
        return entry[0]


def _release(engine: Engine) -> None:
    with _EXPLICIT_LOCK:
        for key, entry in list(_EXPLICIT.items()):
            if entry[0] is engine:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _EXPLICIT[key]
                    engine.dispose()
                return


def _begin_first(connection: Any, cursor: Any, *_: Any) -> None:
    """A statement of a bar's transaction that comes before the batch's (which leads with
    BEGIN itself): the transaction is opened first (one round trip, as without the batch)."""
    if connection.info.pop(OPENS_TRANSACTION, False):
        cursor.execute("BEGIN")


def _in_transaction(connection: Any) -> bool:
    """Whether the server has a transaction open on ``connection`` (psycopg2: the status of
    its last answer, also in autocommit mode)."""
    raw = connection.connection.dbapi_connection
    return raw.info.transaction_status != 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE


def _is_file(engine: Engine) -> bool:
    database = engine.url.database or ""
    memory = database in ("", ":memory:") or database.startswith("file::memory:")
    return not memory and "mode=memory" not in str(engine.url.query.get("mode", ""))


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")


__all__ = ["OVERDUE_S", "BarSessions"]
