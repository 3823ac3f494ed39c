"""Delivery of stored alerts to the outside channels, on background threads.

One thread per channel (a slow SMTP server never holds up the webhook), each with its queue.
A failed send is retried with exponential backoff (:class:`RetryPolicy`); every attempt is
recorded in ``alert_deliveries`` (attempts, status, last error), so a delivery that finally
fails is listed on the alerts page with its error. Nothing here raises into the code that
emitted the alert.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from database.repositories.alerts import AlertRecord, AlertRepository, DeliveryRecord
from database.session import LOCK_WAIT_OPTION
from trading.alerts.channels import Channel

log = logging.getLogger("stratlens.alerts")
CLOSED_ERROR = "not delivered: the alert center closed before the delivery succeeded"
# alert writes read before they write: on SQLite they take the write lock up front (a deferred
# transaction would fail at once if another writer committed in between), waiting 5 s at most
WRITE_OPTIONS = {"sqlite_begin": "IMMEDIATE", LOCK_WAIT_OPTION: 5000}


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` sends at most; the k-th retry waits ``first_delay_s * factor**(k-1)``
    seconds, at most ``max_delay_s``."""

    attempts: int = 5
    first_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy attempts={self.attempts!r} is invalid: expected >= 1")
        if self.first_delay_s < 0 or self.factor < 1 or self.max_delay_s < 0:
            raise ValueError(f"{self!r} is invalid: expected delays >= 0 and factor >= 1")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the second attempt)."""
        return min(self.max_delay_s, self.first_delay_s * self.factor ** (retry - 1))


_Job = tuple[AlertRecord, DeliveryRecord]


class DeliverySender:
    """Sends queued deliveries through their channel, retrying; ``close`` drains (bounded)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        channels: Sequence[Channel],
        retry: RetryPolicy,
        clock: Callable[[], float],
    ) -> None:
        self._sessions = sessions
        self._channels = {channel.name: channel for channel in channels}
        self._retry = retry
        self._clock = clock
        self._queues: dict[str, queue.Queue[_Job | None]] = {}
        self._threads: list[threading.Thread] = []
        self._abort = threading.Event()  # cuts backoff waits short once close() runs out of time
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        for name in self._channels:
            self._queues[name] = queue.Queue()
            thread = threading.Thread(
                target=self._work, args=(name,), name=f"alerts-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(self._channels)

    def submit(self, alert: AlertRecord, deliveries: Sequence[DeliveryRecord]) -> None:
        for delivery in deliveries:
            if self._closed:
                self._record(delivery, "failed", CLOSED_ERROR)
                continue
            with self._idle:
                self._pending += 1
            self._queues[delivery.channel].put((alert, delivery))

    def wait_idle(self, timeout: float) -> bool:
        """True once every submitted delivery is sent or failed, False after ``timeout`` s."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float) -> None:
        """No more deliveries; wait up to ``timeout`` s for the queued ones (their retries
        included), then cut the remaining retries short (recorded as failed)."""
        self._closed = True
        for q in self._queues.values():
            q.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            self._abort.set()
            for thread in self._threads:  # a send in flight ends within its own timeout
                thread.join(15.0)

    def _work(self, name: str) -> None:
        channel, jobs = self._channels[name], self._queues[name]
        while (job := jobs.get()) is not None:
            try:
                self._deliver(channel, *job)
            except Exception:  # a bug must not stop this channel's thread
                log.exception("alert delivery %s through %s crashed", job[1].id, name)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, channel: Channel, alert: AlertRecord, delivery: DeliveryRecord) -> None:
        for attempt in range(1, self._retry.attempts + 1):
            if attempt > 1 and self._abort.is_set():
                self._record(delivery, "failed", CLOSED_ERROR, count=False)
                return
            try:
                channel.send(alert)
            except Exception as exc:  # DeliveryError, or a channel's own bug: record either
                error = str(exc) or type(exc).__name__
                last = attempt == self._retry.attempts
                self._record(delivery, "failed" if last else "pending", error)
                if last:
                    log.warning("alert %s not delivered by %s: %s", alert.id, channel.name, error)
                    return
                self._abort.wait(self._retry.delay(attempt))
            else:
                self._record(delivery, "sent", None)
                return

    def _record(
        self, delivery: DeliveryRecord, status: str, error: str | None, *, count: bool = True
    ) -> None:
        at = datetime.fromtimestamp(self._clock(), UTC)
        try:
            with self._sessions.begin() as session:
                session.connection(execution_options=WRITE_OPTIONS)
                repo = AlertRepository(session)
                if count:
                    repo.record_attempt(delivery.id, status=status, error=error, at=at)
                else:
                    repo.close_delivery(delivery.id, status=status, error=error, at=at)
        except Exception:  # the database is down: the log keeps what it could not
            log.exception("could not record delivery %s as %s (%s)", delivery.id, status, error)
