"""The outside channels against real local servers: the webhook's signed POST (a receiver on
port 0 verifies it), its retries with backoff, its failures recorded; e-mail through an
aiosmtpd server on port 0. SQLite only: the delivery bookkeeping is covered on both
databases by test_alert_center.py."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import ssl
import time
from email.policy import default as default_policy

import pytest

from config.settings import AlertSettings
from database.repositories.alerts import AlertRepository
from tests.trading.alert_servers import self_signed_certificate, smtp_server, webhook_receiver
from trading.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertCenter,
    AlertEvent,
    EmailChannel,
    RetryPolicy,
    WebhookChannel,
    channels_from_settings,
    signature,
    verify_signature,
)

SECRET = "s3cret-for-tests"
FAST_RETRY = RetryPolicy(attempts=4, first_delay_s=0.05, factor=2.0)
HALT = AlertEvent(kind="halt", message="drawdown limit hit", severity="critical",
                  account="acc", deployment="ema-sp500", symbol="SP500")  # fmt: skip


@pytest.fixture
def database_backend() -> str:
    return "sqlite"


def deliver(session_factory, channel, event=HALT, retry=FAST_RETRY):
    center = AlertCenter(session_factory, [channel], retry=retry)
    try:
        [alert] = center.emit(event)
        assert center.wait_idle(30)
    finally:
        center.close()
    with session_factory() as session:
        [row] = AlertRepository(session).deliveries(alert_id=alert.id)
    return alert, row


def test_the_webhook_posts_the_alert_as_json_signed_over_timestamp_and_body(session_factory):
    with webhook_receiver(SECRET, [200]) as receiver:
        alert, row = deliver(session_factory, WebhookChannel(receiver.url, SECRET))

    [request] = receiver.requests
    assert request.verified
    body = json.loads(request.body)
    assert (body["id"], body["kind"], body["severity"], body["symbol"]) == (
        alert.id, "halt", "critical", "SP500"
    )  # fmt: skip
    headers = {name.lower(): value for name, value in request.headers.items()}
    timestamp = headers[TIMESTAMP_HEADER.lower()]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    assert headers[SIGNATURE_HEADER.lower()] == "sha256=" + expected.hexdigest()
    assert headers["content-type"] == "application/json"
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)


def test_a_signature_fails_on_another_body_secret_or_an_old_timestamp():
    body, now = b'{"id":1}', time.time()
    stamp = str(int(now))
    headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(SECRET, stamp, body)}

    assert verify_signature(SECRET, headers, body, now=now)
    assert not verify_signature(SECRET, headers, b'{"id":2}', now=now)
    assert not verify_signature("other", headers, body, now=now)
    assert not verify_signature(SECRET, headers, body, now=now + 301)  # a replay
    old = str(int(now) - 1)  # the timestamp is signed too: changing it breaks the signature
    assert not verify_signature(SECRET, headers | {TIMESTAMP_HEADER: old}, body, now=now)
    assert not verify_signature(SECRET, {}, body, now=now)


def test_the_webhook_is_retried_with_backoff_until_it_is_accepted(session_factory):
    with webhook_receiver(SECRET, [500, 500, 200]) as receiver:
        _, row = deliver(session_factory, WebhookChannel(receiver.url, SECRET))

    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert [r.verified for r in receiver.requests] == [True, True, True]
    gaps = [b - a for a, b in zip(receiver.arrivals, receiver.arrivals[1:], strict=False)]
    assert gaps[0] >= 0.05  # the first retry waits 0.05 s
    assert gaps[1] >= 0.1  # the second twice that


def test_a_webhook_that_always_fails_is_recorded_failed_with_its_error(session_factory):
    with webhook_receiver(SECRET, [500]) as receiver:
        _, row = deliver(session_factory, WebhookChannel(receiver.url, SECRET))

    assert len(receiver.requests) == FAST_RETRY.attempts
    assert (row.status, row.attempts) == ("failed", FAST_RETRY.attempts)
    assert "HTTP 500" in row.last_error


def test_an_unreachable_webhook_is_recorded_failed(session_factory):
    with webhook_receiver(SECRET, [200]) as receiver:
        url = receiver.url  # the server is gone once the block ends: nothing listens there
    retry = RetryPolicy(attempts=2, first_delay_s=0.01)
    _, row = deliver(session_factory, WebhookChannel(url, SECRET, timeout_s=2), retry=retry)

    assert (row.status, row.attempts) == ("failed", 2)
    assert "unreachable" in row.last_error


def test_an_email_names_the_kind_and_the_symbol(session_factory):
    with smtp_server() as (port, inbox):
        settings = AlertSettings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="bot@stratlens.test",
            email_to=("desk@example.com",),
        )
        _, row = deliver(session_factory, EmailChannel(settings))

    assert (row.status, row.attempts) == ("sent", 1)
    [(sender, recipients, content)] = inbox.messages
    message = email.message_from_bytes(content, policy=default_policy)
    assert (sender, recipients) == ("bot@stratlens.test", ["desk@example.com"])
    assert message["Subject"].startswith("[StratLens] CRITICAL halt SP500")
    assert "drawdown limit hit" in message.get_content()


def test_an_email_goes_through_starttls_and_login(session_factory, tmp_path):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=True)

    with smtp_server(
        tls_context=server_tls, require_starttls=True, authenticator=authenticator
    ) as (port, inbox):
        settings = AlertSettings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            email_to=("desk@example.com",),
            smtp_user="bot",
            smtp_password="pw",
            smtp_starttls=True,
        )
        client_tls = ssl.create_default_context(cafile=str(cert))
        _, row = deliver(session_factory, EmailChannel(settings, tls_context=client_tls))

    assert (row.status, row.attempts) == ("sent", 1)
    assert logins == [(b"bot", b"pw")]
    assert len(inbox.messages) == 1


def test_an_email_server_that_is_down_is_recorded_failed(session_factory):
    with smtp_server() as (port, _):
        pass
    settings = AlertSettings(smtp_host="127.0.0.1", smtp_port=port, email_to=("d@example.com",))
    retry = RetryPolicy(attempts=2, first_delay_s=0.01)
    _, row = deliver(session_factory, EmailChannel(settings, timeout_s=2), retry=retry)

    assert (row.status, row.attempts) == ("failed", 2)
    assert f"127.0.0.1:{port}" in row.last_error


def test_the_settings_choose_the_channels():
    assert channels_from_settings(AlertSettings()) == []
    both = AlertSettings(webhook_url="http://h/x", webhook_secret="k", smtp_host="mail",
                         email_to=("a@b.c",))  # fmt: skip
    assert [c.name for c in channels_from_settings(both)] == ["webhook", "email"]
