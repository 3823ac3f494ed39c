"""A feed delayed by a busy database: the chart state carries the delay (since when, how many
closed bars wait, the reason in one line), the status line and badge show it (amber), and
GET /debug/stats lists it; all of it goes once the feed has caught up."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dashboard.server import debug_stats
from tests.dashboard.clientside import run_clientside
from tests.dashboard.test_live_callbacks import Tab, make_services

SINCE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def services(tmp_path):
    services = make_services(tmp_path, "DEMO:random_walk")
    yield services
    services.close()


def render_status(state: dict) -> list:
    """The status line, price, badge label and badge colour assets/chart_view.js renders."""
    return run_clientside(
        "console.log(JSON.stringify(window.dash_clientside.stratlens.status("
        f"{json.dumps(state)}, false, 1, 1000, null)));"
    )


def test_a_delayed_feed_shows_in_the_chart_state_the_status_line_and_debug_stats(services):
    tab = Tab(services, "DEMO", "1m")
    while services.market.get("DEMO").closed_count < 2:
        services.runner.step()
    tab.tick()
    services.market.delay("DEMO", SINCE, 7, "database is locked")
    tab.tick()
    assert tab.state["st"] == "delayed"
    assert tab.state["ds"] == int(SINCE.timestamp() * 1000)
    assert tab.state["bl"] == 7
    assert tab.state["err"] == "database is locked"
    text, _, label, color = render_status(tab.state)
    assert (label, color) == ("DELAYED", "warning")
    assert "7 closed bars waiting for the database · database is locked" in text
    assert "delayed " in text
    feed = next(f for f in debug_stats(services)["feeds"] if f["symbol"] == "DEMO")
    assert feed["status"] == "delayed"
    assert feed["delayed_since"] == SINCE.isoformat()
    assert (feed["backlog"], feed["error"]) == (7, "database is locked")

    # the backlog is written: the next event published ends the delay
    closed = services.market.get("DEMO").closed_count
    while services.market.get("DEMO").closed_count == closed:
        services.runner.step()
    tab.tick()
    assert tab.state["st"] == "live"
    assert not {"ds", "bl", "err"} & set(tab.state)
    text, _, label, color = render_status(tab.state)
    assert (label, color) == ("LIVE", "success")
    assert "delayed" not in text
    feed = next(f for f in debug_stats(services)["feeds"] if f["symbol"] == "DEMO")
    assert (feed["status"], feed["delayed_since"], feed["backlog"]) == ("live", None, 0)
