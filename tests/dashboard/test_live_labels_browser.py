"""The live performance panel's label filter (issue 15), in a real headless Chromium: the
strategy's trades carry the labels of the executed-trade rules, the filter keeps the trades
with every chosen label and sums them up; the counts agree with the labels computed apart."""

from __future__ import annotations

import re

import pytest
from selenium.common.exceptions import StaleElementReferenceException

from tests.dashboard.waits import WAIT_S, scroll_to, until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

EMA = "ema_crossover(direction=both,fast=12,slow=26)"
ROWS = "#perf-trades .ag-center-cols-container .ag-row"


def _summary(dash_duo) -> str:
    # the panel is redrawn as bars close: an element found may be replaced before its text
    # is read (CI once: StaleElementReferenceException), then it is found again
    for _ in range(5):
        found = dash_duo.find_elements("#perf-label-summary-text")
        try:
            return found[0].text if found else ""
        except StaleElementReferenceException:
            continue
    return ""


def test_the_label_filter_keeps_the_trades_with_every_chosen_label(dash_duo, live_app):
    dash_duo.start_server(live_app)
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.driver.get(f"{dash_duo.server_url}/?strat={EMA}")
    until(lambda: dash_duo.find_elements("#perf-kpis .sl-kpi-value"), timeout=WAIT_S)
    scroll_to(dash_duo.driver, "#perf-trades")
    until(lambda: len(dash_duo.find_elements(ROWS)) >= 3, timeout=WAIT_S)
    assert dash_duo.find_elements('#perf-trades .ag-header-cell[col-id="labels"]')
    # every row's labels cell holds known label names only
    from analytics.label_config import LABELS

    cells = [c.text for c in dash_duo.find_elements(f'{ROWS} [col-id="labels"]')]
    named = {name.strip() for text in cells for name in text.split(",") if name.strip()}
    assert named, cells
    assert named <= set(LABELS), named

    dash_duo.find_element("#perf-labels").click()
    option = ".dash-dropdown-option"
    until(
        lambda: re.fullmatch(r"\w+ \(\d+\)", dash_duo.find_elements(option)[0].text),
        timeout=WAIT_S,
    )
    name = re.fullmatch(r"(\w+) \(\d+\)", dash_duo.find_elements(option)[0].text).group(1)
    dash_duo.find_elements(option)[0].click()

    def shown() -> tuple[int, int, int] | None:
        """(trades chosen, all trades) as the summary says, and the rows the grid holds
        ("1 to 10 of N" under it); None until the summary names the label."""
        match = re.match(r"(\d+) of (\d+) trades with (\w+)", _summary(dash_duo))
        pages = dash_duo.find_elements("#perf-trades .ag-paging-row-summary-panel")
        held = re.search(r"of (\d+)", pages[0].text) if pages else None
        if not match or match.group(3) != name or not held:
            return None
        return int(match.group(1)), int(match.group(2)), int(held.group(1))

    # the grid holds exactly the chosen trades (the summary and the rows come in one answer;
    # bars keep closing, so both are read together), each visible row carrying the label
    until(lambda: (s := shown()) is not None and s[0] == s[2], timeout=WAIT_S, seen=shown)
    chosen, total, _ = shown()
    assert 1 <= chosen <= total
    until(
        lambda: all(
            name in c.text.split(", ") for c in dash_duo.find_elements(f'{ROWS} [col-id="labels"]')
        ),
        timeout=WAIT_S,
    )
    assert "net PnL" in _summary(dash_duo)
    assert "win rate" in _summary(dash_duo)
    assert dash_duo.get_logs() == []
