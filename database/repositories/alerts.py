"""AlertRepository: alert rules, stored alerts (deduplicated by their caller) and deliveries.

>>> with factory.begin() as session:  # doctest: +SKIP
...     repo = AlertRepository(session)
...     rule = repo.rule_named("order_rejected")
...     alert = repo.add(rule, "warning", "acc|dep|SP500", "order 17 rejected", at=now)
...     repo.add_deliveries(alert.id, ["webhook"], at=now)

Like every repository it never commits: ``trading.alerts.AlertCenter`` and the alerts page's
service own the transactions. :func:`check_rule_values` is the one validation of a rule's
editable values (the page, the center and this repository share it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session

from database.alert_models import (
    ALERT_CHANNELS,
    ALERT_KINDS,
    ALERT_SEVERITIES,
    DELIVERY_STATUSES,
    MAX_COOLDOWN_S,
    METRIC_DIRECTIONS,
    Alert,
    AlertDelivery,
    AlertRule,
)
from database.errors import RepositoryError
from database.records import check_choice, check_non_empty, check_number, utc_datetime

ALERTS: Table = Alert.__table__  # type: ignore[assignment]
ALERT_RULES: Table = AlertRule.__table__  # type: ignore[assignment]
ALERT_DELIVERIES: Table = AlertDelivery.__table__  # type: ignore[assignment]
_R = TypeVar("_R")


class AlertNotFoundError(RepositoryError, LookupError):
    """No alert, alert rule or delivery has the given id (or name)."""


@dataclass(frozen=True)
class AlertRuleRecord:
    id: int
    name: str
    kind: str
    metric: str | None
    threshold: float | None
    direction: str | None
    cooldown_s: int
    channels: tuple[str, ...]
    enabled: bool
    updated_at: datetime


@dataclass(frozen=True)
class AlertRecord:
    id: int
    rule_id: int
    kind: str
    severity: str
    dedup_key: str
    message: str
    created_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    account: str | None = None
    deployment: str | None = None
    symbol: str | None = None
    metric: str | None = None
    value: float | None = None
    acknowledged_at: datetime | None = None
    suppressed: int = 0


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    alert_id: int
    channel: str
    status: str
    attempts: int
    last_error: str | None
    updated_at: datetime
    # of the alert delivered, for the failures list
    alert_kind: str = ""
    alert_message: str = ""


def check_rule_values(
    kind: str, threshold: object, cooldown_s: object, direction: object = None
) -> tuple[float | None, int]:
    """A rule's ``threshold`` and ``cooldown_s`` as stored; ValueError naming the field, the
    value and what is expected otherwise. A drawdown threshold is a fraction in (0, 1); a
    metric's any finite number; other kinds take none. The cooldown is whole seconds."""
    check_choice("kind", kind, ALERT_KINDS)
    if kind == "metric":
        check_choice("direction", direction, METRIC_DIRECTIONS)
    number: float | None = None
    if kind in ("drawdown", "metric"):
        number = check_number("threshold", threshold)
        if kind == "drawdown" and not 0 < number < 1:
            raise ValueError(
                f"threshold={threshold!r} is invalid: expected a drawdown fraction between 0 "
                "and 1 (0.1 = 10%)"
            )
    elif threshold not in (None, ""):
        raise ValueError(f"threshold={threshold!r} is invalid: a {kind} rule takes no threshold")
    seconds = check_number("cooldown_s", cooldown_s)
    if seconds != int(seconds) or not 0 <= seconds <= MAX_COOLDOWN_S:
        raise ValueError(
            f"cooldown_s={cooldown_s!r} is invalid: expected whole seconds from 0 to "
            f"{MAX_COOLDOWN_S} (30 days)"
        )
    return number, int(seconds)


def _channels(channels: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(channels))
    for channel in chosen:
        check_choice("channels", channel, ALERT_CHANNELS)
    return chosen


class AlertRepository:
    """Alert rules, alerts and their deliveries over a Session the caller owns."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # -- rules
    def rules(self, *, enabled_only: bool = False) -> list[AlertRuleRecord]:
        """Every rule (or the enabled ones), by kind then name."""
        statement = select(AlertRule).order_by(AlertRule.kind, AlertRule.name)
        if enabled_only:
            statement = statement.where(AlertRule.enabled.is_(True))
        return [_rule_record(rule) for rule in self._session.scalars(statement)]

    def rule_named(self, name: str) -> AlertRuleRecord:
        rule = self._session.scalars(select(AlertRule).where(AlertRule.name == name)).first()
        if rule is None:
            raise AlertNotFoundError(f"no alert rule named {name!r}")
        return _rule_record(rule)

    def add_rule(
        self,
        name: str,
        kind: str,
        *,
        at: datetime,
        threshold: float | None = None,
        cooldown_s: int = 300,
        channels: Iterable[str] = ("dashboard",),
        metric: str | None = None,
        direction: str | None = None,
        enabled: bool = True,
    ) -> AlertRuleRecord:
        """A new rule, checked (a metric rule needs its metric, threshold and direction)."""
        check_non_empty("name", name)
        number, seconds = check_rule_values(kind, threshold, cooldown_s, direction)
        if kind == "metric":
            check_non_empty("metric", metric)
        elif metric is not None or direction is not None:
            raise ValueError(f"metric/direction are for metric rules, not a {kind} rule")
        rule = AlertRule(
            name=name,
            kind=kind,
            metric=metric,
            threshold=number,
            direction=direction,
            cooldown_s=seconds,
            channels=_channels(channels),
            enabled=enabled,
            updated_at=utc_datetime(at, "at"),
        )
        self._session.add(rule)
        self._session.flush()
        return _rule_record(rule)

    def update_rule(
        self,
        rule_id: int,
        *,
        at: datetime,
        threshold: object = ...,
        cooldown_s: object = ...,
        enabled: bool | None = None,
        channels: Iterable[str] | None = None,
    ) -> AlertRuleRecord:
        """Change a rule's threshold, cooldown, channels or enabled flag (``...``/None: keep
        it); the values are checked first, nothing changes on an error."""
        rule = self._session.get(AlertRule, rule_id)
        if rule is None:
            raise AlertNotFoundError(f"no alert rule with id {rule_id}")
        number, seconds = check_rule_values(
            rule.kind,
            rule.threshold if threshold is ... else threshold,
            rule.cooldown_s if cooldown_s is ... else cooldown_s,
            rule.direction,
        )
        chosen = None if channels is None else _channels(channels)
        rule.threshold, rule.cooldown_s = number, seconds
        if chosen is not None:
            rule.channels = chosen
        if enabled is not None:
            rule.enabled = bool(enabled)
        rule.updated_at = utc_datetime(at, "at")
        self._session.flush()
        return _rule_record(rule)

    # -- alerts
    def add(
        self,
        rule: AlertRuleRecord,
        severity: str,
        dedup_key: str,
        message: str,
        *,
        at: datetime,
        payload: Mapping[str, Any] | None = None,
        account: str | None = None,
        deployment: str | None = None,
        symbol: str | None = None,
        metric: str | None = None,
        value: float | None = None,
    ) -> AlertRecord:
        """Store one alert of ``rule`` (the caller has checked the cooldown)."""
        check_choice("severity", severity, ALERT_SEVERITIES)
        check_non_empty("dedup_key", dedup_key)
        alert = Alert(
            rule_id=rule.id,
            kind=rule.kind,
            severity=severity,
            dedup_key=dedup_key[:256],
            message=message,
            payload=dict(payload or {}),
            account=account,
            deployment=deployment,
            symbol=symbol,
            metric=metric,
            value=None if value is None else check_number("value", value),
            created_at=utc_datetime(at, "at"),
            suppressed=0,
        )
        self._session.add(alert)
        self._session.flush()
        return _alert_record(alert)

    def latest_since(self, rule_id: int, dedup_key: str, since: datetime) -> AlertRecord | None:
        """The newest alert of (rule, key) stored at or after ``since``: the one a duplicate
        within the cooldown is counted on."""
        statement = (
            select(Alert)
            .where(
                Alert.rule_id == rule_id,
                Alert.dedup_key == dedup_key[:256],
                Alert.created_at >= utc_datetime(since, "since"),
            )
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(1)
        )
        alert = self._session.scalars(statement).first()
        return None if alert is None else _alert_record(alert)

    def count_duplicate(self, alert_id: int) -> None:
        """One more duplicate held back by the cooldown (one UPDATE, safe under concurrency)."""
        self._session.execute(
            update(Alert).where(Alert.id == alert_id).values(suppressed=Alert.suppressed + 1)
        )

    def get(self, alert_id: int) -> AlertRecord | None:
        alert = self._session.get(Alert, alert_id, populate_existing=True)
        return None if alert is None else _alert_record(alert)

    def history(self, *, limit: int = 200, unacknowledged_only: bool = False) -> list[AlertRecord]:
        """The newest ``limit`` alerts, newest first."""
        statement = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if unacknowledged_only:
            statement = statement.where(Alert.acknowledged_at.is_(None))
        return [_alert_record(alert) for alert in self._session.scalars(statement)]

    def newer_than(self, alert_id: int, *, limit: int = 20) -> list[AlertRecord]:
        """The newest ``limit`` alerts stored after ``alert_id``, oldest first (the toasts'
        poll: one backward index range, so a burst of alerts never leaves the toasts behind)."""
        statement = select(Alert).where(Alert.id > alert_id).order_by(Alert.id.desc()).limit(limit)
        return [_alert_record(alert) for alert in self._session.scalars(statement)][::-1]

    def latest_id(self) -> int:
        """The id of the newest alert, 0 without any."""
        return int(self._session.scalar(select(func.max(Alert.id))) or 0)

    def acknowledge(self, alert_id: int, *, at: datetime) -> AlertRecord:
        """Mark an alert acknowledged (the first acknowledgement's time is kept)."""
        alert = self._session.get(Alert, alert_id)
        if alert is None:
            raise AlertNotFoundError(f"no alert with id {alert_id}")
        if alert.acknowledged_at is None:
            alert.acknowledged_at = utc_datetime(at, "at")
            self._session.flush()
        return _alert_record(alert)

    # -- deliveries
    def add_deliveries(
        self, alert_id: int, channels: Iterable[str], *, at: datetime
    ) -> list[DeliveryRecord]:
        """One ``pending`` delivery per channel of the alert."""
        stamp = utc_datetime(at, "at")
        rows = [
            AlertDelivery(
                alert_id=alert_id, channel=c, status="pending", attempts=0, updated_at=stamp
            )
            for c in _channels(channels)
        ]
        self._session.add_all(rows)
        self._session.flush()
        return [_delivery_record(row) for row in rows]

    def record_attempt(
        self, delivery_id: int, *, status: str, error: str | None, at: datetime
    ) -> DeliveryRecord:
        """One more attempt of a delivery, its new status and its error (None once sent)."""
        return self.close_delivery(delivery_id, status=status, error=error, at=at, attempted=1)

    def close_delivery(
        self, delivery_id: int, *, status: str, error: str | None, at: datetime, attempted: int = 0
    ) -> DeliveryRecord:
        """Set a delivery's status and error after ``attempted`` more attempts (0: given up
        without trying again, e.g. on shutdown)."""
        check_choice("status", status, DELIVERY_STATUSES)
        row = self._session.get(AlertDelivery, delivery_id)
        if row is None:
            raise AlertNotFoundError(f"no alert delivery with id {delivery_id}")
        row.attempts += attempted
        row.status = status
        row.last_error = None if error is None else error[:2000]
        row.updated_at = utc_datetime(at, "at")
        self._session.flush()
        return _delivery_record(row)

    def deliveries(
        self, *, status: str | None = None, alert_id: int | None = None, limit: int = 200
    ) -> list[DeliveryRecord]:
        """Deliveries with their alert's kind and message, the most recently updated first."""
        statement = (
            select(AlertDelivery, Alert.kind, Alert.message)
            .join(Alert, Alert.id == AlertDelivery.alert_id)
            .order_by(AlertDelivery.updated_at.desc(), AlertDelivery.id.desc())
            .limit(limit)
        )
        if status is not None:
            check_choice("status", status, DELIVERY_STATUSES)
            statement = statement.where(AlertDelivery.status == status)
        if alert_id is not None:
            statement = statement.where(AlertDelivery.alert_id == alert_id)
        return [
            _delivery_record(row, kind, message)
            for row, kind, message in self._session.execute(statement)
        ]


def _from_row(record: type[_R], row: object, **values: Any) -> _R:
    """``record`` of the row's columns of the same names; ``values`` given instead."""
    names = [f.name for f in fields(record)]  # type: ignore[arg-type]
    columns = {n: getattr(row, n) for n in names if n not in values and hasattr(row, n)}
    return record(**columns, **values)


def _rule_record(rule: AlertRule) -> AlertRuleRecord:
    return _from_row(
        AlertRuleRecord, rule, channels=tuple(rule.channels or ()), enabled=bool(rule.enabled)
    )


def _alert_record(alert: Alert) -> AlertRecord:
    return _from_row(AlertRecord, alert, payload=dict(alert.payload or {}))


def _delivery_record(row: AlertDelivery, kind: str = "", message: str = "") -> DeliveryRecord:
    return _from_row(DeliveryRecord, row, alert_kind=kind, alert_message=message)
