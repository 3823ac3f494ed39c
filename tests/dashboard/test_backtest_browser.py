"""The Backtest page in a real headless Chromium: run with a progress bar, the command line's
numbers in the KPI cards, reopen a saved run, compare two runs.

The expected numbers come from ``services.batch.run_job`` with the settings ``python app.py
backtest --symbol SP500 --timeframe 1d --strategy sma_crossover --set fast=... --json`` uses,
never from literals. The page is dashboard.pages.backtest.make_test_app over a temporary SQLite
database holding the bundled sample data; Run goes through a real DiskcacheManager (worker
processes), slowed to ``STEP_S`` per step so that the test can watch the bar move.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dash
import diskcache
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from cli.backtest import backtest_settings
from components.panels.performance import format_metric
from config.settings import Settings
from dashboard.pages.backtest import make_test_app
from services.backtests import STEPS, BatchJob, open_context
from services.batch import run_job
from services.runtime import build_services
from strategies.registry import create
from tests.dashboard.waits import WAIT_S, until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

SCREENSHOT = "backtest_page_1280x800.png"  # in tests/artifacts/; docs/screenshots/ holds a copy
STEP_S = 0.6  # each step stays on screen this long: the bar is polled every 250 ms
KPIS = ("# Trades", "Return [%]")
WATCH_PROGRESS = """
window.__btProgress = [];
const wrap = document.querySelector('#bt-progress-wrap');
new MutationObserver(() => {
  const bar = wrap.querySelector('.progress-bar');
  if (bar && wrap.style.display !== 'none') {
    window.__btProgress.push([Number(bar.getAttribute('aria-valuenow')), bar.textContent]);
  }
}).observe(wrap, {subtree: true, attributes: true, childList: true, characterData: true});
"""


@pytest.fixture
def backtest_app(live_settings: Settings, tmp_path: Path) -> Iterator[tuple[dash.Dash, Any]]:
    services = build_services(live_settings)  # no feed started: the page needs none
    cache = diskcache.Cache(str(tmp_path / "background"))
    app = make_test_app(services, dash.DiskcacheManager(cache), min_step_s=STEP_S)
    yield app, services
    services.close()
    cache.close()


def command_line_kpis(settings: Settings, fast: int) -> dict[str, str]:
    """The KPI texts of `python app.py backtest ... --set fast=<fast> --json`'s numbers."""
    args = type("Args", (), {"cash": 10_000.0, "commission": 0.0, "slippage_bps": 0.0})()
    strategy = create("sma_crossover", fast=fast)
    job = BatchJob("sma_crossover", strategy.config, "SP500", "1d")
    context = open_context(settings.database_url, settings.redis_url)
    try:
        outcome = run_job(
            job,
            backtest_settings(args, compat=None, direction=strategy.direction),
            context,
            preset="backtesting.py",
            store=False,
            keep_backtest=True,
        )
    finally:
        context.close()
    assert outcome.error is None
    return {key: format_metric(key, outcome.metrics[key]) for key in KPIS}


def shown_kpis(dash_duo) -> dict[str, str]:
    ids = {"# Trades": "#bt-kpi-trades", "Return [%]": "#bt-kpi-return"}
    texts = {}
    for key, css in ids.items():
        found = dash_duo.driver.find_elements(By.CSS_SELECTOR, css)
        texts[key] = found[0].text if found else None
    return texts


def param_names(dash_duo) -> list[str]:
    """The generated parameter inputs' names, in page order."""
    return dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#bt-params [id]')]"
        ".map(e => { try { return JSON.parse(e.id).name } catch (_) { return null } })"
        ".filter(name => name)"
    )


def set_param(dash_duo, name: str, value: int) -> None:
    field = next(
        e
        for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#bt-params input")
        if f'"name":"{name}"' in (e.get_attribute("id") or "")
    )
    dash_duo.clear_input(field)
    field.send_keys(str(value))
    until(lambda: field.get_attribute("value") == str(value), timeout=WAIT_S)


def run_and_wait(dash_duo, expected: dict[str, str], status: str) -> None:
    dash_duo.find_element("#bt-run").click()
    dash_duo.wait_for_contains_text("#bt-status", status, timeout=WAIT_S)
    until(lambda: shown_kpis(dash_duo) == expected, timeout=WAIT_S)


def click(dash_duo, css: str) -> None:
    """Scroll the element into view at once, then click it (Bootstrap makes scrolls smooth:
    a click right after a smooth scroll lands where the element was)."""
    element = dash_duo.find_element(css)
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element
    )
    element.click()


def grid_rows(dash_duo, grid: str) -> list[Any]:
    """The rows an AG Grid shows (its centre part: one element per row)."""
    return dash_duo.driver.find_elements(
        By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row"
    )


def select_run(dash_duo, run_id: int) -> None:
    """Tick the saved run's checkbox in the runs grid."""
    row = f"#bt-runs .ag-center-cols-container .ag-row[row-id='{run_id}']"
    box = dash_duo.driver.find_element(By.CSS_SELECTOR, f"{row} input[type=checkbox]")
    # Bootstrap scrolls smoothly: an instant scroll, or the click lands before the box does
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", box
    )
    if "ag-row-selected" not in dash_duo.find_element(row).get_attribute("class"):
        box.click()
    until(lambda: "ag-row-selected" in dash_duo.find_element(row).get_attribute("class"), WAIT_S)


def screenshot(driver, path: Path, width: int = 1280, height: int = 800) -> None:
    """The page's top as a ``width`` x ``height`` PNG: the window is grown until its viewport
    (not the window with the browser's frame) has that size, then restored."""
    outer = driver.get_window_size()
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])
    until(
        lambda: (
            driver.execute_script("return [window.innerWidth, window.innerHeight]")
            == [width, height]
        ),
        timeout=WAIT_S,
    )
    driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(outer["width"], outer["height"])


def plotted_traces(dash_duo, graph_id: str) -> list[str]:
    return dash_duo.driver.execute_script(
        f"const g = document.querySelector('#{graph_id} .js-plotly-plot');"
        " return g && g.data ? g.data.map(t => t.name) : []"
    )


def test_run_reopen_and_compare_in_the_browser(dash_duo, backtest_app, artifacts):
    app, services = backtest_app
    dash_duo.start_server(app)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/backtest")
    dash_duo.wait_for_element("#bt-run", timeout=WAIT_S)
    assert dash_duo.find_element("#bt-empty").text.startswith("No result yet")

    # the parameter inputs follow the strategy, the timeframes and the period the symbol
    Select(dash_duo.find_element("#bt-strategy")).select_by_value("rsi_reversion")
    rsi = ["period", "oversold", "overbought", "trend_filter", "trend_period"]
    until(lambda: param_names(dash_duo) == rsi, timeout=WAIT_S)
    Select(dash_duo.find_element("#bt-strategy")).select_by_value("sma_crossover")
    until(lambda: param_names(dash_duo) == ["fast", "slow"], timeout=WAIT_S)
    Select(dash_duo.find_element("#bt-symbol")).select_by_value("DEMO")
    until(lambda: dash_duo.find_element("#bt-start").get_attribute("value") == "2024-01-01", WAIT_S)
    assert "1m" in [
        o.get_attribute("value") for o in Select(dash_duo.find_element("#bt-timeframe")).options
    ]
    Select(dash_duo.find_element("#bt-symbol")).select_by_value("SP500")
    until(lambda: dash_duo.find_element("#bt-start").get_attribute("value") == "1999-01-04", WAIT_S)
    Select(dash_duo.find_element("#bt-timeframe")).select_by_value("1d")
    set_param(dash_duo, "fast", 5)
    assert dash_duo.find_element("#bt-form-message").text == ""
    expected_first = command_line_kpis(services.settings, fast=5)

    driver.execute_script(WATCH_PROGRESS)
    dash_duo.find_element("#bt-run").click()
    until(lambda: dash_duo.find_element("#bt-run").get_attribute("disabled") is not None, WAIT_S)
    dash_duo.wait_for_contains_text("#bt-status", "Run #1 stored in", timeout=WAIT_S)
    until(lambda: shown_kpis(dash_duo) == expected_first, timeout=WAIT_S)
    assert dash_duo.find_element("#bt-run").get_attribute("disabled") is None
    seen = driver.execute_script("return window.__btProgress")
    values = [value for value, _ in seen if value > 0]
    assert len(set(values)) >= 3, f"the bar should move through the steps, saw {seen}"
    assert values == sorted(values), f"the bar only moves forward, saw {seen}"
    labels = {label.split(" ", 1)[1] for _, label in seen if label}
    assert labels <= set(STEPS)
    assert len(labels) >= 3

    until(lambda: "Equity" in plotted_traces(dash_duo, "bt-performance"), timeout=WAIT_S)
    assert dash_duo.find_element("#bt-empty").is_displayed() is False
    title = dash_duo.find_element("#bt-result-title").text
    assert title.startswith("SMA crossover (fast=5, slow=30, direction=long) · SP500 1d")
    assert "run #1 · 1999-01-04 → 2018-12-31" in title
    until(lambda: len(grid_rows(dash_duo, "bt-trades")) > 0, timeout=WAIT_S)
    trades = grid_rows(dash_duo, "bt-trades")
    assert len(trades) == min(15, int(expected_first["# Trades"].replace(",", "")))
    screenshot(driver, artifacts / SCREENSHOT)

    # a second run, then the first one reopened from the saved runs
    set_param(dash_duo, "fast", 10)
    expected_second = command_line_kpis(services.settings, fast=10)
    assert expected_second != expected_first
    run_and_wait(dash_duo, expected_second, "Run #2 stored in")
    until(lambda: len(grid_rows(dash_duo, "bt-runs")) == 2, timeout=WAIT_S)
    select_run(dash_duo, 1)
    click(dash_duo, "#bt-open")
    dash_duo.wait_for_contains_text("#bt-status", "Opened run #1", timeout=WAIT_S)
    until(lambda: shown_kpis(dash_duo) == expected_first, timeout=WAIT_S)
    assert "run #1 ·" in dash_duo.find_element("#bt-result-title").text

    # compare the two runs
    select_run(dash_duo, 2)
    click(dash_duo, "#bt-compare")
    dash_duo.wait_for_element("#bt-compare-metrics", timeout=WAIT_S)
    assert dash_duo.find_element("#bt-compare-card").is_displayed()
    labels = ["#1 sma_crossover(5, 30, long)", "#2 sma_crossover(10, 30, long)"]
    header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#bt-compare-metrics th")]
    assert header[:3] == ["Metric", *labels]
    assert driver.find_elements(By.CSS_SELECTOR, "#bt-compare-metrics td.sl-best")
    for graph in ("bt-compare-equity", "bt-compare-drawdown", "bt-compare-scatter"):
        until(lambda graph=graph: plotted_traces(dash_duo, graph) == labels, timeout=WAIT_S)
    dash_duo.wait_for_contains_text("#bt-runs-message", "Comparing runs", timeout=WAIT_S)

    # a run cancelled half-way shows and stores nothing
    status = dash_duo.find_element("#bt-status").text
    set_param(dash_duo, "fast", 15)
    dash_duo.find_element("#bt-run").click()
    until(lambda: "computing signals" in dash_duo.find_element("#bt-progress").text, timeout=WAIT_S)
    dash_duo.find_element("#bt-cancel").click()
    until(lambda: dash_duo.find_element("#bt-run").get_attribute("disabled") is None, WAIT_S)
    assert not dash_duo.find_element("#bt-progress-wrap").is_displayed()
    # proving an absence: the cancelled run must not appear once it would have finished
    time.sleep(len(STEPS) * STEP_S)
    assert dash_duo.find_element("#bt-status").text == status
    assert shown_kpis(dash_duo) == expected_first
    click(dash_duo, "#bt-refresh")
    until(lambda: len(grid_rows(dash_duo, "bt-runs")) == 2, timeout=WAIT_S)
    assert dash_duo.get_logs() == []
