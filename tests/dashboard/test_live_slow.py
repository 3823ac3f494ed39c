"""The live page when answers are slow (issue 13, item 1) and the trade rows (item 3), in a real
headless Chromium: a refresh never blocks the next, a late answer is applied, the status says
the tab is delayed; a busy server still draws the first chart; a trade row zooms every linked
x axis at once and highlights its trade while hovered."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains

from dashboard.server import create_app
from tests.dashboard.test_layers_browser import js_click
from tests.dashboard.test_live_browser import closed_bars
from tests.dashboard.waits import WAIT_S, scroll_to, until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

GRAPH = "const g = document.querySelector('#price-chart .js-plotly-plot');"
EMA = "ema_crossover(direction=both,fast=12,slow=26)"


def latency(dash_duo, ms: int) -> None:
    """Chrome's network emulation: every request waits ``ms`` before its answer starts."""
    dash_duo.driver.execute_cdp_cmd("Network.enable", {})
    dash_duo.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": ms, "downloadThroughput": -1, "uploadThroughput": -1},
    )


def badge(dash_duo) -> str:
    return dash_duo.find_element("#feed-badge").text


def test_the_chart_keeps_advancing_when_each_answer_takes_longer_than_the_refresh(
    dash_duo, live_app
):
    dash_duo.start_server(live_app)
    until(lambda: closed_bars(dash_duo) > 100, timeout=WAIT_S)
    dash_duo.wait_for_text_to_equal("#feed-badge", "LIVE", timeout=WAIT_S)
    latency(dash_duo, 1000)  # REFRESH_MS is 250: four refresh periods per answer

    # no answer for two refresh periods: the badge turns amber and the line says since when
    until(lambda: badge(dash_duo) == "DELAYED", timeout=WAIT_S, seen=lambda: badge(dash_duo))
    status = dash_duo.find_element("#status-line").text
    assert "delayed: no update from the server for" in status
    # every late answer is applied: the chart goes on gaining bars
    held = closed_bars(dash_duo)
    until(lambda: closed_bars(dash_duo) >= held + 3, timeout=WAIT_S)
    x = pd.to_datetime(
        dash_duo.driver.execute_script(GRAPH + " return g.data[0].x")
    )  # no gap nor duplicate from late answers
    assert x.is_monotonic_increasing
    assert x.is_unique

    latency(dash_duo, 0)
    until(lambda: badge(dash_duo) == "LIVE", timeout=WAIT_S, seen=lambda: badge(dash_duo))
    assert dash_duo.get_logs() == []


class SlowServer:
    """WSGI middleware: every callback request waits ``delay_s`` before it is handled (a busy
    server), and the whole figures sent are counted: all of them (``figures``) and those with
    strategy markers (``layered``: not the plain chart of the page dash_duo opened first, whose
    answers a busy server may still be computing after the test has navigated away)."""

    def __init__(self, inner: Callable[..., Any], delay_s: float) -> None:
        self._inner, self.delay_s = inner, delay_s
        self.figures = 0
        self.layered = 0
        self.in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO", "").endswith("_dash-update-component"):
            with self._lock:
                self.in_flight += 1
            try:
                time.sleep(self.delay_s)  # the simulated load, inside the server
                body = b"".join(self._inner(environ, start_response))
            finally:
                with self._lock:
                    self.in_flight -= 1
            if b'"price-chart"' in body and b'"figure"' in body and b'"layout"' in body:
                with self._lock:
                    self.figures += 1
                    self.layered += b"sig:" in body
            return [body]
        return self._inner(environ, start_response)

    def settle(self, dash_duo) -> None:
        """Fast again, the page left, every answer finished: nothing reaches the app's
        services after the test closes them."""
        self.delay_s = 0.0
        dash_duo.driver.get("about:blank")
        until(lambda: self.in_flight == 0, timeout=WAIT_S)


def test_a_busy_server_still_draws_the_first_layered_chart_and_sends_it_once(
    dash_duo, live_settings
):
    # a replay long enough not to start over (a new figure, rightly) on a slow CI machine
    app = create_app(dataclasses.replace(live_settings, replay_bars=3000))
    try:
        _busy_server_draws_once(dash_duo, app)
    finally:
        app.server.extensions["stratlens"].close()


def _busy_server_draws_once(dash_duo, live_app) -> None:
    slow = SlowServer(live_app.server.wsgi_app, delay_s=1.2)  # ~5 refresh periods each
    live_app.server.wsgi_app = slow
    dash_duo.start_server(live_app)
    try:
        dash_duo.driver.get(f"{dash_duo.server_url}/?ind=rsi&ind=bbands&strat={EMA}")
        until(
            lambda: dash_duo.driver.execute_script(
                GRAPH + " return g && g.data && g.data.some(t => (t.legendgroup || '')"
                ".startsWith('sig:'))"
            ),
            timeout=WAIT_S,
        )
        held = closed_bars(dash_duo)
        until(lambda: closed_bars(dash_duo) >= held + 2, timeout=WAIT_S)
        # the view's build sent the layered figure; ticks sent deltas, never that figure again
        assert slow.layered == 1, (slow.layered, slow.figures)
        assert dash_duo.get_logs() == []
    finally:
        slow.settle(dash_duo)


def test_a_trade_row_zooms_every_linked_axis_and_hover_highlights_the_trade(dash_duo, live_app):
    dash_duo.start_server(live_app)
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.driver.get(f"{dash_duo.server_url}/?ind=rsi&ind=macd&strat={EMA}")
    rows = "#perf-trades .ag-center-cols-container .ag-row"
    # the trades are below the chart and filled once in view: scrolled to, as a trader does
    until(lambda: dash_duo.find_elements("#perf-kpis .sl-kpi-value"), timeout=WAIT_S)
    scroll_to(dash_duo.driver, "#perf-trades")
    until(lambda: len(dash_duo.find_elements(rows)) >= 3, timeout=WAIT_S)
    row = dash_duo.find_elements(rows)[2]
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", row)
    trade_id = row.get_attribute("row-id")
    entry = row.find_element("css selector", "[col-id=entry_time]").text
    exit_ = row.find_element("css selector", "[col-id=exit_time]").text

    # by its id: rows move down the page as trades close
    js_click(
        dash_duo, dash_duo.find_element(f'#perf-trades .ag-row[row-id="{trade_id}"] [col-id=pnl]')
    )

    def ranges() -> list[list[str]]:
        return dash_duo.driver.execute_script(
            GRAPH + " const l = g._fullLayout; return Object.keys(l)"
            ".filter(k => /^xaxis\\d*$/.test(k)).map(k => l[k].range)"
        )

    def zoomed() -> bool:
        found = ranges()
        lo, hi = pd.Timestamp(found[0][0]), pd.Timestamp(found[0][1])
        return (
            len(found) >= 4  # price, volume, RSI, MACD
            and all(r == found[0] for r in found)
            and lo < pd.Timestamp(entry) <= pd.Timestamp(exit_) < hi
        )

    until(zoomed, timeout=WAIT_S, seen=ranges)

    def outside() -> list[str]:
        """Values in view drawn outside their panel: the price panel (candles and overlays)
        and the sub-panels without a fixed range (MACD) are fitted to what is in view."""
        return dash_duo.driver.execute_script(
            GRAPH
            + """
            const l = g._fullLayout, xa = l.xaxis;
            const lo = xa.r2l(xa.range[0]), hi = xa.r2l(xa.range[1]);
            const axes = ['yaxis'].concat((g.layout.meta.fit || []).map(p => p.axis));
            const bad = [];
            for (const t of g.data) {
              const axis = 'yaxis' + (t.yaxis || 'y').slice(1);
              if (!axes.includes(axis) || t.visible === 'legendonly') continue;
              const [a, b] = l[axis].range;
              const lows = t.low || t.y || [], highs = t.high || t.y || [];
              (t.x || []).forEach((x, i) => {
                if (x === null || xa.d2l(x) < lo || xa.d2l(x) > hi) return;
                if (lows[i] !== null && lows[i] < a) bad.push(`${t.name} ${x} < ${a}`);
                if (highs[i] !== null && highs[i] > b) bad.push(`${t.name} ${x} > ${b}`);
              });
            }
            return bad.slice(0, 5);"""
        )

    until(lambda: not outside(), timeout=WAIT_S, seen=outside)
    # the row still shows the same trade (ids count from the first trade)
    same = dash_duo.find_element(f'#perf-trades .ag-row[row-id="{trade_id}"] [col-id=entry_time]')
    assert same.text == entry

    def highlight() -> list | None:
        return dash_duo.driver.execute_script(
            GRAPH + " return (g.layout.shapes || []).filter(s => s.name === 'hover-trade')"
            ".map(s => [s.x0, s.x1])"
        )

    def minutes(found: list) -> list[list[str]]:
        return [[pd.Timestamp(x).strftime("%Y-%m-%d %H:%M") for x in span] for span in found]

    def hovered() -> bool:
        """The pointer glides to the row (Selenium's move lasts 250 ms) and highlights each row
        it crosses on the way; a trade closing meanwhile moves the row down, so the pointer
        follows the row (by its id) until the band is that of the trade."""
        if minutes(highlight() or []) == [[entry, exit_]]:
            return True
        ActionChains(dash_duo.driver).move_to_element(
            dash_duo.find_element(f'#perf-trades .ag-row[row-id="{trade_id}"]')
        ).perform()
        return False

    until(hovered, timeout=WAIT_S, poll=0.5, seen=lambda: (highlight(), [entry, exit_]))
    ActionChains(dash_duo.driver).move_to_element(dash_duo.find_element("#status-line")).perform()
    until(lambda: highlight() == [], timeout=WAIT_S, seen=highlight)
    assert dash_duo.get_logs() == []


BANDS = """
    if (!g || !g.data || !g._fullLayout) return null;
    const l = g._fullLayout, xa = l.xaxis;
    const lo = xa.r2l(xa.range[0]), hi = xa.r2l(xa.range[1]);
    const inView = (t, key) => (t.x || []).map((x, i) => [x, (t[key] || [])[i]])
      .filter(([x, v]) => x !== null && v !== null && v !== undefined
              && xa.d2l(x) >= lo && xa.d2l(x) <= hi).map(([, v]) => v);
    const band = side => g.data.filter(t => (t.legendgroup || '').startsWith('ind:bbands')
      && t.visible !== 'legendonly' && (t.hovertemplate || '').includes(side))
      .flatMap(t => inView(t, 'y'));
    const candles = [0, 1].map(i => g.data[i]);  // closed and forming
    const x = g.data[0].x;
    return {range: l.yaxis.range, upper: band('upper'), lower: band('lower'),
            high: Math.max(...candles.flatMap(t => inView(t, 'high'))),
            low: Math.min(...candles.flatMap(t => inView(t, 'low'))),
            back: hi < xa.d2l(x[x.length - 1])};"""


def test_the_price_axis_holds_the_bollinger_bands_in_view(dash_duo, live_app):
    """Where Bollinger bands reach past the candles in view (below their lows or above their
    highs, by more than the axis's padding), the price axis still holds every point of the
    upper and lower band in view: as the view follows the newest bar (the server's fit, then
    the browser's), and zoomed back to older bars (the browser's, chart_view.js priceExtent)."""
    dash_duo.start_server(live_app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?ind=bbands")

    def bands() -> dict | None:
        return dash_duo.driver.execute_script(GRAPH + BANDS)

    def beyond(found: dict | None) -> bool:
        """The band passes the candles by more than 6 % of their span: a range fitted to the
        candles alone (chart_view.js padded) would cut it."""
        if not found or not found["upper"] or not found["lower"]:
            return False
        pad = (found["high"] - found["low"]) * 0.06
        return max(found["upper"]) > found["high"] + pad or min(found["lower"]) < found["low"] - pad

    def inside(found: dict) -> bool:
        a, b = found["range"]
        return a <= min(found["lower"]) and max(found["upper"]) <= b

    def following() -> bool:
        found = bands()
        return bool(found) and not found["back"] and beyond(found) and inside(found)

    until(following, timeout=WAIT_S, seen=bands)

    windows = itertools.cycle(range(300, 60, -40))  # bars before the newest

    def zoomed_back() -> bool:
        """Older bars in view, as a trade row's click zooms, where the band passes the candles
        (else the next window). Zoomed away, the chart drops its oldest bars past twice its
        window (every few seconds on this fast replay), which can take the bars in view away,
        and a replay starting over shows the newest bars: then it is zoomed back again."""
        found = bands()
        if found and found["back"] and beyond(found):
            return inside(found)
        dash_duo.driver.execute_script(
            GRAPH + " const x = g.data[0].x, n = x.length - arguments[0];"
            " window.dash_clientside.stratlens.zoomTo("
            "[x[n], x[n + 60]].map(d => new Date(d).getTime()));",
            next(windows),
        )
        return False

    until(zoomed_back, timeout=WAIT_S, seen=bands)
    assert dash_duo.get_logs() == []
