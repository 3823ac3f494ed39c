"""Alerts' schema: rules, the alerts they raised, and each alert's deliveries (migration 0007).

Kept apart from :mod:`database.models` (which imports this module at its end, so one
``Base.metadata`` holds every table) because alerts are one aggregate of their own, written by
``trading.alerts.AlertCenter`` and read by the alerts page (docs/trading.md, "Alerts").

- ``alert_rules``: what raises an alert. One row per rule, named (``drawdown``, ``halt``, ...);
  a ``metric`` rule names its metric and the ``direction`` of the crossing. ``threshold`` is
  the drawdown fraction (0-1) or the metric's level; ``cooldown_s`` is how long an alert of the
  same (rule, dedup key) is only counted, not stored again; ``channels`` a JSON list among
  ``dashboard``, ``webhook``, ``email``. Migration 0007 seeds the defaults.
- ``alerts``: one row per stored alert. ``suppressed`` counts the duplicates the cooldown held
  back; ``acknowledged_at`` is set once from the alerts page.
- ``alert_deliveries``: one row per (alert, outside channel): ``pending`` until the background
  sender has ``sent`` it or given up (``failed``, with the attempts and the last error).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from database.models import FINITE_MAX, ID_TYPE, JSON_TYPE, Base, UTCDateTime, _finite, _in

ALERT_KINDS: tuple[str, ...] = (
    "drawdown",
    "halt",
    "deployment_error",
    "order_rejected",
    "fill",
    "feed_down",
    "feed_rewound",
    "metric",
)
ALERT_SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
ALERT_CHANNELS: tuple[str, ...] = ("dashboard", "webhook", "email")
METRIC_DIRECTIONS: tuple[str, ...] = ("above", "below")
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "sent", "failed")
MAX_COOLDOWN_S = 30 * 86_400  # a month: longer would hide a recurring problem for good


class AlertRule(Base):
    """What raises an alert, and how often and where it is sent."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        UniqueConstraint("name"),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind_valid"),
        CheckConstraint(f"threshold IS NULL OR ({_finite('threshold')})", name="threshold_finite"),
        CheckConstraint(
            "direction IS NULL OR " + _in("direction", METRIC_DIRECTIONS), name="direction_valid"
        ),
        CheckConstraint(
            "kind <> 'metric' OR (metric IS NOT NULL AND threshold IS NOT NULL "
            "AND direction IS NOT NULL)",
            name="metric_rule_complete",
        ),
        CheckConstraint(
            f"cooldown_s >= 0 AND cooldown_s <= {MAX_COOLDOWN_S}", name="cooldown_valid"
        ),
        Index(None, "kind"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str | None] = mapped_column(String(128))  # metric rules only
    threshold: Mapped[float | None] = mapped_column(Double)
    direction: Mapped[str | None] = mapped_column(String(8))  # metric rules: above | below
    cooldown_s: Mapped[int] = mapped_column(Integer)
    channels: Mapped[list[str]] = mapped_column(JSON_TYPE)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    """One stored alert; duplicates within its rule's cooldown only raise ``suppressed``."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind_valid"),
        CheckConstraint(_in("severity", ALERT_SEVERITIES), name="severity_valid"),
        CheckConstraint("suppressed >= 0", name="suppressed_valid"),
        CheckConstraint(f"value IS NULL OR ({_finite('value')})", name="value_finite"),
        # the dedup look-up: the newest alert of a (rule, key)
        Index(None, "rule_id", "dedup_key", "created_at"),
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("alert_rules.id"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(256))
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    account: Mapped[str | None] = mapped_column(String(128))
    deployment: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str | None] = mapped_column(String(64))
    metric: Mapped[str | None] = mapped_column(String(128))
    value: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)


class AlertDelivery(Base):
    """An alert's delivery through one outside channel (webhook, e-mail)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel"),
        CheckConstraint(_in("channel", ALERT_CHANNELS), name="channel_valid"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_valid"),
        CheckConstraint("attempts >= 0", name="attempts_valid"),
        Index(None, "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ID_TYPE, ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


__all__ = [
    "ALERT_CHANNELS",
    "ALERT_KINDS",
    "ALERT_SEVERITIES",
    "DELIVERY_STATUSES",
    "FINITE_MAX",
    "MAX_COOLDOWN_S",
    "METRIC_DIRECTIONS",
    "Alert",
    "AlertDelivery",
    "AlertRule",
]
