"""services.alerts.runner_notify: the trading runner's notes become stored alerts."""

from __future__ import annotations

import pytest

from database.repositories.alerts import AlertRepository
from services.alerts import runner_notify
from trading.alerts import AlertCenter
from trading.engine import AlertNote


@pytest.fixture
def database_backend() -> str:
    return "sqlite"


def test_a_runner_note_is_stored_as_an_alert(session_factory):
    center = AlertCenter(session_factory)
    notify = runner_notify(center)
    try:
        [stored] = notify(
            AlertNote(
                "halt",
                "account paper halted: drawdown 21%",
                severity="critical",
                account="paper",
                deployment="ema-sp500",
                symbol="SP500",
            )
        )
        with pytest.raises(ValueError, match="needs its value"):
            notify(AlertNote("drawdown", "no value"))
    finally:
        center.close()

    with session_factory() as session:
        [alert] = AlertRepository(session).history()
    assert alert.id == stored.id
    assert (alert.kind, alert.severity, alert.dedup_key) == (
        "halt",
        "critical",
        "paper|ema-sp500|SP500",
    )
