"""Constraints hold at the database level: even raw SQL cannot store a corrupt row."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from database.models import StrategyRun

GOOD_CANDLE = {
    "symbol": "SP500",
    "timeframe": "1d",
    "ts": 1_704_153_600_000,
    "open": 10.0,
    "high": 12.0,
    "low": 9.0,
    "close": 11.0,
    "volume": 100.0,
}
INSERT_CANDLE = text(
    "INSERT INTO candles (symbol, timeframe, ts, open, high, low, close, volume) "
    "VALUES (:symbol, :timeframe, :ts, :open, :high, :low, :close, :volume)"
)

BAD_CANDLES = {
    "high below low": {"high": 8.5},
    "open above high": {"open": 12.5},
    "open below low": {"open": 8.0},
    "close above high": {"close": 13.0},
    "close below low": {"close": 8.9},
    "zero low": {"low": 0.0, "open": 1.0, "close": 1.0},
    "negative volume": {"volume": -1.0},
    "NaN high": {"high": math.nan},
    "NaN volume": {"volume": math.nan},
    "infinite high": {"high": math.inf},
    "infinite volume": {"volume": math.inf},
    "empty symbol": {"symbol": ""},
    "missing close": {"close": None},
}


def test_raw_sql_cannot_store_a_corrupt_candle(engine):
    with engine.begin() as connection:
        connection.execute(INSERT_CANDLE, GOOD_CANDLE)  # the baseline row is accepted

    accepted = []
    for name, change in BAD_CANDLES.items():
        row = {**GOOD_CANDLE, "ts": GOOD_CANDLE["ts"] + 86_400_000, **change}
        try:
            with engine.begin() as connection:
                connection.execute(INSERT_CANDLE, row)
        except IntegrityError:
            continue
        accepted.append(name)

    assert accepted == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM candles")).scalar() == 1


def test_raw_sql_cannot_store_a_duplicate_bar(engine):
    with engine.begin() as connection:
        connection.execute(INSERT_CANDLE, GOOD_CANDLE)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(INSERT_CANDLE, {**GOOD_CANDLE, "close": 10.5})


RUN = {
    "strategy_name": "sma_cross",
    "config": "{}",
    "symbol": "SP500",
    "timeframe": "1d",
    "mode": "backtest",
    "started_at": "2024-01-02 00:00:00",
    "finished_at": None,
    "status": "running",
}
INSERT_RUN = text(
    "INSERT INTO strategy_runs (strategy_name, config, symbol, timeframe, mode, started_at, "
    "finished_at, status) VALUES (:strategy_name, :config, :symbol, :timeframe, "
    ":mode, :started_at, :finished_at, :status)"
)
SIGNAL = {
    "strategy_name": "sma_cross",
    "symbol": "SP500",
    "timeframe": "1d",
    "timestamp": "2024-01-02 00:00:00",
    "signal_type": "entry_long",
    "price": 10.0,
    "confidence": 0.5,
    "run_id": None,
}
INSERT_SIGNAL = text(
    "INSERT INTO strategy_signals (strategy_name, strategy_config, symbol, timeframe, timestamp, "
    "signal_type, price, confidence, signal_metadata, run_id) VALUES (:strategy_name, "
    "'{}', :symbol, :timeframe, :timestamp, :signal_type, :price, :confidence, '{}', :run_id)"
)
TRADE = {
    "trade_id": "t-1",
    "account_id": "a",
    "strategy_id": "s",
    "symbol": "SP500",
    "side": "buy",
    "price": 10.0,
    "volume": 1.0,
    "commission": 0.0,
    "execution_time": "2024-01-02 00:00:00",
    "pnl": None,
}
INSERT_TRADE = text(
    "INSERT INTO trades (trade_id, account_id, strategy_id, symbol, side, price, volume, "
    "commission, execution_time, market_context, labels, pnl) VALUES (:trade_id, :account_id, "
    ":strategy_id, :symbol, :side, :price, :volume, :commission, :execution_time, "
    "'{}', '[]', :pnl)"
)

BAD_ROWS = [
    ("run mode", INSERT_RUN, RUN, {"mode": "forward"}),
    ("run status", INSERT_RUN, RUN, {"status": "paused"}),
    ("finished run without finish time", INSERT_RUN, RUN, {"status": "finished"}),
    ("running run with finish time", INSERT_RUN, RUN, {"finished_at": "2024-01-03 00:00:00"}),
    (
        "run finished before it started",
        INSERT_RUN,
        RUN,
        {"status": "failed", "finished_at": "2024-01-01 00:00:00"},
    ),
    ("signal type", INSERT_SIGNAL, SIGNAL, {"signal_type": "buy"}),
    ("signal confidence above 1", INSERT_SIGNAL, SIGNAL, {"confidence": 1.5}),
    ("signal confidence NaN", INSERT_SIGNAL, SIGNAL, {"confidence": math.nan}),
    ("signal price zero", INSERT_SIGNAL, SIGNAL, {"price": 0.0}),
    ("signal of an unknown run", INSERT_SIGNAL, SIGNAL, {"run_id": 999}),
    ("trade side", INSERT_TRADE, TRADE, {"side": "short"}),
    ("trade volume zero", INSERT_TRADE, TRADE, {"volume": 0.0}),
    ("trade price NaN", INSERT_TRADE, TRADE, {"price": math.nan}),
    ("trade commission infinite", INSERT_TRADE, TRADE, {"commission": math.inf}),
    ("trade pnl infinite", INSERT_TRADE, TRADE, {"pnl": -math.inf}),
    ("trade empty id", INSERT_TRADE, TRADE, {"trade_id": ""}),
]


def test_raw_sql_cannot_store_a_corrupt_run_signal_or_trade(engine):
    with engine.begin() as connection:  # the baselines are accepted
        connection.execute(INSERT_RUN, RUN)
        connection.execute(INSERT_SIGNAL, SIGNAL)
        connection.execute(INSERT_TRADE, TRADE)

    accepted = []
    for name, statement, baseline, change in BAD_ROWS:
        row = {**baseline, **change}
        if row.get("trade_id"):
            row["trade_id"] = f"t-{name}"
        try:
            with engine.begin() as connection:
                connection.execute(statement, row)
        except IntegrityError:
            continue
        accepted.append(name)

    assert accepted == []


def test_times_are_utc_in_and_out(session):
    tokyo = timezone(timedelta(hours=9))
    if session.get_bind().dialect.name == "postgresql":
        # timestamptz comes back in the connection's zone unless converted
        session.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
    session.execute(
        insert(StrategyRun),
        [
            {
                "strategy_name": "s",
                "config": {},
                "symbol": "X",
                "timeframe": "1d",
                "mode": "paper",
                "status": "failed",
                "started_at": datetime(2024, 3, 1, 9, 0, tzinfo=tokyo),
                "finished_at": datetime(2024, 3, 1, 0, 30, tzinfo=UTC),
            }
        ],
    )

    started, finished = session.execute(
        select(StrategyRun.started_at, StrategyRun.finished_at)
    ).one()

    assert started == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert started.utcoffset() == timedelta(0)
    assert finished == datetime(2024, 3, 1, 0, 30, tzinfo=UTC)
    # comparisons take aware times in any zone
    assert session.scalar(
        select(StrategyRun.id).where(
            StrategyRun.started_at < datetime(2024, 3, 1, 9, 1, tzinfo=tokyo)
        )
    )


def test_a_naive_time_is_refused(session):
    run = StrategyRun(
        strategy_name="s",
        config={},
        symbol="X",
        timeframe="1d",
        mode="paper",
        status="running",
        started_at=datetime(2024, 3, 1, 9, 0),
    )
    session.add(run)
    with pytest.raises(StatementError, match="naive"):
        session.flush()


@pytest.mark.parametrize(
    "database_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_times_are_timestamptz_on_postgresql(engine):
    columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("trades")}
    assert columns["execution_time"].timezone is True
