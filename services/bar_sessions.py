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

PostgreSQL, an in-memory SQLite or an unbound factory: the runner's write sessions as they
are; :meth:`BarSessions.checkpoint` does nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from database.session import make_engine, make_session_factory, write_session_factory

log = logging.getLogger("stratlens.runner")

OVERDUE_S = 5.0  # a bar's commit checkpoints itself when none ran for this long


class BarSessions:
    """See the module docstring."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.factory = write_session_factory(sessions)
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._last = time.monotonic()
        bind = sessions.kw.get("bind")
        if isinstance(bind, Engine) and bind.dialect.name == "sqlite" and _is_file(bind):
            engine = make_engine(bind.url)
            event.listen(engine, "connect", _no_autocheckpoint)
            self._engine = engine
            self.factory = make_session_factory(engine.execution_options(sqlite_begin="IMMEDIATE"))

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
        if self._engine is not None:
            try:
                self.checkpoint()
            except Exception:  # the next connection's automatic checkpoint does it
                log.exception("trading runner: the last WAL checkpoint failed")
            self._engine.dispose()


def _is_file(engine: Engine) -> bool:
    database = engine.url.database or ""
    memory = database in ("", ":memory:") or database.startswith("file::memory:")
    return not memory and "mode=memory" not in str(engine.url.query.get("mode", ""))


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")


__all__ = ["OVERDUE_S", "BarSessions"]
