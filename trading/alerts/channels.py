"""Where an alert goes besides the dashboard: a signed webhook and e-mail.

A channel's ``send(alert)`` delivers one alert or raises :class:`DeliveryError` with a
message worth recording; the delivery threads (trading/alerts/delivery.py) retry it.

Webhook: an HTTP POST of the alert as JSON (:func:`alert_payload`) with two headers,

    X-StratLens-Timestamp: 1764763200
    X-StratLens-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed by the secret>

A receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes, compares it
in constant time and refuses a timestamp older than a few minutes (a replayed request), as
:func:`verify_signature` does (docs/trading.md, "Alerts").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from typing import Any, Protocol

from config.settings import AlertSettings
from database.repositories.alerts import AlertRecord

SIGNATURE_HEADER = "X-StratLens-Signature"
TIMESTAMP_HEADER = "X-StratLens-Timestamp"
DEFAULT_TOLERANCE_S = 300  # a signed request older than this is refused as a replay


class DeliveryError(Exception):
    """A channel could not deliver an alert (the message is recorded with the delivery)."""


class Channel(Protocol):
    name: str  # one of database.alert_models.ALERT_CHANNELS, except "dashboard"

    def send(self, alert: AlertRecord) -> None: ...


def alert_payload(alert: AlertRecord) -> dict[str, Any]:
    """The alert as the webhook's JSON object (and the e-mail's details)."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "account": alert.account,
        "deployment": alert.deployment,
        "symbol": alert.symbol,
        "metric": alert.metric,
        "value": alert.value,
        "key": alert.dedup_key,
        "rule_id": alert.rule_id,
        "created_at": alert.created_at.isoformat(),
        "details": dict(alert.payload),
    }


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC of ``timestamp.body``."""
    signed = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a webhook receiver checks: the signature matches the raw body and the timestamp,
    and the timestamp is within ``tolerance_s`` of ``now`` (epoch seconds). Header names are
    matched whatever their case (HTTP's rule; urllib sends ``X-stratlens-signature``)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    expected = signature(secret, timestamp, body)
    return age <= tolerance_s and hmac.compare_digest(expected, given)


class WebhookChannel:
    """POSTs each alert as signed JSON to ``url``; a non-2xx answer or no answer is an error."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout_s
        self._clock = clock or time.time

    def send(self, alert: AlertRecord) -> None:
        body = json.dumps(alert_payload(alert), separators=(",", ":")).encode("utf-8")
        timestamp = str(int(self._clock()))
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "StratLens-alerts",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(self._secret, timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise DeliveryError(
                f"webhook {self.url} answered HTTP {exc.code} {exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"webhook {self.url} unreachable: {reason}") from None


class EmailChannel:
    """Sends each alert as a plain-text e-mail through an SMTP server (STARTTLS verified
    against the system's certificate authorities, or ``tls_context``'s)."""

    name = "email"

    def __init__(
        self,
        settings: AlertSettings,
        *,
        timeout_s: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if settings.smtp_host is None or not settings.email_to:
            raise ValueError("EmailChannel needs SMTP_HOST and ALERT_EMAIL_TO")
        self._settings = settings
        self._timeout = timeout_s
        self._tls = tls_context

    def message(self, alert: AlertRecord) -> EmailMessage:
        where = " ".join(p for p in (alert.symbol, alert.deployment) if p)
        message = EmailMessage()
        subject = f"[StratLens] {alert.severity.upper()} {alert.kind}" + (
            f" {where}" if where else ""
        )
        message["Subject"] = f"{subject}: {alert.message}"[:200]
        message["From"] = self._settings.smtp_from
        message["To"] = ", ".join(self._settings.email_to)
        lines = [alert.message, ""]
        lines += [f"{name}: {value}" for name, value in alert_payload(alert).items() if value]
        message.set_content("\n".join(lines) + "\n")
        return message

    def send(self, alert: AlertRecord) -> None:
        settings = self._settings
        assert settings.smtp_host is not None
        try:
            with smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=self._timeout
            ) as smtp:
                if settings.smtp_starttls:
                    smtp.starttls(context=self._tls or ssl.create_default_context())
                if settings.smtp_user is not None and settings.smtp_password is not None:
                    smtp.login(settings.smtp_user, settings.smtp_password)
                smtp.send_message(self.message(alert))
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"e-mail through {settings.smtp_host}:{settings.smtp_port} failed: {exc}"
            ) from None


def channels_from_settings(settings: AlertSettings) -> list[Channel]:
    """The outside channels the settings configure (none when nothing is set)."""
    channels: list[Channel] = []
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        channels.append(WebhookChannel(settings.webhook_url, settings.webhook_secret))
    if settings.smtp_host is not None and settings.email_to:
        channels.append(EmailChannel(settings))
    return channels
