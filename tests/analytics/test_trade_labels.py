"""A backtest's round trips labelled as executed trades are (analytics.trade_labels): the same
labels the TradeTracker gives the round trips of those trades recorded as fills one batch at
a time (its incremental Labeller, its own FIFO walk); the live panel's label filter."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.backtest import BacktestSettings, run_backtest
from analytics.trade_labels import label_counts, trip_labels
from dashboard.pages.live.panels import label_filter
from database.records import TradeRecord
from database.repositories.candles import CandleRepository
from market.sample_data import load_sample
from strategies.registry import create
from tracking.annotator import MarketAnnotator
from tracking.tracker import TradeTracker

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def traded():
    candles = load_sample("SP500").iloc[-1500:]
    strategy = create("sma_crossover", direction="both", fast=5, slow=20)
    signals = strategy.generate(candles, symbol="SP500", timeframe="1d")
    settings = BacktestSettings(direction="both", stop_loss_pct=0.02, trailing_stop_pct=0.05)
    result = run_backtest(candles, signals, settings)
    assert len(result.trades) > 50
    assert set(result.trades["exit_reason"].astype(str)) >= {"signal", "stop_loss"}
    return candles, result.trades


def _fills(trades: pd.DataFrame) -> list[TradeRecord]:
    """Each trip's entry and exit as the tracker's fills (at one time in trade order, an
    entry before its exit), the stop exits with their reason."""
    out = []
    for k, t in enumerate(trades.itertuples()):
        long = t.size > 0
        reason = {"stop_loss": "stop_loss", "trailing_stop": "stop_loss"}.get(str(t.exit_reason))
        out.append(
            (
                t.entry_time,
                k,
                0,
                TradeRecord(
                    trade_id=f"e{k}",
                    account_id="bt",
                    strategy_id="s",
                    symbol="SP500",
                    side="buy" if long else "sell",
                    price=t.entry_price,
                    volume=abs(t.size),
                    execution_time=t.entry_time.to_pydatetime(),
                ),
            )
        )
        out.append((t.exit_time, k, 1, TradeRecord(
            trade_id=f"x{k}", account_id="bt", strategy_id="s", symbol="SP500",
            side="sell" if long else "buy", price=t.exit_price, volume=abs(t.size),
            execution_time=t.exit_time.to_pydatetime(),
            market_context={"reason": reason} if reason else {})))  # fmt: skip
    return [f for *_, f in sorted(out, key=lambda x: x[:3])]


def test_trip_labels_equal_the_trackers_round_trips_of_the_same_fills(session_factory, traded):
    candles, trades = traded
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", candles)
    tracker = TradeTracker(session_factory, annotator=MarketAnnotator())
    fills = _fills(trades)
    trips = []
    for start in range(0, len(fills), 7):  # small batches: the Labeller carried across
        trips += tracker.record_many(fills[start : start + 7]).trips
    by_entry = {t["entry_trade_ids"][0]: set(t["labels"]) for t in trips}
    ours = trip_labels(trades, candles, DAY)
    assert len(by_entry) == len(trades)
    assert [set(x) for x in ours] == [by_entry[f"e{k}"] for k in range(len(trades))]
    counts = label_counts(ours)
    # the stop exits are labelled stop_loss, and not only those
    stops = trades["exit_reason"].astype(str).isin(["stop_loss", "trailing_stop"]).to_numpy()
    assert all("stop_loss" in x for x, stop in zip(ours, stops, strict=True) if stop)
    assert counts["stop_loss"] >= stops.sum()
    assert sum(counts.values()) == sum(len(x) for x in ours)


def test_no_trade_no_label():
    assert trip_labels(pd.DataFrame(columns=["size"]), load_sample("SP500"), DAY) == []


def test_the_label_filter_keeps_trades_with_every_chosen_label_and_sums_them_up():
    rows = [
        {"id": 1, "pnl": 10.0, "return_pct": 1.0, "label_set": ["trend_following", "momentum"]},
        {"id": 2, "pnl": -4.0, "return_pct": -0.5, "label_set": ["trend_following"]},
        {"id": 3, "pnl": 6.0, "return_pct": 0.75, "label_set": ["momentum", "trend_following"]},
        {"id": 4, "pnl": 1.0, "return_pct": 0.1, "label_set": []},
    ]
    kept, options, summary = label_filter(rows, None)
    assert kept == rows
    assert summary == ""
    assert options == [  # LABELS order, with counts
        {"label": "trend_following (3)", "value": "trend_following"},
        {"label": "momentum (2)", "value": "momentum"},
    ]
    kept, _, summary = label_filter(rows, ["momentum", "trend_following"])
    assert [r["id"] for r in kept] == [1, 3]
    assert summary.children == (
        "2 of 4 trades with momentum + trend_following · net PnL 16.00 · win rate 100.0%"
        " · avg return 0.88% · profit factor ∞"
    )
    kept, _, summary = label_filter(rows, ["trend_following"])
    assert [r["id"] for r in kept] == [1, 2, 3]
    assert "net PnL 12.00 · win rate 66.7% · avg return 0.42% · profit factor 4.00" in (
        summary.children
    )
