"""What the runner and the broker report (:class:`AlertEvent`) and which rules it trips.

An event is checked when it is built, so a caller's mistake (an unknown kind, a drawdown
without its value) raises at the call site, while a channel's failure never does (it happens
later, on the delivery threads). Which rules fire is decided here, without I/O:

- ``drawdown``: the event's value (the current drawdown, a fraction) is at or above the
  rule's threshold; the cooldown then keeps one alert per (rule, key) per cooldown.
- ``metric``: the value crosses the rule's threshold in the rule's direction; it fires once
  per crossing (:class:`MetricCrossings` remembers the side each (rule, key) was on) and again
  only after the value has come back.
- every other kind: each event fires its kind's enabled rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from database.alert_models import ALERT_KINDS, ALERT_SEVERITIES
from database.repositories.alerts import AlertRuleRecord


@dataclass(frozen=True)
class AlertEvent:
    """Something that may deserve an alert.

    >>> AlertEvent(kind="order_rejected", message="order 17: insufficient cash",
    ...            account="acc", deployment="dep", symbol="SP500").dedup_key
    'acc|dep|SP500'

    ``key`` groups duplicates (default: account|deployment|symbol, plus the metric for a
    metric event); ``details`` is stored with the alert and sent in its payload.
    """

    kind: str
    message: str
    severity: str = "warning"
    account: str | None = None
    deployment: str | None = None
    symbol: str | None = None
    value: float | None = None
    metric: str | None = None
    key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            allowed = ", ".join(ALERT_KINDS)
            raise ValueError(f"AlertEvent kind={self.kind!r} is invalid: expected one of {allowed}")
        if self.severity not in ALERT_SEVERITIES:
            raise ValueError(
                f"AlertEvent severity={self.severity!r} is invalid: expected one of "
                f"{', '.join(ALERT_SEVERITIES)}"
            )
        if not isinstance(self.message, str) or not self.message.strip():
            raise ValueError(f"AlertEvent message={self.message!r} is invalid: expected text")
        if self.value is not None and (
            isinstance(self.value, bool)
            or not isinstance(self.value, int | float)
            or not math.isfinite(self.value)
        ):
            raise ValueError(
                f"AlertEvent value={self.value!r} is invalid: expected a finite number"
            )
        if self.kind in ("drawdown", "metric") and self.value is None:
            raise ValueError(f"AlertEvent of kind {self.kind!r} needs its value")
        if self.kind == "metric" and not self.metric:
            raise ValueError("AlertEvent of kind 'metric' needs the metric's name (metric=...)")

    @property
    def dedup_key(self) -> str:
        if self.key:
            return self.key
        parts = [self.account or "-", self.deployment or "-", self.symbol or "-"]
        if self.kind == "metric":
            parts.append(str(self.metric))
        return "|".join(parts)


class MetricCrossings:
    """The side of its threshold each (metric rule, key) was last seen on: a metric rule
    fires when the value goes beyond the threshold from the other side (or on its first
    value, when that is already beyond), once per crossing. In memory: a restarted process
    fires again for a value still beyond, which the rule's cooldown then holds back."""

    def __init__(self) -> None:
        self._beyond: dict[tuple[int, str], bool] = {}
        self._lock = Lock()

    def crossed(self, rule: AlertRuleRecord, key: str, value: float) -> bool:
        assert rule.threshold is not None  # the schema requires it of metric rules
        if rule.direction == "above":
            beyond = value > rule.threshold
        else:
            beyond = value < rule.threshold
        with self._lock:
            before = self._beyond.get((rule.id, key), False)
            self._beyond[(rule.id, key)] = beyond
        return beyond and not before


def rule_fires(rule: AlertRuleRecord, event: AlertEvent, crossings: MetricCrossings) -> bool:
    """Whether an enabled ``rule`` of the event's kind raises an alert for ``event``."""
    if not rule.enabled or rule.kind != event.kind:
        return False
    if rule.kind == "drawdown":
        return rule.threshold is not None and float(event.value or 0.0) >= rule.threshold
    if rule.kind == "metric":
        if rule.metric != event.metric:
            return False
        return crossings.crossed(rule, event.dedup_key, float(event.value or 0.0))
    return True
