"""What the alerts page and the toasts ask of the alerts: history, acknowledgement, rule edits,
delivery failures, and the cheap "anything newer than the last id I saw?" of every open page.

>>> service = AlertService(sessions)  # doctest: +SKIP
>>> service.newer_than(last_seen)  # one index range scan on alerts.id  # doctest: +SKIP
>>> service.update_rule(rule_id, threshold="0.15", cooldown_s="600")  # doctest: +SKIP

The trading runner raises its events (trading.alerts.AlertEvent) straight to the app's
AlertCenter (``notify=alert_center.emit``). A rule edit is checked by the repository's
``check_rule_values`` before anything is written: a bad value raises ValueError naming the
field and what is expected, and nothing changes. Running alert centers pick the edit up
within their ``rules_ttl_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from database.repositories.alerts import (
    AlertRecord,
    AlertRepository,
    AlertRuleRecord,
    DeliveryRecord,
)


class AlertService:
    """Reads and the page's few writes over the alerts' tables."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._monotonic = monotonic
        self._newest: tuple[float, int] | None = None  # (monotonic time read, newest id)
        self._newest_lock = threading.Lock()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def history(self, limit: int = 200) -> list[AlertRecord]:
        with self._sessions() as session:
            return AlertRepository(session).history(limit=limit)

    def newer_than(self, alert_id: int, limit: int = 5) -> list[AlertRecord]:
        """The newest ``limit`` alerts stored after ``alert_id``, oldest first."""
        with self._sessions() as session:
            return AlertRepository(session).newer_than(alert_id, limit=limit)

    def latest_id(self) -> int:
        with self._sessions() as session:
            return AlertRepository(session).latest_id()

    NEWEST_TTL_S = 1.0

    def newest_id(self) -> int:
        """The newest alert's id, read at most ``NEWEST_TTL_S`` ago: every open page's toast
        poll asks it every 2 s, one query a second answers them all (an alert stored by
        another process, the external runner, shows within the poll interval plus this)."""
        now = self._monotonic()
        with self._newest_lock:
            if self._newest is not None and now - self._newest[0] < self.NEWEST_TTL_S:
                return self._newest[1]
        newest = self.latest_id()
        with self._newest_lock:
            self._newest = (now, newest)
        return newest

    def acknowledge(self, alert_id: int) -> AlertRecord:
        with self._sessions.begin() as session:
            return AlertRepository(session).acknowledge(alert_id, at=self._now())

    def rules(self) -> list[AlertRuleRecord]:
        with self._sessions() as session:
            return AlertRepository(session).rules()

    def update_rule(
        self,
        rule_id: int,
        *,
        threshold: object = ...,
        cooldown_s: object = ...,
        enabled: bool | None = None,
    ) -> AlertRuleRecord:
        """Change a rule (``...``/None keeps a value); ValueError on a bad value, nothing
        written then."""
        with self._sessions.begin() as session:
            return AlertRepository(session).update_rule(
                rule_id, threshold=threshold, cooldown_s=cooldown_s, enabled=enabled, at=self._now()
            )

    def failed_deliveries(self, limit: int = 50) -> list[DeliveryRecord]:
        with self._sessions() as session:
            return AlertRepository(session).deliveries(status="failed", limit=limit)
