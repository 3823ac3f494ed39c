"""The Trading page in a real browser over a fast replay: a deployment made and started from
the page trades (orders and fills appear, the equity moves), an order is cancelled from the
page, a drawdown halt shows its alert. Waits for conditions, never fixed times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from config.settings import Settings
from dashboard.server import create_app
from database.repositories.trading import OrderRow, TradingRepository
from services.paper import PaperTrading
from tests.dashboard.waits import until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]


@pytest.fixture
def trading_app(live_settings: Settings) -> Iterator[Any]:
    # a replay fast enough that a short-average crossover trades within seconds, and long
    # enough not to start over (which rewinds the chart before the fills) during a test
    app = create_app(live_settings.with_overrides(feed_speed=8.0, replay_bars=2000))
    yield app
    app.server.extensions["stratlens"].close()


def paper_of(app: Any) -> PaperTrading:
    services = app.server.extensions["stratlens"]
    return PaperTrading(services.sessions, runner=services.trading)


def open_trading(dash_duo: Any, app: Any) -> None:
    dash_duo.start_server(app)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/trading")
    dash_duo.wait_for_element("#tr-deploy", timeout=60)


def rows(dash_duo: Any, grid: str) -> list[Any]:
    return dash_duo.driver.find_elements(
        By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row"
    )


def cells(dash_duo: Any, grid: str, column: str) -> list[str]:
    return [
        e.text
        for e in dash_duo.driver.find_elements(
            By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row [col-id='{column}']"
        )
    ]


def kpi(dash_duo: Any, slug: str) -> str:
    return dash_duo.find_element(f"#tr-kpi-{slug}").text


def type_into(dash_duo: Any, css: str, text: str) -> None:
    field = dash_duo.find_element(css)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE, text, Keys.TAB)


def set_param(dash_duo: Any, name: str, value: str) -> None:
    field = next(
        e
        for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#tr-dep-params input")
        if f'"name":"{name}"' in (e.get_attribute("id") or "")
    )
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE, value, Keys.ENTER)
    until(lambda: field.get_attribute("value") == value)


def choose(dash_duo: Any, css: str, value: str) -> None:
    until(lambda: value in [o.get_attribute("value") for o in Select(
        dash_duo.find_element(css)).options])  # fmt: skip
    Select(dash_duo.find_element(css)).select_by_value(value)


def test_a_deployment_made_on_the_page_trades_and_moves_the_account(dash_duo, trading_app):
    open_trading(dash_duo, trading_app)
    # an account from the page; a bad cash is refused in red first
    type_into(dash_duo, "#tr-new-account", "demo")
    type_into(dash_duo, "#tr-new-cash", "lots")
    dash_duo.find_element("#tr-create-account").click()
    dash_duo.wait_for_contains_text("#tr-account-message", "Cash: 'lots' is not a number")
    type_into(dash_duo, "#tr-new-cash", "10000")
    dash_duo.find_element("#tr-create-account").click()
    until(lambda: Select(dash_duo.find_element("#tr-account")).first_selected_option.text == "demo")
    until(lambda: kpi(dash_duo, "equity") == "10,000.00")
    # the deployment form: an invalid parameter is named, then a valid one is deployed
    type_into(dash_duo, "#tr-dep-name", "sma-fast")
    choose(dash_duo, "#tr-dep-symbol", "SP500")
    choose(dash_duo, "#tr-dep-timeframe", "1w")  # SP500's timeframes replace DEMO's
    choose(dash_duo, "#tr-dep-timeframe", "1d")
    set_param(dash_duo, "fast", "1")
    dash_duo.find_element("#tr-deploy").click()
    dash_duo.wait_for_contains_text("#tr-deploy-message", "fast=1 is out of range")
    set_param(dash_duo, "fast", "2")
    set_param(dash_duo, "slow", "4")
    type_into(dash_duo, "#tr-set-stop-loss-pct", "2")
    dash_duo.find_element("#tr-deploy").click()
    dash_duo.wait_for_contains_text("#tr-deploy-message", "stop_loss_pct=2.0 is invalid")
    type_into(dash_duo, "#tr-set-stop-loss-pct", "")
    dash_duo.find_element("#tr-deploy").click()
    until(lambda: cells(dash_duo, "tr-deployments", "status") == ["stopped"])
    until(lambda: dash_duo.find_element("#tr-deploy-message").text == "")
    # started from the page: the runner trades it on the replay's closed candles
    choose(dash_duo, "#tr-deployment", "sma-fast")
    dash_duo.find_element("#tr-start").click()
    until(lambda: cells(dash_duo, "tr-deployments", "status") == ["running"])
    until(lambda: len(rows(dash_duo, "tr-fills")) >= 1, seen=lambda: kpi(dash_duo, "equity"))
    until(lambda: kpi(dash_duo, "equity") != "10,000.00")
    # the page refreshes while it is read: a cell re-rendered meanwhile is read again
    until(lambda: cells(dash_duo, "tr-fills", "side")[0] in ("buy", "sell"))
    first = until(lambda: kpi(dash_duo, "equity"))
    until(lambda: kpi(dash_duo, "equity") != first)  # it keeps moving with the market
    dash_duo.find_element("#tr-stop").click()
    until(lambda: cells(dash_duo, "tr-deployments", "status") == ["stopped"])
    # the live chart's executions layer shows the account's real fills
    dash_duo.driver.get(f"{dash_duo.server_url}/?symbol=SP500&tf=1d&exec=demo")
    until(lambda: Select(dash_duo.find_element("#executions")).first_selected_option.text
          == "demo")  # fmt: skip
    until(lambda: sum(fill_points(dash_duo).values()) >= 1, seen=lambda: fill_points(dash_duo))
    assert dash_duo.get_logs() == []


def fill_points(dash_duo: Any) -> dict[str, int]:
    """Points per executions trace of the live chart (the plotly figure in the browser)."""
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#price-chart .js-plotly-plot');"
        "const out = {}; for (const t of (g && g.data) || []) {"
        "  if ((t.legendgroup || '').startsWith('exec:'))"
        "    out[t.marker.symbol] = (t.x || []).length;"
        "} return out;"
    )


def test_an_open_order_is_cancelled_from_the_page(dash_duo, trading_app):
    paper = paper_of(trading_app)
    account = paper.create_account("manual", 5_000.0)
    now = datetime.now(UTC)
    far = OrderRow(
        "manual-far-1", "SP500", "buy", "limit", "GTC", "new", "manual", now, now,
        quantity=1.0, limit_price=1.0,
    )  # fmt: skip
    with trading_app.server.extensions["stratlens"].sessions.begin() as session:
        TradingRepository(session).save_orders(account.id, [far])
    open_trading(dash_duo, trading_app)
    until(lambda: cells(dash_duo, "tr-orders", "client_order_id") == ["manual-far-1"])
    # nothing selected: the page says what to do
    dash_duo.find_element("#tr-cancel").click()
    dash_duo.wait_for_contains_text("#tr-order-message", "select an open order")
    dash_duo.find_element("#tr-orders .ag-center-cols-container [col-id='client_order_id']").click()
    type_into(dash_duo, "#tr-mod-limit", "-3")
    dash_duo.find_element("#tr-modify").click()
    dash_duo.wait_for_contains_text("#tr-order-message", "limit_price=-3.0 is invalid")
    until(
        lambda: "text-danger" in dash_duo.find_element("#tr-order-message").get_attribute("class")
    )
    dash_duo.find_element("#tr-cancel").click()
    dash_duo.wait_for_contains_text("#tr-order-message", "order manual-far-1 cancelled")
    until(lambda: rows(dash_duo, "tr-orders") == [])
    with trading_app.server.extensions["stratlens"].sessions() as session:
        found = TradingRepository(session).order("manual-far-1")
    assert found is not None
    assert found[1].status == "cancelled"
    assert dash_duo.get_logs() == []


def test_a_drawdown_halt_shows_its_alert(dash_duo, trading_app):
    paper = paper_of(trading_app)
    paper.create_account("fragile", 10_000.0, 0.001)
    paper.deploy(
        "fragile-sma", account="fragile", strategy="sma_crossover",
        params={"fast": 2, "slow": 4, "direction": "both"}, symbol="SP500", timeframe="1d",
    )  # fmt: skip
    paper.set_status("fragile-sma", "running")
    open_trading(dash_duo, trading_app)
    choose(dash_duo, "#tr-account", "fragile")
    dash_duo.wait_for_contains_text("#trading-alerts", "account fragile halted", timeout=120)
    # read through until: the page refreshes (re-renders) while it is read
    until(lambda: "drawdown" in dash_duo.find_element("#trading-alerts").text)
    until(lambda: "halted" in dash_duo.find_element("#tr-status").text)
    until(lambda: "/ 0.10%" in kpi(dash_duo, "drawdown"), seen=lambda: kpi(dash_duo, "drawdown"))
    assert dash_duo.get_logs() == []
