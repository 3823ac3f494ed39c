"""The tracker's column-wise batches against the per-trade path, on SQLite and PostgreSQL: a
random book (two accounts, three symbols, partial closes, exact closes, flips, fees,
fractional volumes) recorded in random batches, streamed, and across a restart (positions
carried from the database) stores the pnl and cumulative pnl, closes the round trips and
gives the labels and context that PositionLedger and the Labeller, fed one trade at a time,
give: equal bit for bit."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from analytics.labels import Labeller
from analytics.round_trips import PositionLedger
from database.records import TradeRecord
from database.repositories.trades import TradeRepository
from tests.analytics.random_books import next_fill
from tracking.annotator import NO_BARS, MarketAnnotator
from tracking.tracker import TradeTracker

T0 = datetime(2024, 3, 4, 13, 0, tzinfo=UTC)


def book(seed: int, n: int) -> list[TradeRecord]:
    rng = np.random.default_rng(seed)
    out, held = [], {}
    for k in range(n):
        account, symbol = f"acc{rng.integers(2)}", f"S{rng.integers(3)}"
        side, volume = next_fill(rng, held, (account, symbol))
        out.append(
            TradeRecord(
                trade_id=f"t{k}", account_id=account, strategy_id=f"st{rng.integers(2)}",
                symbol=symbol, side=side, price=float(np.round(rng.uniform(50, 150), 4)),
                volume=volume, commission=float(np.round(rng.uniform(0, 0.4), 4)),
                execution_time=T0 + timedelta(seconds=37 * k), source="api",
            )
        )  # fmt: skip
    return out


def one_at_a_time(trades: list[TradeRecord]) -> tuple[dict, list[dict]]:
    """Per trade id (pnl, cumulative pnl, context, labels) and the round trips, from a
    PositionLedger and a Labeller per (account, symbol) fed one trade at a time (symbols
    without bars: the annotator's one-minute bar)."""
    ledgers: dict[tuple[str, str], PositionLedger] = {}
    labellers: dict[tuple[str, str], Labeller] = {}
    cumulative: dict[str, float] = {}
    out, trips = {}, []
    for t in trades:
        key = (t.account_id, t.symbol)
        ledger = ledgers.setdefault(key, PositionLedger(*key))
        labeller = labellers.setdefault(key, Labeller(None, NO_BARS))
        context, labels = labeller.annotate(t)
        pnl, done = ledger.apply(t.trade_id, t.strategy_id, t.side, t.price, t.volume,
                                 t.commission, t.execution_time)  # fmt: skip
        cumulative[t.account_id] = cumulative.get(t.account_id, 0.0) + pnl
        out[t.trade_id] = (pnl, cumulative[t.account_id], context, labels)
        trips.extend(done)
    return out, trips


def test_batches_streams_and_a_restart_store_what_one_trade_at_a_time_gives(session_factory):
    trades = book(3, 1200)
    expected, expected_trips = one_at_a_time(trades)
    heard: list[dict] = []

    def tracker() -> TradeTracker:
        return TradeTracker(
            session_factory, annotator=MarketAnnotator(),
            listeners=[lambda outcome: heard.extend(outcome.trips)],
        )  # fmt: skip

    rng = np.random.default_rng(7)
    cuts = sorted(set(rng.integers(1, 700, size=12).tolist()))
    first = tracker()
    for a, b in zip([0, *cuts], [*cuts, 700], strict=True):
        first.record_many(trades[a:b])
    second = tracker()  # a new process: positions, sizes and ids read from the database
    for future in [second.submit(t) for t in trades[700:1000]]:
        future.result(timeout=120)
    second.close()
    second.record_many(trades[1000:])
    with session_factory() as session:
        rows = {
            r.trade_id: r
            for account in ("acc0", "acc1")
            for r in TradeRepository(session).list(account_id=account)
        }
    assert len(rows) == len(trades)
    for trade_id, (pnl, cumulative, context, labels) in expected.items():
        row = rows[trade_id]
        assert (row.pnl, row.cumulative_pnl) == (pnl, cumulative), trade_id
        assert row.labels == labels, trade_id
        assert row.market_context == context, trade_id
    strip = ("labels", "volatility_regime", "market_session")
    got = [{k: v for k, v in t.items() if k not in strip} for t in heard]
    # the listener hears times as given; the ledger's dicts hold the same datetimes
    assert sorted(got, key=_order) == sorted(expected_trips, key=_order)
    assert len(expected_trips) > 150
    assert any(labels for *_, labels in expected.values())
    assert pd.Series([r.side for r in rows.values()]).nunique() == 2


def _order(trip: dict) -> tuple:
    return (trip["exit_time"], trip["account_id"], trip["symbol"])


def test_batches_spanning_new_bars_label_as_the_labeller_fed_one_trade_at_a_time(
    session_factory, monkeypatch
):
    """Bars stored as time goes on, batches spanning many new bars (more than the bars kept:
    fed in runs, earliest fills first), a symbol without bars, exit reasons in the source's
    context, news events: the tracker's column-wise labels and context equal a Labeller's
    (per symbol, warmed on the same bars) fed the bars and the trades one at a time."""
    from analytics.labels import as_fill
    from database.repositories.candles import CandleRepository
    from database.repositories.news import NewsRepository
    from market.sample_data import generate_random_walk
    from tracking import annotator as annotator_module

    monkeypatch.setattr(annotator_module, "KEEP_BARS", 40)  # a batch spans more bars than kept
    minute = pd.Timedelta(minutes=1)
    start = pd.Timestamp(T0)
    candles = generate_random_walk("S0", "1m", start, 1500, seed=4)
    rng = np.random.default_rng(11)
    trades, held = [], {}
    offsets = np.sort(rng.integers(30, 1490 * 60, size=700))  # seconds after the first bar
    reasons = [{}, {}, {}, {"reason": "stop_loss"}, {"trigger": "stop"}, {"reason": "tp"}]
    for k, offset in enumerate(offsets.tolist()):
        account, symbol = f"acc{rng.integers(2)}", ["S0", "S0", "NOBARS"][rng.integers(3)]
        side, volume = next_fill(rng, held, (account, symbol))
        when = (start + pd.Timedelta(seconds=offset)).to_pydatetime()
        trades.append(
            TradeRecord(
                trade_id=f"n{k}", account_id=account, strategy_id="s", symbol=symbol, side=side,
                price=float(candles["close"].iloc[offset // 60] * (1 + rng.normal(0, 0.002))),
                volume=volume, execution_time=when,
                market_context=dict(reasons[rng.integers(len(reasons))]), source="api",
            )
        )  # fmt: skip
    picked = rng.choice(len(trades), size=30, replace=False)
    news = pd.DataFrame({
        "time": [pd.Timestamp(trades[i].execution_time) + pd.Timedelta(minutes=int(m))
                 for i, m in zip(picked, rng.integers(-40, 40, size=30), strict=True)],
        "title": [f"event {i}" for i in picked],
        "symbol": [["S0", None, "OTHER"][i % 3] for i in picked],
    })  # fmt: skip
    with session_factory.begin() as session:
        NewsRepository(session).add(news)

    # the reference: per symbol one Labeller fed the bars closed by each trade, then the trade
    first = pd.Timestamp(trades[0].execution_time)
    warm = candles[candles.index <= first - minute]
    labellers = {"S0": Labeller(None, minute, history=warm, news=news, keep_bars=100_000),
                 "NOBARS": Labeller(None, NO_BARS, news=news)}  # fmt: skip
    fed = len(warm)
    expected = {}
    for t in trades:
        if t.symbol == "S0":
            while fed < len(candles) and candles.index[fed] + minute <= t.execution_time:
                labellers["S0"].update_candle(candles.iloc[fed])
                fed += 1
        context = t.market_context
        why = context.get("reason") or {"stop": "stop_loss"}.get(context.get("trigger"))
        fill = dataclasses.replace(as_fill(t), reason=why)
        made, labels = labellers[t.symbol].annotate(fill)
        expected[t.trade_id] = ({**made, **context}, labels)

    tracker = TradeTracker(session_factory, annotator=MarketAnnotator())
    stored_until = 0  # bars stored so far
    cuts = [0, 60, 200, 201, 520, 700]  # batches of 60, 140, 1, 319 and 180 trades
    for a, b in itertools.pairwise(cuts):
        last = pd.Timestamp(trades[b - 1].execution_time)
        upto = int(np.searchsorted(candles.index + minute, last, side="right"))
        with session_factory.begin() as session:  # the bars closed by then are stored now
            CandleRepository(session).upsert("S0", "1m", candles.iloc[stored_until:upto])
        stored_until = upto
        tracker.record_many(trades[a:b])
    with session_factory() as session:
        rows = {r.trade_id: r for a in ("acc0", "acc1")
                for r in TradeRepository(session).list(account_id=a)}  # fmt: skip
    assert len(rows) == len(trades)
    for trade_id, (context, labels) in expected.items():
        assert rows[trade_id].labels == labels, trade_id
        assert rows[trade_id].market_context == context, trade_id
    seen = {name for _, names in expected.values() for name in names}
    assert {"news_event", "stop_loss", "quick_exit", "high_volatility"} <= seen
