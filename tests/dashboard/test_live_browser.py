"""The live chart in a real headless Chromium: candles, live ticks, symbol switch, two tabs."""

from __future__ import annotations

import pandas as pd
import pytest
from selenium.webdriver.support.ui import Select

from config.settings import Settings
from dashboard.server import create_app
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


# counts the server's answers to this tab from here on, and those carrying a whole chart figure
COUNT_FIGURES = """
window._slAnswers = 0;
window._slFigures = 0;
const fetched = window.fetch;
window.fetch = function (input, init) {
  const url = String((input && input.url) || input);
  return fetched.call(this, input, init).then(function (response) {
    if (url.indexOf("_dash-update-component") >= 0) {
      response.clone().json().then(function (body) {
        window._slAnswers += 1;
        const chart = body && body.response && body.response["price-chart"];
        if (chart && chart.figure) window._slFigures += 1;
      }).catch(function () {});
    }
    return response;
  });
};
"""


def test_the_chart_at_its_bound_drops_its_oldest_bars_in_the_browser(dash_duo, tmp_path):
    """CHART_BARS=30: past 33 bars the browser drops the oldest of every trace itself (the
    candles, the volume, the SMA), the chart keeps moving with the database's bars, and the
    server sends no whole figure again (it used to, at every bound: ~1 MB at the default)."""
    settings = Settings.from_env(
        {
            "STRATLENS_DATA_DIR": str(tmp_path),
            "FEED_SPEED": "6",
            "FEED_UPDATES_PER_CANDLE": "2",
            "REFRESH_MS": "250",
            "CHART_BARS": "30",
            "REPLAY_BARS": "3000",  # 500 s before the replay starts over (a new figure)
        }
    )
    app = create_app(settings)
    try:
        services = app.server.extensions["stratlens"]
        dash_duo.start_server(app)
        dash_duo.driver.get(dash_duo.server_url + "/?symbol=SP500&tf=1d&ind=sma(timeperiod=5)")
        until(lambda: closed_bars(dash_duo) >= 30 and len(chart(dash_duo)) > 5, timeout=WAIT_S)
        dash_duo.driver.execute_script(COUNT_FIGURES)
        first = chart(dash_duo)[0]["x"][0]
        held: list[int] = []

        def moved_on() -> bool:
            held.append(closed_bars(dash_duo))
            return chart(dash_duo)[0]["x"][0] > first and len(held) > 20

        until(moved_on, timeout=WAIT_S, seen=lambda: held[-5:])
        assert max(held) <= 33 + 6  # its bound, plus the bars of one late answer at most
        answers, figures = dash_duo.driver.execute_script(
            "return [window._slAnswers, window._slFigures]"
        )
        assert answers > 10  # the count saw the ticks' answers
        assert figures == 0
        data = chart(dash_duo)
        sma = next(t for t in data if str(t.get("name", "")).upper().startswith("SMA"))
        assert sma["x"][0] >= data[0]["x"][0]
        assert_chart_matches_database(dash_duo, services, "SP500")
        assert dash_duo.get_logs() == []
    finally:
        app.server.extensions["stratlens"].close()
