"""The streamed trades' group commits (TradeTracker.submit), each stored while the next one
is made ready: a batch's database work (its insert and commit: SQLite's steps and
PostgreSQL's round trips run without the interpreter's lock) on a thread of its own while
the writer thread makes the next batch ready (validation, pnl, context and labels, rows).

One batch is in flight at a time, and the next is made ready only from a group already
queued (a quiet stream stores each as it comes). Order and acknowledgements are as without
it: the batches are stored one after another in the order queued, a trade's Future resolves
once its batch is committed, and the listeners hear the batches in that order, on the writer
thread (once the next batch's store has started: the database works while they do). The
writer holds the tracker's lock from the first batch it makes ready until none
is in flight: the tracker's other work (an import, a catch-up) waits for the batches queued,
:data:`RUN_GROUPS` at most.

What the next batch is made from is what the tracker knows of its accounts once the batch
in flight is stored: the newest stored row of the accounts in flight is not read while they
are written; the store checks, in its transaction, that each account's newest row is still
the one the tracker holds (another process stored rows of it meanwhile: the batch is made
again from the database, as a failed one). A batch whose store failed fails its trades, and
the one made ready after it is made again: both their accounts are read again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from database.gc_pause import collector_paused
from database.records import TradeRecord
from database.repositories.newest_trades import newest_rows
from database.repositories.trades import TradeRepository
from database.session import threads_connect_apart
from tracking.acknowledgements import Pending
from tracking.batch_columns import COPY_CHUNK_ROWS, in_chunks
from tracking.history import AccountHistory
from tracking.trade_records import unrepeated

if TYPE_CHECKING:
    from tracking.tracker import Recorded


@dataclass(frozen=True)
class Prepared:
    """A batch made ready to store (TradeTracker._prepare): its accounts as the tracker
    knows them with it, the records as stored, per trade its refusal or None (None
    instead of the list: a batch refusing none), the ids skipped, the round trips closed and
    the rows the trades table stores (None: the caller's writer stores them)."""

    histories: dict[str, AccountHistory]
    stored: list[TradeRecord]
    results: list[Any] | None
    skipped: list[str]
    trips: list[dict[str, Any]]
    columns: dict[str, Any] | None


def insert_prepared(session: Session, prepared: Prepared) -> dict[str, int]:
    """Insert ``prepared``'s rows in ``session``'s transaction: each account's newest row
    after them."""
    assert prepared.columns is not None
    copied = session.get_bind().dialect.name == "postgresql"  # see COPY_CHUNK_ROWS
    chunks = in_chunks(prepared.columns, COPY_CHUNK_ROWS if copied else len(prepared.stored))
    TradeRepository(session).add_columns(chunks)  # add_many's, without its pass
    return newest_rows(session, set(map(_ACCOUNT, prepared.stored)))


# groups stored one after another in one run at most: between runs the writer lets go of the
# tracker's lock (its other work waits no longer) and of the paused collector (the cyclic
# garbage of a sustained stream is collected)
RUN_GROUPS = 8


class _Moved(Exception):
    """Another writer stored rows of an account of the batch since it was made ready."""


@dataclass
class _Staged:
    """A queued group made ready: its accepted trades' places in it and what the tracker
    made of them (``error``: making it failed)."""

    pending: Pending
    outcomes: list[Any]
    places: list[int]
    accounts: set[str]
    prepared: Prepared | None = None
    error: BaseException | None = None
    stored: Future[Recorded] = field(default_factory=Future)

    def fail(self, exc: BaseException) -> None:
        """Each accepted trade's outcome: ``exc`` (the others' stay their refusal)."""
        for k in self.places:
            self.outcomes[k] = exc
        self.pending.finish(self.outcomes)


class GroupCommits:
    """The streaming half of tracking.tracker.TradeTracker (see the module text): what it
    uses of the tracker is its lock, queue, sessions and its ``_prepare``, ``_stored``,
    ``_forget`` and ``_notify``."""

    _lock: threading.RLock
    _queue: queue.SimpleQueue[Pending | None]
    _open: Pending | None
    _filling: threading.Lock
    _window_s: float
    _prepare: Callable[..., Prepared]
    _stored: Callable[[Prepared, Any], Recorded]
    _forget: Callable[[set[str]], None]
    _notify: Callable[[Recorded], None]
    _own_sessions: Callable[[], sessionmaker[Session]]

    def _write_loop(self) -> None:
        # a thread of its own stores the batches, unless each thread has its own database
        # (SQLite in memory: one connection per thread, or one shared by all)
        apart = threads_connect_apart(self._own_sessions().kw.get("bind"))
        storing = ThreadPoolExecutor(1, thread_name_prefix="trade-tracker-store") if apart else None
        try:
            while True:
                pending = self._queue.get()
                if pending is None:
                    return
                with self._lock, collector_paused():  # its records and the listeners' work
                    if self._stream(pending, storing):
                        return
        finally:
            if storing is not None:
                storing.shutdown()

    def _stream(self, pending: Pending, storing: ThreadPoolExecutor | None) -> bool:
        """Store ``pending`` and the groups queued after it, each made ready while the one
        before is stored, until none is queued or :data:`RUN_GROUPS` were (then the lock and
        the collector are let go before the next run); True when the tracker is closing."""
        flight: _Staged | None = None
        made = 0
        while True:
            self._gather(pending)
            staged = self._stage(pending, flight.accounts if flight is not None else set())
            landed = None if flight is None else self._landed(flight, storing)
            if flight is not None and landed is None:
                self._forget(staged.accounts)  # made from what the failed batch left
                staged = self._stage(pending, set())
            flight = self._start(staged, storing)
            if landed is not None:  # heard while the next one is stored
                self._notify(landed)
            made += 1
            queued: Pending | bool | None = False  # False: none taken
            if made < RUN_GROUPS:
                with contextlib.suppress(queue.Empty):
                    queued = self._queue.get_nowait()
            if not isinstance(queued, Pending):
                if flight is not None:
                    self._land(flight, storing)
                return queued is None
            pending = queued

    def _gather(self, pending: Pending) -> None:
        """More trades join ``pending`` until window_s after its first, or until it is full;
        then it takes no more."""
        left = pending.opened + self._window_s - time.perf_counter()
        if left > 0:
            pending.full.wait(left)
        with self._filling:
            if self._open is pending:
                self._open = None

    def _stage(self, pending: Pending, held: set[str]) -> _Staged:
        """``pending`` made ready (the tracker's batch), reading in a session of its own
        (nothing written there); ``held``: the accounts of the batch in flight."""
        batch = pending.records
        outcomes: list[Any] = [None] * len(batch)
        accepted, places = unrepeated(batch, outcomes)
        staged = _Staged(pending, outcomes, places, set(map(_ACCOUNT, accepted)))
        try:
            with self._own_sessions()() as session:
                staged.prepared = self._prepare(session, accepted, False, True, held=held)
        except BaseException as exc:  # the batch fails: so does every trade in it
            staged.error = exc
        return staged

    def _start(self, staged: _Staged, storing: ThreadPoolExecutor | None) -> _Staged | None:
        """Store ``staged``, on the storing thread when there is one; None when making it
        ready failed (its trades fail, its accounts are read again)."""
        if staged.error is not None:
            self._forget(staged.accounts)
            staged.fail(staged.error)
            return None
        if storing is None:
            self._store(staged)
        else:
            storing.submit(self._store, staged)
        return staged

    def _store(self, staged: _Staged) -> None:
        """Store the batch in one transaction, then resolve its trades' Futures (on the
        storing thread: acknowledged as soon as committed); the writer hears how it went
        through ``staged.stored`` (a _Moved batch: nothing stored, its Futures left to the
        batch made again)."""
        prepared = staged.prepared
        assert prepared is not None
        try:
            with self._own_sessions().begin() as session:
                after: dict[str, int] = {}
                if prepared.stored:
                    histories = prepared.histories
                    held = {a: histories[a].newest_row for a in set(map(_ACCOUNT, prepared.stored))}
                    if newest_rows(session, held) != held:
                        raise _Moved()
                    after = insert_prepared(session, prepared)
                recorded = self._stored(prepared, after)
            outcomes = staged.outcomes
            if len(staged.places) == len(outcomes):  # none repeated: the outcomes as they are
                outcomes = recorded.stored
            else:
                for k, result in zip(staged.places, recorded.stored, strict=True):
                    outcomes[k] = result
            staged.pending.finish(outcomes)
        except _Moved as exc:
            staged.stored.set_exception(exc)
            return
        except BaseException as exc:  # the transaction failed: so does every trade in it
            if staged.pending.outcomes is None:
                staged.fail(exc)
            staged.stored.set_exception(exc)
            return
        done = [r for r in outcomes if not isinstance(r, BaseException)]
        staged.stored.set_result(dataclasses.replace(recorded, stored=done, skipped=[]))

    def _land(self, staged: _Staged, storing: ThreadPoolExecutor | None) -> bool:
        """Wait for the batch in flight: the listeners hear it. False when it was not stored
        (its accounts read again; one that another writer moved is made and stored again)."""
        recorded = self._landed(staged, storing)
        if recorded is None:
            return False
        self._notify(recorded)
        return True

    def _landed(self, staged: _Staged, storing: ThreadPoolExecutor | None) -> Recorded | None:
        """:meth:`_land` but for the listeners: the batch stored, for them to hear (the
        caller starts the next batch's store first: the database works while they do);
        None when it was not (one made and stored again is heard here)."""
        try:
            return staged.stored.result()
        except _Moved:
            self._forget(staged.accounts)
            again = self._start(self._stage(staged.pending, set()), storing)
            if again is not None:
                self._land(again, storing)
            return None
        except BaseException:
            self._forget(staged.accounts)
            return None


_ACCOUNT = operator.attrgetter("account_id")

__all__ = ["GroupCommits", "Prepared", "insert_prepared"]
