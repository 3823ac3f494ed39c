"""Alerts: rules in the database, events from the runner and the broker, deduplicated stored
alerts, and their delivery to a signed webhook and e-mail (docs/trading.md, "Alerts").

>>> center = AlertCenter(session_factory, channels=[...], clock=time.time)  # doctest: +SKIP
>>> center.emit(AlertEvent(kind="halt", message="drawdown limit", account="acc"))  # doctest: +SKIP
>>> center.close()  # doctest: +SKIP
"""

from trading.alerts.center import AlertCenter
from trading.alerts.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Channel,
    DeliveryError,
    EmailChannel,
    WebhookChannel,
    alert_payload,
    channels_from_settings,
    signature,
    verify_signature,
)
from trading.alerts.delivery import RetryPolicy
from trading.alerts.events import AlertEvent, MetricCrossings, rule_fires

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertCenter",
    "AlertEvent",
    "Channel",
    "DeliveryError",
    "EmailChannel",
    "MetricCrossings",
    "RetryPolicy",
    "WebhookChannel",
    "alert_payload",
    "channels_from_settings",
    "rule_fires",
    "signature",
    "verify_signature",
]
