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
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
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
  const step = document.querySelector('#bt-progress-step');
  if (bar && wrap.style.display !== 'none') {
    window.__btProgress.push(
      [Number(bar.getAttribute('aria-valuenow')), bar.textContent, step.textContent]);
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
        ".map(e => { try { return JSON.parse(e.id) } catch (_) { return null } })"
        ".filter(id => id && id.type === 'bt-param').map(id => id.name)"
    )


def param_field(dash_duo, name: str) -> Any:
    return next(
        e
        for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#bt-params input")
        if f'"name":"{name}"' in (e.get_attribute("id") or "")
    )


def param_value(dash_duo, name: str) -> str:
    return param_field(dash_duo, name).get_attribute("value")


def set_param(dash_duo, name: str, value: int) -> None:
    """Type ``value`` into the parameter's field and press Enter (the field reports it then)."""
    field = param_field(dash_duo, name)
    dash_duo.clear_input(field)
    field.send_keys(str(value), Keys.ENTER)
    until(lambda: field.get_attribute("value") == str(value), timeout=WAIT_S)


def type_into(dash_duo, css: str, text: str, *, leave: bool = True) -> Any:
    """Replace the field's text by ``text`` (select all, delete, type), then leave it (Tab)."""
    field = dash_duo.find_element(css)
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE, text, *((Keys.TAB,) if leave else ()))
    return field


OPENED_FORM = {
    "strategy": "sma_crossover",
    "fast": "5",
    "slow": "30",
    "symbol": "SP500",
    "timeframe": "1d",
    "start": "1999-01-04",
    "end": "2018-12-31",
    "cash": "10000",
    "commission": "0",
    "preset": "backtesting.py",
}


def form_shown(dash_duo) -> dict[str, str]:
    """What the form shows of the fields :data:`OPENED_FORM` checks."""
    ids = {"strategy": "#bt-strategy", "symbol": "#bt-symbol", "timeframe": "#bt-timeframe",
           "start": "#bt-start", "end": "#bt-end", "cash": "#bt-cash",
           "commission": "#bt-commission", "preset": "#bt-preset"}  # fmt: skip
    shown = {k: dash_duo.find_element(css).get_attribute("value") for k, css in ids.items()}
    shown.update({name: param_value(dash_duo, name) for name in ("fast", "slow")})
    return {k: shown[k] for k in OPENED_FORM}


def run_and_wait(dash_duo, expected: dict[str, str], status: str) -> None:
    click(dash_duo, "#bt-run")
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
    values = [value for value, _, _ in seen if value > 0]
    assert len(set(values)) >= 3, f"the bar should move through the steps, saw {seen}"
    assert values == sorted(values), f"the bar only moves forward, saw {seen}"
    # each step shows its number, name and percentage
    shown = {(label, step) for value, label, step in seen if value > 0}
    steps = {step.split(" ", 1)[1] for _, step in shown}
    assert steps <= set(STEPS)
    assert len(steps) >= 3
    assert all(label == f"{20 * int(step[0])}%" for label, step in shown), shown
    # the bar ends visibly: the outcome bar says done, full
    assert dash_duo.find_element("#bt-outcome").is_displayed()
    assert dash_duo.find_element("#bt-outcome-bar").text == "done"
    assert dash_duo.find_element("#bt-outcome-step").text.startswith("done: 5/5 steps in ")

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
    # another strategy and cash in the form, then the first run opened: the form holds it again
    Select(dash_duo.find_element("#bt-strategy")).select_by_value("ema_crossover")
    until(
        lambda: param_names(dash_duo) == ["fast", "slow"] and param_value(dash_duo, "fast") == "12",
        WAIT_S,
    )
    type_into(dash_duo, "#bt-cash", "5000")
    select_run(dash_duo, 1)
    click(dash_duo, "#bt-open")
    dash_duo.wait_for_contains_text("#bt-status", "Opened run #1", timeout=WAIT_S)
    until(lambda: shown_kpis(dash_duo) == expected_first, timeout=WAIT_S)
    assert "run #1 ·" in dash_duo.find_element("#bt-result-title").text
    until(lambda: form_shown(dash_duo) == OPENED_FORM, timeout=WAIT_S)
    # the next Run runs what was opened (a new run #3 with the first run's numbers)
    run_and_wait(dash_duo, expected_first, "Run #3 stored in")
    title = dash_duo.find_element("#bt-result-title").text
    assert title.startswith("SMA crossover (fast=5, slow=30, direction=long) · SP500 1d")
    until(lambda: len(grid_rows(dash_duo, "bt-runs")) == 3, timeout=WAIT_S)

    # compare the two runs
    select_run(dash_duo, 2)
    click(dash_duo, "#bt-compare")
    dash_duo.wait_for_element("#bt-compare-metrics", timeout=WAIT_S)
    assert dash_duo.find_element("#bt-compare-card").is_displayed()
    labels = ["#1 sma_crossover(5, 30, long)", "#2 sma_crossover(10, 30, long)"]
    select_run(dash_duo, 1)
    header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#bt-compare-metrics th")]
    assert header[:3] == ["Metric", *labels]
    assert driver.find_elements(By.CSS_SELECTOR, "#bt-compare-metrics td.sl-best")
    for graph in ("bt-compare-equity", "bt-compare-drawdown", "bt-compare-scatter"):
        until(lambda graph=graph: plotted_traces(dash_duo, graph) == labels, timeout=WAIT_S)
    dash_duo.wait_for_contains_text("#bt-runs-message", "Comparing runs", timeout=WAIT_S)

    # a run cancelled half-way shows and stores nothing
    status = dash_duo.find_element("#bt-status").text
    set_param(dash_duo, "fast", 15)
    click(dash_duo, "#bt-run")
    until(lambda: "computing signals" in dash_duo.find_element("#bt-progress-step").text, WAIT_S)
    dash_duo.find_element("#bt-cancel").click()
    until(lambda: dash_duo.find_element("#bt-run").get_attribute("disabled") is None, WAIT_S)
    assert not dash_duo.find_element("#bt-progress-wrap").is_displayed()
    # it ends visibly: cancelled, at the step it reached
    until(lambda: dash_duo.find_element("#bt-outcome-bar").text == "cancelled", WAIT_S)
    assert dash_duo.find_element("#bt-outcome").is_displayed()
    assert dash_duo.find_element("#bt-outcome-step").text.startswith("cancelled during ")
    # proving an absence: the cancelled run must not appear once it would have finished
    time.sleep(len(STEPS) * STEP_S)
    assert dash_duo.find_element("#bt-status").text == status
    assert shown_kpis(dash_duo) == expected_first
    click(dash_duo, "#bt-refresh")
    until(lambda: len(grid_rows(dash_duo, "bt-runs")) == 3, timeout=WAIT_S)
    assert dash_duo.get_logs() == []


UPDATE_REQUESTS = (
    "return performance.getEntriesByType('resource')"
    ".filter(e => e.name.includes('_dash-update-component')).length"
)


def is_flagged(dash_duo, css: str) -> bool:
    return "is-invalid" in (dash_duo.find_element(css).get_attribute("class") or "")


def test_invalid_values_are_flagged_where_typed_and_never_replaced(dash_duo, backtest_app):
    app, _ = backtest_app
    dash_duo.start_server(app)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/backtest")
    dash_duo.wait_for_element("#bt-run", timeout=WAIT_S)
    until(lambda: param_names(dash_duo) == ["fast", "slow"], WAIT_S)

    # typing sends nothing; leaving the field sends it once, checked
    before = driver.execute_script(UPDATE_REQUESTS)
    cash = type_into(dash_duo, "#bt-cash", "-5000", leave=False)
    assert driver.execute_script(UPDATE_REQUESTS) == before, "no request per keystroke"
    cash.send_keys(Keys.TAB)
    until(lambda: is_flagged(dash_duo, "#bt-cash"), WAIT_S)
    assert driver.execute_script(UPDATE_REQUESTS) - before <= 2, "one check, not one per key"
    type_into(dash_duo, "#bt-commission", "50")
    until(lambda: is_flagged(dash_duo, "#bt-commission"), WAIT_S)
    feedback = dash_duo.find_element("#bt-cash-feedback")
    assert feedback.is_displayed()
    assert feedback.text == "Cash: -5000 is invalid: expected a number > 0"
    assert dash_duo.find_element("#bt-commission-feedback").text == (
        "Commission [%]: 50 is invalid: expected a number >= 0 and <= 10"
    )
    field = param_field(dash_duo, "fast")
    dash_duo.clear_input(field)
    field.send_keys("abc", Keys.ENTER)
    until(lambda: "is-invalid" in param_field(dash_duo, "fast").get_attribute("class"), WAIT_S)
    problems = dash_duo.find_element("#bt-problems").text
    assert problems.startswith("3 problems: fix to run")
    assert "sma_crossover: fast='abc' is not a number; allowed: int in 2..1000" in problems
    assert "Cash: -5000 is invalid" in problems
    assert dash_duo.find_element("#bt-run").get_attribute("disabled") is not None
    assert dash_duo.find_element("#bt-sweep-run").get_attribute("disabled") is not None
    assert not is_flagged(dash_duo, "#bt-spread")
    assert not dash_duo.find_element("#bt-spread-feedback").is_displayed()

    # an emptied field is flagged too, not replaced by a default
    type_into(dash_duo, "#bt-cash", "")
    until(lambda: dash_duo.find_element("#bt-cash-feedback").text.startswith("Cash: empty"), WAIT_S)
    assert dash_duo.find_element("#bt-cash").get_attribute("value") == ""

    # fixed: nothing flagged, Run enabled, the values typed are the ones run
    type_into(dash_duo, "#bt-cash", "5000")
    type_into(dash_duo, "#bt-commission", "0.1")
    set_param(dash_duo, "fast", 12)
    until(lambda: dash_duo.find_element("#bt-run").get_attribute("disabled") is None, WAIT_S)
    assert not driver.find_elements(By.CSS_SELECTOR, "#bt-form .is-invalid")
    assert dash_duo.find_element("#bt-form-message").text == ""
    click(dash_duo, "#bt-run")
    dash_duo.wait_for_contains_text("#bt-status", "Run #1 stored in", timeout=WAIT_S)
    title = dash_duo.find_element("#bt-result-title").text
    assert title.startswith("SMA crossover (fast=12, slow=30, direction=long)")
    until(lambda: dash_duo.find_element("#bt-outcome-bar").text == "done", WAIT_S)
    assert dash_duo.get_logs() == []


def cell_point(driver, graph: str, x: str, y: str) -> tuple[float, float]:
    """The viewport coordinates of the heatmap cell (x, y) of ``graph``."""
    return driver.execute_script(
        f"const g = document.querySelector('#{graph} .js-plotly-plot');"
        " const L = g._fullLayout, box = g.getBoundingClientRect();"
        " const px = L.xaxis._offset + L.xaxis.l2p(L.xaxis.d2l(arguments[0]));"
        " const py = L.yaxis._offset + L.yaxis.l2p(L.yaxis.d2l(arguments[1]));"
        " return [box.left + px, box.top + py];",
        x,
        y,
    )


def grid_cells(dash_duo, grid: str, column: str) -> list[str]:
    """The texts of ``column`` in the rows a grid shows, top to bottom."""
    rows = sorted(grid_rows(dash_duo, grid), key=lambda r: int(r.get_attribute("row-index")))
    return [r.find_element(By.CSS_SELECTOR, f"[col-id='{column}']").text for r in rows]


def test_a_sweep_shows_a_heatmap_and_a_grid_and_a_click_loads_the_combination(
    dash_duo, backtest_app, artifacts
):
    app, _ = backtest_app
    dash_duo.start_server(app)
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + "/backtest")
    dash_duo.wait_for_element("#bt-sweep-run", timeout=WAIT_S)
    assert Select(dash_duo.find_element("#bt-sweep-x")).first_selected_option.text == "fast"
    assert Select(dash_duo.find_element("#bt-sweep-y")).first_selected_option.text == "slow"

    # a grid over the bound is refused before anything runs, saying so
    type_into(dash_duo, "#bt-sweep-x-values", "2:42:2")
    type_into(dash_duo, "#bt-sweep-y-values", "50:100:2")
    until(lambda: is_flagged(dash_duo, "#bt-sweep-y-values"), WAIT_S)
    assert dash_duo.find_element("#bt-sweep-y-values-feedback").text == (
        "Sweep: 21 fast x 26 slow = 546 combinations; at most 400 run: take a larger step or "
        "fewer values"
    )
    click(dash_duo, "#bt-sweep-run")
    dash_duo.wait_for_contains_text("#bt-sweep-message", "Not swept: Sweep: 21 fast", WAIT_S)
    until(lambda: dash_duo.find_element("#bt-sweep-outcome-bar").text == "not run", WAIT_S)

    type_into(dash_duo, "#bt-sweep-x-values", "5:15:5")
    type_into(dash_duo, "#bt-sweep-y-values", "30, 40")
    until(lambda: not is_flagged(dash_duo, "#bt-sweep-y-values"), WAIT_S)
    Select(dash_duo.find_element("#bt-sweep-metric")).select_by_value("Return [%]")
    click(dash_duo, "#bt-sweep-run")
    until(lambda: dash_duo.find_element("#bt-sweep-outcome-bar").text == "done", WAIT_S)
    assert dash_duo.find_element("#bt-sweep-outcome-step").text.startswith("done: 6/6 runs in ")
    dash_duo.wait_for_contains_text("#bt-sweep-message", "Sweep: 6 runs stored (#1-#6)", WAIT_S)
    heatmap = driver.execute_script(
        "const g = document.querySelector('#bt-sweep-graph .js-plotly-plot');"
        " return g && g.data && g.data.length ? [g.data[0].type, g.data[0].x, g.data[0].y,"
        " g.layout.title.text] : null"
    )
    assert heatmap == ["heatmap", ["5", "10", "15"], ["30", "40"], "Return [%]"]
    until(lambda: len(grid_rows(dash_duo, "bt-sweep-grid")) == 6, WAIT_S)
    until(lambda: len(grid_rows(dash_duo, "bt-runs")) == 6, WAIT_S)
    dash_duo.find_element("#bt-sweep-card").screenshot(str(artifacts / "backtest_sweep_card.png"))

    # a heatmap cell clicked: that combination is in the form
    graph = dash_duo.find_element("#bt-sweep-graph")
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", graph
    )
    x, y = cell_point(driver, "bt-sweep-graph", "10", "40")
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()
    dash_duo.wait_for_contains_text("#bt-sweep-message", "Loaded fast=10, slow=40 (run #", WAIT_S)
    until(
        lambda: (param_value(dash_duo, "fast"), param_value(dash_duo, "slow")) == ("10", "40"),
        WAIT_S,
    )

    # the grid sorted by Sharpe (best first), its first row clicked: the best is in the form
    header = dash_duo.find_element("#bt-sweep-grid .ag-header-cell[col-id='Sharpe Ratio']")
    driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", header
    )
    for order in ("ascending", "descending"):
        header.find_element(By.CSS_SELECTOR, ".ag-header-cell-text").click()
        until(lambda order=order: header.get_attribute("aria-sort") == order, WAIT_S)
    sharpe = [float(v) for v in grid_cells(dash_duo, "bt-sweep-grid", "Sharpe Ratio")]
    assert sharpe == sorted(sharpe, reverse=True)
    best = (grid_cells(dash_duo, "bt-sweep-grid", "fast")[0],
            grid_cells(dash_duo, "bt-sweep-grid", "slow")[0])  # fmt: skip
    first = grid_rows(dash_duo, "bt-sweep-grid")
    row = next(r for r in first if r.get_attribute("row-index") == "0")
    row.find_element(By.CSS_SELECTOR, "[col-id='Sharpe Ratio']").click()
    until(lambda: (param_value(dash_duo, "fast"), param_value(dash_duo, "slow")) == best, WAIT_S)
    dash_duo.wait_for_contains_text(
        "#bt-sweep-message", f"Loaded fast={best[0]}, slow={best[1]} (run #", WAIT_S
    )

    # the largest sweep allowed, cancelled once it runs: it ends visibly, the runs done stay
    type_into(dash_duo, "#bt-sweep-x-values", "2:41:1")
    type_into(dash_duo, "#bt-sweep-y-values", "50:59:1")
    until(lambda: not is_flagged(dash_duo, "#bt-sweep-y-values"), WAIT_S)
    click(dash_duo, "#bt-sweep-run")
    until(lambda: "/400 runs" in dash_duo.find_element("#bt-sweep-progress-step").text, WAIT_S)
    click(dash_duo, "#bt-sweep-cancel")
    until(lambda: dash_duo.find_element("#bt-sweep-outcome-bar").text == "cancelled", WAIT_S)
    assert dash_duo.find_element("#bt-sweep-outcome-step").text.startswith("cancelled after ")
    assert "/400 runs" in dash_duo.find_element("#bt-sweep-outcome-step").text
    until(lambda: dash_duo.find_element("#bt-sweep-run").get_attribute("disabled") is None, WAIT_S)
    assert len(grid_rows(dash_duo, "bt-sweep-grid")) == 6, "the last sweep stays shown"
    assert dash_duo.get_logs() == []
