"""The streamed trades' acknowledgements (tracking.tracker.TradeTracker.submit): one
:class:`Pending` group per group commit, which every trade of it shares (its records, one
Event, each trade's outcome), and per trade an :class:`Acknowledgement`, a Future of its own.

A plain Future makes a Condition (a lock, a deque, bound methods) and lists per trade: about
eleven objects the garbage collector walks again and again while a client holds them (at
tens of thousands of trades a second, a fifth of the writer's time), plus the cost of making
and resolving each. An Acknowledgement is one object: its ``result``, ``exception`` and
``done`` read the group's outcome; whatever else reads a Future's inner state (waiting on
several: ``concurrent.futures.wait``, ``add_done_callback``, ``repr``) makes that state first,
as a Future of its own resolved with the group.

A streamed trade cannot be withdrawn: ``cancel`` returns False (it is queued to be stored).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from database.records import TradeRecord

log = logging.getLogger(__name__)

# a Future's inner state (concurrent.futures._base.Future.__init__): made when first read
_FUTURE_STATE = frozenset(
    ("_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks")
)


class Pending:
    """The trades of one group commit, in the order submitted; ``outcomes`` once written
    (per trade, in that order: the record as stored, or the exception refusing it)."""

    __slots__ = ("_lock", "_watched", "_written", "full", "opened", "outcomes", "records")

    def __init__(self) -> None:
        self.records: list[TradeRecord] = []
        self.opened = time.perf_counter()  # its first trade's arrival: the window's start
        self.full = threading.Event()  # set when it holds the tracker's max_batch trades
        self.outcomes: list[Any] | None = None
        self._written = threading.Event()
        self._lock = threading.Lock()
        self._watched: list[Acknowledgement] = []  # those made into a whole Future meanwhile

    def finish(self, outcomes: list[Any]) -> None:
        """Each trade's outcome (see the class text): its acknowledgement is resolved."""
        with self._lock:
            self.outcomes = outcomes
            watched, self._watched = self._watched, []
        self._written.set()
        for ack in watched:
            try:
                _resolve(ack, outcomes[ack._index])
            except Exception:  # set by its holder meanwhile: the others are still resolved
                log.exception("a streamed trade's future could not be resolved")

    def wait(self, timeout: float | None) -> list[Any]:
        if not self._written.wait(timeout):
            raise TimeoutError()
        assert self.outcomes is not None
        return self.outcomes


class Acknowledgement(Future):
    """One streamed trade's Future (see the module text): given the trade as stored, or
    raising the error that refused it, once its group commit is done."""

    _made = False  # its Future state made (see _make)

    def __init__(self, pending: Pending, index: int) -> None:  # Future's state: see _make
        self._pending = pending
        self._index = index

    def __getattr__(self, name: str) -> Any:
        if name not in _FUTURE_STATE or self._made:
            raise AttributeError(name)
        self._make()
        return object.__getattribute__(self, name)

    def _make(self) -> None:
        """Make the Future's own state: resolved now if the group is written, else when it
        is (Pending.finish)."""
        pending = self._pending
        with pending._lock:
            if self._made:
                return
            Future.__init__(self)
            self._made = True
            outcomes = pending.outcomes
            if outcomes is None:
                pending._watched.append(self)
                return
        _resolve(self, outcomes[self._index])

    def _outcome(self, timeout: float | None) -> Any:
        return self._pending.wait(timeout)[self._index]

    def result(self, timeout: float | None = None) -> TradeRecord:
        if self._made:
            return Future.result(self, timeout)
        outcome = self._outcome(timeout)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._made:
            return Future.exception(self, timeout)
        outcome = self._outcome(timeout)
        return outcome if isinstance(outcome, BaseException) else None

    def done(self) -> bool:
        return Future.done(self) if self._made else self._pending.outcomes is not None

    def running(self) -> bool:
        return Future.running(self) if self._made else False

    def cancelled(self) -> bool:
        return Future.cancelled(self) if self._made else False

    def cancel(self) -> bool:
        """False: a queued trade is stored (or refused) with its group commit."""
        return False


def _resolve(ack: Acknowledgement, outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        Future.set_exception(ack, outcome)
    else:
        Future.set_result(ack, outcome)


__all__ = ["Acknowledgement", "Pending"]
