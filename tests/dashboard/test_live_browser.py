"""The live chart in a real headless Chromium: candles, live ticks, symbol switch, two tabs."""

from __future__ import annotations

import pandas as pd
import pytest
from selenium.webdriver.support.ui import Select

from database.repositories import CandleRepository
from tests.dashboard.waits import WAIT_S, until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

CHART_JS = "return document.querySelector('#price-chart .js-plotly-plot').data"


def chart(dash_duo) -> list[dict]:
    return dash_duo.driver.execute_script(CHART_JS)


def closed_bars(dash_duo) -> int:
    data = dash_duo.driver.execute_script(
        "const g = document.querySelector('#price-chart .js-plotly-plot');"
        " return g && g.data && g.data.length ? g.data[0].x.length : 0"
    )
    return int(data or 0)


def assert_chart_matches_database(dash_duo, services, symbol: str) -> None:
    """Every closed bar in the browser equals the stored bar: no gap, duplicate or stale value."""
    trace = chart(dash_duo)[0]
    x = pd.to_datetime(trace["x"]).tz_localize("UTC")
    assert x.is_monotonic_increasing
    assert x.is_unique
    with services.sessions() as session:
        stored = CandleRepository(session).frame(symbol, "1d", start=x[0], end=x[-1])
    assert list(stored.index) == list(x)
    for column in ("open", "high", "low", "close"):
        # the chart carries 10 significant digits (components.charts.candles.compact)
        assert trace[column] == pytest.approx(stored[column].tolist(), rel=1e-9)


def test_live_chart_streams_switches_symbol_and_logs_no_error(dash_duo, live_app, artifacts):
    services = live_app.server.extensions["stratlens"]
    dash_duo.start_server(live_app)
    dash_duo.wait_for_element("#price-chart .main-svg", timeout=WAIT_S)
    until(lambda: closed_bars(dash_duo) > 100, timeout=WAIT_S)
    data = chart(dash_duo)
    assert data[0]["name"] == "SP500"
    assert data[1]["name"] == "forming"

    start = closed_bars(dash_duo)
    until(lambda: closed_bars(dash_duo) >= start + 2, timeout=WAIT_S)  # two live updates at least
    until(  # the forming candle shows (on failure: what the trace and the status line held)
        lambda: len(chart(dash_duo)[1]["x"]) == 1,
        timeout=WAIT_S,
        seen=lambda: (chart(dash_duo)[1]["x"], dash_duo.find_element("#status-line").text),
    )
    assert_chart_matches_database(dash_duo, services, "SP500")
    assert dash_duo.find_element("#status-line").text.startswith(
        "SP500 1d · replay feed · last closed bar "
    )
    assert dash_duo.find_element("#last-price").text.startswith("SP500 ")
    dash_duo.wait_for_text_to_equal("#feed-badge", "LIVE", timeout=WAIT_S)
    dash_duo.driver.save_screenshot(str(artifacts / "live_chart.png"))

    Select(dash_duo.find_element("#symbol")).select_by_value("NASDAQ")
    until(lambda: chart(dash_duo)[0]["name"] == "NASDAQ", timeout=WAIT_S)
    start = closed_bars(dash_duo)
    until(lambda: closed_bars(dash_duo) >= start + 2, timeout=WAIT_S)
    assert_chart_matches_database(dash_duo, services, "NASDAQ")
    dash_duo.wait_for_contains_text("#status-line", "NASDAQ 1d · replay feed", timeout=WAIT_S)

    assert dash_duo.get_logs() == []


def test_two_tabs_watching_different_symbols_both_stay_correct(dash_duo, live_app):
    services = live_app.server.extensions["stratlens"]
    dash_duo.start_server(live_app)
    driver = dash_duo.driver
    until(lambda: closed_bars(dash_duo) > 100, timeout=WAIT_S)
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(dash_duo.server_url)
    until(lambda: closed_bars(dash_duo) > 100, timeout=WAIT_S)
    Select(dash_duo.find_element("#symbol")).select_by_value("NASDAQ")
    until(lambda: chart(dash_duo)[0]["name"] == "NASDAQ", timeout=WAIT_S)
    second = driver.current_window_handle

    for handle, symbol in ((first, "SP500"), (second, "NASDAQ"), (first, "SP500")):
        driver.switch_to.window(handle)
        held = closed_bars(dash_duo)
        until(lambda held=held: closed_bars(dash_duo) >= held + 2, timeout=WAIT_S)
        assert chart(dash_duo)[0]["name"] == symbol
        assert_chart_matches_database(dash_duo, services, symbol)
    assert dash_duo.get_logs() == []
