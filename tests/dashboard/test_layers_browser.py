"""The layered live page in a real headless Chromium: an indicator toggled on equals TA-Lib,
two strategies switched on show both marker sets (exactly their signals), the view lives in
the URL, the comparison table, an export download, the light theme and the LOD view."""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import talib

from config.settings import Settings
from dashboard.server import create_app
from database.repositories import CandleRepository
from services.chart_layers import strategy_key
from strategies.registry import create
from strategies.signals import SIGNAL_COLUMNS
from tests.dashboard.waits import WAIT_S, until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

FIGURE_JS = "return document.querySelector('#price-chart .js-plotly-plot').data"
LAYOUT_JS = "return document.querySelector('#price-chart .js-plotly-plot').layout"
EMA = strategy_key(create("ema_crossover", direction="both"))
RSI = strategy_key(create("rsi_reversion", direction="both"))


def traces(dash_duo) -> list[dict]:
    return dash_duo.driver.execute_script(
        "const g = document.querySelector('#price-chart .js-plotly-plot');"
        " return g && g.data ? g.data : []"
    )


def named(dash_duo, prefix: str) -> list[dict]:
    return [t for t in traces(dash_duo) if str(t.get("name", "")).startswith(prefix)]


def click_label(dash_duo, container: str, text: str) -> None:
    for label in dash_duo.find_elements(f"{container} label"):
        if label.text.strip().startswith(text):
            dash_duo.driver.execute_script("arguments[0].click();", label)
            return
    raise AssertionError(f"no {text!r} in {container}")


@pytest.fixture
def live_app(tmp_path: Path):
    """The default app with a fast feed whose replay does not start over during a test (a
    rewind would make the chart and the server's track disagree for a moment)."""
    settings = Settings.from_env(
        {
            "STRATLENS_DATA_DIR": str(tmp_path),
            "FEED_SPEED": "4",
            "FEED_UPDATES_PER_CANDLE": "2",
            "REFRESH_MS": "250",
            "REPLAY_BARS": "2000",
        }
    )
    app = create_app(settings)
    yield app
    app.server.extensions["stratlens"].close()


def js_click(dash_duo, element) -> None:
    """A click through the page's script: the element may be below the fold."""
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    dash_duo.driver.execute_script("arguments[0].click();", element)


def test_indicator_strategies_comparison_and_export(dash_duo, live_app, artifacts):
    services = live_app.server.extensions["stratlens"]
    dash_duo.start_server(live_app)
    dash_duo.driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": dash_duo.download_path}
    )
    until(lambda: len(named(dash_duo, "SP500")) == 1, timeout=WAIT_S)

    # an indicator from the picker: a sub-panel line equal to TA-Lib on the stored closes
    dash_duo.select_dcc_dropdown("#indicators", value="RSI 14")
    until(lambda: named(dash_duo, "RSI 14"), timeout=WAIT_S)
    until(lambda: "ind=rsi" in unquote(dash_duo.driver.current_url), timeout=WAIT_S)
    rsi = named(dash_duo, "RSI 14")[0]
    x = pd.to_datetime(rsi["x"]).tz_localize("UTC")
    with services.sessions() as session:
        stored = CandleRepository(session).frame("SP500", "1d", end=x[-1])
    expected = pd.Series(talib.RSI(stored["close"].to_numpy(), 14), index=stored.index)
    np.testing.assert_allclose(rsi["y"], expected.loc[x].to_numpy(), rtol=1e-9)

    # two strategies switched on: each its own markers, exactly its signals on the chart
    click_label(dash_duo, "#strategies", "ema_crossover")
    click_label(dash_duo, "#strategies", "rsi_reversion")
    until(lambda: named(dash_duo, "ema_crossover") and named(dash_duo, "rsi_reversion"), WAIT_S)
    until(lambda: "strat=" in dash_duo.driver.current_url, timeout=WAIT_S)
    track = services.tracks.sync("SP500", "1d")

    def marker_mismatches() -> list[str]:
        """What differs between the markers drawn and the strategies' signals in the chart's
        span (empty when they agree: the chart may still be taking a tick when first read)."""
        first = pd.Timestamp(traces(dash_duo)[0]["x"][0], tz="UTC")
        last = pd.Timestamp(traces(dash_duo)[0]["x"][-1], tz="UTC")
        problems = []
        for spec in (EMA, RSI):
            name = spec.partition("(")[0]
            # one marker trace per signal type, in SIGNAL_COLUMNS order
            shown = [t for t in named(dash_duo, name) if t.get("mode") == "markers"]
            if len(shown) != len(SIGNAL_COLUMNS) or not sum(len(t["x"]) for t in shown):
                problems.append(f"{name}: {len(shown)} marker traces")
                continue
            result = track.view([], [create(name, direction="both")]).results[spec]
            for trace, kind in zip(shown, SIGNAL_COLUMNS, strict=True):
                upto = pd.Timestamp(trace["x"][-1], tz="UTC") if trace["x"] else last
                expected_x = [
                    s.timestamp.strftime("%Y-%m-%d")
                    for s in result.signals
                    if s.signal_type == kind and first <= s.timestamp <= upto
                ]
                if trace["x"] != expected_x:
                    problems.append(f"{name} {kind}: {trace['x'][-3:]} != {expected_x[-3:]}")
        return problems

    until(lambda: not marker_mismatches(), timeout=WAIT_S, seen=marker_mismatches)

    # comparison: both strategies as columns, the best value per row starred
    for link in dash_duo.find_elements("#panel-tabs .nav-link"):
        if link.text == "Comparison":
            js_click(dash_duo, link)
    dash_duo.wait_for_contains_text("#cmp-table", "★", timeout=WAIT_S)
    table = dash_duo.find_element("#cmp-table").text
    assert "ema_crossover 12/26 · both" in table
    assert "rsi_reversion" in table
    assert "Sharpe Ratio" in table

    # export: the trades of the selected strategy as CSV, one row per trade of its backtest
    for link in dash_duo.find_elements("#panel-tabs .nav-link"):
        if link.text == "Performance":
            js_click(dash_duo, link)
    js_click(dash_duo, dash_duo.find_element("#export-menu .dropdown-toggle"))
    until(
        lambda: any(i.text == "Trades · CSV" for i in dash_duo.find_elements(".dropdown-item")),
        timeout=WAIT_S,
    )
    for item in dash_duo.find_elements(".dropdown-item"):
        if item.text == "Trades · CSV":
            js_click(dash_duo, item)
            break
    folder = Path(dash_duo.download_path)
    until(lambda: list(folder.glob("*_trades_*.csv")), timeout=WAIT_S)
    (path,) = folder.glob("*_trades_*.csv")
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    backtest = services.tracks.sync("SP500", "1d").backtest(
        create("ema_crossover", direction="both")
    )
    assert len(rows) >= 1
    assert len(rows) <= len(backtest.trades)  # the download was made a few bars ago at most
    assert float(rows[0]["entry_price"]) == pytest.approx(backtest.trades["entry_price"].iloc[0])

    dash_duo.driver.save_screenshot(str(artifacts / "live_layers.png"))
    assert dash_duo.get_logs() == []


def test_a_shared_link_opens_the_same_view_in_the_light_theme(dash_duo, live_app):
    dash_duo.start_server(live_app)
    query = f"?symbol=SP500&tf=1w&ind=macd&strat={EMA}&theme=light&forming=0&conf=0.3"
    dash_duo.driver.get(dash_duo.server_url + "/" + query)
    until(lambda: named(dash_duo, "MACD"), timeout=WAIT_S)
    assert (
        dash_duo.driver.execute_script(
            "return document.documentElement.getAttribute('data-bs-theme')"
        )
        == "light"
    )
    layout = dash_duo.driver.execute_script(LAYOUT_JS)
    assert layout["paper_bgcolor"].lower() in ("#ffffff", "white", "rgb(255, 255, 255)")
    assert dash_duo.find_element("#timeframe input[value='1w']").is_selected()
    assert traces(dash_duo)[1]["x"] == []  # the forming candle is hidden
    markers = [t for t in named(dash_duo, "ema_crossover") if t.get("mode") == "markers"]
    confidences = [c[1] for t in markers for c in t.get("customdata") or []]
    assert confidences
    assert min(confidences) >= 0.3
    assert dash_duo.get_logs() == []


def test_whole_history_level_of_detail_re_aggregates_on_zoom(dash_duo, live_app):
    services = live_app.server.extensions["stratlens"]
    dash_duo.start_server(live_app)
    dash_duo.driver.get(dash_duo.server_url + "/?symbol=DEMO&tf=1m&lod=1")
    until(lambda: named(dash_duo, "DEMO"), timeout=WAIT_S)
    until(lambda: "per bar" in str(dash_duo.driver.execute_script(LAYOUT_JS).get("title")), WAIT_S)
    candles = named(dash_duo, "DEMO")[0]
    assert len(candles["x"]) <= 2000
    with services.sessions() as session:
        stored = CandleRepository(session).frame("DEMO", "1m")
    # every bucket's high and low are the true extremes of the stored bars it holds (the last
    # bucket is still growing with the live feed: left out)
    starts = pd.to_datetime(candles["x"]).tz_localize("UTC")
    edges = np.searchsorted(stored.index, starts)
    highs = np.maximum.reduceat(stored["high"].to_numpy(), edges)[:-1]
    lows = np.minimum.reduceat(stored["low"].to_numpy(), edges)[:-1]
    np.testing.assert_allclose(candles["high"][:-1], highs, rtol=1e-9)
    np.testing.assert_allclose(candles["low"][:-1], lows, rtol=1e-9)
    first, last = candles["x"][0], candles["x"][len(candles["x"]) // 10]
    dash_duo.driver.execute_script(
        "const g = document.querySelector('#price-chart .js-plotly-plot');"
        f" window.Plotly.relayout(g, {{'xaxis.range': ['{first}', '{last}']}});"
    )
    # re-aggregated over the zoomed range: finer buckets than before
    step_before = pd.Timestamp(candles["x"][1]) - pd.Timestamp(candles["x"][0])

    def step() -> pd.Timedelta:
        x = named(dash_duo, "DEMO")[0]["x"]
        return pd.Timestamp(x[1]) - pd.Timestamp(x[0])

    until(lambda: step() < step_before, timeout=WAIT_S)
    zoomed = named(dash_duo, "DEMO")[0]
    assert pd.Timestamp(zoomed["x"][0]) >= pd.Timestamp(first) - step_before
    assert dash_duo.get_logs() == []
