"""One trade tracker per process: the paper runner's fills go through the process's
TrackingService tracker, so its live view and its listeners (the WebSocket push) hear them
as they hear the API's and the imports' trades. Before, the runner kept a tracker of its own:
an account's live view, once read, never moved with the runner's fills, and no client was
pushed a paper fill."""

from __future__ import annotations

import pandas as pd
import pytest

from config.settings import Settings
from database.repositories.candles import CandleRepository
from database.repositories.trades import TradeRepository
from market.candles import iter_candles
from market.feeds import FeedEvent
from market.sample_data import load_sample
from market.timeframes import Timeframe
from services.paper import PaperTrading
from services.tracking import TrackingService
from services.trading_runner import TradingRunner
from tracking.tracker import Recorded

DAY = Timeframe.parse("1d")


def _closed(symbol: str, candles: pd.DataFrame) -> list[FeedEvent]:
    return [FeedEvent("closed", symbol, DAY, c) for c in iter_candles(candles)]


def _deploy(paper: PaperTrading, symbol: str) -> None:
    paper.create_account("demo", 10_000.0)
    paper.deploy(
        "sma", account="demo", strategy="sma_crossover", params={"fast": 2, "slow": 4},
        symbol=symbol, timeframe="1d",
    )  # fmt: skip
    paper.set_status("sma", "running")


def _stored_trades(sessions, account: str) -> int:
    with sessions() as session:
        return len(TradeRepository(session).list(account_id=account))


def test_the_runners_fills_move_the_live_view_and_reach_the_listeners(session_factory):
    candles = load_sample("SP500").iloc[-400:]
    with session_factory.begin() as session:  # a replay feed streams bars already stored
        CandleRepository(session).upsert("SP500", "1d", candles)
    tracking = TrackingService(session_factory)
    _deploy(PaperTrading(session_factory, tracker=tracking.tracker), "SP500")
    heard: list[Recorded] = []
    tracking.tracker.add_listener(heard.append)
    cursor = {"SP500": candles.index[99]}
    runner = TradingRunner(session_factory, cursor=cursor.get, tracker=tracking.tracker)
    runner.start()
    try:
        events = _closed("SP500", candles.iloc[100:])
        for event in events[:150]:
            runner.on_closed(event)
        first = _stored_trades(session_factory, "demo")
        assert first > 4
        assert tracking.live("demo")["fills"] == first  # read once from the database
        for event in events[150:]:
            runner.on_closed(event)
    finally:
        runner.stop()
        tracking.tracker.close()
    total = _stored_trades(session_factory, "demo")
    assert total > first
    heard_ids = [t.trade_id for outcome in heard for t in outcome.stored]
    assert len(heard_ids) == total == len(set(heard_ids))
    live = tracking.live("demo")  # kept up by the runner's fills, not read again
    assert live["fills"] == total
    whole = TrackingService(session_factory).performance("demo")["periods"][0]["trade_summary"]
    assert live["trade_summary"]["trades"] == whole["trades"] > 0
    assert live["trade_summary"]["net_pnl"] == pytest.approx(whole["net_pnl"], rel=1e-9)


def test_the_apps_services_share_one_tracker(tmp_path):
    """build_services: the runner, the pages' attribution and the API of `serve-api` use
    services.tracking; a fill the runner makes is heard by its tracker's listeners."""
    from services.runtime import build_services

    settings = Settings.from_env(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "FEEDS": "none"}
    )
    services = build_services(settings)
    try:
        candles = load_sample("NASDAQ").iloc[-300:]
        with services.sessions.begin() as session:  # history; the feed brings the rest
            CandleRepository(session).upsert("TEST", "1d", candles.iloc[:100])
        paper = PaperTrading(
            services.sessions, runner=services.trading, tracker=services.tracking.tracker
        )
        _deploy(paper, "TEST")
        heard: list[str] = []
        services.tracking.tracker.add_listener(
            lambda outcome: heard.extend(t.trade_id for t in outcome.stored)
        )
        services.trading.start()
        for event in _closed("TEST", candles.iloc[100:]):
            with services.sessions.begin() as session:  # as the feed stores each closed bar
                CandleRepository(session).upsert("TEST", "1d", candles.loc[[event.candle.ts]])
            services.trading.on_closed(event)
        stored = _stored_trades(services.sessions, "demo")
        assert stored > 4
        assert len(heard) == stored
        assert services.tracking.live("demo")["fills"] == stored
    finally:
        services.close()
