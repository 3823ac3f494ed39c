"""AlertCenter: turns events into stored, deduplicated alerts and hands them to the channels.

>>> center = AlertCenter(session_factory, channels=[WebhookChannel(url, secret)])  # doctest: +SKIP
>>> center.emit(AlertEvent(kind="order_rejected", message="order 17: insufficient cash",
...                        account="acc", deployment="dep", symbol="SP500"))  # doctest: +SKIP
[AlertRecord(id=1, ...)]
>>> center.close()  # doctest: +SKIP

``emit`` runs on the caller's thread (the runner, the broker) and costs one short transaction
when a rule fires (a look-up of the (rule, key)'s latest alert and an insert), nothing else
when none does: the rules are read from ``alert_rules`` and kept ``rules_ttl_s`` seconds, so
an edit on the alerts page reaches a running center within that time. Deliveries run on the
sender's threads (trading/alerts/delivery.py). ``emit`` never raises for a channel or a
database failure: it logs it and returns what it stored (possibly nothing).

Dedup: an event of the same (rule, key) within the rule's cooldown of the stored alert is not
stored again; the stored alert's ``suppressed`` count goes up instead. In one process the
check and the insert run under a lock; two processes emitting the very same (rule, key) at
the same instant may both store it (a duplicate, never a lost alert).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from config.settings import AlertSettings
from database.repositories.alerts import AlertRecord, AlertRepository, AlertRuleRecord
from trading.alerts.channels import Channel, channels_from_settings
from trading.alerts.delivery import WRITE_OPTIONS, DeliverySender, RetryPolicy
from trading.alerts.events import AlertEvent, MetricCrossings, rule_fires

log = logging.getLogger("stratlens.alerts")


class AlertCenter:
    """Stores alerts by the rules in the database and delivers them (see the module doc)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        channels: Sequence[Channel] = (),
        clock: Callable[[], float] = time.time,
        *,
        retry: RetryPolicy | None = None,
        rules_ttl_s: float = 5.0,
        close_timeout_s: float = 10.0,
    ) -> None:
        self._sessions = session_factory
        self._clock = clock
        self._rules_ttl = rules_ttl_s
        self._close_timeout = close_timeout_s
        self._sender = DeliverySender(session_factory, channels, retry or RetryPolicy(), clock)
        self._crossings = MetricCrossings()
        self._lock = threading.Lock()  # one dedup check-and-insert at a time in this process
        self._rules: list[AlertRuleRecord] = []
        self._rules_read_at: float | None = None
        self._listeners: list[Callable[[list[AlertRecord]], None]] = []

    @classmethod
    def from_settings(
        cls, session_factory: sessionmaker[Session], settings: AlertSettings, **kwargs: Any
    ) -> AlertCenter:
        """A center delivering to the webhook and the e-mail the settings configure."""
        return cls(session_factory, channels_from_settings(settings), **kwargs)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return self._sender.channel_names

    def emit(self, event: AlertEvent) -> list[AlertRecord]:
        """Store an alert for every enabled rule ``event`` trips (unless a duplicate within
        the cooldown) and queue its deliveries; returns the stored alerts."""
        try:
            firing = [rule for rule in self.rules() if rule_fires(rule, event, self._crossings)]
            if not firing:
                return []
            jobs = self._store(event, firing)
        except Exception:
            log.exception("alert %s (%s) could not be stored", event.kind, event.message)
            return []
        for alert, deliveries in jobs:
            self._sender.submit(alert, deliveries)
        stored = [alert for alert, _ in jobs]
        for listener in self._listeners if stored else ():  # a snapshot, as add_listener swaps
            try:
                listener(stored)
            except Exception:  # a listener (the live push) never loses an alert
                log.exception("an alert listener failed")
        return stored

    def add_listener(self, listener: Callable[[list[AlertRecord]], None]) -> Callable[[], None]:
        """Call ``listener`` with the alerts each ``emit`` stored (after the commit, on the
        emitting thread: it must be quick); returns the function that removes it."""
        self._listeners = [*self._listeners, listener]

        def remove() -> None:
            self._listeners = [f for f in self._listeners if f is not listener]

        return remove

    def rules(self) -> list[AlertRuleRecord]:
        """The rules as last read (re-read when older than ``rules_ttl_s``)."""
        now = time.monotonic()
        if self._rules_read_at is None or now - self._rules_read_at >= self._rules_ttl:
            try:
                self.reload_rules()
            except Exception:  # keep the last rules; the next emit tries again
                log.exception("alert rules could not be read")
                if self._rules_read_at is None:
                    raise
        return self._rules

    def reload_rules(self) -> None:
        with self._sessions() as session:
            self._rules = AlertRepository(session).rules(enabled_only=True)
        self._rules_read_at = time.monotonic()

    def wait_idle(self, timeout: float) -> bool:
        """True once every queued delivery is sent or failed (False after ``timeout`` s)."""
        return self._sender.wait_idle(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Stop the delivery threads after the pending deliveries (at most ``timeout`` s,
        default ``close_timeout_s``; what is left is recorded as failed)."""
        self._sender.close(self._close_timeout if timeout is None else timeout)

    def _store(self, event: AlertEvent, firing: list[AlertRuleRecord]) -> list[tuple]:
        at = datetime.fromtimestamp(self._clock(), UTC)
        key = event.dedup_key
        jobs = []
        with self._lock, self._sessions.begin() as session:
            session.connection(execution_options=WRITE_OPTIONS)
            repo = AlertRepository(session)
            for rule in firing:
                if rule.cooldown_s > 0:
                    since = at - timedelta(seconds=rule.cooldown_s)
                    recent = repo.latest_since(rule.id, key, since)
                    if recent is not None:
                        repo.count_duplicate(recent.id)
                        continue
                alert = repo.add(
                    rule,
                    event.severity,
                    key,
                    event.message,
                    at=at,
                    payload=_payload(rule, event),
                    account=event.account,
                    deployment=event.deployment,
                    symbol=event.symbol,
                    metric=event.metric,
                    value=event.value,
                )
                outside = [c for c in rule.channels if c in self._sender.channel_names]
                jobs.append((alert, repo.add_deliveries(alert.id, outside, at=at)))
        return jobs


def _payload(rule: AlertRuleRecord, event: AlertEvent) -> dict[str, Any]:
    """What is stored with the alert: the rule that fired and the event's details (made
    JSON-safe: a value JSON cannot hold is stored as its text)."""
    details = json.loads(json.dumps(event.details, default=str))
    return {"rule": rule.name, "threshold": rule.threshold, "direction": rule.direction, **details}
