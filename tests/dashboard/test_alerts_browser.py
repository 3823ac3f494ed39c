"""The alerts in a real headless Chromium: an alert emitted by the app's AlertCenter pops up
as a toast and lands in the history grid, its row's Acknowledge acknowledges it (in the
database too), and a bad threshold is refused with the reason while nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dash
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from config.settings import Settings
from dashboard.server import create_app
from database.repositories.alerts import AlertRepository
from tests.dashboard.waits import until
from trading.alerts import AlertEvent

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]


@pytest.fixture
def alerts_app(live_settings: Settings) -> Iterator[tuple[dash.Dash, Any]]:
    app = create_app(live_settings, start_feeds=False)
    services = app.server.extensions["stratlens"]
    yield app, services
    services.close()


def _text(dash_duo: Any, selector: str) -> str:
    return " ".join(e.text for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, selector))


def _toast(dash_duo: Any) -> Any:
    return next(iter(dash_duo.driver.find_elements(By.CSS_SELECTOR, ".al-toast")), None)


def test_an_alert_pops_up_lands_in_the_history_and_is_acknowledged(dash_duo, alerts_app, artifacts):
    app, services = alerts_app
    dash_duo.start_server(app)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/alerts")
    until(lambda: "No alert yet." in _text(dash_duo, "#al-history"))

    [alert] = services.alert_center.emit(
        AlertEvent(
            kind="order_rejected",
            message="order 17 rejected: insufficient cash",
            account="paper",
            deployment="ema-sp500",
            symbol="SP500",
        )
    )

    toast = until(lambda: "order 17 rejected" in _text(dash_duo, ".al-toast") and _toast(dash_duo))
    assert "WARNING · order_rejected" in toast.text
    box = dash_duo.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.top, r.right, innerWidth];",
        toast,
    )
    assert 0 <= box[0] < 200  # floats at the top right, in view without scrolling
    assert box[2] - 60 < box[1] <= box[2]
    # the history grid's row, known by the alert's id (AG Grid's row-id)
    row = f"#al-history .ag-center-cols-container .ag-row[row-id='{alert.id}']"
    until(lambda: "order 17 rejected" in _text(dash_duo, row))
    assert "paper · ema-sp500 · SP500" in _text(dash_duo, f"{row} [col-id='where']")
    assert _text(dash_duo, f"{row} [col-id='severity'] .badge") == "warning"
    assert "al-unacknowledged" in dash_duo.find_element(row).get_attribute("class")  # bold
    dash_duo.driver.save_screenshot(str(artifacts / "alerts_page_1280x800.png"))

    until(lambda: dash_duo.find_element(f"{row} button.al-ack")).click()
    # the button gives way to the time of the acknowledgement, the row to normal weight
    stamp = until(
        lambda: (
            not dash_duo.driver.find_elements(By.CSS_SELECTOR, f"{row} button")
            and _text(dash_duo, f"{row} [col-id='acknowledged']")
        )
    )
    until(lambda: "al-unacknowledged" not in dash_duo.find_element(row).get_attribute("class"))
    with services.sessions() as session:
        acknowledged = AlertRepository(session).get(alert.id).acknowledged_at
    assert acknowledged is not None
    assert stamp == acknowledged.strftime("%Y-%m-%d %H:%M:%S")

    # an alert while another page is shown lands in the history once the page is shown again
    dash_duo.find_element("#nav-trading").click()
    [later] = services.alert_center.emit(AlertEvent(kind="halt", message="account paper halted"))
    until(lambda: "account paper halted" in _text(dash_duo, ".al-toast"))
    dash_duo.find_element("#nav-alerts").click()
    newest = "#al-history .ag-center-cols-container .ag-row[row-index='0']"
    until(lambda: "account paper halted" in _text(dash_duo, newest))  # newest first
    assert dash_duo.find_element(newest).get_attribute("row-id") == str(later.id)
    assert dash_duo.get_logs() == []


def test_a_bad_threshold_is_refused_with_its_reason_and_nothing_is_stored(dash_duo, alerts_app):
    app, services = alerts_app
    dash_duo.start_server(app)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/alerts")
    with services.sessions() as session:
        before = AlertRepository(session).rule_named("drawdown")

    threshold = dash_duo.wait_for_element("#al-rule-drawdown input")  # the threshold comes first
    threshold.send_keys(Keys.CONTROL, "a")
    threshold.send_keys("ten percent", Keys.TAB)
    dash_duo.driver.find_element(By.CSS_SELECTOR, "#al-rule-drawdown button").click()

    message = until(lambda: _text(dash_duo, "#al-rule-message"))
    assert "drawdown: threshold='ten percent' is invalid: expected a number" in message
    assert "nothing was saved" in message
    with services.sessions() as session:
        assert AlertRepository(session).rule_named("drawdown") == before

    threshold.send_keys(Keys.CONTROL, "a")
    threshold.send_keys("0.25", Keys.TAB)
    dash_duo.driver.find_element(By.CSS_SELECTOR, "#al-rule-drawdown button").click()
    until(lambda: "drawdown saved: threshold 0.25" in _text(dash_duo, "#al-rule-message"))
    with services.sessions() as session:
        assert AlertRepository(session).rule_named("drawdown").threshold == 0.25
    assert dash_duo.get_logs() == []
