"""The Attribution page's plain functions on a real database (SQLite and PostgreSQL) holding a
paper account (a replay of SP500 1d) and an imported bot account (a CSV of intraday fills):
every table and figure carries the numbers of ``TrackingService.attribution`` /
``performance`` (what ``app.py attribution --json`` prints), the filters, the capital, the
trade detail, the read-once cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dash import no_update

from dashboard.pages.attribution import (
    VIEW_OUTPUTS,
    account_choice,
    detail_outputs,
    view_outputs,
)
from dashboard.pages.attribution.layout import ALL, layout
from dashboard.pages.attribution.tables import (
    parse_capital,
    query_view,
    trip_rows,
)
from database.repositories.candles import CandleRepository
from market.sample_data import load_sample
from scripts.sample_fills import intraday_fills
from services.paper import PaperTrading, ReplayRequest
from services.tracking import TrackingService
from services.tracking_views import AttributionViews, hour_weekday_table

PAPER, BOT = "p1", "bot-sp500"


@pytest.fixture
def seeded(session_factory, tmp_path):
    """SP500 and NASDAQ daily bars, a paper replay (p1, cash 10,000) and an imported CSV."""
    with session_factory.begin() as session:
        repo = CandleRepository(session)
        for symbol in ("SP500", "NASDAQ"):
            repo.upsert(symbol, "1d", load_sample(symbol))
    PaperTrading(session_factory).replay(
        ReplayRequest(
            "SP500",
            "1d",
            "sma_crossover",
            {"fast": 5, "slow": 20},
            account=PAPER,
            start=pd.Timestamp("2012-01-01", tz="UTC"),
        )
    )
    tracking = TrackingService(session_factory)
    path = tmp_path / "bot.csv"
    intraday_fills(load_sample("SP500"), trips=60, seed=3).to_csv(path, index=False)
    tracking.import_file(path, "csv", BOT)
    return tracking, AttributionViews(tracking, session_factory)


def _rows(frame: pd.DataFrame) -> list[dict]:
    from services.live_accounts import json_rows

    return json_rows(frame)


def test_every_account_with_trades_is_offered_with_its_source_and_capital(seeded):
    _, views = seeded
    accounts = {a.name: a for a in views.accounts()}
    assert set(accounts) == {PAPER, BOT}
    assert (accounts[PAPER].source, accounts[PAPER].capital) == ("paper", 10_000.0)
    assert (accounts[BOT].source, accounts[BOT].capital, accounts[BOT].fills) == ("csv", None, 120)
    assert accounts[BOT].label == "bot-sp500 · csv · 120 fills"
    symbols = ["NASDAQ", "SP500"]
    page = layout(views.accounts(), symbols, "?account=bot-sp500&capital=25000&benchmark=NASDAQ")
    select = _find(page, "at-account")
    assert select.value == BOT
    assert [o["label"] for o in select.options] == [
        "bot-sp500 · csv · 120 fills",
        f"p1 · paper · {accounts[PAPER].fills} fills",
    ]
    assert _find(page, "at-capital").value == "25000"
    assert _find(page, "at-benchmark").value == "NASDAQ"
    page = layout(
        views.accounts(),
        symbols,
        "?account=p1",
        lambda account: views.benchmark_for(account, symbols),
    )
    assert _find(page, "at-benchmark").value == "SP500"
    assert _find(page, "at-capital").value == "10000"
    assert _find(layout(views.accounts(), symbols), "at-benchmark").value == ALL  # none known
    assert _find(layout(views.accounts(), ["NASDAQ"], None), "at-capital").value == ""  # bot first
    # an account opens on the stored symbol it traded most, else keeps the benchmark chosen
    options = [{"label": "none", "value": ALL}, {"label": "SP500", "value": "SP500"}]
    assert account_choice(views, PAPER, options, ALL) == (ALL, ALL, "10000", "SP500")
    assert account_choice(views, BOT, options[:1], "NASDAQ") == (ALL, ALL, "", "NASDAQ")
    assert account_choice(views, "nobody", options, "SP500") == (ALL, ALL, "", "SP500")
    assert views.benchmark_for(BOT, ["NASDAQ", "SP500"]) == "SP500"


def _find(component, id_):
    if getattr(component, "id", None) == id_:
        return component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str):
            found = _find(child, id_)
            if found is not None:
                return found
    return None


@pytest.mark.parametrize(("account", "capital"), [(PAPER, None), (BOT, 25_000.0)])
def test_the_views_tables_are_the_attribution_services(seeded, account, capital):
    tracking, views = seeded
    view = views.view(account, benchmark="NASDAQ", capital=capital)
    cli = tracking.attribution(account, by="label", benchmark="NASDAQ", capital=capital)
    assert _rows(view.by_label) == cli["pnl"]
    assert _rows(view.risk) == cli["risk"]
    assert _rows(view.patterns) == cli["patterns"]
    benchmark = cli["benchmark"]
    assert view.fit is not None
    assert view.fit.error is None
    assert view.fit.alpha_beta == {
        k: v for k, v in benchmark.items() if k not in ("symbol", "capital", "factors")
    }
    assert _rows(view.fit.factors) == benchmark["factors"]
    assert view.fit.capital == benchmark["capital"]
    for by, table in (("regime", view.by_regime), ("size", view.by_size)):
        assert _rows(table) == tracking.attribution(account, by=by)["pnl"]
    hours = {r["group"]: r["net_pnl"] for r in tracking.attribution(account, by="hour")["pnl"]}
    cells = view.hour_weekday
    for hour, net in cells.groupby("hour")["net_pnl"].sum().items():
        assert net == pytest.approx(hours[hour], rel=1e-12, abs=1e-9)
    summary = tracking.performance(account, capital=capital)["periods"][0]["trade_summary"]
    assert view.summary["trades"] == summary["trades"] == cli["trips"]
    assert view.summary["net_pnl"] == pytest.approx(summary["net_pnl"], rel=1e-12)
    assert cells["net_pnl"].sum() == pytest.approx(summary["net_pnl"], rel=1e-9)


def test_the_page_draws_the_services_numbers(seeded):
    tracking, views = seeded
    out = view_outputs(views, PAPER, ALL, ALL, "NASDAQ", "", "label", False)
    cli = tracking.attribution(PAPER, by="label", benchmark="NASDAQ")
    pnl = {r["group"]: r for r in cli["pnl"] if r["group"] != "all"}
    bars, win = out["at-labels.figure"].data
    assert dict(zip(bars.x, bars.y, strict=True)) == {g: r["net_pnl"] for g, r in pnl.items()}
    assert dict(zip(win.x, win.y, strict=True)) == pytest.approx(
        {g: r["win_rate"] * 100 for g, r in pnl.items()}
    )
    (heat,) = out["at-heatmap.figure"].data
    total = next(r for r in cli["pnl"] if r["group"] == "all")
    assert np.nansum(np.array(heat.z, dtype=float)) == pytest.approx(total["net_pnl"], rel=1e-9)
    assert int(np.array(heat.customdata).sum()) == total["trades"]
    (risk,) = out["at-risk.figure"].data
    shares = {r["group"]: r["variance_share"] * 100 for r in cli["risk"] if r["group"] != "all"}
    assert dict(zip(risk.y, risk.x, strict=True)) == pytest.approx(shares)
    texts = repr(out["at-alpha.children"])
    bench = cli["benchmark"]
    assert f"{bench['alpha']:,.4f}" in texts
    assert f"{bench['beta']:,.4f}" in texts
    assert "convention empyrical" in texts
    assert f"'{bench['factors'][1]['coef']:,.6f}'" in repr(out["at-factors.children"])
    rows = out["at-trades.rowData"]
    assert len(rows) == cli["trips"]
    # MAE and MFE from the stored bars, as the service's trips(excursions=True)
    trips = tracking.trips(tracking.fills(PAPER), excursions=True).sort_values("entry_time")
    assert [r["mae_pct"] for r in rows] == pytest.approx((trips["mae"] * 100).tolist())
    assert [r["mfe_pct"] for r in rows] == pytest.approx((trips["mfe"] * 100).tolist())
    assert all(r["mae_pct"] <= 0 <= r["mfe_pct"] for r in rows)
    patterns = out["at-patterns.rowData"]
    assert len(patterns) == len(cli["patterns"])
    # what is told from noise first, then the rest, each in the service's order
    flags = [row["noise"] for row in patterns]
    assert flags == sorted(flags, key=lambda flag: flag == "yes")
    order = [f"{p['kind']}:{p['labels']}" for p in cli["patterns"]]
    signal = [r["key"] for r in patterns if r["noise"] == "no"]
    assert signal == [k for k in order if k in set(signal)]
    assert out["at-status.children"].startswith(f"account p1 (paper) · {cli['trips']} round trips")
    assert next(o["value"] for o in out["at-strategy.options"]) == ALL
    assert out["at-message.children"] == ""
    assert set(out) == set(VIEW_OUTPUTS)


def test_the_filters_narrow_every_table(seeded):
    tracking, views = seeded
    everything = views.view(BOT)
    label = "quick_exit" if "quick_exit" in everything.labels else everything.labels[0]
    view = views.view(BOT, label=label, benchmark="SP500", capital=25_000.0)
    assert all(label in labels for labels in view.trips["labels"])
    assert len(view.trips) == int(everything.by_label.set_index("group").loc[label, "trades"])
    assert view.by_label.iloc[-1]["trades"] == len(view.trips)
    assert view.labels == everything.labels  # the choices stay those of the unfiltered trips
    out = view_outputs(views, BOT, ALL, label, "SP500", "25000", "regime", True)
    assert f"label {label}" in out["at-status.children"]
    assert {r["trip_id"] for r in out["at-trades.rowData"]} == set(view.trips["trip_id"])
    # a strategy: the service's own strategy filter
    strategy = everything.strategies[0]
    narrowed = views.view(BOT, strategy=strategy)
    cli = tracking.attribution(BOT, by="label", strategy=strategy)
    assert _rows(narrowed.by_label) == cli["pnl"]
    assert narrowed.strategies == everything.strategies


def test_an_account_without_capital_asks_for_it(seeded):
    _, views = seeded
    out = view_outputs(views, BOT, ALL, ALL, "NASDAQ", "", "label", False)
    assert "enter the account's capital" in repr(out["at-alpha.children"])
    assert out["at-factors.children"] is None
    bad = view_outputs(views, BOT, ALL, ALL, "NASDAQ", "lots", "label", False)
    assert bad["at-message.children"] == "Capital: 'lots' is not a number"
    none = view_outputs(views, BOT, ALL, ALL, ALL, "", "label", False)
    assert "choose a benchmark" in repr(none["at-alpha.children"])
    assert parse_capital("25,000") == (25_000.0, "")
    assert parse_capital("-5")[1] == "Capital: '-5' is invalid: expected a number > 0"
    assert parse_capital(" ") == (None, "")


def test_no_or_unknown_account_says_so(seeded):
    _, views = seeded
    for account, text in ((None, "no account has trades yet"), ("nobody", "'nobody' has no")):
        out = view_outputs(views, account, ALL, ALL, "SP500", "", "label", False)
        assert text in out["at-status.children"]
        assert out["at-trades.rowData"] == []
        assert out["at-labels.figure"].layout.annotations[0].text == out["at-status.children"]
        assert out["at-strategy.options"] is no_update


def test_a_clicked_round_trip_shows_its_fills_context_and_bars(seeded):
    tracking, views = seeded
    view = views.view(PAPER)
    trip = view.trips.iloc[3]
    heading, chart, tables = detail_outputs(views, PAPER, trip["trip_id"], False)
    assert f"#{trip['number']} long SP500" in repr(heading)
    assert f"MAE {trip['mae'] * 100:.2f}% · MFE {trip['mfe'] * 100:.2f}%" in repr(heading)
    fills = tracking.fills(PAPER, context=True)
    own = fills.loc[fills["trade_id"].isin([*trip["entry_trade_ids"], *trip["exit_trade_ids"]])]
    fills_rows = tables[0].children[1].children
    assert [r.__dict__["data-trade-id"] for r in fills_rows] == own["trade_id"].tolist()
    context = repr(tables[1])
    assert own["market_context"].iloc[0]["trend"] in context
    candles = next(t for t in chart.data if t.type == "candlestick")
    assert candles.x[0] <= trip["entry_time"].strftime("%Y-%m-%d") <= candles.x[-1]
    buy = next(t for t in chart.data if t.name == "buy")
    assert list(buy.y) == own.loc[own["side"] == "buy", "price"].tolist()
    # a trip id the account does not hold; no click yet
    heading, chart, tables = detail_outputs(views, PAPER, "nope", True)
    assert "no round trip 'nope'" in repr(heading)
    assert tables is None
    heading, chart, _ = detail_outputs(views, PAPER, None, True)
    assert heading is None
    assert chart.layout.annotations[0].text == "click a round trip in the grid"


def test_trip_bars_pick_a_timeframe_that_shows_the_trip(seeded):
    _, views = seeded
    entry = pd.Timestamp("2015-03-02", tz="UTC")
    short = views.trip_bars("SP500", entry, entry + pd.Timedelta(days=3))
    assert short.timeframe.label == "1d"
    assert 25 <= len(short.candles) <= 40
    long = views.trip_bars("SP500", entry, entry + pd.Timedelta(days=400))
    assert long.timeframe.label == "1w"
    assert len(long.candles) <= 120
    assert views.trip_bars("BTC/USDT", entry, entry).note == "no stored bars of BTC/USDT"


def test_an_account_is_read_once_per_version(seeded, monkeypatch, tmp_path):
    tracking, views = seeded
    calls = []
    original = tracking.fills
    monkeypatch.setattr(tracking, "fills", lambda *a, **k: calls.append(a) or original(*a, **k))
    before = views.view(BOT)
    views.view(BOT, label="momentum", benchmark="SP500", risk_by="size")
    assert len(calls) == 1
    # a new round trip stored: a new version, read again
    path = tmp_path / "more.csv"
    path.write_text(
        "trade_id,timestamp,symbol,side,price,volume,commission\n"
        "late-0,2019-01-07T15:00:00Z,SP500,buy,2500,1,0.1\n"
        "late-1,2019-01-07T16:00:00Z,SP500,sell,2510,1,0.1\n"
    )
    tracking.import_file(path, "csv", BOT)
    after = views.view(BOT)
    assert len(calls) == 2
    assert len(after.trips) == len(before.trips) + 1
    assert after.trips["trip_id"].iloc[-1] == "late-0"
    assert after.summary["net_pnl"] == pytest.approx(before.summary["net_pnl"] + 9.8)


def test_rows_and_links():
    trips = pd.DataFrame(
        {
            "trip_id": ["a#1"],
            "number": [1],
            "strategy_id": ["s"],
            "symbol": ["X"],
            "direction": ["short"],
            "entry_time": [pd.Timestamp("2024-01-02 10:00", tz="UTC")],
            "exit_time": [pd.Timestamp("2024-01-02 12:30", tz="UTC")],
            "entry_price": [10.0],
            "exit_price": [9.0],
            "volume": [2.0],
            "net_pnl": [1.9],
            "return": [0.095],
            "fees": [0.1],
            "holding_s": [9000.0],
            "labels": [("breakout", "momentum")],
            "volatility_regime": [None],
            "market_session": ["us"],
        }
    )
    (row,) = trip_rows(trips)
    assert row["labels"] == "breakout, momentum"
    assert row["holding"] == "2h 30m"
    assert row["return_pct"] == pytest.approx(9.5)
    assert row["regime"] == ""
    assert row["entry_time"] == "2024-01-02 10:00"
    assert query_view("?account=a&capital=1e4&x=1&label=b&label=c") == {
        "account": "a",
        "capital": "1e4",
        "label": "c",
    }
    assert hour_weekday_table(trips)[["weekday", "hour", "trades"]].values.tolist() == [
        ["Tue", "10", 1]
    ]
