"""The trade cache (``_trade_cache``) kept by the readers and by the writers.

A read (:func:`read_through`) maps the account's chain of cache files first, then counts the
account's rows up to the chain's last row: the chain's count says it is every row up to there
(each file holds rows of the account in its range; the database has as many there). Then only
the rows after it are read, and appended to the cache as a segment. Otherwise the files are
counted one by one: those with fewer rows than their range holds are deleted (a row committed
later with a lower id, out of order on PostgreSQL), the good ones before them kept.

The writers (:class:`Writes`, ``TradeRepository.add_many`` and ``add_columns``: the tracker's
group commits, the bulk import, the paper broker's fills) append the rows they stored, once
their transaction commits, built from the very columns they gave the database (``_trade_rows``)
when they are provably all of the account's rows in a range of ids ``(before, last]``:

- PostgreSQL: ``before`` is the account's newest row read before the insert (the ids the
  insert then takes are higher), ``last`` its newest after; the rows after ``before`` must be
  exactly the batch's: so they are when the first of them and ``last`` span as many ids as
  the batch has rows (its rows all lie there, one per id), else they are counted. A row of
  another transaction committed in that range later (its id taken before ours) is missing
  from the segment: a read's count finds it out and deletes the segment. The writer never
  claims a row it did not write.
- SQLite: writers take turns (the write lock, held from the insert to the commit), so the
  batch's rows are the account's newest: ``before`` is the row below them.

Nothing is appended for a batch rolled back (to a savepoint too), and a crash between the
commit and the append only leaves the cache behind: a read catches up from the database. The
rows committed are held in memory per account and written as one segment once
:data:`FLUSH_ROWS` have come in (a read in this process, and the process's exit, write them
first): a small batch costs no file.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from database.models import DatabaseIdentity
from database.repositories._arrow_files import discard
from database.repositories._at_commit import AtCommit
from database.repositories._trade_cache import TradeFileCache, loaded, table_of, trade_cache_for
from database.repositories._trade_rows import ChunkRows, Uncacheable, jsonb_known

log = logging.getLogger(__name__)

FLUSH_ROWS = 4096  # an account's committed rows held in memory before they make a segment
HELD_AT_MOST = 65_536  # the process's rows held in all (many slow accounts): all written then
_UNCACHEABLE = (Uncacheable, pa.ArrowException, TypeError, ValueError, KeyError)


# --- reads ------------------------------------------------------------------------------------


def read_through(
    session: Session,
    cache: TradeFileCache,
    account: str,
    read: Callable[[int | None], pd.DataFrame],
    from_cache: Callable[[pd.DataFrame, str], pd.DataFrame],
) -> pd.DataFrame:
    """Every row of ``account``, the cached ones from the files, the others read by
    ``read(after)`` (the rows after row ``after`` from the database, every row when None,
    with ``id``) and appended to the cache. ``attrs["stored_version"]``: (the database's
    token, the rows, the newest row)."""
    from database.repositories.trades import TRADES

    token = session.scalar(select(DatabaseIdentity.token).limit(1))
    if not token:  # a schema without its identity: nothing to key the files to
        return read(None).drop(columns="id")
    flush(cache, token, account)  # this process's committed rows not written yet
    hit = cache.load(account, token)  # before the count: its rows were committed before it
    c = TRADES.c
    mine = c.account_id == account
    upto = hit.last_id if hit is not None else 0
    counted, total, newest = session.execute(
        select(func.count().filter(c.id <= upto), func.count(), func.max(c.id)).where(mine)
    ).one()
    if hit is not None and counted != hit.count:
        hit = _good_prefix(session, cache, hit, mine, c.id)
    if hit is not None and hit.count == total and hit.last_id == int(newest or 0):
        frame = from_cache(hit.frame, account)  # every row: none to read
        frame.attrs["stored_version"] = (token, hit.count, hit.last_id)
        return frame
    # the base file holds every row up to its last (ids below 1 too: a row may be given one)
    after = None if hit is None else hit.last_id
    newer = read(after)
    ids = newer.pop("id")
    last = int(ids.iat[-1]) if len(newer) else after or 0
    if len(newer):
        table = table_of(newer.rename(columns={"labels": "labels_text"}))
        _append_read(cache, token, account, table, after or 0, last)
    if hit is None:
        frame = newer
    elif len(newer):
        frame = pd.concat([from_cache(hit.frame, account), newer], ignore_index=True)
    else:
        frame = from_cache(hit.frame, account)
    frame.attrs["stored_version"] = (token, len(frame), last)
    return frame


def _append_read(
    cache: TradeFileCache, token: str, account: str, table: pa.Table, after: int, last: int
) -> None:
    """Append the rows a read took from the database in the cache's thread: the reader has
    its frame at once and analyses it while the file is written (1,000,000 rows: ~0.5 s of
    CPU, mostly Arrow's outside the GIL). :func:`flush` waits for it: the next read of the
    account, or a writer's append after it, finds the file."""

    def append() -> None:
        try:
            cache.append(account, token, table, after, last)
        except Exception:  # the rows are read: the cache is only speed
            log.warning("trade cache of %r not appended after a read", account, exc_info=True)

    with _reads_lock:
        _reads[(cache, token, account)] = _preparing().submit(append)


def _reads_appended(cache: TradeFileCache, token: str, account: str | None) -> None:
    """Wait for the reads' appends of ``account`` (of every account) still being written."""
    with _reads_lock:
        keys = [k for k in _reads if k[0] is cache and k[1] == token
                and (account is None or k[2] == account)]  # fmt: skip
        pending = [_reads.pop(key) for key in keys]
    for future in pending:
        future.result()


_reads_lock = threading.Lock()
_reads: dict[tuple[TradeFileCache, str, str], Future[None]] = {}  # the newest per account


def _good_prefix(session: Session, cache: TradeFileCache, hit: Any, mine: Any, ids: Any) -> Any:
    """The chain's files that hold every row of their range, up to the first that does not
    (None: not even the first); those that miss rows are deleted (rows are never removed: they
    will always miss them). A file holding more rows than its range has in this read's view
    holds rows committed after it began (SQLite's transaction): kept, not read."""
    bounds = [f.last for f in hit.files]
    counts = session.execute(
        select(*(func.count().filter(ids <= bound) for bound in bounds)).where(mine)
    ).one()
    good: list[Any] = []
    wrong = []
    before, intact = 0, True
    for file, upto in zip(hit.files, counts, strict=True):
        held, before = int(upto) - before, int(upto)  # the rows of its range, (after, last]
        if held > file.count:
            wrong.append(file)
        intact = intact and held == file.count
        if intact:
            good.append(file)
    cache.drop(wrong)
    return loaded(good) if good else None


# --- writes -----------------------------------------------------------------------------------


@dataclass
class _Batch:
    """A transaction's rows of one account, ``(before, last]``, to append once committed."""

    transaction: Any  # the innermost one it was inserted in
    root: Any  # the session's transaction whose commit stores it
    cache: TradeFileCache
    token: str
    account: str
    before: int
    last: int
    chunks: list[ChunkRows]
    rows: int
    # a large batch's file, written while its transaction commits: (temporary path, table)
    prepared: Future[tuple[Path | None, pa.Table]] | None = None

    def table(self) -> pa.Table:
        return pa.concat_tables([chunk.of(self.account) for chunk in self.chunks])

    def prepare(self) -> None:
        """Write the batch's file under a temporary name now, in a thread, while the
        transaction commits (a batch of FLUSH_ROWS rows is written at its commit anyway:
        a bulk import's 1,000,000 rows, ~0.6 s, then no longer after it); the commit
        renames it into place, a rollback deletes it."""

        def made() -> tuple[Path | None, pa.Table]:
            table = self.table()
            return self.cache.prepare(self.account, self.token, table, self.before,
                                      self.last), table  # fmt: skip

        self.prepared = _preparing().submit(made)

    def dropped(self) -> None:
        """Not to be appended (rolled back): its prepared file deleted once written."""
        if self.prepared is not None:
            self.prepared.add_done_callback(
                lambda done: None if done.exception() else discard(done.result()[0])
            )


@functools.cache
def _preparing() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="trade-cache")


class Writes:
    """What one insert of trades leaves to append: :meth:`chunks` wraps the columns the
    insert takes (held as they pass: converted when written, a large chunk at once),
    :meth:`stored` checks the rows' range once they are in and registers them for the
    commit. Nothing of it fails the insert: a value the cache cannot hold as the database
    does leaves the account's rows out."""

    def __init__(self, session: Session, whole: Future[Any] | None = None) -> None:
        self._session = session
        self._whole = whole  # the columns of every row the chunks hold (a bulk insert's)
        self._ahead: Any = None  # its file written while they are stored (_trade_cache_ahead)
        connection = session.connection()
        self._cache = _cache_for(connection.engine.url, os.environ.get("CANDLE_CACHE_DIR"))
        self._sqlite = connection.dialect.name == "sqlite"
        self._before: dict[str, int] = {}
        self._chunks: list[ChunkRows] = []
        self._broken: set[str] = set()

    def chunks(self, chunks: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        if self._cache is None:
            return chunks
        chunks = iter(chunks)
        first = next(chunks, None)
        if first is None:
            return iter(())
        if not self._sqlite:  # the newest rows before the insert (its ids are higher)
            from database.repositories.newest_trades import newest_rows

            self._before = newest_rows(self._session, set(first["account_id"]))
            if self._whole is not None and len(self._before) == 1:
                from database.repositories._trade_cache_ahead import FileAhead

                [(account, before)] = self._before.items()
                self._ahead = FileAhead(self._session, self._cache, account, before,
                                        self._whole, _preparing)  # fmt: skip
        return self._noted(itertools.chain([first], chunks))

    def _noted(self, chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for chunk in chunks:
            try:
                # a file written ahead: the chunks only for a batch it does not fit
                held = self._ahead is not None
                self._chunks.append(ChunkRows(chunk, self._sqlite, held=held))
            except _UNCACHEABLE as exc:
                self._broken.update(set(chunk["account_id"]))
                log.debug("trades not cached as written: %s", exc)
            yield chunk

    def _ours_alone(self, account: str, last: int, first: Any, rows: int) -> bool:
        """PostgreSQL: whether the account's rows after ``before`` up to ``last`` (its newest,
        ``first`` the first of them) are the batch's ``rows``: at once when they span as
        many ids (a bulk import's: counting 1,000,000 rows took ~0.2 s), else counted."""
        if first is not None and last - int(first) + 1 == rows:
            return True
        from database.repositories.trades import TRADES

        c = TRADES.c
        mine = (c.account_id == account) & (c.id > self._before[account])
        return self._session.scalar(select(func.count()).where(mine)) == rows

    def abandon(self) -> None:
        """The insert failed: a file written ahead is deleted."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.abandon()

    def stored(self) -> None:
        """After the insert, in its transaction: register each account's rows for the
        commit when they are all its rows in their range of ids."""
        try:
            self._register()
        finally:
            self.abandon()  # not taken

    def _register(self) -> None:
        if self._cache is None or not self._chunks:
            return
        sizes: dict[str, int] = {}
        for chunk in self._chunks:
            for account, count in chunk.counts.items():
                sizes[account] = sizes.get(account, 0) + count
        accounts = sorted(a for a in sizes if a not in self._broken
                          and (self._sqlite or a in self._before))  # fmt: skip
        if not accounts:
            return
        values: dict[str, Any] = {}
        for k, account in enumerate(accounts):
            values[f"a{k}"] = account
            values[f"n{k}"] = sizes[account] if self._sqlite else self._before[account]
        token, *found = self._session.execute(_range_sql(len(accounts), self._sqlite),
                                              values).one()  # fmt: skip
        if not token:
            return
        if not self._sqlite:
            jsonb_known(self._session, set().union(*(chunk.labels for chunk in self._chunks)))
        transaction, root = AtCommit.transactions(self._session)
        for k, account in enumerate(accounts):
            last, other = found[2 * k], found[2 * k + 1]
            if last is None:
                continue
            if self._sqlite:  # the row below the batch's (SQLite: the batch is the newest)
                before = int(other or 0)
            elif self._ours_alone(account, int(last), other, sizes[account]):
                before = self._before[account]
            else:
                continue
            mine = [chunk for chunk in self._chunks if account in chunk.counts]
            batch = _Batch(transaction, root, self._cache, token, account, before, int(last),
                           mine, sizes[account])  # fmt: skip
            if self._ahead is not None and self._ahead.account == account:
                ahead, self._ahead = self._ahead, None  # its file, if written for these rows
                batch.prepared = ahead.take(token, other, int(last), batch.rows)
            single = all(len(chunk.counts) == 1 for chunk in mine)
            if batch.prepared is None and batch.rows >= FLUSH_ROWS and single:
                batch.prepare()  # its chunks its own (converted by the thread alone)
            _AT_COMMIT.hold(self._session, batch)


@functools.lru_cache(maxsize=64)
def _cache_for(url: Any, _setting: str | None) -> TradeFileCache | None:
    """``trade_cache_for(url)`` for the cache setting ``_setting`` (made once: ~0.2 ms)."""
    return trade_cache_for(url)


@functools.lru_cache(maxsize=32)
def _range_sql(count: int, sqlite: bool) -> Any:
    """The database's token, then per account its newest row and: SQLite, the row below its
    ``n`` newest (the batch's); PostgreSQL, its first row after row ``n``."""
    parts = ["(SELECT token FROM database_identity LIMIT 1)"]
    for k in range(count):
        parts.append(f"(SELECT max(id) FROM trades WHERE account_id = :a{k})")
        if sqlite:
            parts.append(f"(SELECT id FROM trades WHERE account_id = :a{k} ORDER BY id DESC"
                         f" LIMIT 1 OFFSET :n{k})")  # fmt: skip
        else:
            parts.append(f"(SELECT min(id) FROM trades WHERE account_id = :a{k} AND id > :n{k})")
    return text("SELECT " + ", ".join(parts))


def _append(batch: _Batch) -> None:
    """A committed batch into the held rows (written as segments)."""
    try:
        _held.add(batch)
    except Exception:  # the rows are committed: the cache is only speed
        log.warning("trade cache of %r not appended after the commit", batch.account,
                    exc_info=True)  # fmt: skip


@dataclass
class _Held:
    """An account's committed rows ``(after, last]`` not written yet."""

    after: int
    last: int
    batches: list[_Batch] = field(default_factory=list)
    rows: int = 0


class _Registry:
    """This process's committed rows per (cache, database, account), written as segments."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[TradeFileCache, str, str], _Held] = {}
        self._rows = 0  # held in all

    def add(self, batch: _Batch) -> None:
        key = (batch.cache, batch.token, batch.account)
        with self._lock:
            if batch.prepared is not None:  # its own segment, after the rows held before it
                if key in self._held:
                    self._written(key)
                self._place(key, batch)
                return
            held = self._held.get(key)
            if held is not None and held.last != batch.before:  # not next to it: on its own
                self._written(key)
                held = None
            if held is None:
                held = self._held[key] = _Held(batch.before, batch.before)
            held.batches.append(batch)
            held.last = batch.last
            held.rows += batch.rows
            self._rows += batch.rows
            if held.rows >= FLUSH_ROWS:
                self._written(key)
            if self._rows > HELD_AT_MOST:
                for other in list(self._held):
                    self._written(other)

    def flush(self, cache: TradeFileCache, token: str, account: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._held if k[0] is cache and k[1] == token
                        and (account is None or k[2] == account)]:  # fmt: skip
                self._written(key)

    def flush_all(self) -> None:
        with self._lock:
            for key in list(self._held):
                self._written(key)

    def _written(self, key: tuple[TradeFileCache, str, str]) -> None:
        held = self._held.pop(key)
        self._rows -= held.rows
        self._write(key, held)

    @staticmethod
    def _place(key: tuple[TradeFileCache, str, str], batch: _Batch) -> None:
        cache, token, account = key
        assert batch.prepared is not None
        try:
            temporary, table = batch.prepared.result()
            if temporary is not None:
                cache.append(account, token, table, batch.before, batch.last, temporary)
        except OSError as exc:
            log.warning("trade cache of %r not appended: %s", account, exc)
        except _UNCACHEABLE as exc:  # a value it cannot hold as stored: left to the reads
            log.debug("trade cache of %r not appended: %s", account, exc)

    @staticmethod
    def _write(key: tuple[TradeFileCache, str, str], held: _Held) -> None:
        cache, token, account = key
        try:
            table = pa.concat_tables([batch.table() for batch in held.batches])
            if table.num_rows == held.rows:
                cache.append(account, token, table, held.after, held.last)
        except OSError as exc:
            log.warning("trade cache of %r not appended: %s", account, exc)
        except _UNCACHEABLE as exc:  # a value it cannot hold as stored: left to the reads
            log.debug("trade cache of %r not appended: %s", account, exc)


_held = _Registry()
atexit.register(_held.flush_all)
# the batches to append once their transaction commits (a rolled-back one's file deleted)
_AT_COMMIT = AtCommit("trade_cache_pending", _append, _Batch.dropped)


def flush(cache: TradeFileCache, token: str, account: str | None = None) -> None:
    """Write this process's committed rows of ``account`` (of every account) held in memory,
    after the rows its reads took from the database (being appended in a thread)."""
    _reads_appended(cache, token, account)
    _held.flush(cache, token, account)


__all__ = ["FLUSH_ROWS", "Writes", "flush", "read_through"]
