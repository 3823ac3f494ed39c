"""The Attribution page in a real headless Chromium, on a paper account (a replay of SP500 1d
through PaperTrading.replay) and a bot account (a CSV of intraday fills imported through
TrackingService.import_file): the figures the browser draws carry the numbers of
TrackingService.attribution / performance, which ``app.py attribution --json`` and
``app.py performance --json`` print. Waits for conditions, never fixed times."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from config.settings import Settings
from dashboard.server import create_app
from market.sample_data import load_sample
from scripts.sample_fills import intraday_fills
from services.paper import PaperTrading, ReplayRequest
from services.tracking import TrackingService
from tests.dashboard.waits import until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

PAPER, BOT = "p1", "bot-sp500"


@pytest.fixture
def attribution_app(live_settings: Settings, tmp_path) -> Iterator[tuple[Any, TrackingService]]:
    app = create_app(live_settings, start_feeds=False)
    services = app.server.extensions["stratlens"]
    PaperTrading(services.sessions).replay(
        ReplayRequest("SP500", "1d", "sma_crossover", account=PAPER)
    )
    tracking = TrackingService(services.sessions)
    path = tmp_path / "bot.csv"
    intraday_fills(load_sample("SP500"), trips=80, seed=11).to_csv(path, index=False)
    tracking.import_file(path, "csv", BOT)
    yield app, tracking
    services.close()


def figure(dash_duo: Any, graph: str) -> list[dict[str, Any]]:
    """The traces the browser draws in ``graph``: plotly's full data (the figure's base64
    arrays decoded into typed arrays), as lists; NaN as None."""
    return dash_duo.driver.execute_script(
        """const g = document.querySelector(arguments[0] + ' .js-plotly-plot');
        if (!g || !g._fullData) return [];
        const list = v => v == null ? null : Array.from(v, x => ArrayBuffer.isView(x) ||
            Array.isArray(x) ? Array.from(x) : x);
        return g._fullData.map(t => ({name: t.name, type: t.type, x: list(t.x), y: list(t.y),
                                 z: list(t.z), customdata: list(t.customdata)}));""",
        f"#{graph}",
    )


def text(dash_duo: Any, css: str) -> str:
    return " ".join(e.text for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, css))


def choose(dash_duo: Any, css: str, value: str) -> None:
    until(
        lambda: (
            value in [o.get_attribute("value") for o in Select(dash_duo.find_element(css)).options]
        )
    )
    Select(dash_duo.find_element(css)).select_by_value(value)


def drawn_for(dash_duo: Any, account: str, trips: int) -> None:
    """Until the status line names ``account`` with its round trips and every figure holds
    traces (a figure of the previous account would have other numbers)."""
    until(
        lambda: text(dash_duo, "#at-status").startswith(f"account {account} ("),
        seen=lambda: text(dash_duo, "#at-status"),
    )
    until(lambda: f"{trips:,} round trips" in text(dash_duo, "#at-status"))
    for graph in ("at-labels", "at-heatmap", "at-regime", "at-size", "at-risk"):
        until(lambda graph=graph: figure(dash_duo, graph))


def check_label_bars(dash_duo: Any, pnl_rows: list[dict[str, Any]]) -> None:
    rows = {r["group"]: r for r in pnl_rows if r["group"] != "all"}
    bars, win = until(
        lambda: len(figure(dash_duo, "at-labels")) == 2 and figure(dash_duo, "at-labels")
    )
    assert dict(zip(bars["x"], bars["y"], strict=True)) == {
        g: r["net_pnl"] for g, r in rows.items()
    }
    assert dict(zip(win["x"], win["y"], strict=True)) == pytest.approx(
        {g: r["win_rate"] * 100 for g, r in rows.items()}, rel=1e-12
    )


def check_heatmap(dash_duo: Any, net_pnl: float, trades: int, hours: dict[str, float]) -> None:
    (heat,) = figure(dash_duo, "at-heatmap")
    cells = [(x, v) for row in heat["z"] for x, v in zip(heat["x"], row, strict=True)]
    assert math.fsum(v for _, v in cells if v is not None) == pytest.approx(net_pnl, rel=1e-9)
    assert sum(sum(row) for row in heat["customdata"]) == trades
    for hour, net in hours.items():  # each column is the CLI's by-hour row
        column = math.fsum(v for x, v in cells if x == hour and v is not None)
        assert column == pytest.approx(net, rel=1e-9, abs=1e-9)


def test_the_attribution_page_draws_the_clis_numbers(dash_duo, attribution_app, artifacts):
    app, tracking = attribution_app
    dash_duo.start_server(app)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/attribution")
    # the page opens on the first account (the bot's) and its symbol as the benchmark
    until(lambda: text(dash_duo, "#at-status").startswith(f"account {BOT} (csv)"))
    assert Select(dash_duo.find_element("#at-benchmark")).first_selected_option.text == "SP500"
    choose(dash_duo, "#at-account", PAPER)
    cli = tracking.attribution(PAPER, by="label", benchmark="NASDAQ")
    summary = tracking.performance(PAPER)["periods"][0]["trade_summary"]
    drawn_for(dash_duo, PAPER, cli["trips"])
    choose(dash_duo, "#at-benchmark", "NASDAQ")
    assert f"net PnL {summary['net_pnl']:,.2f}" in text(dash_duo, "#at-status")
    assert f"win rate {summary['win_rate'] * 100:.1f}%" in text(dash_duo, "#at-status")

    # the label bars are the "pnl" rows; the heatmap's cells the net PnL, by hour as the CLI
    check_label_bars(dash_duo, cli["pnl"])
    by_hour = tracking.attribution(PAPER, by="hour")["pnl"]
    hours = {r["group"]: r["net_pnl"] for r in by_hour if r["group"] != "all"}
    check_heatmap(dash_duo, summary["net_pnl"], summary["trades"], hours)
    # the regime bars are the "pnl" rows by regime; risk the variance shares
    regime = {r["group"]: r["net_pnl"] for r in tracking.attribution(PAPER, by="regime")["pnl"]}
    (bars,) = figure(dash_duo, "at-regime")
    assert dict(zip(bars["x"], bars["y"], strict=True)) == {
        g: v for g, v in regime.items() if g != "all"
    }
    (risk,) = figure(dash_duo, "at-risk")
    shares = {r["group"]: r["variance_share"] * 100 for r in cli["risk"] if r["group"] != "all"}
    assert dict(zip(risk["y"], risk["x"], strict=True)) == pytest.approx(shares, rel=1e-12)
    # alpha and beta to 4 decimals, under the convention named, the paper account's capital
    bench = cli["benchmark"]
    until(
        lambda: text(dash_duo, "#at-alpha-value") == f"{bench['alpha']:,.4f}",
        seen=lambda: text(dash_duo, "#at-alpha-card"),
    )
    assert text(dash_duo, "#at-beta-value") == f"{bench['beta']:,.4f}"
    assert text(dash_duo, "#at-convention").startswith(
        f"convention empyrical · {bench['observations']:,} paired days · capital 10,000.00"
    )
    momentum = text(dash_duo, "#at-factor-table tr[data-term='momentum']")
    assert f"{bench['factors'][3]['t_stat']:,.2f}" in momentum
    dash_duo.driver.save_screenshot(str(artifacts / "attribution_page_1280x800.png"))

    # a round trip clicked: its fills, context, labels and the bars around it
    first = "#at-trades .ag-center-cols-container .ag-row[row-index='0']"
    until(lambda: dash_duo.find_element(f"{first} [col-id='net_pnl']")).click()
    until(lambda: text(dash_duo, "#at-detail-heading").startswith("#1 long SP500"))
    trips = tracking.trips(tracking.fills(PAPER))
    entry = trips.sort_values("entry_time").iloc[0]
    assert len(dash_duo.driver.find_elements(By.CSS_SELECTOR, "#at-detail-fills tbody tr")) == 2
    assert f"net PnL {entry['net_pnl']:,.2f}" in text(dash_duo, "#at-detail-heading")
    for label in entry["labels"]:
        assert label in text(dash_duo, "#at-detail-labels")
    assert "volatility regime" in text(dash_duo, "#at-detail-context")
    chart = until(lambda: figure(dash_duo, "at-detail-chart"))
    assert chart[0]["type"] == "candlestick"
    buy = next(t for t in chart if t["name"] == "buy")
    assert buy["y"] == [pytest.approx(entry["entry_price"], rel=1e-12)]

    # the bot account beside it: no capital of its own until one is typed
    choose(dash_duo, "#at-account", BOT)
    cli = tracking.attribution(BOT, by="label", benchmark="NASDAQ", capital=25_000.0)
    drawn_for(dash_duo, BOT, cli["trips"])
    choose(dash_duo, "#at-benchmark", "NASDAQ")
    assert "(csv)" in text(dash_duo, "#at-status")
    until(lambda: "enter the account's capital" in text(dash_duo, "#at-alpha-card"))
    field = dash_duo.find_element("#at-capital")
    field.send_keys("25000\n")
    bench = cli["benchmark"]
    until(
        lambda: text(dash_duo, "#at-alpha-value") == f"{bench['alpha']:,.4f}",
        seen=lambda: text(dash_duo, "#at-alpha-card"),
    )
    assert text(dash_duo, "#at-beta-value") == f"{bench['beta']:,.4f}"
    check_label_bars(dash_duo, cli["pnl"])
    summary = tracking.performance(BOT)["periods"][0]["trade_summary"]
    hours = {
        r["group"]: r["net_pnl"]
        for r in tracking.attribution(BOT, by="hour")["pnl"]
        if r["group"] != "all"
    }
    check_heatmap(dash_duo, summary["net_pnl"], summary["trades"], hours)

    # a label filter: the grid keeps the round trips carrying it, the bars follow
    label_rows = {r["group"]: r for r in cli["pnl"]}
    label = max(
        (g for g in label_rows if g not in ("all", "(none)")), key=lambda g: label_rows[g]["trades"]
    )
    choose(dash_duo, "#at-label", label)
    count = label_rows[label]["trades"]
    until(
        lambda: (
            f"label {label}" in text(dash_duo, "#at-status")
            and f"{count:,} round trips" in text(dash_duo, "#at-status")
        )
    )
    until(lambda: f"of {count}" in text(dash_duo, "#at-trades .ag-paging-row-summary-panel"))
    trips = tracking.trips(tracking.fills(BOT))
    kept = trips.loc[[label in labels for labels in trips["labels"]]]
    (heat,) = figure(dash_duo, "at-heatmap")
    drawn = math.fsum(v for row in heat["z"] for v in row if v is not None)
    assert drawn == pytest.approx(kept["net_pnl"].sum(), rel=1e-9)

    # the light theme recolours the figures
    dash_duo.find_element("#theme-switch").click()
    until(
        lambda: (
            dash_duo.driver.execute_script(
                "return document.querySelector('#at-labels .js-plotly-plot').layout.paper_bgcolor"
            )
            == "#ffffff"
        )
    )
    assert dash_duo.get_logs() == []


def test_an_empty_database_says_how_to_get_trades(dash_duo, live_settings):
    app = create_app(live_settings, start_feeds=False)
    try:
        dash_duo.start_server(app)
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}/attribution")
        until(lambda: "no account has trades yet" in text(dash_duo, "#at-status"))
        assert dash_duo.get_logs() == []
    finally:
        app.server.extensions["stratlens"].close()
