"""TradingRunner through the database: closed candles of a feed trade the running deployments;
a feed that goes back in time (a looping replay starting over) trades nothing again, says so
once, and the deployments resume when the feed passes their last bar."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from database.repositories.candles import CandleRepository
from database.repositories.trading import TradingRepository
from market.candles import iter_candles
from market.feeds import FeedEvent
from market.sample_data import load_sample
from market.timeframes import Timeframe
from services.paper import PaperError, PaperTrading
from services.trading_runner import TradingRunner
from trading.alerts.events import AlertEvent

DAY = Timeframe.parse("1d")


def closed(symbol: str, candles: pd.DataFrame) -> list[FeedEvent]:
    return [FeedEvent("closed", symbol, DAY, c) for c in iter_candles(candles)]


def fills_of(sessions: sessionmaker[Session], account_id: int) -> int:
    with sessions() as session:
        return len(TradingRepository(session).fills(account_id))


def test_a_rewound_feed_trades_nothing_again_and_resumes_past_the_last_bar(session_factory):
    candles = load_sample("SP500").iloc[-400:]
    history, live = candles.iloc[:100], candles.iloc[100:300]
    with session_factory.begin() as session:  # a replay feed streams bars already stored
        CandleRepository(session).upsert("SP500", "1d", candles)
    paper = PaperTrading(session_factory)
    account = paper.create_account("demo", 10_000.0)
    paper.deploy(
        "sma", account="demo", strategy="sma_crossover", params={"fast": 2, "slow": 4},
        symbol="SP500", timeframe="1d",
    )  # fmt: skip
    paper.set_status("sma", "running")
    notes: list[AlertEvent] = []
    cursor = {"SP500": history.index[-1]}
    runner = TradingRunner(session_factory, notify=notes.append, cursor=cursor.get)
    runner.start()
    try:
        for event in closed("SP500", live):
            runner.on_closed(event)
        traded = fills_of(session_factory, account.id)
        assert traded > 10
        assert runner.status().last_bar == live.index[-1]

        # the replay starts over: the same bars again, nothing trades twice
        for event in closed("SP500", live):
            runner.on_closed(event)
        assert fills_of(session_factory, account.id) == traded
        rewound = [n for n in notes if n.kind == "feed_rewound"]
        assert len(rewound) == 1
        assert rewound[0].severity == "info"
        assert live.index[0].isoformat() in rewound[0].message
        assert live.index[-1].isoformat() not in rewound[0].message  # it waits for the next

        # past the last bar: it trades again, and a later rewind says so once more
        for event in closed("SP500", candles.iloc[300:]):
            runner.on_closed(event)
        assert fills_of(session_factory, account.id) > traded
        runner.on_closed(closed("SP500", live.iloc[:1])[0])
        assert len([n for n in notes if n.kind == "feed_rewound"]) == 2
    finally:
        runner.stop()


# -- one runner per database; a cancel from another process goes through it ------------------


def test_a_second_runner_on_the_same_database_is_refused_until_the_first_stops(session_factory):
    from services.trading_runner import RunnerBusyError

    first, second = TradingRunner(session_factory), TradingRunner(session_factory)
    first.start()
    try:
        with pytest.raises(RunnerBusyError, match=first.owner):
            second.start()
        assert not second.running
    finally:
        first.stop()
    second.start()  # the lease was released
    second.stop()


def test_a_dead_runners_lease_goes_stale(session_factory):
    """A runner killed without releasing its lease holds it no longer than ``lease_s``."""
    from database.repositories.order_requests import OrderRequestRepository

    long_ago = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    with session_factory.begin() as session:
        repo = OrderRequestRepository(session)
        assert repo.take_lease("dead:1", long_ago, stale_before=long_ago) is None
    runner = TradingRunner(session_factory)
    runner.start()  # its heartbeat is months old: taken over
    try:
        with session_factory() as session:
            holder = OrderRequestRepository(session).lease_holder(
                stale_before=pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=runner.lease_s)
            )
        assert holder == runner.owner
    finally:
        runner.stop()


def _trading_with_an_open_stop(session_factory) -> tuple[TradingRunner, str, int]:
    """A started runner whose live broker holds an open stop-loss order (after an entry):
    (runner, the stop's client order id, the account id)."""
    candles = load_sample("SP500").iloc[-300:]
    with session_factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", candles)
    paper = PaperTrading(session_factory)
    account = paper.create_account("stops", 10_000.0)
    paper.deploy(
        "sma", account="stops", strategy="sma_crossover", params={"fast": 2, "slow": 4},
        symbol="SP500", timeframe="1d", settings={"stop_loss_pct": 0.5},
    )  # fmt: skip
    paper.set_status("sma", "running")
    cursor = {"SP500": candles.index[99]}
    runner = TradingRunner(session_factory, cursor=cursor.get, request_poll_s=0.05)
    runner.start()
    for event in closed("SP500", candles.iloc[100:]):
        runner.on_closed(event)
        with session_factory() as session:
            resting = TradingRepository(session).orders(account.id, open_only=True)
        # a stop resting alone (no market order waiting for the next open to close it)
        if resting and all(o.order_type == "stop" for o in resting):
            return runner, resting[0].client_order_id, account.id
    runner.stop()
    raise AssertionError("no stop-loss order rested")


def test_a_cancel_from_another_process_is_applied_by_the_runner_holding_the_order(
    session_factory,
):
    """A page served apart from the runner (TRADING_RUNNER=external: no runner of its own)
    asks the runner through order_requests; the runner cancels through its live broker, so
    the order stays cancelled (a direct edit of the stored order would be undone by the
    runner's next write of that order)."""
    runner, client_order_id, account_id = _trading_with_an_open_stop(session_factory)
    try:
        assert runner.holds(client_order_id)
        page = PaperTrading(session_factory, answer_wait_s=20.0)  # another process's view
        assert page.cancel(client_order_id) == f"order {client_order_id} cancelled"
        assert runner.engine.brokers[account_id].orders.get(client_order_id) is None or (
            runner.engine.brokers[account_id].orders[client_order_id].status == "cancelled"
        )
        with pytest.raises(PaperError, match="cancel"):  # a second cancel: refused, said why
            page.cancel(client_order_id)
        with session_factory() as session:
            found = TradingRepository(session).order(client_order_id)
        assert found is not None
        assert found[1].status == "cancelled"
    finally:
        runner.stop()


def test_without_a_runner_a_cancel_edits_the_stored_order(session_factory):
    runner, client_order_id, _ = _trading_with_an_open_stop(session_factory)
    runner.stop()  # the lease released: nobody holds the order now
    page = PaperTrading(session_factory, answer_wait_s=0.0)
    assert page.cancel(client_order_id) == f"order {client_order_id} cancelled"
    with session_factory() as session:
        found = TradingRepository(session).order(client_order_id)
    assert found is not None
    assert found[1].status == "cancelled"


def test_a_runner_killed_on_this_host_leaves_its_lease_at_once(session_factory):
    """Restarted right after a kill -9, the runner does not wait for the lease to go stale:
    its holder was a process of this host that is gone."""
    import socket
    import subprocess
    import sys

    from database.repositories.order_requests import OrderRequestRepository

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    with session_factory.begin() as session:
        repo = OrderRequestRepository(session)
        dead = f"{socket.gethostname()}:{gone.pid}:killed"
        assert repo.take_lease(dead, now, stale_before=now) is None  # a fresh heartbeat
    runner = TradingRunner(session_factory)
    runner.start()
    runner.stop()


def test_a_resting_stop_fills_while_the_bar_forms(session_factory):
    """A forming update that reaches a resting stop fills it at once (stored with the
    deployment's state after it), by the closed bar's rules; the bar's close fills it no
    second time."""
    from market.candles import Candle

    runner, client_order_id, account_id = _trading_with_an_open_stop(session_factory)
    try:
        with session_factory() as session:
            repo = TradingRepository(session)
            _, stop = repo.order(client_order_id)
            deployment = repo.deployments(status="running")[0]
        level = stop.stop_price
        sell = stop.side == "sell"
        ts = pd.Timestamp(deployment.last_bar_ts, unit="ms", tz="UTC") + pd.Timedelta(days=1)
        away, through = (1.05, 0.95) if sell else (0.95, 1.05)
        high, low = (level * away, level * through) if sell else (level * through, level * away)
        forming = Candle(ts, level * away, high, low, level * through, 1_000.0)
        before = fills_of(session_factory, account_id)

        runner.on_forming(FeedEvent("forming", "SP500", DAY, forming))

        with session_factory() as session:
            repo = TradingRepository(session)
            _, filled = repo.order(client_order_id)
            fills = [f for f in repo.fills(account_id) if f.client_order_id == client_order_id]
            position = [p for p in repo.positions(account_id) if p.symbol == "SP500"]
            state = repo.deployments(status="running")[0].state
        assert filled.status == "filled"
        assert len(fills) == 1
        assert fills[0].price == pytest.approx(level)  # reached, not gapped: at the stop
        assert fills[0].bar_ts == deployment.last_bar_ts + 86_400_000
        assert fills_of(session_factory, account_id) == before + 1
        assert all(p.quantity == 0 for p in position)
        assert state["position"]["side"] == 0  # the deployment knows, stored with the fill

        closed_bar = Candle(ts, forming.open, forming.high, forming.low, forming.close, 2_000.0)
        runner.on_closed(FeedEvent("closed", "SP500", DAY, closed_bar))
        with session_factory() as session:
            again = [
                f for f in TradingRepository(session).fills(account_id)
                if f.client_order_id == client_order_id
            ]  # fmt: skip
        assert len(again) == 1
    finally:
        runner.stop()
