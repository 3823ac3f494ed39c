"""Live tabs share the closed-candle work: tabs on the same (symbol, timeframe, layers) cost the
server one computation per closed candle, each tab still gets its own delta, and the panels
below the chart are computed once per panel epoch and only requested while visible."""

from __future__ import annotations

import json

import pytest

from components.charts.theme import THEMES
from config.settings import Settings
from dashboard.pages.live.panels import performance_figures, performance_kpis, performance_panel
from dashboard.pages.live.view_state import indicator_request
from dashboard.server import create_app, debug_stats
from services.chart_layers import PANEL_EVERY_S, strategy_key
from strategies.registry import create
from tests.dashboard.clientside import NO_UPDATE, run_clientside
from tests.dashboard.test_live_callbacks import Tab, make_services

LAYERS = {  # what the issue measures: RSI, Bollinger and two strategies
    "indicators": (indicator_request("rsi").key, indicator_request("bbands").key),
    "strategies": (
        strategy_key(create("ema_crossover", direction="both")),
        strategy_key(create("rsi_reversion", direction="both")),
    ),
}


@pytest.fixture
def services(tmp_path):
    services = make_services(tmp_path, "SP500:replay", replay_bars=60)
    yield services
    services.close()


def step_until_closed(services) -> None:
    """Feed events until one more candle has closed (and its next forming update is in)."""
    closed = services.market.get("SP500").closed_count
    while services.market.get("SP500").closed_count == closed:
        assert services.runner.step()
    services.runner.step()


def work(services) -> dict[str, int]:
    return services.tracks.stats.snapshot()


@pytest.mark.parametrize("tabs", [1, 4])
def test_a_closed_candle_is_computed_once_whatever_the_number_of_tabs(services, tabs):
    views = [Tab(services, "SP500", "1d", **LAYERS) for _ in range(tabs)]
    before = work(services)
    for _ in range(3):
        step_until_closed(services)
        for tab in views:
            tab.tick()
    after = work(services)
    # rsi + bbands shown, the strategies' own indicators (ema 12/26, rsi 14 again) tracked once
    indicators = len(services.tracks.sync("SP500", "1d")._indicators)
    assert after["indicator_updates"] - before["indicator_updates"] == 3 * indicators
    assert after["strategy_updates"] - before["strategy_updates"] == 3 * 2
    # per closed candle: one closed delta and one forming tail, whatever the number of tabs
    assert after["shared_computed"] - before["shared_computed"] == 3 * 2
    assert after["shared_reused"] - before["shared_reused"] == 3 * 2 * (tabs - 1)
    assert all(tab.matches_a_rebuild() and tab.rebuilds == 0 for tab in views)


def test_each_tab_gets_its_own_delta_from_the_shared_work(services):
    ahead, behind = (Tab(services, "SP500", "1d", **LAYERS) for _ in range(2))
    step_until_closed(services)
    ahead.tick()
    step_until_closed(services)
    step_until_closed(services)
    _, delta_ahead, _ = ahead.request()
    _, delta_behind, _ = behind.request()
    # the tab that missed two candles gets all three, the other the one it lacks
    assert len(delta_behind["c"]) == 3
    assert len(delta_ahead["c"]) == 2
    assert delta_behind["c"][-2:] == delta_ahead["c"]
    assert delta_ahead["f"] == delta_behind["f"]
    assert delta_ahead["v"] == delta_behind["v"]
    ahead.receive(ahead.request())
    behind.receive(behind.request())
    assert ahead.matches_a_rebuild()
    assert behind.matches_a_rebuild()


def test_panels_are_one_computation_per_epoch_for_every_tab(services):
    track = services.tracks.sync("SP500", "1d")
    spec = LAYERS["strategies"][0]
    theme = THEMES["dark"]
    epoch = track.panel_epoch()
    before = work(services)
    first = performance_panel(services.tracks, "SP500", "1d", spec, "backtesting.py", theme,
                              epoch=epoch)  # fmt: skip
    step_until_closed(services)  # a tab asking for the same epoch later gets the same panel
    again = performance_panel(services.tracks, "SP500", "1d", spec, "backtesting.py", theme,
                              epoch=epoch)  # fmt: skip
    after = work(services)
    assert all(a is b for a, b in zip(again, first, strict=True))  # every part shared
    assert after["backtests"] - before["backtests"] == 1
    # the epoch's panel is the backtest over exactly that many candles
    n = services.tracks.sync("SP500", "1d").candles.n
    assert n > epoch
    result = track.backtest(track._strategies[spec].strategy, stop=epoch)
    assert len(result.equity) == epoch
    assert len(first[4]) == len(result.trades)


def test_the_cards_alone_build_no_figure_and_share_the_backtest_with_them(services):
    track = services.tracks.sync("SP500", "1d")
    spec, theme = LAYERS["strategies"][0], THEMES["dark"]
    epoch = track.panel_epoch()
    before = work(services)
    cards = performance_kpis(services.tracks, "SP500", "1d", spec, "backtesting.py", theme,
                             epoch=epoch)  # fmt: skip
    kinds = {key[0] for key in track._shared if isinstance(key, tuple)}
    assert "panel-performance-kpis" in kinds
    assert "panel-performance-figures" not in kinds  # the panel's top in view: no figure
    figures = performance_figures(services.tracks, "SP500", "1d", spec, "backtesting.py",
                                  theme, epoch=epoch)  # fmt: skip
    whole = performance_panel(services.tracks, "SP500", "1d", spec, "backtesting.py", theme,
                              epoch=epoch)  # fmt: skip
    assert whole[0] is cards
    assert all(a is b for a, b in zip(whole[1:], figures, strict=True))
    assert work(services)["backtests"] - before["backtests"] == 1  # one backtest for both


def test_the_panel_epoch_moves_at_most_every_few_seconds_while_live(services):
    step_until_closed(services)
    track = services.tracks.sync("SP500", "1d")
    n0 = track.candles.n
    assert track.panel_epoch(now=1000.0) == n0
    step_until_closed(services)
    track = services.tracks.sync("SP500", "1d")
    assert track.candles.n == n0 + 1
    assert track.panel_epoch(now=1000.0 + PANEL_EVERY_S / 2) == n0  # too soon: held
    assert track.panel_epoch(now=1000.0 + PANEL_EVERY_S) == n0 + 1
    step_until_closed(services)
    services.market.set_status("SP500", "finished")  # not live: the epoch follows at once
    track = services.tracks.sync("SP500", "1d")
    assert track.panel_epoch(now=1000.0 + PANEL_EVERY_S + 0.1) == n0 + 2


def test_debug_stats_show_the_live_work(tmp_path):
    app = create_app(
        Settings.from_env(
            {"STRATLENS_DATA_DIR": str(tmp_path), "FEEDS": "SP500:replay", "DEBUG_STATS": "1"}
        ),
        start_feeds=False,
    )
    services = app.server.extensions["stratlens"]
    try:
        Tab(services, "SP500", "1d", **LAYERS)
        stats = json.loads(app.server.test_client().get("/debug/stats").data)
        assert stats["live"] == debug_stats(services)["live"]
        assert set(stats["live"]) >= {"indicator_updates", "shared_computed", "shared_reused"}
    finally:
        services.close()


def test_the_panels_refresh_only_while_visible():
    """assets/chart_view.js's panelRefresh, run in node: nothing is requested while the panels
    are hidden; shown again, the panel on show catches up at once, once per panel epoch; the
    performance figures only while they are in view (the cards whenever the panel is)."""
    outcome = run_clientside(
        "const f = window.dash_clientside.stratlens.panelRefresh;"
        "const s = {k: 'SP500|1d', pe: 100, last: 5};"
        "const k = ['SP500|1d', 100];"
        "const c = ['SP500|1d', 100, ['a', 'b'], 'p', false];"
        "const out = ["
        " f(s, 'performance', false, true, null, null, null, ['a'], 'p', false),"
        " f(s, 'performance', true, false, null, null, null, ['a'], 'p', false),"
        " f(s, 'performance', true, true, k, null, null, ['a'], 'p', false),"
        " f(s, 'performance', true, true, k, k, null, ['a'], 'p', false),"
        " f(Object.assign({}, s, {pe: 105}), 'performance', true, false, k, k, null, ['a'],"
        "   'p', false),"
        " f(Object.assign({}, s, {pe: 105}), 'performance', true, true, k, k, null, ['a'],"
        "   'p', false),"
        " f(s, 'comparison', false, false, null, null, null, ['a', 'b'], 'p', false),"
        " f(s, 'comparison', true, true, null, null, null, ['a', 'b'], 'p', false),"
        " f(s, 'comparison', true, true, null, null, c, ['a', 'b'], 'p', false),"
        " f(s, 'comparison', true, true, null, null, ['SP500|1d', 100, ['a'], 'p', false],"
        "   ['a', 'b'], 'p', false)];"
        "console.log(JSON.stringify(out));"
    )
    hidden, cards_only, figures_shown, same, moved_cards, moved_both = outcome[:6]
    cmp_hidden, cmp_shown, cmp_same, cmp_changed = outcome[6:]
    skip, key, moved = NO_UPDATE, ["SP500|1d", 100], ["SP500|1d", 105]
    assert hidden == [skip, skip, skip]
    assert cards_only == [key, skip, skip]  # the panel's top in view, its figures not
    assert figures_shown == [skip, key, skip]  # scrolled to the figures: they catch up
    assert same == [skip, skip, skip]
    assert moved_cards == [moved, skip, skip]
    assert moved_both == [moved, moved, skip]
    assert cmp_hidden == [skip, skip, skip]
    assert cmp_shown == [skip, skip, ["SP500|1d", 100, ["a", "b"], "p", False]]
    assert cmp_same == [skip, skip, skip]
    assert cmp_changed == [skip, skip, ["SP500|1d", 100, ["a", "b"], "p", False]]
