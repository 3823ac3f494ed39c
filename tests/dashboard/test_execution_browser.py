"""The Execution page in a real headless Chromium, on accounts made by real processes on the
app's database: a paper replay (``app.py paper replay``) and a desk's orders imported from a
CSV (``app.py trades import --format orders-csv``, scripts/sample_orders.py). What the browser
draws (figures, key figures, the grid) carries the numbers ``app.py tca --account ACC --json``
prints, run as a real process on the same database. Waits for conditions, never fixed times."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from config.settings import Settings
from dashboard.server import create_app
from tests.cli.test_paper_cli import ROOT, app
from tests.dashboard.test_attribution_browser import choose, text
from tests.dashboard.waits import until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("browser_required")]

PAPER, DESK = "p1", "desk"


@pytest.fixture
def execution_app(live_settings: Settings, tmp_path) -> Iterator[Any]:
    """The app on a fresh data folder, then its accounts made by the command line."""
    dash_app = create_app(live_settings, start_feeds=False)  # the database migrated and loaded
    data = live_settings.data_dir
    replay = app(data, "paper", "replay", "--symbol", "SP500", "--timeframe", "1d",
                 "--strategy", "sma_crossover", "--set", "fast=5", "--set", "slow=20",
                 "--slippage-bps", "2", "--account", PAPER, "--start", "2015-01-01")  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    orders = tmp_path / "desk.csv"
    made = subprocess.run(
        [sys.executable, "scripts/sample_orders.py", str(orders), "--trips", "150"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    done = app(data, "trades", "import", str(orders), "--format", "orders-csv", "--account", DESK)
    assert done.returncode == 0, done.stderr
    yield dash_app
    dash_app.server.extensions["stratlens"].close()


def tca_json(data_dir, account: str) -> dict[str, Any]:
    done = app(data_dir, "tca", "--account", account, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def figure(dash_duo: Any, graph: str) -> list[dict[str, Any]]:
    """The traces the browser draws in ``graph`` (plotly's full data, typed arrays as lists)."""
    return dash_duo.driver.execute_script(
        """const g = document.querySelector(arguments[0] + ' .js-plotly-plot');
        if (!g || !g._fullData) return [];
        const list = v => v == null ? null : Array.from(v, x => ArrayBuffer.isView(x) ||
            Array.isArray(x) ? Array.from(x) : x);
        return g._fullData.map(t => ({name: t.name, type: t.type, x: list(t.x), y: list(t.y),
                                 text: list(t.text)}));""",
        f"#{graph}",
    )


def grid_rows(dash_duo: Any) -> list[dict[str, Any]]:
    """Every row the TCA grid holds (all pages), through AG Grid's API."""
    return dash_duo.driver.execute_script(
        """const api = dash_ag_grid.getApi('ex-orders'); const rows = [];
        if (api) api.forEachNode(n => rows.push(n.data)); return rows;"""
    )


def drawn_for(dash_duo: Any, account: str, orders: int) -> None:
    """Until the status line names ``account`` with its orders and every figure holds traces."""
    until(
        lambda: text(dash_duo, "#ex-status").startswith(f"account {account} ("),
        seen=lambda: text(dash_duo, "#ex-status"),
    )
    until(lambda: f"{orders:,} orders" in text(dash_duo, "#ex-status"))
    for graph in ("ex-slippage", "ex-shortfall", "ex-markouts", "ex-quality", "ex-breakdown"):
        until(lambda graph=graph: figure(dash_duo, graph))
    until(lambda: len(grid_rows(dash_duo)) == orders)


def weighted(frame: pd.DataFrame, metric: str, weight: str) -> float:
    known = frame[[metric, weight]].dropna()
    return float((known[metric] * known[weight]).sum() / known[weight].sum())


def check_figures(dash_duo: Any, document: dict[str, Any], by: str) -> pd.DataFrame:
    """The histogram, the waterfall, the quality bars, the breakdown by ``by``, the key
    figures and the grid against the CLI's document; its orders as a frame."""
    orders = pd.DataFrame(document["orders"]).astype({"arrival_slippage_bps": float})
    slippage = orders["arrival_slippage_bps"].dropna()
    hist, mean, median = figure(dash_duo, "ex-slippage")
    assert sorted(hist["x"]) == pytest.approx(sorted(slippage), rel=1e-12)
    assert mean["name"] == f"mean {slippage.mean():+,.2f}"
    assert median["name"] == f"median {slippage.median():+,.2f}"
    # the waterfall: notional-weighted over the orders where every part is known
    parts = ["is_delay_bps", "is_trading_bps", "is_opportunity_bps", "is_fees_bps", "is_bps"]
    full = orders.dropna(subset=[*parts, "notional"])
    expected = [weighted(full, p, "notional") for p in parts]
    (fall,) = figure(dash_duo, "ex-shortfall")
    assert fall["y"] == pytest.approx(expected, rel=1e-9)
    assert sum(expected[:-1]) == pytest.approx(expected[-1], rel=1e-9)
    # decision quality: the round trips' labels counted
    trips = pd.Series([t["decision_quality"] for t in document["round_trips"]])
    bars = {t["name"]: sum(t["y"]) for t in figure(dash_duo, "ex-quality")}
    assert bars == {q: int((trips == q).sum()) for q in ("good", "neutral", "bad")}
    # fill rate, latency and cost by the group: the CLI's aggregates
    aggregates = pd.DataFrame(document["aggregates"]).query("dimension == @by")
    stat = aggregates.set_index(["metric", "group"])["weighted_mean"]
    fill, latency, slip, shortfall = figure(dash_duo, "ex-breakdown")
    assert sorted(fill["x"]) == sorted(aggregates["group"].unique())
    assert fill["y"] == pytest.approx([stat["fill_rate", g] * 100 for g in fill["x"]])
    assert latency["y"] == pytest.approx([stat["latency_s", g] for g in latency["x"]])
    assert slip["y"] == pytest.approx([stat["arrival_slippage_bps", g] for g in slip["x"]])
    assert shortfall["y"] == pytest.approx([stat["is_bps", g] for g in shortfall["x"]])
    # the key figures: notional-weighted over every order
    slip_all = weighted(orders, "arrival_slippage_bps", "filled_notional")
    assert text(dash_duo, "#ex-kpi-slippage") == f"{slip_all:+,.2f} bps"
    assert (
        text(dash_duo, "#ex-kpi-shortfall") == f"{weighted(orders, 'is_bps', 'notional'):+,.2f} bps"
    )
    # the grid: every order with the CLI's costs
    rows = {r["order_id"]: r for r in grid_rows(dash_duo)}
    assert set(rows) == set(orders["order_id"])
    for order in orders.to_dict("records"):
        row = rows[order["order_id"]]
        for field in ("arrival_slippage_bps", "is_bps", "vs_vwap_bps", "markout_5m_bps"):
            value = order[field]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                assert row.get(field) is None, (order["order_id"], field)
            else:
                assert row[field] == pytest.approx(value, rel=1e-12), (order["order_id"], field)
    return orders


def test_the_execution_page_draws_the_tca_clis_numbers(dash_duo, execution_app, artifacts):
    data = execution_app.server.extensions["stratlens"].settings.data_dir
    dash_duo.start_server(execution_app)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/execution?account={DESK}&by=venue")
    desk = tca_json(data, DESK)
    drawn_for(dash_duo, DESK, len(desk["orders"]))
    assert "(orders-csv)" in text(dash_duo, "#ex-status")
    orders = check_figures(dash_duo, desk, "venue")
    # the orders on DEMO2 (no bars stored): their reason listed, with how many
    without = orders["reason"].fillna("").str.contains("market data: no candles").sum()
    assert without > 0
    reason = text(dash_duo, "#ex-reasons-list li[data-reason^='market data: no candles']")
    assert reason.startswith(f"{without:,} market data: no candles for the symbol")
    # no model stored: the page says how to train one
    assert "python app.py costmodel train --account desk" in text(dash_duo, "#ex-model-note")
    dash_duo.driver.save_screenshot(str(artifacts / "execution_page_1280x800.png"))

    # grouped by algo: the breakdown follows
    choose(dash_duo, "#ex-by", "algo")
    until(lambda: text(dash_duo, "#ex-breakdown-note").startswith("by algo"))
    until(
        lambda: sorted(figure(dash_duo, "ex-breakdown")[0]["x"]) == sorted(orders["algo"].unique())
    )
    check_figures(dash_duo, desk, "algo")
    # the download: the decision dataset, one row per order
    dash_duo.find_element("#ex-download-button").click()
    until(
        lambda: text(dash_duo, "#ex-download-note").startswith("desk-decisions.parquet: "),
        seen=lambda: text(dash_duo, "#ex-download-note"),
    )

    # the paper account: its markouts per horizon are its orders' (one fill each)
    choose(dash_duo, "#ex-account", PAPER)
    paper = tca_json(data, PAPER)
    drawn_for(dash_duo, PAPER, len(paper["orders"]))
    choose(dash_duo, "#ex-by", "side")
    until(lambda: figure(dash_duo, "ex-breakdown")[0]["x"] == ["buy", "sell"])
    orders = check_figures(dash_duo, paper, "side")
    assert set(orders["fills"]) == {1}
    _band, curve = figure(dash_duo, "ex-markouts")
    horizons = ("1m", "5m", "60m")
    means = [orders[f"markout_{h}_bps"].astype(float).mean() for h in horizons]
    assert curve["y"] == pytest.approx(means, rel=1e-12)
    counts = [orders[f"markout_{h}_bps"].notna().sum() for h in horizons]
    assert curve["text"] == [f"n={n:,}" for n in counts]

    # the light theme recolours the figures
    dash_duo.find_element("#theme-switch").click()
    until(
        lambda: (
            dash_duo.driver.execute_script(
                "return document.querySelector('#ex-shortfall .js-plotly-plot').layout"
                ".paper_bgcolor"
            )
            == "#ffffff"
        )
    )
    assert dash_duo.get_logs() == []


def test_an_empty_database_says_how_to_get_orders(dash_duo, live_settings):
    dash_app = create_app(live_settings, start_feeds=False)
    try:
        dash_duo.start_server(dash_app)
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}/execution")
        until(lambda: "no account has orders yet" in text(dash_duo, "#ex-status"))
        assert dash_duo.find_element("#nav-execution").text == "Execution"
        assert dash_duo.get_logs() == []
    finally:
        dash_app.server.extensions["stratlens"].close()
