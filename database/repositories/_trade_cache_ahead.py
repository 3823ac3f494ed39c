"""A large insert's trade cache file written while PostgreSQL stores its rows (a bulk import's
COPY), instead of after it (``_trade_cache_sync.Writes``: 1,000,000 rows, ~0.5 s of columns
joined into one record batch and a file written, once the COPY ended).

The writer gives the columns of every row it inserts (a Future: the bulk import's whole file,
made in a thread). Before the insert the sequence's position says which ids its rows will
take when no other writer takes one meanwhile: ``(first, first + rows - 1]``. Once the columns
are made, the cache's thread writes the file of those rows under a temporary name, as the
account's rows ``(before, first + rows - 1]`` (``before``: its newest row before the
insert). After the insert :meth:`FileAhead.take` hands the file over only when the rows
stored are exactly those: the same database, the account's first row after ``before`` the
predicted one, its newest row the predicted last and as many rows (the proof
``Writes.stored`` makes of every batch). Otherwise (another writer took an id, the
sequence moved, a value the cache cannot hold) the file is deleted and the batch appended
the usual way, from the chunks as they were written.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.repositories._arrow_files import discard
from database.repositories._trade_cache import TradeFileCache
from database.repositories._trade_rows import _jsonb_rendered, cache_table, jsonb_known

AHEAD_FROM_ROWS = 100_000  # fewer rows: appended the usual way (a small file, soon written)
_NEXT_ID = text(
    "SELECT pg_sequence_last_value(CAST(pg_get_serial_sequence('trades', 'id') AS regclass))"
)


class FileAhead:
    """The cache file of the rows ``whole`` (a Future of the writer's columns, every name of
    ``_trade_io.TRADE_COLUMNS``) of ``account``, written in the cache's thread as soon as
    they are made, for the ids the insert is expected to take (see the module)."""

    def __init__(
        self, session: Session, cache: TradeFileCache, account: str, before: int,
        whole: Future[Mapping[str, Any]], preparing: Any,
    ) -> None:  # fmt: skip
        self.account = account
        self.first: int | None = None
        try:
            with session.begin_nested():  # a sequence this user may not read: no file ahead
                last = session.scalar(_NEXT_ID)  # None: not used yet (its first is 1)
            self.first = 1 if last is None else int(last) + 1
        except DBAPIError:
            pass
        self.token = session.scalar(text("SELECT token FROM database_identity LIMIT 1"))
        self._made: Future[tuple[Path | None, pa.Table | None]] = Future()
        engine = session.get_bind()

        def made(whole: Future[Mapping[str, Any]]) -> None:
            try:
                columns = whole.result()
                rows = len(columns["trade_id"])
                if rows < AHEAD_FROM_ROWS or self.first is None or not self.token:
                    self._made.set_result((None, None))
                    return
                table = cache_table(columns, False)
                with Session(bind=engine) as asking:  # the labels as its jsonb gives them
                    jsonb_known(asking, set(columns["labels"]) - {None})
                table = _jsonb_rendered(table)
                last = self.first + rows - 1
                path = cache.prepare(account, self.token, table, before, last)
                self._made.set_result((path, table))
            except BaseException as exc:  # no file ahead: appended the usual way
                self._made.set_exception(exc)

        # given, not closed over: no cycle through the Future's callbacks keeps its rows
        whole.add_done_callback(lambda done: preparing().submit(made, done))

    def take(
        self, token: str, first: int | None, last: int, rows: int
    ) -> Future[tuple[Path | None, pa.Table | None]] | None:
        """The file's (temporary path, table) when the insert stored exactly its rows: ids
        ``first`` (the account's first after its newest before) to ``last``, ``rows`` of
        them, in the database ``token``; None otherwise (the file deleted)."""
        predicted = self.first
        if (
            token == self.token
            and predicted is not None
            and first == predicted
            and (last == predicted + rows - 1)
        ):
            try:
                path, table = self._made.result()
            except Exception:
                return None
            if path is not None and table is not None and table.num_rows == rows:
                return self._made
        self.abandon()
        return None

    def abandon(self) -> None:
        """Not used: its file deleted once written."""
        self._made.add_done_callback(
            lambda done: None if done.exception() else discard(done.result()[0])
        )


__all__ = ["AHEAD_FROM_ROWS", "FileAhead"]
