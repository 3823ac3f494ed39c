"""AlertCenter on a real database (SQLite and PostgreSQL): which events are stored, dedup
within a rule's cooldown (an injected clock), metric crossings, deliveries recorded, and
emit never raising for a failing channel."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from database.repositories.alerts import AlertRepository
from trading.alerts import AlertCenter, AlertEvent, DeliveryError, RetryPolicy

FAST_RETRY = RetryPolicy(attempts=3, first_delay_s=0.01, factor=2.0)


class Clock:
    def __init__(self, start: float = 1_764_763_200.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Recording:
    """An outside channel that keeps what it was sent, or fails every time."""

    def __init__(self, name: str = "webhook", *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.sent: list[int] = []

    def send(self, alert) -> None:
        if self.fail:
            raise DeliveryError("receiver down")
        self.sent.append(alert.id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def center(session_factory, clock):
    center = AlertCenter(session_factory, channels=[], clock=clock, retry=FAST_RETRY)
    yield center
    center.close()


def rejected(**changes) -> AlertEvent:
    fields = {"kind": "order_rejected", "message": "order 17: insufficient cash",
              "account": "acc", "deployment": "dep", "symbol": "SP500"}  # fmt: skip
    return AlertEvent(**(fields | changes))


def stored(session_factory):
    with session_factory() as session:
        return AlertRepository(session).history()


def test_an_event_of_a_seeded_rule_is_stored_with_its_fields(center, session_factory, clock):
    alerts = center.emit(rejected(details={"order": 17, "at": datetime(2026, 1, 2, tzinfo=UTC)}))

    assert len(alerts) == 1
    [alert] = stored(session_factory)
    assert alert.id == alerts[0].id
    assert (alert.kind, alert.severity, alert.symbol, alert.dedup_key) == (
        "order_rejected", "warning", "SP500", "acc|dep|SP500"
    )  # fmt: skip
    assert alert.created_at == datetime.fromtimestamp(clock.now, UTC)
    assert alert.payload["rule"] == "order_rejected"
    assert alert.payload["order"] == 17
    assert alert.payload["at"] == "2026-01-02 00:00:00+00:00"  # not JSON: stored as text


def test_a_duplicate_within_the_cooldown_is_counted_not_stored(center, session_factory, clock):
    first = center.emit(rejected())  # the seeded order_rejected rule: 60 s cooldown
    clock.now += 30
    assert center.emit(rejected()) == []
    assert center.emit(rejected()) == []
    clock.now += 20
    other_key = center.emit(rejected(symbol="NASDAQ"))

    [newest, oldest] = stored(session_factory)
    assert oldest.id == first[0].id
    assert oldest.suppressed == 2
    assert newest.id == other_key[0].id  # another key is not a duplicate
    assert newest.suppressed == 0

    clock.now += 41  # 91 s after the first: past its cooldown
    again = center.emit(rejected())
    assert len(again) == 1
    assert len(stored(session_factory)) == 3


def test_a_rule_without_cooldown_stores_every_event(center, session_factory):
    for n in range(3):
        center.emit(AlertEvent(kind="fill", message=f"fill {n}", severity="info", symbol="SP500"))

    assert [a.message for a in stored(session_factory)] == ["fill 2", "fill 1", "fill 0"]


def test_a_drawdown_fires_at_its_threshold_only(center, session_factory):
    assert center.emit(AlertEvent(kind="drawdown", message="dd 5%", value=0.05, account="a")) == []
    fired = center.emit(AlertEvent(kind="drawdown", message="dd 12%", value=0.12, account="a"))

    assert [a.value for a in fired] == [0.12]


def test_a_metric_fires_once_per_crossing(session_factory, clock):
    with session_factory.begin() as session:
        AlertRepository(session).add_rule(
            "sharpe_low", "metric", metric="sharpe", threshold=1.0, direction="below",
            cooldown_s=0, at=datetime.now(UTC),
        )  # fmt: skip
    center = AlertCenter(session_factory, clock=clock)
    try:
        values = [1.5, 0.9, 0.8, 0.7, 1.2, 1.0, 0.95, 0.5]
        fired = [
            v for v in values
            if center.emit(AlertEvent(kind="metric", metric="sharpe", value=v, message=f"{v}"))
        ]  # fmt: skip
        other = center.emit(AlertEvent(kind="metric", metric="sortino", value=0.1, message="x"))
    finally:
        center.close()

    assert fired == [0.9, 0.95]  # below 1.0 from above, twice; 1.0 itself is not below
    assert other == []  # no rule for that metric


def test_a_disabled_rule_fires_nothing_once_the_center_rereads_the_rules(session_factory, clock):
    center = AlertCenter(session_factory, clock=clock, rules_ttl_s=0.0)
    try:
        assert len(center.emit(rejected())) == 1
        with session_factory.begin() as session:
            repo = AlertRepository(session)
            repo.update_rule(
                repo.rule_named("order_rejected").id, enabled=False, at=datetime.now(UTC)
            )
        clock.now += 3600
        assert center.emit(rejected()) == []
    finally:
        center.close()


def test_deliveries_go_to_the_rules_configured_channels_and_are_recorded(session_factory, clock):
    webhook, email = Recording("webhook"), Recording("email")
    center = AlertCenter(session_factory, [webhook, email], clock=clock, retry=FAST_RETRY)
    try:
        [halt] = center.emit(AlertEvent(kind="halt", message="halted", severity="critical"))
        [rej] = center.emit(rejected())  # seeded: dashboard + webhook only
        assert center.wait_idle(10)
    finally:
        center.close()

    assert webhook.sent == [halt.id, rej.id]
    assert email.sent == [halt.id]
    with session_factory() as session:
        rows = AlertRepository(session).deliveries()
    assert sorted((r.alert_id, r.channel, r.status, r.attempts) for r in rows) == [
        (halt.id, "email", "sent", 1),
        (halt.id, "webhook", "sent", 1),
        (rej.id, "webhook", "sent", 1),
    ]


def test_a_failing_channel_never_raises_into_emit_and_is_recorded(session_factory, clock):
    center = AlertCenter(session_factory, [Recording(fail=True)], clock=clock, retry=FAST_RETRY)
    try:
        [alert] = center.emit(rejected())
        assert center.wait_idle(10)
    finally:
        center.close()

    with session_factory() as session:
        [row] = AlertRepository(session).deliveries(status="failed")
    assert (row.alert_id, row.attempts, row.last_error) == (alert.id, 3, "receiver down")
    assert row.alert_kind == "order_rejected"


def test_emit_returns_nothing_and_logs_when_the_database_fails(session_factory, clock, caplog):
    center = AlertCenter(session_factory, clock=clock)
    center.rules()  # read while the database answers
    session_factory.kw["bind"].dispose()
    session_factory.configure(bind=None)  # every new session now fails
    try:
        assert center.emit(rejected()) == []
    finally:
        center.close()
    assert "could not be stored" in caplog.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "margin_call"}, "kind='margin_call' is invalid"),
        ({"severity": "fatal"}, "severity='fatal' is invalid"),
        ({"kind": "drawdown"}, "needs its value"),
        ({"kind": "metric", "value": 1.0}, "needs the metric's name"),
        ({"kind": "drawdown", "value": float("nan")}, "value=nan is invalid"),
        ({"message": " "}, "message=' ' is invalid"),
    ],
)
def test_a_malformed_event_is_refused_where_it_is_built(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        AlertEvent(**({"kind": "halt", "message": "m"} | fields))


def test_close_cuts_retries_short_and_records_them_failed(session_factory, clock):
    slow = RetryPolicy(attempts=5, first_delay_s=30)
    center = AlertCenter(session_factory, [Recording(fail=True)], clock=clock, retry=slow)
    [alert] = center.emit(rejected())
    center.close(timeout=0.5)  # the first retry would wait 30 s

    with session_factory() as session:
        [row] = AlertRepository(session).deliveries(alert_id=alert.id)
    assert row.status == "failed"
    assert "closed" in (row.last_error or "")
    assert row.attempts == 1
