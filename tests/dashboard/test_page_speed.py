"""What makes the pages fast (issue 11): the trade grid of a long run gets its last rows only,
the live chart is built once per page load, the server warms up before the first request and
the backtest page's runs fork from the warmed process. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import diskcache
import pytest
from dash import no_update
from dash.exceptions import PreventUpdate
from sqlalchemy import text

import dashboard.server
from components.panels.performance import trade_table_records
from dashboard import shell
from dashboard.pages import backtest as page
from dashboard.pages.backtest import results
from dashboard.pages.live import default_view
from dashboard.pages.live import layout as live_layout
from dashboard.pages.live.callbacks import first_build_follows, url_changes
from dashboard.pages.live.chart import LiveContext, live_tick
from dashboard.pages.live.layout import N_CONTROLS
from dashboard.pages.live.view_state import ViewState
from dashboard.warmup import WarmDiskcacheManager, WarmUp, warm_backtests
from database.repositories import CandleRepository
from market.sample_data import load_sample
from services import market_data
from services.backtests import BacktestRequest, open_context, run_request
from services.runtime import Services
from services.saved_runs import list_runs
from strategies.signals import SIGNAL_TYPES
from tests.dashboard.test_backtest_page import (
    DEMO_BARS,
    component_ids,
    find,
    make_services,
    run,
    values,
)


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    services = make_services(database_url, tmp_path)
    yield services
    services.close()


def stored_runs(services: Services) -> int:
    return len(list_runs(services.sessions))


def test_the_trade_grid_of_a_long_run_holds_its_last_trades_numbered_as_in_the_run(
    services, monkeypatch
):
    form = values(params={"fast": 5, "slow": 30})
    whole = run(services, "bt-run", form)
    every = whole["bt-trades.rowData"]
    assert len(every) > 12
    assert [r["id"] for r in every] == list(range(1, len(every) + 1))
    assert "trade table shows" not in str(whole["bt-status.children"])
    monkeypatch.setattr(results, "TRADE_ROWS", 12)
    capped = run(services, "bt-run", form)
    rows = capped["bt-trades.rowData"]
    assert rows == every[-12:]  # the same rows, ids and all, as the whole grid's last twelve
    status = capped["bt-status.children"]
    assert status[0].startswith("Run #")
    assert "stored in" in status[0]
    assert status[2] == (
        f"The trade table shows the last 12 of {len(every):,} trades; "
        "export the trades for all of them."
    )
    # the KPI cards still count every trade
    trades = page.KPI_PREFIX + "-trades"
    assert str(len(every)) in str(capped["bt-kpis.children"])
    assert trades in str(capped)


def test_trade_records_number_from_first_id(services):
    context = open_context(services.settings.database_url, None)
    try:
        request = BacktestRequest("sma_crossover", {"fast": 5, "slow": 30}, "SP500", "1d")
        trades = run_request(request, context, store=False).trades
    finally:
        context.close()
    whole = trade_table_records(trades)
    assert trade_table_records(trades.iloc[-3:], len(trades) - 2) == whole[-3:]


def test_the_chart_is_built_once_per_live_page_load(services):
    market = services.market_data
    defaults = ["DEMO", "1m", [], [], list(SIGNAL_TYPES), 0, True, False, False, ""]
    lod = [*defaults[:8], True, ""]
    # the layout started the controls from the page's URL (the Referer of /_dash-layout)
    page = dashboard.server.create_app(services.settings, start_feeds=False).server
    with page.test_request_context(
        "/_dash-layout", headers={"Referer": "http://localhost/?symbol=DEMO&tf=1m&lod=1"}
    ):
        assert dashboard.server.requested_page() == ("live", "?symbol=DEMO&tf=1m&lod=1")
    with page.test_request_context(
        "/_dash-layout", headers={"Referer": "http://localhost/backtest?x=1"}
    ):
        assert dashboard.server.requested_page() == ("backtest", "?x=1")
    with page.test_request_context(
        "/_dash-layout", headers={"Referer": "http://elsewhere/?symbol=DEMO"}
    ):
        assert dashboard.server.requested_page() == ("live", None)
    assert dashboard.server.requested_page() == (None, None)  # no request: every page
    shown = live_layout(market, 1000, None, search="?symbol=DEMO&tf=1m&lod=1")
    assert find(shown, "lod").value is True
    assert find(shown, "symbol").value == "DEMO"
    # so the URL changes nothing and the first call builds the chart, once
    assert all(
        v is no_update
        for v in url_changes("url", "?symbol=DEMO&tf=1m&lod=1", lod, market)[1:N_CONTROLS]
    )
    assert not first_build_follows(None, "/", "?symbol=DEMO&tf=1m&lod=1", lod, market)
    assert not first_build_follows(None, "/", "", defaults, market)
    # the layout's defaults and a URL asking for more: the URL callback sets the control
    # (only that one), which builds the chart; the first call waits for it
    changes = url_changes("url", "?symbol=DEMO&tf=1m&lod=1", defaults, market)
    assert changes[9] is True
    assert all(v is no_update for v in changes[1:9])
    assert first_build_follows(None, "/", "?symbol=DEMO&tf=1m&lod=1", defaults, market)
    # on another page (the live page opened later keeps its URL), and every later change
    assert not first_build_follows(None, "/backtest", "?lod=1", defaults, market)
    assert not first_build_follows("symbol", "/", "?lod=1", defaults, market)
    assert not first_build_follows("price-chart", "/", "?lod=1", defaults, market)


def ids(layout) -> set[str]:
    return {i for i in component_ids(layout) if isinstance(i, str)}


def test_the_layout_holds_the_page_asked_for_and_the_route_builds_the_others_once(services):
    app = dashboard.server.create_app(services.settings, start_feeds=False)
    layouts = {}
    for path in ("/", "/backtest", "/trading", "/alerts", "/attribution", "/execution"):
        with app.server.test_request_context(
            "/_dash-layout", headers={"Referer": f"http://localhost{path}"}
        ):
            layouts[path] = app.layout()
    with app.server.test_request_context(
        "/_dash-layout", headers={"Referer": "http://localhost/trading?theme=light"}
    ):
        assert find(app.layout(), "theme-switch").value is True  # a light link, on any page
    assert find(layouts["/trading"], "theme-switch").value is False
    formulas = app.server.test_client()
    light = formulas.get("/docs/metrics?theme=light").text
    assert 'data-bs-theme="light"' in light
    assert 'href="/trading?theme=light"' in light  # its links keep the theme
    assert 'data-bs-theme="dark"' in formulas.get("/docs/metrics?theme=bogus").text
    every = ids(app.validation_layout)  # no request: every page, for Dash's validation
    marks = {"/": "price-chart", "/backtest": "bt-load", "/trading": "tr-deploy"}
    marks["/alerts"] = "al-history"
    marks["/attribution"] = "at-trades"
    marks["/execution"] = "ex-orders"
    assert set(marks.values()) <= every
    for path, layout in layouts.items():
        shown = ids(layout)
        # the live page always: its callbacks write the frame (URL query, feed badge)
        assert {mark for mark in marks.values() if mark in shown} == {"price-chart", marks[path]}
        assert find(layout, "pages-mounted").data == sorted(
            {"live", shell.shown_page(path)}, key=shell.PAGES.index
        )
    # the query is the shown page's: the live page built hidden beside /trading gets none
    queries = []
    recording = {name: (lambda n: lambda q: queries.append((n, q)))(name) for name in shell.PAGES}
    shell.shell(recording, "trading", "?theme=light&x=1")
    assert queries == [("live", None), ("trading", "?theme=light&x=1")]
    # a page shown for the first time is built once, into its own container; later, only
    # the styles change
    builds = []

    def builder(name):
        return lambda query: builds.append((name, query)) or name

    pages = {name: builder(name) for name in shell.PAGES}
    answer = shell.route(pages, "/trading", "?a=1", ["live"])
    hidden, n = {"display": "none"}, len(shell.PAGES)
    assert answer[:n] == tuple({} if p == "trading" else hidden for p in shell.PAGES)
    assert answer[n : 2 * n] == tuple("trading" if p == "trading" else no_update
                                      for p in shell.PAGES)  # fmt: skip
    assert answer[2 * n] == ["live", "trading"]
    assert builds == [("trading", "?a=1")]
    again = shell.route(pages, "/trading", "", answer[2 * n])
    assert again[n:] == (no_update,) * (n + 1)
    assert len(builds) == 1
    assert shell.route(pages, "/nowhere", "", ["trading"])[n] == "live"


def test_the_warm_up_draws_the_first_view_and_backtests_every_strategy_storing_nothing(services):
    view = default_view(services.market_data, None)
    assert view == ("DEMO", "1m")  # the first stored symbol, its first timeframe
    warm = WarmUp(services, view)
    thread = warm.start()
    assert warm.wait(120), "the warm-up did not finish in 120 s"
    thread.join(5)
    assert warm.error is None
    assert warm.seconds is not None
    assert stored_runs(services) == 0
    # the default view's history is in the shared chart track: its first chart reads nothing
    track = services.tracks.sync("DEMO", "1m")
    assert track.candles.n > 0


def test_a_failing_warm_up_is_reported_and_still_done(services, monkeypatch):
    def broken(*_args):
        raise RuntimeError("no kernels here\nsecond line")

    monkeypatch.setattr("dashboard.warmup.warm_backtests", broken)
    warm = WarmUp(services, (None, None))
    warm.run()
    assert warm.done.is_set()
    assert warm.error == "RuntimeError: no kernels here"


def test_warm_backtests_without_any_series_does_nothing(tmp_path):
    from config.settings import Settings
    from services.runtime import build_services

    empty = build_services(
        Settings.from_env(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
                "STRATLENS_DATA_DIR": str(tmp_path),
                "FEEDS": "none",
                "LOAD_SAMPLE_DATA": "false",
            }
        )
    )
    try:
        warm_backtests(empty)  # nothing stored: nothing to warm, no error
        assert default_view(empty.market_data, None) == (None, None)
    finally:
        empty.close()


def _job(key, progress_key, args, context):  # what a background callback's process runs
    # written whole, then renamed: a waiter that sees the file sees the pid (CI once read it
    # between the file's creation and its write)
    Path(args + ".tmp").write_text(str(os.getpid()))
    os.replace(args + ".tmp", args)


def test_background_runs_fork_only_once_the_warm_up_is_done(services, tmp_path):
    warm = WarmUp(services, (None, None))
    manager = WarmDiskcacheManager(diskcache.Cache(str(tmp_path / "cache")), warm)
    marker = tmp_path / "forked"
    started: list[int] = []
    caller = threading.Thread(
        target=lambda: started.append(manager.call_job_fn("k", _job, str(marker), {}))
    )
    caller.start()
    time.sleep(0.5)
    assert not started, "forked before the warm-up finished"
    assert not marker.exists(), "forked before the warm-up finished"
    warm.run()
    caller.join(30)
    assert started, "no process started after the warm-up"
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == str(started[0])
    # without a warm-up it forks at once
    plain = WarmDiskcacheManager(diskcache.Cache(str(tmp_path / "cache2")))
    other = tmp_path / "plain"
    pid = plain.call_job_fn("k2", _job, str(other), {})
    deadline = time.monotonic() + 30
    while not other.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other.read_text() == str(pid)


def test_the_catalogue_is_read_again_when_a_series_changed_or_it_is_old(services, monkeypatch):
    market = services.market_data
    assert [(s.symbol, s.timeframe) for s in market.series()] == [("DEMO", "1m"), ("SP500", "1d")]
    with services.sessions.begin() as session:
        assert CandleRepository(session).delete_series("SP500", "1d") > 0
    assert market.symbols() == ["DEMO"]  # its data version went with it: read again
    with services.sessions.begin() as session:
        CandleRepository(session).upsert("NEW", "1d", load_sample("SP500").iloc[:5])
    series = market.series()  # a bar added: read again
    assert [(s.symbol, s.timeframe, s.bars) for s in series] == [
        ("DEMO", "1m", DEMO_BARS),
        ("NEW", "1d", 5),
    ]
    with services.sessions.begin() as session:  # behind the repository: no version change
        session.execute(text("DELETE FROM candles WHERE symbol = 'DEMO'"))
    assert [s.symbol for s in market.series()] == ["DEMO", "NEW"]  # the last read ...
    monkeypatch.setattr(market_data, "CATALOGUE_TTL_S", 0.0)  # ... until it is too old
    assert [s.symbol for s in market.series()] == ["NEW"]


def test_a_tab_without_its_first_figure_waits_for_it(services):
    live = LiveContext(services.market_data, services.tracks, 100)
    with pytest.raises(PreventUpdate):
        live_tick(live, None, ViewState(symbol="SP500", timeframe="1d"))
