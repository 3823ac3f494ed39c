"""TradingRunner through the database: closed candles of a feed trade the running deployments;
a feed that goes back in time (a looping replay starting over) trades nothing again, says so
once, and the deployments resume when the feed passes their last bar."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from database.repositories.candles import CandleRepository
from database.repositories.trading import TradingRepository
from market.candles import iter_candles
from market.feeds import FeedEvent
from market.sample_data import load_sample
from market.timeframes import Timeframe
from services.paper import PaperTrading
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
