"""TradeTracker: the one way executed trades are recorded (docs/tracking.md).

>>> tracker = TradeTracker(sessions)
>>> tracker.record_many(records, skip_stored=True)    # an import: one transaction
Recorded(stored=[...], skipped=['ft:3:...'])
>>> tracker.record(record)                          # a stream: acknowledged once committed
>>> future = tracker.submit(record)                 # ... or without waiting: a Future

Each trade goes: validate -> market context and labels -> realised PnL (FIFO per account and
symbol, :class:`analytics.round_trips.PositionLedger`) and the account's cumulative PnL ->
stored (immutable) -> listeners (the live summary, pub/sub).

Per account the tracker keeps the state its new trades need: the open lots of each symbol, the
cumulative PnL, the ids already stored and each symbol's last execution time, read once from
the database and checked against the account's newest stored row before each batch (a trade
written by another process makes the tracker read the account again).

Rules: a trade id is unique within its account (repeated: DuplicateTradeError naming it, and
nothing of the batch is written; an import may skip ids already stored instead, when the
stored trade is the same one); trades of an account and symbol are recorded in time order (an
older one is refused naming both times: its PnL would change what is already stored).

Streaming (:meth:`submit`, :meth:`record`): one writer thread takes what is queued, up to
``max_batch`` trades, waiting at most ``window_s`` for more after the first (a group commit),
stores them in one transaction and then resolves each trade's Future (one group's outcome that
its trades' Futures share: tracking.acknowledgements). A bad trade fails only its own Future; a
failed transaction fails the batch's. A batch is stored while the next queued one is made
ready (tracking.group_commits).
"""

from __future__ import annotations

import logging
import operator
import queue
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from analytics.trade_batch import FillRoles
from database.errors import DuplicateTradeError
from database.gc_pause import collector_paused
from database.records import TradeRecord
from database.repositories.newest_trades import newest_rows
from database.repositories.trades import TRADES, TradeRepository
from tracking.acknowledgements import Acknowledgement, Pending
from tracking.batch_columns import positions, stored_columns
from tracking.group_commits import GroupCommits, Prepared, insert_prepared
from tracking.history import AccountHistory, apply_stored, records_of
from tracking.stored_walk import StoredWalk
from tracking.trade_records import checked_record, checked_records, refuse_repeated

log = logging.getLogger(__name__)


class OutOfOrderTradeError(ValueError):
    """A trade older than its account's last stored trade of the same symbol."""


class ConflictingTradeError(ValueError):
    """An import meets a stored trade with the same id but other values."""


# record_in's writer: (the records as stored, each account's newest stored row before them)
# -> each account's newest stored row after them
Writer = Callable[[list[TradeRecord], dict[str, int]], Mapping[str, int]]


class Annotator(Protocol):
    """Market context and labels of new trades, from data known at their execution
    (tracking.annotator.MarketAnnotator) of a batch of any accounts, given each one's role
    in its position (the tracker's FIFO pass: analytics.trade_batch.FillRoles, arrays in the
    records' order) and each account's history as it was before them; ``forget(account)``
    when the account's trades were rolled back or written by another process."""

    def annotate(
        self,
        session: Session,
        records: Sequence[TradeRecord],
        histories: Mapping[str, AccountHistory],
        roles: FillRoles,
    ) -> list[tuple[dict[str, Any], tuple[str, ...]]]: ...

    def forget(self, account: str) -> None: ...


@dataclass(frozen=True)
class Recorded:
    """A batch the listeners hear: trades this tracker stored (``foreign``: trades another
    process or tracker stored, read by this one), per account the rows it spans."""

    stored: list[TradeRecord]  # as stored: context, labels, pnl and cumulative pnl set
    skipped: list[str] = field(default_factory=list)  # ids already stored (an import's)
    trips: list[dict[str, Any]] = field(default_factory=list)  # round trips these closed
    # account -> (newest row before the batch, newest row after it): a listener that keeps
    # an account from a given row applies the batches that follow it on, in that order
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    foreign: bool = False
    # accounts read whole again (rows came in out of order): a listener's state of them that
    # does not end at the row given in ``rows`` is stale
    reset: tuple[str, ...] = ()


def _identity(symbol: str, side: str, price: float, volume: float, when: Any) -> tuple:
    """What makes two records with one id the same trade (AccountHistory.ids' values)."""
    return (symbol, side, float(price), float(volume), when.timestamp())


class TradeTracker(GroupCommits):
    """Records trades (see the module text). Thread-safe: one lock orders the batches."""

    def __init__(
        self,
        sessions: sessionmaker[Session] | None = None,
        *,
        annotator: Annotator | None = None,
        max_batch: int = 10_000,
        window_s: float = 0.002,
        listeners: Iterable[Callable[[Recorded], None]] = (),
    ) -> None:
        self._sessions = sessions
        self._annotator = annotator
        self._max_batch = max_batch
        self._window_s = window_s
        # (listener, hears foreign batches and resets): those given here hear every batch
        self._listeners = [(listener, True) for listener in listeners]
        self._accounts: dict[str, AccountHistory] = {}
        self._lock = threading.RLock()
        # the group commits to write, in order (None: stop); the one open takes new trades
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._open: Pending | None = None
        self._filling = threading.Lock()  # orders the trades submitted into the open one
        self._writer: threading.Thread | None = None
        self._closed = False

    # --- bulk -----------------------------------------------------------------------------

    def record_many(self, records: Iterable[TradeRecord], *, skip_stored: bool = False) -> Recorded:
        """Store ``records`` in one transaction (sorted by execution time), or nothing: a
        repeated id, an older trade or a failing write raises and stores nothing. With
        ``skip_stored`` an id already stored with the same values is skipped (importing a
        file twice stores nothing new); with other values it raises ConflictingTradeError."""
        batch = sorted(checked_records(records), key=lambda r: r.execution_time)
        sessions = self._own_sessions()
        with self._lock:
            try:
                with sessions.begin() as session:
                    outcome = self._record(session, batch, skip_stored)
            except BaseException:
                self._forget({r.account_id for r in batch})
                raise
        self._notify(outcome)
        return outcome

    def record_in(
        self,
        session: Session,
        records: Sequence[TradeRecord],
        *,
        skip_stored: bool = False,
        write: Writer | None = None,
    ) -> Recorded:
        """Record ``records`` (in the order given) in the caller's transaction, which the
        caller commits: the listeners hear the batch once it is committed; should it roll
        back, what the tracker knows of those accounts is dropped (read again when next used).

        ``write``: the caller stores them, with the rest of its transaction (the live
        runner's candle on PostgreSQL: one statement text, trading.store). The tracker reads
        no account's newest row for those it holds: ``write(stored, newest)`` gets the
        records as stored (maybe none) and each of their accounts' newest stored row as the
        tracker knows it, must refuse the whole write (raise) when one is not the newest
        stored, and returns each account's newest row after them."""
        batch = list(checked_records(records))
        accounts = {r.account_id for r in batch}
        with self._lock:
            try:
                outcome = self._record(session, batch, skip_stored, write=write)
            except BaseException:  # what it knows of them may have moved: read them again
                self._forget(accounts)
                raise
        rolled_back: list[bool] = []

        def on_rollback(*_: Any) -> None:
            rolled_back.append(True)
            self._forget(accounts)

        def on_commit(_session: Session) -> None:
            if not rolled_back:
                self._notify(outcome)

        event.listen(session, "after_soft_rollback", on_rollback, once=True)
        event.listen(session, "after_commit", on_commit, once=True)
        return outcome

    def catch_up(self, account: str) -> None:
        """Read what others (another process, another tracker) stored for ``account`` since
        this tracker last looked: only the rows after the newest it holds, which its
        foreign listeners hear as a foreign batch (the live view moves with them); the whole
        account when a row came in below that one meanwhile (a reset). Nothing for a tracker
        that records in its callers' transactions only (no sessions of its own)."""
        if self._sessions is None:
            return
        with self._lock, self._sessions() as session:
            newest = session.scalar(
                select(func.max(TRADES.c.id)).where(TRADES.c.account_id == account)
            )
            self._history(session, account, int(newest or 0), cached=True)

    def bar_closed(self, symbol: str, timeframe: str, candle: Any) -> None:
        """A bar of ``symbol`` closed and is stored (the live runner's candles): the
        annotator takes it now when it is the next its labels read, so that the batch of a
        fill after it does not read it (MarketAnnotator.closed)."""
        closed = getattr(self._annotator, "closed", None)
        if closed is not None:
            with self._lock:
                closed(symbol, timeframe, candle)

    def holds(self, account: str) -> bool:
        """Whether this tracker knows ``account`` (read, or adopted: :meth:`adopt`)."""
        return account in self._accounts

    def adopt(self, account: str, walk: StoredWalk, row: int) -> bool:
        """Know ``account`` from ``walk``, the one walk of its stored rows up to row ``row``
        (its whole fills frame, read by the caller: tracking.stored_walk), as a first read of
        the account (:meth:`catch_up`'s) would know it, unless this tracker knows it already
        (False). Its foreign listeners hear the reset."""
        with self._lock:
            if account in self._accounts:
                return False
            self._accounts[account] = walk.history(account, row)
            self._notify(Recorded([], rows={account: (row, row)}, reset=(account,)))
        return True

    def newest_row(self, account: str) -> int:
        """The newest stored row of ``account`` this tracker holds (0: none read yet)."""
        history = self._accounts.get(account)
        return 0 if history is None else history.newest_row

    def exclusive(self) -> threading.RLock:
        """The lock that orders the tracker's batches: held, no batch is made meanwhile (a
        reader that starts following an account from the database holds it)."""
        return self._lock

    def forget(self, accounts: Iterable[str]) -> None:
        """Drop what is known of ``accounts``: read again from the database when next used."""
        self._forget(set(accounts))

    def add_listener(
        self, listener: Callable[[Recorded], None], *, foreign: bool = False
    ) -> Callable[[], None]:
        """Call ``listener`` with each batch this tracker commits (after the commit, on the
        recording thread: it must be quick; one that raises is logged and never loses a
        trade); with ``foreign`` also the batches others stored that it reads, and its
        resets (a state kept from the batches). Returns the function that removes it."""
        with self._lock:
            self._listeners = [*self._listeners, (listener, foreign)]

        def remove() -> None:
            with self._lock:
                self._listeners = [f for f in self._listeners if f[0] is not listener]

        return remove

    # --- streaming ------------------------------------------------------------------------

    def submit(self, record: TradeRecord) -> Future[TradeRecord]:
        """Queue ``record``; the Future gives it as stored once its batch is committed."""
        if not isinstance(record, TradeRecord):
            raise TypeError(f"expected TradeRecord, got {type(record).__name__}")
        if self._closed:
            raise RuntimeError("the trade tracker is closed")
        with self._filling:
            pending = self._open
            if pending is None:
                pending = self._open = Pending()
                self._queue.put(pending)
            index = len(pending.records)
            pending.records.append(record)
            if index + 1 >= self._max_batch:  # full: the next trade opens another
                self._open = None
                pending.full.set()
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_loop, name="trade-tracker", daemon=True
                    )
                    self._writer.start()
        return Acknowledgement(pending, index)

    def record(self, record: TradeRecord, timeout: float | None = 30.0) -> TradeRecord:
        """Store one trade through the group commit; returns it as stored."""
        return self.submit(record).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Finish what is queued and stop the writer thread."""
        self._closed = True
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join(timeout)
            self._writer = None

    # --- the work -------------------------------------------------------------------------

    def _record(
        self,
        session: Session,
        batch: list[TradeRecord],
        skip_stored: bool,
        *,
        write: Writer | None = None,
    ) -> Recorded:
        """``write``: see :meth:`record_in`."""
        with collector_paused():
            prepared = self._prepare(session, batch, skip_stored, False, write)
            if write is not None:
                histories, stored = prepared.histories, prepared.stored
                after = write(stored, {r.account_id: histories[r.account_id].newest_row
                                       for r in stored})  # fmt: skip
            elif prepared.stored:
                after = insert_prepared(session, prepared)
            else:
                after = {}
            return self._stored(prepared, after)

    def _prepare(
        self,
        session: Session,
        batch: list[TradeRecord],
        skip_stored: bool,
        each: bool,
        write: Writer | None = None,
        held: Collection[str] = (),
    ) -> Prepared:
        """The batch made ready to store (refusals, pnl, context and labels, the records as
        stored, the rows): what the tracker knows of its accounts moves on with it. ``held``:
        accounts whose newest stored row is not read (a batch of them is being stored)."""
        if not each:
            refuse_repeated(batch)
        accounts = sorted(set(map(_ACCOUNT, batch)))
        if write is None:
            newest = newest_rows(session, [a for a in accounts if a not in held])
            newest.update({a: self._accounts[a].newest_row for a in accounts if a in held})
        else:  # the accounts held as they are (the writer refuses them if stale)
            known = self._accounts
            newest = {a: known[a].newest_row for a in accounts if a in known}
            if len(newest) < len(accounts):
                newest.update(newest_rows(session, [a for a in accounts if a not in known]))
        histories = {a: self._history(session, a, newest.get(a) or 0) for a in accounts}
        fresh: list[TradeRecord] = []
        results: list[Any] = []
        skipped: list[str] = []
        for record in batch:
            history = histories[record.account_id]
            last = history.last_time.get(record.symbol)
            new = record.trade_id not in history.ids
            if new and (last is None or record.execution_time >= last):
                fresh.append(record)  # the common case, without a call
                results.append(None)
                continue
            problem = self._refusal(record, history, skip_stored)
            if problem == "skip":
                skipped.append(record.trade_id)
                continue
            if problem is not None:
                if not each:
                    raise problem
                results.append(problem)
                continue
            fresh.append(record)
            results.append(None)
        pnl, trips, roles, groups, read = positions(fresh, histories)
        annotations = self._annotate(session, fresh, histories, roles)
        stored: list[TradeRecord] = []
        store = stored.append
        made_pnl = pnl.tolist()
        cumulatives: list[float] = []
        contexts: list[Any] = []
        labelled: list[tuple[str, ...]] = []
        # the sources' own contexts and labels (an import's, the paper broker's): merged
        given = any(map(_CONTEXT, fresh)) or any(map(_LABELS, fresh))
        for r, (context, labels), made in zip(fresh, annotations, made_pnl, strict=True):
            history = histories[r.account_id]
            if given:
                if r.market_context:  # the source's own context wins over the one read
                    context = {**context, **r.market_context}
                if r.labels:  # the source's labels first, each once
                    labels = tuple(dict.fromkeys((*r.labels, *labels)))
            cumulative = history.cumulative_pnl = history.cumulative_pnl + made
            cumulatives.append(cumulative)
            contexts.append(context)
            labelled.append(labels)
            # the record as stored (pnl and cumulative: floats, as tolist gives them)
            store(checked_record(
                r.trade_id, r.account_id, r.strategy_id, r.symbol, r.side, r.price, r.volume,
                r.execution_time, r.commission, context, labels, made, cumulative, r.run_id,
                r.source, r.order_id,
            ))  # fmt: skip
            history.ids[r.trade_id] = (r.symbol, r.side, r.price, r.volume, r.execution_time)
            history.tags[r.trade_id] = (labels, context.get("volatility_regime"),
                                        context.get("market_session"))  # fmt: skip
        for (account, symbol), last in groups.items():  # records are in time order per group
            histories[account].last_time[symbol] = fresh[last].execution_time
        for k in np.flatnonzero(roles.opened > 0).tolist():
            record = fresh[k]
            entries = histories[record.account_id].entries
            entries.setdefault(record.symbol, []).append(float(roles.opened[k]) * record.price)
        trips = [histories[t["account_id"]].trip(t) for t in trips]
        columns = None
        if write is None and stored:
            columns = stored_columns(fresh, read, made_pnl, cumulatives, contexts, labelled)
        return Prepared(histories, stored, results if each else None, skipped, trips, columns)

    def _stored(self, prepared: Prepared, after: Mapping[str, int]) -> Recorded:
        """``prepared`` as stored, each account's newest row now ``after``: the tracker's
        accounts moved on to those rows, and the batch the listeners hear."""
        histories, stored = prepared.histories, prepared.stored
        before = {a: history.newest_row for a, history in histories.items()}
        if stored:
            for account, row_id in after.items():
                histories[account].newest_row = row_id
            for account, count in Counter(map(_ACCOUNT, stored)).items():
                histories[account].rows += count
        rows = {
            a: (before[a], h.newest_row) for a, h in histories.items() if h.newest_row > before[a]
        }
        if prepared.results is not None:
            made = iter(stored)
            done = [r if r is not None else next(made) for r in prepared.results]
            return Recorded(done, prepared.skipped, prepared.trips, rows=rows)
        return Recorded(stored, prepared.skipped, prepared.trips, rows=rows)

    def _refusal(
        self, record: TradeRecord, history: AccountHistory, skip_stored: bool
    ) -> BaseException | str | None:
        known = history.ids.get(record.trade_id)
        if known is not None:
            r = record
            stored, given = _identity(*known), _identity(r.symbol, r.side, r.price, r.volume,
                                                         r.execution_time)  # fmt: skip
            if skip_stored and stored == given:
                return "skip"
            if skip_stored:
                return ConflictingTradeError(
                    f"trade {record.trade_id!r} of account {record.account_id!r} is stored with"
                    f" other values {stored} than {given}: nothing was written"
                )
            return DuplicateTradeError(
                [record.trade_id], where="already stored", account=record.account_id
            )
        last = history.last_time.get(record.symbol)
        if last is not None and record.execution_time < last:
            return OutOfOrderTradeError(
                f"trade {record.trade_id!r} of account {record.account_id!r} at"
                f" {record.execution_time.isoformat()} is older than the account's last"
                f" {record.symbol} trade at {last.isoformat()}: trades of an account and symbol"
                " are recorded in time order (its PnL would change trades already stored);"
                " nothing was written"
            )
        return None

    def _annotate(
        self,
        session: Session,
        fresh: list[TradeRecord],
        histories: dict[str, AccountHistory],
        roles: FillRoles,
    ) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        if self._annotator is None or not fresh:
            return [({}, ()) for _ in fresh]  # a dict each: the stored records' own
        return self._annotator.annotate(session, fresh, histories, roles)

    def _history(
        self, session: Session, account: str, newest: int, *, cached: bool = False
    ) -> AccountHistory:
        """What is known of ``account``, brought up to its newest stored row ``newest``:
        another process's rows since the newest it holds are read and applied (a foreign
        batch for the listeners); the whole account is read (a reset) the first time, and
        when a row came in below the newest it holds. ``cached``: ``session`` has written
        nothing (a reader's): the whole account is read through the columnar trade cache."""
        history = self._accounts.get(account)
        if history is not None and history.newest_row >= newest:
            return history  # nothing stored since (its own rows may not be committed yet)
        if history is not None:
            before = history.newest_row
            newer, total = TradeRepository(session).rows_after(account, before)
            if history.rows + len(newer) == total:
                trips = [history.trip(t) for t in apply_stored(history, newer)]
                forget = getattr(self._annotator, "forget", None)
                if forget is not None:
                    forget(account)  # its windows are made again from the history
                self._notify(
                    Recorded(records_of(newer), [], trips, foreign=True,
                             rows={account: (before, history.newest_row)})
                )  # fmt: skip
                return history
            self._forget({account})  # a row came in below the newest it held: read it whole
        history = AccountHistory(account)
        repository = TradeRepository(session)
        whole, row = None, None
        if cached:  # committed rows: the cache's file and the rows stored after it
            whole = repository.frame(account, cached=True)
            version = whole.attrs.get("stored_version")
            whole, row = (None, None) if version is None else (whole, int(version[2]))
        if whole is None:
            whole = repository.rows_after(account, 0)[0]
        apply_stored(history, whole, trips=False, newest_row=row)  # its past trips: not asked
        self._accounts[account] = history
        row = history.newest_row
        self._notify(Recorded([], rows={account: (row, row)}, reset=(account,)))
        return history

    def _own_sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            raise RuntimeError("this tracker records in its callers' transactions only")
        return self._sessions

    def _forget(self, accounts: set[str]) -> None:
        with self._lock:
            for account in accounts:
                self._accounts.pop(account, None)
                forget = getattr(self._annotator, "forget", None)
                if forget is not None:
                    forget(account)

    def _notify(self, outcome: Recorded) -> None:
        if not outcome.stored and not outcome.reset:
            return
        others = outcome.foreign or bool(outcome.reset)
        for listener, foreign in self._listeners:  # a snapshot: listeners added or removed
            if others and not foreign:
                continue
            try:
                listener(outcome)
            except Exception:  # a listener never loses a stored trade
                log.exception("a trade listener failed")


_ACCOUNT = operator.attrgetter("account_id")
_CONTEXT = operator.attrgetter("market_context")
_LABELS = operator.attrgetter("labels")


__all__ = [
    "AccountHistory",
    "Annotator",
    "ConflictingTradeError",
    "OutOfOrderTradeError",
    "Recorded",
    "TradeTracker",
]
