"""Labels and market context recorded by the TradeTracker (SQLite and PostgreSQL): what is
stored equals the batch functions over the whole stored series (analytics.labels, whose own
tests prove it uses only data known at each fill), whether the trades come in one import, in
small streamed batches, or across a restart of the tracker."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from analytics.labels import annotate_fills
from analytics.symbol_bars import FrameBars
from database.records import TradeRecord
from database.repositories.candles import CandleRepository
from database.repositories.trades import TradeRepository
from market.sample_data import load_sample
from tracking.annotator import MarketAnnotator
from tracking.tracker import TradeTracker

DAY = pd.Timedelta(days=1)


@pytest.fixture
def seeded(session_factory):
    candles = load_sample("SP500").iloc[-900:]
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", candles)
    rng = np.random.default_rng(3)
    days = np.sort(rng.choice(np.arange(450, 900), size=80, replace=False))
    fills, position = [], 0.0
    for k, i in enumerate(days):
        side = "buy" if (position <= 0 and rng.random() < 0.7) or position < -2 else "sell"
        volume = float(rng.integers(1, 4))
        position += volume if side == "buy" else -volume
        # during the bar's day: the last bar closed by then is the day before
        when = candles.index[i] + pd.Timedelta(hours=15)
        fills.append(
            TradeRecord(
                trade_id=f"f{k}", account_id="acc", strategy_id="s", symbol="SP500", side=side,
                price=float(candles["open"].iloc[i]), volume=volume, commission=0.5,
                execution_time=when.to_pydatetime(), source="csv",
            )
        )  # fmt: skip
    frame = pd.DataFrame(
        {"trade_id": [f.trade_id for f in fills], "account_id": "acc", "strategy_id": "s",
         "symbol": "SP500", "side": [f.side for f in fills],
         "price": [f.price for f in fills], "volume": [f.volume for f in fills],
         "commission": 0.5, "time": pd.to_datetime([f.execution_time for f in fills], utc=True)}
    )  # fmt: skip
    contexts, labels = annotate_fills(frame, candles, DAY)
    return fills, contexts, labels


def stored(session_factory) -> dict[str, TradeRecord]:
    with session_factory() as session:
        return {t.trade_id: t for t in TradeRepository(session).list(account_id="acc")}


def check(session_factory, fills, contexts, labels) -> None:
    rows = stored(session_factory)
    assert len(rows) == len(fills)
    labelled = 0
    for fill, context, expected in zip(fills, contexts, labels, strict=True):
        row = rows[fill.trade_id]
        assert row.labels == expected, fill.trade_id
        for key, value in context.items():
            got = row.market_context[key]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-12, nan_ok=True), (fill.trade_id, key)
            else:
                assert got == value, (fill.trade_id, key)
        labelled += bool(expected)
    assert labelled > len(fills) / 2, "most fills should carry a label"
    regimes = {rows[f.trade_id].market_context["volatility_regime"] for f in fills}
    assert len(regimes - {None}) >= 2


def test_an_import_is_labelled_as_the_batch_functions_label_it(session_factory, seeded):
    fills, contexts, labels = seeded
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator())
    tracker.record_many(fills)
    check(session_factory, fills, contexts, labels)


def test_streamed_and_restarted_tracking_labels_the_same(session_factory, seeded):
    fills, contexts, labels = seeded
    first = TradeTracker(session_factory, annotator=MarketAnnotator())
    for k in range(0, 40, 7):  # small batches
        first.record_many(fills[k : min(k + 7, 40)])
    second = TradeTracker(session_factory, annotator=MarketAnnotator())  # a new process
    try:
        for fill in fills[40:]:
            second.record(fill)
    finally:
        second.close()
    check(session_factory, fills, contexts, labels)


def test_a_symbol_without_bars_gets_only_the_labels_fills_decide(session_factory):
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator())
    t0 = pd.Timestamp("2024-01-02 10:00", tz="UTC")
    trades = [
        TradeRecord(trade_id=f"x{k}", account_id="acc", strategy_id="s", symbol="NOBARS",
                    side=side, price=10.0, volume=1.0, execution_time=t0 + pd.Timedelta(minutes=m))
        for k, (side, m) in enumerate([("buy", 0), ("sell", 1)])
    ]  # fmt: skip
    out = tracker.record_many(trades).stored
    assert out[0].market_context.get("volatility_regime") is None
    assert "quick_exit" in out[1].labels  # held one minute: known from the fills alone


def test_the_live_view_equals_a_recomputation_after_every_trade(session_factory, seeded):
    """TrackingService.live (in memory, O(groups) per trade) against performance() and
    attribution() recomputed from the stored trades, after each trade of a stream."""
    from services.tracking import TrackingService

    fills, _, _ = seeded
    service = TrackingService(session_factory)
    dims = ("label", "regime", "session", "weekday", "symbol")
    service.tracker.record_many(fills[:30])
    assert service.live("acc", dims)["fills"] == 30  # read from the database the first time
    try:
        for fill in fills[30:]:
            service.tracker.record(fill)
            live = service.live("acc", dims)
            whole = service.performance("acc")["periods"][0]
            assert live["fills"] == int(fills.index(fill)) + 1
            for key, value in whole["trade_summary"].items():
                assert live["trade_summary"][key] == pytest.approx(
                    value, rel=1e-9, abs=1e-9, nan_ok=True
                ), key
            assert live["labels"].keys() == whole["labels"].keys()
            for label, row in whole["labels"].items():
                assert live["labels"][label] == pytest.approx(row, rel=1e-9, abs=1e-9), label
            for by in dims:
                again = service.attribution("acc", by=by)["pnl"]
                assert [r["group"] for r in live["attribution"][by]] == [r["group"] for r in again]
                for got, want in zip(live["attribution"][by], again, strict=True):
                    numbers = {k: v for k, v in want.items() if k != "group"}
                    assert {k: got[k] for k in numbers} == pytest.approx(
                        numbers, rel=1e-9, abs=1e-9, nan_ok=True
                    ), by
    finally:
        service.tracker.close()
    assert live["trade_summary"]["trades"] >= 10


def test_a_trade_recorded_before_the_first_view_does_not_cut_the_accounts_history(
    session_factory, seeded
):
    """A process that records a trade of an account before anyone viewed it (an import, the
    API) and then views it: the view holds the whole account, not the one trade it saw."""
    from services.tracking import TrackingService

    fills, _, _ = seeded
    TrackingService(session_factory).tracker.record_many(fills[:40])  # an earlier process
    later = TrackingService(session_factory)
    later.tracker.record_many(fills[40:41])
    live = later.live("acc")
    assert live["fills"] == 41
    whole = later.performance("acc")["periods"][0]["trade_summary"]
    assert live["trade_summary"]["trades"] == whole["trades"]
    assert live["trade_summary"]["net_pnl"] == pytest.approx(whole["net_pnl"], rel=1e-12)


def _frame_reads(monkeypatch) -> list[int]:
    """How many times the bars given up front were read (a spy, counting)."""
    calls: list[int] = []
    read = FrameBars.bars_at

    def counted(self, times_ns):
        calls.append(len(times_ns))
        return read(self, times_ns)

    monkeypatch.setattr(FrameBars, "bars_at", counted)
    return calls


def test_bars_given_up_front_label_as_bars_followed_one_at_a_time(
    session_factory, seeded, monkeypatch
):
    """A replay's annotator is given its stored bars before the first trade: the same
    context and labels; trades past the last bar given are read from the stored bars."""
    fills, contexts, labels = seeded
    reads = _frame_reads(monkeypatch)
    with session_factory() as session:
        candles = CandleRepository(session).frame("SP500", "1d")
    annotator = MarketAnnotator()
    cut = fills[60].execution_time - DAY  # the bars given end before the 61st fill
    annotator.expect("SP500", "1d", candles.loc[: pd.Timestamp(cut)])
    tracker = TradeTracker(session_factory, annotator=annotator)
    for k in range(0, len(fills), 10):  # a batch past the bars given is read from the stored
        tracker.record_many(fills[k : k + 10])
    assert sum(reads) == 60, "the first 60 fills read the bars given, the others the stored"
    check(session_factory, fills, contexts, labels)


def test_a_replay_stores_the_context_and_labels_of_a_tracker_following_its_bars(
    session_factory, seeded, monkeypatch
):
    from services.paper import PaperTrading, ReplayRequest

    reads = _frame_reads(monkeypatch)
    request = ReplayRequest("SP500", "1d", "sma_crossover", {"fast": 5, "slow": 20}, "up-front")
    PaperTrading(session_factory, batch_bars=100).replay(request)
    assert reads, "the replay gives its bars up front"
    followed = TradeTracker(session_factory, annotator=MarketAnnotator())  # bar by bar
    PaperTrading(session_factory, batch_bars=100, tracker=followed).replay(
        dataclasses.replace(request, account="followed")
    )
    with session_factory() as session:
        repo = TradeRepository(session)
        up_front, bar_by_bar = repo.list(account_id="up-front"), repo.list(account_id="followed")
    assert len(up_front) == len(bar_by_bar) >= 20
    assert len({t.market_context["volatility_regime"] for t in up_front} - {None}) >= 2
    for a, b in zip(up_front, bar_by_bar, strict=True):
        assert (a.execution_time, a.labels, a.pnl) == (b.execution_time, b.labels, b.pnl)
        assert a.market_context == b.market_context


@pytest.mark.parametrize("batch", [7, 80])
def test_batches_that_read_many_bars_at_once_store_what_bars_fed_one_at_a_time_store(
    session_factory, seeded, monkeypatch, batch
):
    """A batch reading many bars not fed yet reads them (and every bar since the symbol's
    first) at once, then the symbol goes on bar by bar from where they end: the stored
    context and labels are those of a tracker feeding every bar in turn."""
    fills = seeded[0]
    reads = _frame_reads(monkeypatch)
    # a short warm-up: a few batches' bars are a quarter of those fed
    fed_in_turn = MarketAnnotator(warmup_bars=30, frame_bars=10**9)
    one_by_one = TradeTracker(session_factory, annotator=fed_in_turn)
    for k in range(0, len(fills), batch):
        one_by_one.record_many(fills[k : k + batch])
    assert not reads
    framed = TradeTracker(session_factory, annotator=MarketAnnotator(warmup_bars=30, frame_bars=5))
    renamed = [dataclasses.replace(f, account_id="framed") for f in fills]
    for k in range(0, len(renamed), batch):
        framed.record_many(renamed[k : k + batch])
    assert reads, "the batches read their bars at once"
    with session_factory() as session:
        repo = TradeRepository(session)
        fed, read = repo.list(account_id="acc"), repo.list(account_id="framed")
    assert len(fed) == len(read) == len(fills)
    for a, b in zip(fed, read, strict=True):
        assert (a.market_context, a.labels) == (b.market_context, b.labels), a.trade_id
