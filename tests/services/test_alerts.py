"""The trading runner's events become stored alerts (the app wires ``notify=center.emit``)."""

from __future__ import annotations

import pytest

from database.repositories.alerts import AlertRepository
from services.trading_runner import TradingRunner
from trading.alerts import AlertCenter, AlertEvent


@pytest.fixture
def database_backend() -> str:
    return "sqlite"


def test_a_runner_event_is_stored_as_an_alert(session_factory):
    center = AlertCenter(session_factory)
    runner = TradingRunner(session_factory, notify=center.emit)
    try:
        [stored] = runner._send(  # type: ignore[misc]
            AlertEvent(
                "halt",
                "account paper halted: drawdown 21%",
                severity="critical",
                account="paper",
                deployment="ema-sp500",
                symbol="SP500",
            )
        )
        # a malformed event is refused where it is built, never half-stored
        with pytest.raises(ValueError, match="needs its value"):
            AlertEvent("drawdown", "no value")
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
