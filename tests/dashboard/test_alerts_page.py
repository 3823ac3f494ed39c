"""The alerts page's plain functions over a real database: the toasts' poll, the history
grid's rows (plain values) and what a refresh sends, acknowledge from the grid, a rule's save
(checked, nothing stored on an error), and the server's write guard knowing both writes."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pytest
from dash import no_update
from dash.exceptions import PreventUpdate

from components.charts.theme import LIGHT
from config.settings import Settings
from dashboard.pages.alerts import (
    WRITE_OUTPUTS,
    acknowledge_clicked,
    history_update,
    layout,
    new_toasts,
    save_rule,
)
from dashboard.pages.alerts.tables import (
    ACK_COLUMN,
    HISTORY_COLUMNS,
    MAX_TOASTS,
    history_grid_style,
    history_rows,
    when,
)
from dashboard.server import create_app
from database.repositories.alerts import AlertRepository
from services.alerts import AlertService
from tests.dashboard.test_backtest_page import find
from trading.alerts import AlertEvent

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def database_backend() -> str:
    return "sqlite"


@pytest.fixture
def service(session_factory) -> AlertService:
    # a clock that moves a second per reading: the newest id is never served from its cache
    # here (test_every_page_shares_one_reading_of_the_newest_alert tests that cache)
    return AlertService(session_factory, monotonic=itertools.count(step=1.0).__next__)


def add_alerts(session_factory, count: int) -> list[int]:
    with session_factory.begin() as session:
        repo = AlertRepository(session)
        rule = repo.rule_named("fill")
        return [repo.add(rule, "info", f"k{n}", f"fill {n}", at=T0).id for n in range(count)]


def test_the_poll_sends_nothing_until_an_alert_is_newer_than_the_last_seen(
    service, session_factory
):
    assert new_toasts(service, service.latest_id(), None) is None

    ids = add_alerts(session_factory, 2)
    toasts, seen = new_toasts(service, 0, None)
    assert seen == ids[-1]
    assert [t.id["id"] for t in toasts] == ids
    assert new_toasts(service, seen, toasts) is None


def test_every_page_shares_one_reading_of_the_newest_alert(session_factory):
    now = [0.0]
    service = AlertService(session_factory, monotonic=lambda: now[0])
    shown, seen = new_toasts(service, 0, None) or ([], service.latest_id())
    [new] = add_alerts(session_factory, 1)
    # within NEWEST_TTL_S every poll is answered from one reading: the new alert waits
    now[0] = service.NEWEST_TTL_S / 2
    assert new_toasts(service, seen, shown) is None
    now[0] = service.NEWEST_TTL_S  # a second later it shows
    shown, seen = new_toasts(service, seen, shown)
    assert seen == new


def test_the_toasts_keep_the_newest_few(service, session_factory):
    ids = add_alerts(session_factory, MAX_TOASTS + 3)
    shown, seen = new_toasts(service, 0, None)
    more = add_alerts(session_factory, 1)
    shown, seen = new_toasts(service, seen, shown)

    assert [t.id["id"] for t in shown] == [*ids[-MAX_TOASTS + 1 :], *more]


def test_a_burst_of_alerts_between_two_polls_shows_its_newest_at_once(service, session_factory):
    # a fast feed fills more often than the poll runs: the toasts never fall behind
    ids = add_alerts(session_factory, 4 * MAX_TOASTS)
    shown, seen = new_toasts(service, 0, None)

    assert seen == ids[-1]
    assert [t.id["id"] for t in shown] == ids[-MAX_TOASTS:]
    assert new_toasts(service, seen, shown) is None


def test_a_rule_save_checks_the_values_and_stores_nothing_on_an_error(service):
    drawdown = next(r for r in service.rules() if r.name == "drawdown")

    ok, text = save_rule(service, drawdown.id, "-0.2", "60", True)
    assert not ok
    assert text.startswith("drawdown: threshold='-0.2' is invalid")
    ok, text = save_rule(service, drawdown.id, "0.2", "an hour", True)
    assert not ok
    assert "cooldown_s='an hour' is invalid" in text
    assert next(r for r in service.rules() if r.name == "drawdown") == drawdown

    ok, text = save_rule(service, drawdown.id, " 0.2 ", "600", False)
    assert ok
    assert text == "drawdown saved: threshold 0.2, cooldown 600 s, disabled"


def test_a_rule_without_threshold_ignores_the_disabled_field(service):
    halt = next(r for r in service.rules() if r.name == "halt")

    ok, text = save_rule(service, halt.id, "", "120", True)
    assert ok, text
    assert text == "halt saved: cooldown 120 s, enabled"


def test_the_history_rows_are_plain_values_newest_first(service, session_factory):
    [first, second] = add_alerts(session_factory, 2)
    with session_factory.begin() as session:
        repo = AlertRepository(session)
        rejected = repo.add(
            repo.rule_named("order_rejected"), "warning", "k", "order 17 rejected", at=T0
        ).id
        repo.count_duplicate(rejected)
        repo.count_duplicate(rejected)
    service.acknowledge(first)

    rows = history_rows(service.history(), service.rules())
    assert json.loads(json.dumps(rows)) == rows  # plain values: no component, no datetime
    assert [row["id"] for row in rows] == [rejected, second, first]
    assert rows[0] == {
        "id": rejected,
        "time": "2026-12-03 12:00:00",
        "severity": "warning",
        "rule": "order_rejected",
        "kind": "order_rejected",
        "where": "",
        "message": "order 17 rejected (+2 duplicates)",
        ACK_COLUMN: "",  # not yet: its cell is the Acknowledge button
    }
    # a rule is named apart from its kind (a metric rule): the row names both
    with session_factory.begin() as session:
        repo = AlertRepository(session)
        rule = repo.add_rule("sharpe_low", "metric", at=T0, metric="sharpe_30d", threshold=0.5,
                             direction="below")  # fmt: skip
        repo.add(rule, "warning", "m", "Sharpe 0.4", at=T0)
    newest = history_rows(service.history(), service.rules())[0]
    assert (newest["rule"], newest["kind"]) == ("sharpe_low", "metric")
    acknowledged = next(r for r in rows if r["id"] == first)[ACK_COLUMN]
    assert acknowledged == when(service.history()[-1].acknowledged_at).removesuffix(" UTC")
    assert [r["id"] for r in rows if not r[ACK_COLUMN]] == [rejected, second]
    # every column is a field of the rows
    assert {c["field"] for c in HISTORY_COLUMNS} == set(rows[0])


def test_the_history_sends_its_rows_only_when_they_changed(service, session_factory):
    add_alerts(session_factory, 2)
    page = layout(service)
    shown = find(page, "al-history-shown").data
    assert find(page, "al-history").rowData == history_rows(service.history(), service.rules())
    # the page as laid out (dark): nothing to send
    with pytest.raises(PreventUpdate):
        history_update(service, False, shown)

    [new] = add_alerts(session_factory, 1)
    rows, options, shown = history_update(service, False, shown)
    assert rows[0]["id"] == new
    assert options is no_update  # the theme did not change: the grid keeps its styles
    with pytest.raises(PreventUpdate):
        history_update(service, False, shown)  # the same alerts again: nothing

    rows, options, shown = history_update(service, True, shown)  # the light theme
    assert rows is no_update
    assert options == history_grid_style(LIGHT)["dashGridOptions"]
    assert shown["theme"] == "light"

    service.acknowledge(new)
    rows, options, _ = history_update(service, True, shown)
    assert rows[0][ACK_COLUMN] != ""
    assert options is no_update


def _clicked(alert_id: object, column: str = ACK_COLUMN) -> dict:
    """The grid's cellRendererData after a click on a row's Acknowledge."""
    return {"value": alert_id, "colId": column, "rowIndex": 0, "rowId": str(alert_id),
            "timestamp": 1}  # fmt: skip


def test_acknowledge_from_the_grid_acknowledges_that_alert_only(service, session_factory):
    [first, second] = add_alerts(session_factory, 2)

    assert acknowledge_clicked(service, None) is no_update
    assert acknowledge_clicked(service, _clicked(first, "message")) is no_update
    assert acknowledge_clicked(service, _clicked("not an id")) is no_update
    assert acknowledge_clicked(service, _clicked(second + 100)) is no_update
    assert all(a.acknowledged_at is None for a in service.history())

    assert acknowledge_clicked(service, _clicked(first)) == first
    acknowledged = {a.id: a.acknowledged_at is not None for a in service.history()}
    assert acknowledged == {first: True, second: False}


def test_both_page_writes_are_guarded():
    assert set(WRITE_OUTPUTS) == {"al-ack-done.data", "al-rule-result.data"}


def _ack_request(alert_id: int) -> dict:
    """The Acknowledge callback's request as the browser sends it after a click on the
    button in the history grid's row."""
    return {
        "output": "al-ack-done.data",
        "outputs": {"id": "al-ack-done", "property": "data"},
        "inputs": [{"id": "al-history", "property": "cellRendererData",
                    "value": _clicked(alert_id)}],
        "changedPropIds": ["al-history.cellRendererData"],
        "state": [],
    }  # fmt: skip


def test_acknowledge_is_answered_from_this_machine_only(tmp_path):
    settings = Settings.from_env({"STRATLENS_DATA_DIR": str(tmp_path), "FEEDS": "none"})
    app = create_app(settings, start_feeds=False)
    services = app.server.extensions["stratlens"]
    try:
        [alert] = services.alert_center.emit(AlertEvent(kind="halt", message="halted"))
        client = app.server.test_client()
        post = {"path": "/_dash-update-component", "json": _ack_request(alert.id)}

        refused = client.post(**post, environ_base={"REMOTE_ADDR": "203.0.113.7"})
        assert refused.status_code == 403
        assert services.alerts.history()[0].acknowledged_at is None

        answered = client.post(**post, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        assert answered.status_code == 200, answered.text
        assert services.alerts.history()[0].acknowledged_at is not None
    finally:
        services.close()
