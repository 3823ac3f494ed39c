"""The live page's other callbacks as plain functions, on a real SQLite database: URL <->
controls, the indicator and strategy pickers, the performance and comparison panels, the
trade click, exports, the level-of-detail chart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dash import no_update

from analytics.metrics import compute_metrics
from components.charts.lod import lod_line_positions
from components.charts.theme import DARK
from components.panels.performance import MAX_LINE_POINTS, kpi_values
from config.settings import Settings
from dashboard.pages.live.chart import LiveContext, build_lod_chart
from dashboard.pages.live.controls import add_spec, sync_view, view_from_controls
from dashboard.pages.live.panels import (
    comparison_panel,
    export_payload,
    performance_panel,
)
from dashboard.pages.live.view_state import ViewState
from database.repositories import CandleRepository
from services.chart_layers import strategy_key
from services.runtime import Services, build_services
from strategies.registry import create
from tests.dashboard.clientside import NO_UPDATE, run_clientside

EMA = strategy_key(create("ema_crossover", direction="both"))
SMA = strategy_key(create("sma_crossover", direction="both"))


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings.from_env({"STRATLENS_DATA_DIR": str(tmp_path), "FEEDS": "none"})
    services = build_services(settings)
    yield services
    services.close()


def controls(**changes) -> ViewState:
    base = {"symbol": "SP500", "timeframe": "1d"}
    return ViewState(**(base | changes))


def test_a_url_sets_the_controls_and_names_what_it_ignored(services):
    out = sync_view(
        "url",
        "?symbol=NASDAQ&tf=1w&ind=macd&ind=nope&strat=sma_crossover(fast=5)&conf=0.25&theme=light",
        controls(),
        services.market_data,
    )
    search, symbol, timeframe, indicators, strategies, *rest = out
    _types, confidence, forming, light, lod, executions, *rest = rest
    ind_options, strat_options, problems, shown = rest
    assert search is no_update
    assert (symbol, timeframe) == ("NASDAQ", "1w")
    assert indicators == ["macd(fast=12,signal=9,slow=26)"]
    assert strategies == [strategy_key(create("sma_crossover", fast=5))]
    assert (confidence, forming, light, lod, executions) == (0.25, True, True, False, "")
    assert strategies[0] in [o["value"] for o in strat_options]  # the parameter set is offered
    assert "macd(fast=12,signal=9,slow=26)" in [o["value"] for o in ind_options]
    assert "indicator 'nope' ignored" in problems
    assert shown is True


def test_an_unknown_symbol_or_timeframe_in_the_url_keeps_the_current_one(services):
    out = sync_view("url", "?symbol=DOGE&tf=1m", controls(), services.market_data)
    assert (out[1], out[2]) == ("SP500", "1d")
    assert "symbol 'DOGE' ignored" in out[13]
    assert "timeframe '1m' ignored" in out[13]


def test_a_control_writes_the_url(services):
    view = view_from_controls(
        "SP500", "1d", ["rsi(timeperiod=14)"], [EMA], ["entry_long"], 0.5, False, False, True,
        "demo",
    )  # fmt: skip
    out = sync_view("indicators", "", view, services.market_data)
    assert out[0] == view.to_query()
    assert all(value is no_update for value in out[1:])
    again, problems = ViewState.from_query(out[0])
    assert again == view
    assert problems == []
    # the same URL again: nothing to write
    assert sync_view("lod", view.to_query(), view, services.market_data)[0] is no_update


def test_the_pickers_add_validated_canonical_specs():
    value, options, error = add_spec(
        "indicator", "ema", "ema(timeperiod=30)", ["rsi(timeperiod=14)"]
    )
    assert value == ["rsi(timeperiod=14)", "ema(timeperiod=30)"]
    assert error == ""
    assert "ema(timeperiod=30)" in [o["value"] for o in options]
    value, _, error = add_spec("indicator", "ema", "timeperiod=1", [])
    assert value is no_update
    assert "timeperiod=1 is out of range" in error
    value, options, error = add_spec("strategy", "ema_crossover", "fast=9,slow=21", [EMA])
    added = strategy_key(create("ema_crossover", fast=9, slow=21))
    assert value == [EMA, added]
    assert error == ""
    _, _, error = add_spec("strategy", None, "", [])
    assert "choose" in error


def test_performance_panel_shows_the_metrics_of_the_strategy_over_the_chart(services):
    cards, figure, distribution, monthly, rows, decimals = performance_panel(
        services.tracks, "SP500", "1d", EMA, "quantstats", DARK
    )
    backtest = services.tracks.sync("SP500", "1d").backtest(
        create("ema_crossover", direction="both")
    )
    metrics = compute_metrics(
        backtest.equity, backtest.trades, benchmark=backtest.benchmark, preset="quantstats",
        warmup_bars=create("ema_crossover").warmup - 1,
    )  # fmt: skip
    texts = [k.text for k in kpi_values(metrics, backtest.settings.cash)]
    shown = json.dumps(cards.to_plotly_json(), default=str, ensure_ascii=False)
    for text in texts:
        assert text in shown
    assert len(rows) == len(backtest.trades)
    assert rows[0]["entry_ms"] == backtest.trades["entry_time"].iloc[-1].value // 10**6  # newest
    assert decimals == 2
    equity = next(t for t in figure.data if t.name == "Equity")
    # 5,031 daily bars: drawn from the extremes of runs of bars (lod_line_positions)
    values = backtest.equity.to_numpy()
    keep = lod_line_positions(values, MAX_LINE_POINTS)
    assert len(values) > MAX_LINE_POINTS >= len(keep) == len(equity.y)
    np.testing.assert_allclose(np.asarray(equity.y, dtype=float), values[keep])
    assert min(equity.y) == values.min()
    assert max(equity.y) == values.max()
    assert distribution.data
    assert monthly.data


def test_comparison_marks_the_best_and_overlays_every_strategy(services):
    table, equity, drawdown, correlation, scatter = comparison_panel(
        services.tracks, "SP500", "1d", [EMA, SMA], "backtesting.py", DARK,
        {EMA: "EMA", SMA: "SMA"},
    )  # fmt: skip
    text = json.dumps(table.to_plotly_json(), default=str, ensure_ascii=False)
    assert "★" in text
    assert {t.name for t in equity.data} == {"EMA", "SMA"}
    assert {t.name for t in drawdown.data} == {"EMA", "SMA"}
    z = np.asarray(correlation.data[0].z, dtype=float)
    assert z.shape == (2, 2)
    np.testing.assert_allclose(np.diag(z), 1.0)
    assert len(scatter.data) >= 1


def test_a_trade_click_zooms_to_that_trade_in_the_browser():
    rows = [{"id": 1, "entry_ms": 10, "exit_ms": 20}, {"id": 2, "entry_ms": 30, "exit_ms": 90}]
    zoom = "window.dash_clientside.stratlens.tradeZoom"
    outcome = run_clientside(
        f"const rows = {json.dumps(rows)};"
        f"console.log(JSON.stringify([{zoom}({{rowId: '2', colId: 'pnl'}}, rows),"
        f" {zoom}({{rowId: '7'}}, rows), {zoom}(null, rows)]));"
    )
    assert outcome == [[30, 90], NO_UPDATE, NO_UPDATE]


def test_live_trade_rows_keep_their_number_as_trades_close(services):
    """Row ids count from the first trade, shown newest first: a new trade adds a row without
    renumbering the others (a clicked row is the trade it showed)."""
    spec = EMA
    rows = performance_panel(services.tracks, "SP500", "1d", spec, "backtesting.py", DARK)[4]
    ids = [row["id"] for row in rows]
    assert ids == list(range(len(rows), 0, -1))
    assert rows[0]["entry_ms"] >= rows[-1]["entry_ms"]


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_exports_of_the_selected_strategy(services, fmt):
    payload = export_payload(services.tracks, "SP500", "1d", EMA, "backtesting.py", "trades", fmt)
    assert payload["filename"].startswith("ema_crossover_SP500_1d_trades_")
    assert payload["filename"].endswith(f".{fmt}")
    assert payload["base64"] is True
    signals = export_payload(services.tracks, "SP500", "1d", EMA, "backtesting.py", "signals", fmt)
    assert signals["filename"].startswith("ema_crossover_SP500_1d_signals_")


def test_level_of_detail_chart_keeps_true_highs_and_lows(services):
    live = LiveContext(services.market_data, services.tracks, 5000)
    view = ViewState(symbol="DEMO", timeframe="1m", lod=True)
    figure, state = build_lod_chart(live, view)
    candles = figure.data[0]
    assert len(candles.x) <= 2000
    assert state["lod"] > 1
    with services.sessions() as session:
        stored = CandleRepository(session).frame("DEMO", "1m")
    starts = pd.to_datetime(list(candles.x)).tz_localize("UTC")
    edges = np.searchsorted(stored.index, starts)
    np.testing.assert_allclose(candles.high, np.maximum.reduceat(stored["high"].to_numpy(), edges))
    np.testing.assert_allclose(candles.low, np.minimum.reduceat(stored["low"].to_numpy(), edges))
    # zoomed in: finer buckets over the range only
    x0, x1 = candles.x[100], candles.x[140]
    zoomed, _ = build_lod_chart(live, view, (x0, x1))
    z = zoomed.data[0]
    assert pd.Timestamp(z.x[0]) >= pd.Timestamp(x0)
    assert pd.Timestamp(z.x[1]) - pd.Timestamp(z.x[0]) < pd.Timestamp(candles.x[1]) - pd.Timestamp(
        candles.x[0]
    )


def test_the_formulas_page_serves_every_kpi_anchor(tmp_path):
    from components.panels.performance import FORMULAS
    from dashboard.pages.formulas import FORMULAS_URL
    from dashboard.server import create_app

    settings = Settings.from_env({"STRATLENS_DATA_DIR": str(tmp_path), "FEEDS": "none"})
    app = create_app(settings, start_feeds=False)
    try:
        response = app.server.test_client().get(FORMULAS_URL)
        page = response.data.decode()
    finally:
        app.server.extensions["stratlens"].close()
    assert response.status_code == 200
    assert "<table>" in page
    assert "<h1>How StratLens measures a strategy</h1>" in page  # for a trader, then the rest
    assert '<a class="nav-link" href="/">Live</a>' in page  # the app's navbar: the way back
    assert "back to the charts" in page
    contents = re.findall(r'<li><a href="#([^"]+)">', page)
    assert len(contents) >= 4
    for anchor in contents:
        assert f'id="{anchor}"' in page, anchor
    assert page.index("<details") > page.index('id="return-and-risk"')  # the API comes last
    for formula in FORMULAS.values():
        assert f'id="{formula.anchor}"' in page, formula.anchor


def test_a_tick_leaves_only_when_the_last_was_answered_and_the_live_page_shows():
    """gateTick: one request in flight per tab; none from another page or a hidden tab; a
    request unanswered for 30 s (a lost connection) no longer holds the next back."""
    outcome = run_clientside(
        "const gate = window.dash_clientside.stratlens.gateTick; const seen = [];"
        "let now = 1000000; Date.now = () => now;"
        "seen.push(gate(1, false, '/'));"  # sent
        "seen.push(gate(2, true, '/'));"  # the first is in flight
        "now += 29000; seen.push(gate(3, true, '/'));"  # still within 30 s
        "now += 2000; seen.push(gate(4, true, '/'));"  # unanswered for 31 s: sent again
        "seen.push(gate(5, false, '/backtest'));"  # another page shows
        "document.visibilityState = 'hidden'; seen.push(gate(6, false, '/'));"
        "document.visibilityState = 'visible'; seen.push(gate(7, false, '/'));"
        "console.log(JSON.stringify(seen));"
    )
    assert outcome == [1, NO_UPDATE, NO_UPDATE, 4, NO_UPDATE, NO_UPDATE, 7]


def test_the_status_turns_amber_when_the_server_has_not_answered_for_two_refreshes():
    state = {"s": "SP500", "tf": "1d", "st": "live", "fk": "replay", "last": 0, "v": 1}
    outcome = run_clientside(
        "const status = window.dash_clientside.stratlens.status;"
        "let now = 5000000; Date.now = () => now;"
        f"const state = {json.dumps(state)}; const seen = [];"
        "seen.push(status(state, false, 1, 1000, null));"  # answered now
        "now += 1500; seen.push(status(state, true, 2, 1000, null));"  # in flight 1.5 s
        "now += 1500; seen.push(status(state, true, 3, 1000, null));"  # 3 s: late
        "now += 100; seen.push(status(state, false, 4, 1000, null));"  # answered
        "console.log(JSON.stringify(seen.map(s => [s[0], s[2]])));"
    )
    badges = [badge for _, badge in outcome]
    assert badges == ["LIVE", "LIVE", "DELAYED", "LIVE"]
    assert "delayed: no update from the server for 3 s" in outcome[2][0]
    assert "delayed" not in outcome[3][0]


def test_the_status_time_is_the_last_answer_and_stands_still_while_none_comes():
    """'updated' is when an answer came (a new chart state, or the tick's request ended), not
    the browser's clock: while the server is silent it stays put and the delay grows."""
    state = {"s": "SP500", "tf": "1d", "st": "live", "fk": "replay", "last": 0, "v": 1}
    outcome = run_clientside(
        "const status = window.dash_clientside.stratlens.status;"
        "let now = Date.UTC(2024, 0, 2, 3, 4, 5); Date.now = () => now;"
        f"const state = {json.dumps(state)}; const seen = [];"
        "seen.push(status(state, false, 1, 1000, null));"  # 03:04:05 the chart state arrives
        "now += 1000; seen.push(status(state, true, 2, 1000, null));"  # a tick goes out
        "now += 3000; seen.push(status(state, true, 3, 1000, null));"  # 03:04:09: 4 s late
        "now += 6000; seen.push(status(state, true, 4, 1000, null));"  # 03:04:15: 10 s late
        "now += 1000; seen.push(status(state, false, 5, 1000, null));"  # 03:04:16 answered
        "now += 1000; seen.push(status(state, false, 6, 1000, null));"  # no tick went out
        "now += 1000; seen.push(status({...state, v: 2}, false, 7, 1000, null));"  # new state
        "console.log(JSON.stringify(seen.map(s => [s[0], s[2]])));"
    )
    times = [re.search(r"updated (\S+) UTC", text).group(1) for text, _ in outcome]
    assert times == [
        "03:04:05", "03:04:05", "03:04:05", "03:04:05", "03:04:16", "03:04:16", "03:04:18"
    ]  # fmt: skip
    assert [badge for _, badge in outcome][1:5] == ["LIVE", "DELAYED", "DELAYED", "LIVE"]
    assert "no update from the server for 4 s" in outcome[2][0]
    assert "no update from the server for 10 s" in outcome[3][0]
