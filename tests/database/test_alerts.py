"""AlertRepository on SQLite and PostgreSQL: the seeded rules, rule edits checked before
anything changes, alerts stored, found for dedup, counted, listed and acknowledged, and their
deliveries' bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from database.repositories.alerts import AlertNotFoundError, AlertRepository, check_rule_values

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_a_fresh_database_has_the_default_rules(session):
    rules = {rule.name: rule for rule in AlertRepository(session).rules()}

    assert set(rules) == {"drawdown", "halt", "deployment_error", "order_rejected", "fill",
                          "feed_down", "feed_rewound"}  # fmt: skip
    assert rules["drawdown"].threshold == 0.10
    assert rules["order_rejected"].channels == ("dashboard", "webhook")
    assert all(rule.enabled for rule in rules.values())


def test_alerts_are_found_within_a_cooldown_counted_and_listed(session_factory):
    with session_factory.begin() as session:
        repo = AlertRepository(session)
        rule = repo.rule_named("order_rejected")
        first = repo.add(rule, "warning", "acc|dep|SP500", "one", at=T0, symbol="SP500",
                         payload={"order": 1})  # fmt: skip
        second = repo.add(rule, "critical", "other", "two", at=T0 + timedelta(seconds=5))
        repo.count_duplicate(first.id)
        repo.count_duplicate(first.id)

    with session_factory() as session:
        repo = AlertRepository(session)
        found = repo.latest_since(rule.id, "acc|dep|SP500", T0 - timedelta(seconds=60))
        assert found is not None
        assert (found.id, found.suppressed, found.payload) == (first.id, 2, {"order": 1})
        assert repo.latest_since(rule.id, "acc|dep|SP500", T0 + timedelta(seconds=1)) is None
        assert [a.id for a in repo.history()] == [second.id, first.id]
        assert [a.id for a in repo.newer_than(first.id)] == [second.id]
        assert repo.newer_than(second.id) == []
        assert repo.latest_id() == second.id


def test_an_acknowledgement_keeps_its_first_time(session_factory):
    with session_factory.begin() as session:
        repo = AlertRepository(session)
        alert = repo.add(repo.rule_named("halt"), "critical", "acc", "halted", at=T0)
        repo.acknowledge(alert.id, at=T0 + timedelta(minutes=1))
        again = repo.acknowledge(alert.id, at=T0 + timedelta(minutes=2))
        assert again.acknowledged_at == T0 + timedelta(minutes=1)
        assert repo.history(unacknowledged_only=True) == []
        with pytest.raises(AlertNotFoundError, match="no alert with id 999"):
            repo.acknowledge(999, at=T0)


def test_deliveries_record_each_attempt(session_factory):
    with session_factory.begin() as session:
        repo = AlertRepository(session)
        alert = repo.add(repo.rule_named("halt"), "critical", "acc", "halted", at=T0)
        [hook, mail] = repo.add_deliveries(alert.id, ["webhook", "email"], at=T0)
        repo.record_attempt(hook.id, status="pending", error="HTTP 500", at=T0)
        repo.record_attempt(hook.id, status="failed", error="HTTP 502", at=T0)
        repo.record_attempt(mail.id, status="sent", error=None, at=T0)

    with session_factory() as session:
        repo = AlertRepository(session)
        [failed] = repo.deliveries(status="failed")
        assert (failed.channel, failed.attempts, failed.last_error) == ("webhook", 2, "HTTP 502")
        assert (failed.alert_kind, failed.alert_message) == ("halt", "halted")
        assert {d.status for d in repo.deliveries(alert_id=alert.id)} == {"failed", "sent"}


def test_a_rule_edit_is_checked_before_anything_changes(session_factory):
    with session_factory.begin() as session:
        repo = AlertRepository(session)
        drawdown = repo.rule_named("drawdown")
        with pytest.raises(ValueError, match="threshold='ten' is invalid: expected a number"):
            repo.update_rule(drawdown.id, threshold="ten", cooldown_s=5, at=T0)
        with pytest.raises(ValueError, match=r"threshold=1\.5 is invalid: expected a drawdown"):
            repo.update_rule(drawdown.id, threshold=1.5, at=T0)
        with pytest.raises(ValueError, match="cooldown_s=-1 is invalid"):
            repo.update_rule(drawdown.id, cooldown_s=-1, at=T0)
        with pytest.raises(ValueError, match="channels='sms'"):
            repo.update_rule(drawdown.id, channels=["sms"], at=T0)
        assert repo.rule_named("drawdown") == drawdown
        changed = repo.update_rule(drawdown.id, threshold="0.2", cooldown_s=60.0, at=T0)
        assert (changed.threshold, changed.cooldown_s) == (0.2, 60)

    with session_factory() as session:
        assert AlertRepository(session).rule_named("drawdown").threshold == 0.2


def test_a_metric_rule_needs_its_metric_and_direction(session):
    repo = AlertRepository(session)
    with pytest.raises(ValueError, match="direction=None is invalid"):
        repo.add_rule("sharpe", "metric", metric="sharpe", threshold=1.0, at=T0)
    with pytest.raises(ValueError, match="metric=None is invalid"):
        repo.add_rule("sharpe", "metric", direction="below", threshold=1.0, at=T0)
    rule = repo.add_rule("sharpe", "metric", metric="sharpe", direction="below", threshold=-2,
                         at=T0, channels=["dashboard", "email"])  # fmt: skip
    assert (rule.metric, rule.threshold, rule.channels) == ("sharpe", -2.0, ("dashboard", "email"))


@pytest.mark.parametrize(
    ("kind", "threshold", "cooldown", "message"),
    [
        ("halt", 0.5, 60, "a halt rule takes no threshold"),
        ("drawdown", 0, 60, "between 0 and 1"),
        ("drawdown", "nan", 60, "expected a finite number"),
        ("drawdown", 0.1, 1.5, "whole seconds"),
        ("drawdown", 0.1, 31 * 86_400, "from 0 to 2592000"),
    ],
)
def test_rule_values_are_checked(kind, threshold, cooldown, message):
    with pytest.raises(ValueError, match=message):
        check_rule_values(kind, threshold, cooldown)


def test_the_schema_refuses_a_negative_cooldown_even_from_raw_sql(session):
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE alert_rules SET cooldown_s = -5"))
