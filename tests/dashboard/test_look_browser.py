"""The live page's layout and readability in a real headless Chromium (issue 13, items 5-7):
nothing covered, clipped or unreadable at 1280x800, 1440x900 and 1920x1080 in both themes,
the panels keep their figures while they refresh (in both themes too), a bad ``types`` falls
back, and intraday charts hide the hours their market is closed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from config.settings import Settings
from dashboard.server import create_app
from market.sample_data import generate_session_walk
from services.candle_import import import_candles
from services.chart_layers import strategy_key
from services.database_setup import prepare_database
from strategies.registry import create
from tests.dashboard.waits import scroll_to, until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

EMA = strategy_key(create("ema_crossover", direction="both"))
RSI = strategy_key(create("rsi_reversion", direction="both"))
LAYERED = (
    "/?symbol=SP500&tf=1d&ind=ema(timeperiod=50)&ind=bbands&ind=rsi&ind=macd"
    f"&strat={EMA}&strat={RSI}"
)
FX_WEEKEND = (pd.Timedelta(days=4, hours=22), pd.Timedelta(days=6, hours=22))
CHART_JS = "return document.querySelector('#price-chart .js-plotly-plot')"

# the bounding boxes of an element's parts, by a CSS selector under a root (page coordinates)
BOXES_JS = """
const root = arguments[0] ? document.querySelector(arguments[0]) : document;
return [...root.querySelectorAll(arguments[1])].map(e => {
  const r = e.getBoundingClientRect();
  return {x: r.left, y: r.top, r: r.right, b: r.bottom, w: r.width, h: r.height,
          text: e.textContent, cls: (e.parentNode.getAttribute('class') || '')};
}).filter(b => b.w > 0 && b.h > 0);
"""
# WCAG contrast ratio of an element's text colour against a background colour
CONTRAST_JS = """
const parse = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
const lum = c => { const v = parse(c).map(x => { x /= 255;
  return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
  return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
const ratio = (a, b) => { const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (l1 + 0.05) / (l2 + 0.05); };
const background = e => {
  for (; e; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c;
  }
  return 'rgb(255, 255, 255)';
};
const el = document.querySelector(arguments[0]);
return ratio(getComputedStyle(el).color, background(el));
"""


# every 10 ms while a panel refreshes: the performance figure's visibility, and whether its
# loading spinner is on show
WATCH_JS = """
window.slSeen = [];
window.slWatch = setInterval(() => {
  const graph = document.querySelector('#perf-figure');
  const spinner = graph.closest('.sl-panel-graph')
    .querySelector('[class*="spinner"], [class*="dash-loading"]');
  window.slSeen.push([getComputedStyle(graph).visibility, !!spinner]);
}, 10);
"""


@pytest.fixture
def look_app(tmp_path: Path):
    """The default app plus two intraday series: STOCK (weekdays 14:30-21:00 UTC) and EURUSD
    (closed from Friday 22:00 to Sunday 22:00), 1h bars over 12 weeks."""
    settings = Settings.from_env(
        {
            "STRATLENS_DATA_DIR": str(tmp_path),
            "FEED_SPEED": "2",
            "REFRESH_MS": "500",
            "REPLAY_BARS": "2000",
        }
    )
    engine = prepare_database(settings)  # stored before the app starts: it lists its symbols
    try:
        stock = generate_session_walk("STOCK", "1h", "2024-01-01", 84, seed=11)
        fx = generate_session_walk(
            "EURUSD", "1h", "2024-01-01", 84, seed=12, session=None, weekend=FX_WEEKEND
        )
        import_candles(engine, "STOCK", "1h", stock)
        import_candles(engine, "EURUSD", "1h", fx)
    finally:
        engine.dispose()
    app = create_app(settings)
    yield app
    app.server.extensions["stratlens"].close()


def viewport(dash_duo, width: int, height: int) -> None:
    """The page's viewport exactly ``width`` x ``height`` (a window that size is smaller)."""
    dash_duo.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def open_chart(dash_duo, path: str) -> dict:
    dash_duo.driver.get(dash_duo.server_url + path)
    until(lambda: (dash_duo.driver.execute_script(CHART_JS + "?.data?.length") or 0) > 0)
    return dash_duo.driver.execute_script(CHART_JS + ".layout")


def boxes(dash_duo, root: str | None, selector: str) -> list[dict]:
    return dash_duo.driver.execute_script(BOXES_JS, root, selector)


def overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["r"] and b["x"] < a["r"] and a["y"] < b["b"] and b["y"] < a["b"]


def axis_label_collisions(dash_duo) -> list[tuple[str, str]]:
    """Pairs of y tick labels of different axes of the price chart whose boxes overlap."""
    labels = boxes(dash_duo, "#price-chart", ".yaxislayer-above text")
    return [
        (f"{a['cls']}:{a['text']}", f"{b['cls']}:{b['text']}")
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
        if a["cls"] != b["cls"] and overlap(a, b)
    ]


THEMES = ["dark", "light"]
SIZES = [(1280, 800), (1920, 1080)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "{}x{}".format(*s))
@pytest.mark.parametrize("theme", THEMES)
def test_the_page_holds(dash_duo, look_app, artifacts, theme, size):
    dash_duo.start_server(look_app)
    viewport(dash_duo, *size)
    open_chart(dash_duo, LAYERED + f"&theme={theme}")
    until(lambda: len(boxes(dash_duo, "#price-chart", ".yaxislayer-above text")) > 8)
    name = f"look_layers_{theme}_{size[0]}x{size[1]}.png"
    dash_duo.driver.save_screenshot(str(artifacts / name))
    page = dash_duo.driver.execute_script(
        "const d = document.documentElement, s = document.querySelector('.sl-sidebar');"
        " return {pageW: d.scrollWidth, viewW: d.clientWidth, sideW: s.scrollWidth,"
        " sideView: s.clientWidth, sideBottom: s.getBoundingClientRect().bottom,"
        " innerH: window.innerHeight}"
    )
    assert page["pageW"] <= page["viewW"], page  # no sideways scroll: page
    assert page["sideW"] <= page["sideView"], page  # nor sidebar
    for part in ("#signal-types", "#min-confidence"):  # the signal filter above the fold
        (box,) = boxes(dash_duo, None, part)
        assert box["b"] <= min(page["sideBottom"], page["innerH"]), (part, box, page)
    assert axis_label_collisions(dash_duo) == []  # volume "0", RSI "100" and the like apart
    # the slider's marks and tooltip read on the sidebar (were dark on dark, white on white)
    assert dash_duo.driver.execute_script(CONTRAST_JS, "#min-confidence .dash-slider-mark") >= 3
    tooltip = "#min-confidence .dash-slider-tooltip"
    dash_duo.driver.execute_script(
        f"document.querySelector('{tooltip}').classList.add('always-visible')"
    )
    assert dash_duo.driver.execute_script(CONTRAST_JS, tooltip) >= 4.5
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize(
    "size", [(1440, 900), (1280, 800), (1920, 1080)], ids=lambda s: "{}x{}".format(*s)
)
@pytest.mark.parametrize("theme", THEMES)
def test_the_legend_is_never_under_the_mode_bar(dash_duo, look_app, theme, size):
    dash_duo.start_server(look_app)
    viewport(dash_duo, *size)
    open_chart(dash_duo, LAYERED + f"&theme={theme}")
    until(lambda: boxes(dash_duo, "#price-chart", ".legend .traces"))
    dash_duo.find_element("#price-chart .nsewdrag").click()  # a hover shows the mode bar
    until(lambda: boxes(dash_duo, "#price-chart", ".modebar-btn"))
    buttons = boxes(dash_duo, "#price-chart", ".modebar-btn")
    entries = boxes(dash_duo, "#price-chart", ".legend .traces")
    assert [(e["text"], b) for e in entries for b in buttons if overlap(e, b)] == []


@pytest.mark.parametrize("theme", THEMES)
def test_the_performance_panel_shows_every_year_and_keeps_its_figures(dash_duo, look_app, theme):
    dash_duo.start_server(look_app)
    viewport(dash_duo, 1280, 800)
    open_chart(dash_duo, LAYERED + f"&theme={theme}")
    driver = dash_duo.driver
    kpis_js = "return document.querySelectorAll('#perf-kpis .sl-kpi-value').length"
    figure_js = "return document.querySelector('{} .js-plotly-plot')?.data?.length || 0"
    # below the chart the figures are built once they come into view: not before
    until(lambda: driver.execute_script(kpis_js))
    assert driver.execute_script(figure_js.format("#perf-monthly")) == 0
    scroll_to(driver, "#perf-monthly")
    until(lambda: driver.execute_script(figure_js.format("#perf-monthly")) > 0)
    until(
        lambda: driver.execute_script(
            "return document.querySelectorAll('#perf-trades .ag-row').length"
        )
    )
    heatmap = driver.execute_script(
        "const g = document.querySelector('#perf-monthly .js-plotly-plot');"
        " return {years: g.data[0].y.length, height: g.layout.height,"
        " box: g.getBoundingClientRect().bottom,"
        " grid: document.querySelector('#perf-trades').getBoundingClientRect().top}"
    )
    assert heatmap["box"] <= heatmap["grid"] + 1, heatmap  # the trade grid starts below it
    labels = [b["text"] for b in boxes(dash_duo, "#perf-monthly", ".yaxislayer-above text")]
    assert len(labels) == heatmap["years"], labels  # every year's row is drawn
    # a refresh (another convention) keeps the old figures on show until the new ones come
    driver.execute_script(WATCH_JS)
    before = driver.execute_script("return document.querySelector('#perf-kpis').textContent")
    driver.execute_script(
        "const s = document.querySelector('#perf-preset'); s.value = 'quantstats';"
        " s.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    kpis = "return document.querySelector('#perf-kpis').textContent"
    until(lambda: driver.execute_script(kpis) != before)
    seen = driver.execute_script("clearInterval(window.slWatch); return window.slSeen")
    assert seen, "nothing sampled"
    hidden = [sample for sample in seen if sample[0] != "visible"]
    assert hidden == [], f"{len(hidden)} of {len(seen)} samples hidden (spinner: {seen[-1]})"
    assert dash_duo.get_logs() == []


@pytest.mark.parametrize("theme", THEMES)
def test_the_risk_return_labels_are_not_cut(dash_duo, look_app, theme):
    dash_duo.start_server(look_app)
    viewport(dash_duo, 1280, 800)
    open_chart(dash_duo, LAYERED + f"&theme={theme}")
    for link in dash_duo.find_elements("#panel-tabs .nav-link"):
        if link.text == "Comparison":
            dash_duo.driver.execute_script("arguments[0].click();", link)
    until(lambda: len(boxes(dash_duo, "#cmp-scatter", ".textpoint text")) == 2)
    (plot,) = boxes(dash_duo, "#cmp-scatter", ".main-svg:first-of-type")
    for label in boxes(dash_duo, "#cmp-scatter", ".textpoint text"):
        assert plot["x"] <= label["x"], (label, plot)
        assert label["r"] <= plot["r"], (label, plot)
        assert plot["y"] <= label["y"], (label, plot)


def test_a_bogus_signal_type_falls_back_to_every_type(dash_duo, look_app):
    dash_duo.start_server(look_app)
    open_chart(dash_duo, f"/?symbol=SP500&tf=1d&strat={EMA}&types=bogus")
    dash_duo.wait_for_contains_text("#view-problems", "bogus")
    assert "showing every type" in dash_duo.find_element("#view-problems").text
    checked = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#signal-types input')].map(i => i.checked)"
    )
    assert checked == [True] * 4
    until(
        lambda: any(
            t.get("name", "").startswith("ema_crossover") and len(t.get("x") or []) > 0
            for t in dash_duo.driver.execute_script(CHART_JS + ".data")
        )
    )  # the strategy's markers are drawn


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("STOCK", [["sat", "mon"], [21, 14]]),  # weekends and nights
        ("EURUSD", [["sat", "sun"]]),  # Saturday by pattern; Fri 22:00 - Sun 22:00 listed
    ],
)
def test_intraday_charts_hide_closed_hours_also_in_lod(dash_duo, look_app, symbol, expected):
    dash_duo.start_server(look_app)
    layout = open_chart(dash_duo, f"/?symbol={symbol}&tf=1h&ind=rsi")
    breaks = layout["xaxis"].get("rangebreaks") or []
    assert [b["bounds"] for b in breaks if "bounds" in b] == expected
    if symbol == "EURUSD":
        (listed,) = [b for b in breaks if "values" in b]
        assert listed["dvalue"] == 2 * 86_400_000
        assert all(v.endswith("22:00") for v in listed["values"])
    # the whole-history view hides them too, and says what it does not draw
    layout = open_chart(dash_duo, f"/?symbol={symbol}&tf=1h&ind=rsi&strat={EMA}&lod=1")
    until(
        lambda: "per bar" in str(dash_duo.driver.execute_script(CHART_JS + ".layout.title?.text"))
    )
    layout = dash_duo.driver.execute_script(CHART_JS + ".layout")
    assert layout["xaxis"].get("rangebreaks")
    dash_duo.wait_for_text_to_equal(
        "#lod-note",
        "Whole history (LOD): candles only; 1 strategy (its markers and trades) and 1 indicator"
        " not drawn",
    )
    assert dash_duo.get_logs() == []
