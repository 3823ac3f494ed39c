"""The Execution page's plain functions on a real database (SQLite and PostgreSQL) holding a
paper account (a replay of SP500 1d) and an imported desk (a CSV of orders and fills on DEMO
1m, scripts/sample_orders.py, a few of them on a symbol without bars): every figure, table and
the grid carry the numbers of ``TCAService.account`` (what ``app.py tca --json`` prints), the
cost model's predictions once one is stored, the dataset download, the read-once cache."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dashboard.pages.execution import download, view_outputs
from dashboard.pages.execution.callbacks import NO_ACCOUNT
from dashboard.pages.execution.layout import layout
from dashboard.pages.execution.tables import query_view
from database.repositories.candles import CandleRepository
from market.sample_data import load_sample
from scripts.sample_orders import sample_orders
from services.execution_ml import ExecutionMLService
from services.execution_views import ExecutionViews
from services.paper import PaperTrading, ReplayRequest
from services.tca import TCAService
from services.tracking import TrackingService

PAPER, DESK = "p1", "desk"


@pytest.fixture
def seeded(session_factory, tmp_path):
    """SP500 1d and the first 4,000 DEMO 1m bars, a paper replay (p1), the desk's orders."""
    demo = load_sample("DEMO").iloc[:4000]
    with session_factory.begin() as session:
        repo = CandleRepository(session)
        repo.upsert("SP500", "1d", load_sample("SP500"))
        repo.upsert("DEMO", "1m", demo)
    PaperTrading(session_factory).replay(
        ReplayRequest(
            "SP500",
            "1d",
            "sma_crossover",
            {"fast": 5, "slow": 20},
            account=PAPER,
            start=pd.Timestamp("2016-01-01", tz="UTC"),
        )
    )
    path = tmp_path / "desk.csv"
    sample_orders(demo, trips=50, seed=2).to_csv(path, index=False)
    TrackingService(session_factory).import_file(path, "orders-csv", DESK)
    return session_factory, ExecutionViews(session_factory, tmp_path)


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


def test_every_account_with_orders_is_offered_and_a_link_opens_its_view(seeded):
    sessions, views = seeded
    accounts = {a.name: a for a in views.accounts()}
    assert set(accounts) == {DESK, PAPER}
    tca = {name: TCAService(sessions).account(name).report for name in accounts}
    assert accounts[DESK].source == "orders-csv"
    assert accounts[DESK].orders == len(tca[DESK].orders)
    assert accounts[PAPER].source == "paper"
    assert accounts[PAPER].label == f"p1 · paper · {accounts[PAPER].orders:,} orders"
    page = layout(views.accounts(), "?account=p1&by=algo")
    assert _find(page, "ex-account").value == PAPER
    assert _find(page, "ex-by").value == "algo"
    page = layout(views.accounts(), "?account=nobody&by=colour")
    assert (_find(page, "ex-account").value, _find(page, "ex-by").value) == (DESK, "venue")
    assert query_view("?by=side&by=symbol&x=1") == {"by": "symbol"}
    assert _find(layout([]), "ex-account").value is None


def _figure(out, name):
    return out[f"{name}.figure"]


def test_the_page_draws_the_tca_reports_numbers(seeded):
    sessions, views = seeded
    report = TCAService(sessions).account(DESK).report
    orders = report.orders
    out = view_outputs(views, DESK, "venue", False)
    assert out["ex-status.children"].startswith(
        f"account desk (orders-csv) · {len(orders):,} orders, {int(orders['fills'].sum()):,}"
        f" fills, {len(report.round_trips):,} round trips"
    )
    # the grid: one row per order, its costs those of the report
    rows = {r["order_id"]: r for r in out["ex-orders.rowData"]}
    assert set(rows) == set(orders["order_id"])
    for order in orders.to_dict("records"):
        row = rows[order["order_id"]]
        for field in ("arrival_slippage_bps", "is_bps", "is_opportunity_bps", "markout_5m_bps"):
            expected = order[field]
            assert (row[field] is None) if np.isnan(expected) else row[field] == expected
        assert row["reason"] == (order["reason"] or "")
    # the histogram holds every defined arrival slippage; mean and median named
    hist, mean, median = _figure(out, "ex-slippage").data
    slippage = orders["arrival_slippage_bps"].dropna()
    assert sorted(hist.x) == sorted(slippage)
    assert mean.name == f"mean {slippage.mean():+,.2f}"
    assert median.name == f"median {slippage.median():+,.2f}"
    assert f"{orders['arrival_slippage_bps'].isna().sum()} n/a" in (
        _figure(out, "ex-slippage").layout.xaxis.title.text
    )
    # the waterfall: weighted by Q x decision price over the orders with every part
    (fall,) = _figure(out, "ex-shortfall").data
    parts = ["is_delay_bps", "is_trading_bps", "is_opportunity_bps", "is_fees_bps", "is_bps"]
    full = orders.dropna(subset=[*parts, "notional"])
    weights = full["notional"]
    expected = [float((full[p] * weights).sum() / weights.sum()) for p in parts]
    assert list(fall.y) == pytest.approx(expected, rel=1e-9)
    # the markouts: each horizon's mean over the fills, its n
    _band, curve = _figure(out, "ex-markouts").data
    fills = report.fills
    means = [fills[f"markout_{h}_bps"].mean() for h in ("1m", "5m", "60m")]
    assert list(curve.y) == pytest.approx(means, rel=1e-12)
    assert list(curve.text) == [
        f"n={fills[f'markout_{h}_bps'].count():,}" for h in ("1m", "5m", "60m")
    ]
    # decision quality: every closed round trip counted once
    quality = _figure(out, "ex-quality")
    counts = report.round_trips["decision_quality"].value_counts()
    assert {t.name: int(sum(t.y)) for t in quality.data} == {
        q: int(counts.get(q, 0)) for q in ("good", "neutral", "bad")
    }
    # fill rate, latency and cost by venue: the report's weighted means
    fill, latency, slip, shortfall = _figure(out, "ex-breakdown").data
    aggregates = report.aggregates.query("dimension == 'venue'")
    by = aggregates.set_index(["metric", "group"])["weighted_mean"]
    assert list(fill.y) == pytest.approx([by["fill_rate", g] * 100 for g in fill.x])
    assert list(latency.y) == pytest.approx([by["latency_s", g] for g in latency.x])
    assert list(slip.y) == pytest.approx([by["arrival_slippage_bps", g] for g in slip.x])
    assert list(shortfall.y) == pytest.approx([by["is_bps", g] for g in shortfall.x])
    # the symbol without bars: its reason listed with the orders it holds for
    reasons = str(out["ex-reasons.children"])
    without = orders["reason"].str.contains("market data: no candles for the symbol").sum()
    assert without > 0
    assert "market data: no candles for the symbol" in reasons
    assert f"{without:,}" in reasons
    # no model yet: the note says how to train one
    assert "python app.py costmodel train --account desk" in out["ex-model-note.children"]
    # grouped by algo: the same figures, other groups
    algo = view_outputs(views, DESK, "algo", True)
    assert sorted(algo["ex-breakdown.figure"].data[0].x) == sorted(orders["algo"].unique())
    assert algo["ex-slippage.figure"].layout.paper_bgcolor == "#ffffff"


def test_the_paper_account_and_an_empty_choice(seeded):
    sessions, views = seeded
    report = TCAService(sessions).account(PAPER).report
    out = view_outputs(views, PAPER, "side", False)
    fill, *_ = out["ex-breakdown.figure"].data
    assert list(fill.x) == ["buy", "sell"]
    assert len(out["ex-orders.rowData"]) == len(report.orders)
    assert "account p1 (paper)" in out["ex-status.children"]
    empty = view_outputs(views, None, "venue", False)
    assert empty["ex-status.children"] == NO_ACCOUNT
    assert empty["ex-orders.rowData"] == []
    unknown = view_outputs(views, "nobody", "venue", False)
    assert "has no order to analyse" in unknown["ex-status.children"]


def test_a_stored_cost_model_is_drawn_and_the_dataset_downloads(seeded, tmp_path):
    sessions, views = seeded
    ExecutionMLService(sessions, tmp_path).train(DESK)
    out = view_outputs(views, DESK, "venue", False)
    assert out["ex-model-note.children"].startswith("trained ")
    names = [t.name for t in out["ex-model.figure"].data]
    assert any(n.startswith("test (n=") for n in names)
    assert names[-1] == "45° (predicted = realised)"
    frame, _ = ExecutionMLService(sessions, tmp_path).dataset(DESK)
    test = frame.loc[(frame["split"] == "test") & frame["arrival_slippage_bps"].notna()]
    drawn = next(t for t in out["ex-model.figure"].data if t.name.startswith("test"))
    assert list(drawn.y) == pytest.approx(test["arrival_slippage_bps"].tolist())
    sent, note = download(views, DESK)
    assert sent["filename"] == "desk-decisions.parquet"
    assert note.startswith("desk-decisions.parquet: ")
    table = pq.read_table(io.BytesIO(base64.b64decode(sent["content"])))
    assert table.num_rows == len(frame)
    assert b"stratlens.dataset" in table.schema.metadata


def test_the_report_is_read_once_per_version_of_the_orders(seeded, monkeypatch, tmp_path):
    sessions, views = seeded
    reads: list[str] = []
    original = TCAService.account

    def counted(self, account, **kwargs):
        reads.append(account)
        return original(self, account, **kwargs)

    monkeypatch.setattr(TCAService, "account", counted)
    for by in ("venue", "algo", "side"):
        view_outputs(views, DESK, by, False)
    view_outputs(views, DESK, "venue", True)
    assert reads == [DESK]
    # more orders: a new version, read again
    demo = load_sample("DEMO").iloc[:4000]
    path = tmp_path / "more.csv"
    more = sample_orders(demo, trips=5, seed=9)
    more["order_id"] = "more-" + more["order_id"]
    more["symbol"] = "DEMO3"  # its own symbol: no fill older than the desk's last DEMO one
    more.to_csv(path, index=False)
    TrackingService(sessions).import_file(path, "orders-csv", DESK)
    out = view_outputs(views, DESK, "venue", False)
    assert reads == [DESK, DESK]
    assert any(r["order_id"].startswith("more-") for r in out["ex-orders.rowData"])
