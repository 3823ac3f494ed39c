"""StrategyRunRepository and SignalRepository on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from database.errors import RunNotFoundError
from database.records import SignalRecord
from database.repositories import SignalRepository, StrategyRunRepository
from tests.database.builders import T0, signal

CONFIG = {"fast": 10, "slow": 30, "filters": {"min_volume": 1e6, "sessions": ["us"]}}


def test_a_run_round_trips(session):
    runs = StrategyRunRepository(session)

    created = runs.create("sma_cross", CONFIG, "SP500", "1d", "backtest", started_at=T0)

    assert created.id is not None
    assert runs.get(created.id) == created
    assert created.config == CONFIG
    assert created.status == "running"
    assert created.started_at == T0
    assert created.finished_at is None


def test_a_run_started_now_is_utc(session):
    before = datetime.now(UTC)
    run = StrategyRunRepository(session).create("s", {}, "SP500", "1d", "live")
    assert before <= run.started_at <= datetime.now(UTC)
    assert run.started_at.utcoffset() == timedelta(0)


def test_finish_and_fail_a_run(session_factory):
    with session_factory.begin() as session:
        runs = StrategyRunRepository(session)
        ok = runs.create("s", {}, "SP500", "1d", "backtest", started_at=T0)
        bad = runs.create("s", {}, "SP500", "1d", "paper", started_at=T0)
        runs.finish(ok.id, "finished", finished_at=T0 + timedelta(seconds=3))
        runs.finish(bad.id, "failed", error="ZeroDivisionError: division by zero")

    with session_factory() as session:
        runs = StrategyRunRepository(session)
        finished, failed = runs.get(ok.id), runs.get(bad.id)
    assert finished.status == "finished"
    assert finished.finished_at == T0 + timedelta(seconds=3)
    assert finished.error is None
    assert failed.status == "failed"
    assert failed.error == "ZeroDivisionError: division by zero"
    assert failed.finished_at > failed.started_at


def test_finish_refuses_what_makes_no_sense(session):
    runs = StrategyRunRepository(session)
    run = runs.create("s", {}, "SP500", "1d", "backtest", started_at=T0)

    with pytest.raises(ValueError, match="status='running'"):
        runs.finish(run.id, "running")
    with pytest.raises(ValueError, match="before started_at"):
        runs.finish(run.id, finished_at=T0 - timedelta(seconds=1))
    with pytest.raises(RunNotFoundError, match="999"):
        runs.finish(999)
    runs.finish(run.id)
    with pytest.raises(ValueError, match="already finished"):
        runs.finish(run.id, "failed")
    with pytest.raises(ValueError, match="mode='forward'"):
        runs.create("s", {}, "SP500", "1d", "forward")
    assert runs.get(12345) is None


def test_list_runs_by_strategy_symbol_and_mode_newest_first(session):
    runs = StrategyRunRepository(session)
    made = [
        runs.create(name, {}, symbol, "1d", mode, started_at=T0 + timedelta(hours=i))
        for i, (name, symbol, mode) in enumerate(
            [
                ("sma", "SP500", "backtest"),
                ("sma", "NASDAQ", "backtest"),
                ("rsi", "SP500", "paper"),
                ("sma", "SP500", "live"),
            ]
        )
    ]

    assert [r.id for r in runs.list()] == [r.id for r in reversed(made)]
    assert [r.id for r in runs.list(strategy_name="sma")] == [made[3].id, made[1].id, made[0].id]
    assert [r.id for r in runs.list(symbol="SP500", mode="backtest")] == [made[0].id]
    assert [r.id for r in runs.list(strategy_name="sma", limit=1)] == [made[3].id]
    assert runs.list(mode="paper", status="finished") == []


def _stored(records: list[SignalRecord], stored: list[SignalRecord]) -> list[SignalRecord]:
    """The input records as they should come back: same values, with the stored ids."""
    return [dataclasses.replace(r, id=s.id) for r, s in zip(records, stored, strict=True)]


def test_signals_round_trip(session):
    run = StrategyRunRepository(session).create("sma_cross", CONFIG, "SP500", "1d", "backtest")
    records = [
        signal(timestamp=T0 + timedelta(days=i), run_id=run.id, signal_type=kind)
        for i, kind in enumerate(["entry_long", "exit_long", "entry_short", "exit_short"])
    ]
    signals = SignalRepository(session)

    assert signals.add_many(records) == 4
    back = signals.list(strategy_name="sma_cross")

    assert all(s.id is not None for s in back)
    assert len({s.id for s in back}) == 4
    assert back == _stored(records, back)
    assert back[0].metadata == {"fast_sma": 4700.1, "reasons": ["cross"]}
    assert back[0].timestamp.utcoffset() == timedelta(0)


def test_signal_filters(session):
    signals = SignalRepository(session)
    records = [
        signal(timestamp=T0 + timedelta(days=2)),
        signal(timestamp=T0, signal_type="exit_long"),
        signal(timestamp=T0 + timedelta(days=1), symbol="NASDAQ"),
        signal(timestamp=T0 + timedelta(days=3), timeframe="1h"),
        signal(timestamp=T0 + timedelta(days=4), strategy_name="rsi"),
    ]
    signals.add_many(records)

    def times(**filters: object) -> list[datetime]:
        return [s.timestamp for s in signals.list(**filters)]

    assert times() == [T0 + timedelta(days=d) for d in range(5)]  # oldest first
    assert times(symbol="SP500", timeframe="1d", strategy_name="sma_cross") == [
        T0,
        T0 + timedelta(days=2),
    ]
    assert times(start=T0 + timedelta(days=1), end=T0 + timedelta(days=3)) == [
        T0 + timedelta(days=d) for d in (1, 2, 3)
    ]
    tokyo = timezone(timedelta(hours=9))
    assert times(start=(T0 + timedelta(days=4)).astimezone(tokyo)) == [T0 + timedelta(days=4)]
    assert times(signal_types=["exit_long"]) == [T0]
    assert times(limit=2) == [T0, T0 + timedelta(days=1)]
    assert signals.count(symbol="SP500") == 4
    assert signals.count(start=T0 + timedelta(days=3)) == 2
    with pytest.raises(ValueError, match="naive"):
        signals.list(start=datetime(2024, 1, 1))


def test_signals_of_a_run(session):
    runs = StrategyRunRepository(session)
    first = runs.create("sma_cross", CONFIG, "SP500", "1d", "backtest")
    second = runs.create("sma_cross", CONFIG, "SP500", "1d", "backtest")
    signals = SignalRepository(session)
    signals.add_many([signal(run_id=first.id), signal(run_id=second.id), signal()])

    assert [s.run_id for s in signals.list(run_id=second.id)] == [second.id]


def test_a_signal_of_an_unknown_run_is_refused(session):
    with pytest.raises(IntegrityError):
        SignalRepository(session).add_many([signal(run_id=424242)])


def test_signals_alike_in_every_column_are_each_stored(session):
    """SQLite binds a value every row shares once per statement: rows that share all of them
    (one signal, or the same signal twice) are still one row each."""
    signals = SignalRepository(session)
    signals.add_many([signal()])
    signals.add_many([signal(), signal()])
    assert signals.count() == 3
    assert {s.price for s in signals.list()} == {signal().price}


def test_add_many_takes_only_new_signal_records(session):
    signals = SignalRepository(session)
    with pytest.raises(TypeError, match="SignalRecord"):
        signals.add_many([{"strategy_name": "x"}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="already stored"):
        signals.add_many([signal(id=7)])
    assert signals.count() == 0
    assert signals.add_many([]) == 0


def test_bulk_signals(session):
    records = [signal(timestamp=T0 + timedelta(minutes=i), price=100 + i) for i in range(5000)]
    signals = SignalRepository(session, chunk_rows=1000)

    assert signals.add_many(records) == 5000
    back = signals.list()
    assert back == _stored(records, back)
