"""Round 2 of the run store, on SQLite and PostgreSQL: a run's trades and equity stored with it
(strategy_run_results) read back identically; a run's signals as one SignalBlock read back as
the records of ``to_records`` would; typed metadata (keys once on the run, float64 values per
signal) read back as the mapping it was, and back to JSON on a downgrade."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

from analytics.backtest import BacktestSettings, run_backtest
from database.migrate import downgrade, upgrade
from database.models import StrategyRun, StrategyRunResult, StrategySignal, StrategySignalBlock
from database.records import RetentionPolicy, RunResultRecord, SignalBlock
from database.repositories import StrategyRepository
from database.session import make_engine, make_session_factory
from market.sample_data import load_sample
from strategies import registry
from tests.database.builders import T0, signals

CONFIG = {"fast": 10, "slow": 30, "direction": "both", "backtest": {"cash": 10_000.0}}


def _odd_trades() -> pd.DataFrame:
    """Every dtype a trade list holds, with NaN, NaT, a timezone and a category."""
    times = pd.DatetimeIndex(["2024-01-02 14:30", "2024-01-03 09:00", "2024-01-04"], tz="UTC")
    return pd.DataFrame(
        {
            "entry_time": times,
            "exit_time": pd.DatetimeIndex([times[1], pd.NaT, times[2]]).tz_convert("UTC"),
            "entry_bar": np.array([0, 5, 9], dtype=np.int64),
            "side": pd.Categorical(["long", "short", "long"], categories=["short", "long"]),
            "size": [1.5, -2.0, 0.0],
            "pnl": [12.25, math.nan, -math.inf],
            "duration": pd.to_timedelta(["1D", "NaT", "3h"]),
            "exit_reason": pd.Categorical(
                ["signal", "end", "signal"], categories=["signal", "stop_loss", "end"]
            ),
            "note": ["é ✓ 📈", 'a "quoted", comma', None],
        }
    )


def _equity(bars: int = 50) -> pd.Series:
    index = pd.date_range("2024-01-02", periods=bars, freq="1min", tz="UTC", name="ts")
    return pd.Series(10_000 + np.arange(bars) * 0.5, index=index, name="equity")


def test_a_run_result_reads_back_identically(session):
    result = RunResultRecord(
        trades=_odd_trades(), equity=_equity(), warmup_bars=29, drawdown_halt=T0
    )
    repo = StrategyRepository(session)
    run = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", [], result=result)
    other = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", [])

    back = repo.run_result(run.id)

    assert_frame_equal(back.trades, result.trades, check_exact=True)
    assert_series_equal(back.equity, result.equity, check_exact=True)
    assert back.equity.index.freq is None or back.equity.index.equals(result.equity.index)
    assert (back.warmup_bars, back.drawdown_halt) == (29, T0)
    assert repo.run_result(other.id) is None


def test_an_empty_trade_list_and_the_engine_s_trades_read_back_identically(session):
    candles = load_sample("SP500").iloc[:1500]
    strategy = registry.create("sma_crossover", fast=5, slow=20, direction="both")
    backtest = run_backtest(candles, strategy.generate(candles), BacktestSettings())
    repo = StrategyRepository(session)
    for trades in (backtest.trades, backtest.trades.iloc[:0]):
        result = RunResultRecord(trades=trades, equity=backtest.equity, warmup_bars=19)
        run = repo.save_run("sma_crossover", CONFIG, "SP500", "1d", "backtest", [],
                            result=result)  # fmt: skip
        back = repo.run_result(run.id)
        assert_frame_equal(back.trades, trades, check_exact=True)
        assert_series_equal(back.equity, backtest.equity, check_exact=True)
        assert back.drawdown_halt is None
    assert len(backtest.trades) > 20


def test_a_result_goes_with_its_run_and_names_an_existing_run(session_factory):
    result = RunResultRecord(trades=_odd_trades(), equity=_equity(), warmup_bars=0)
    with session_factory.begin() as session:
        repo = StrategyRepository(session)
        old = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", signals(3),
                            started_at=T0, result=result)  # fmt: skip
        kept = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", [], result=result)
    with session_factory.begin() as session:
        report = StrategyRepository(session).apply_retention(
            RetentionPolicy(keep_analysis_days=30), now=T0 + timedelta(days=90)
        )
        assert (report.deleted_runs, report.deleted_signals) == (1, 3)
    with session_factory.begin() as session:
        assert session.scalars(select(StrategyRunResult.run_id)).all() == [kept.id]
        session.execute(delete(StrategyRun).where(StrategyRun.id == kept.id))
        assert session.scalar(select(func.count()).select_from(StrategyRunResult)) == 0
    with pytest.raises(IntegrityError), session_factory.begin() as session:
        session.add(StrategyRunResult(run_id=old.id, format=1, trades=b"", equity=b"",
                                      warmup_bars=0))  # fmt: skip


def test_a_result_is_checked_before_anything_is_written(session):
    with pytest.raises(TypeError, match="equity must be a Series on a DatetimeIndex"):
        RunResultRecord(trades=_odd_trades(), equity=pd.Series([1.0]), warmup_bars=0)
    with pytest.raises(ValueError, match="warmup_bars=-1 is invalid"):
        RunResultRecord(trades=_odd_trades(), equity=_equity(), warmup_bars=-1)
    with pytest.raises(TypeError, match="result must be a RunResultRecord"):
        StrategyRepository(session).save_run(
            "sma_cross", CONFIG, "SP500", "1d", "backtest", [], result={"trades": None}
        )
    assert session.scalar(select(func.count()).select_from(StrategyRun)) == 0


# -- a run's signals as one block -------------------------------------------------------------


def _generated(metadata: bool = True):
    candles = load_sample("SP500").iloc[:3000]
    result = registry.create("sma_crossover", fast=5, slow=20, direction="both").generate(
        candles, symbol="SP500", timeframe="1d"
    )
    if not metadata:
        result = dataclasses.replace(result, metadata_columns={})
    return result


@pytest.mark.parametrize("metadata", [True, False])
def test_a_block_reads_back_as_the_records_of_the_same_signals(session, metadata):
    generated = _generated(metadata)
    records = generated.to_records()
    repo = StrategyRepository(session)
    by_block = repo.save_run("sma_crossover", CONFIG, "SP500", "1d", "backtest",
                             generated.to_block())  # fmt: skip
    by_records = repo.save_run("sma_crossover", CONFIG, "SP500", "1d", "backtest", records)

    block_back = repo.signals.list(run_id=by_block.id)
    records_back = repo.signals.list(run_id=by_records.id)

    assert len(block_back) == len(records) > 100
    assert [dataclasses.replace(s, id=None, run_id=None) for s in block_back] == records
    assert [dataclasses.replace(s, id=None, run_id=None) for s in records_back] == records
    assert bool(records[0].metadata) is metadata
    # the signals' config (the strategy's params) once on the run, NULL per signal
    assert records[0].strategy_config != CONFIG
    stored_configs = session.execute(select(StrategySignal.strategy_config.is_(None))).scalars()
    assert set(stored_configs) == {True}
    typed = session.scalar(
        select(func.count()).where(StrategySignal.signal_metadata_values.is_not(None))
    )
    # the block's signals are one row of strategy_signal_blocks, not a row each
    assert typed == (len(records) if metadata else 0)
    assert session.scalar(
        select(func.count()).select_from(StrategySignal).where(
            StrategySignal.run_id == by_block.id)
    ) == 0  # fmt: skip
    assert session.execute(
        select(StrategySignalBlock.run_id, StrategySignalBlock.signal_count)
    ).all() == [(by_block.id, len(records))]
    keys = session.scalar(select(StrategyRun.signal_metadata_keys).where(
        StrategyRun.id == by_block.id))  # fmt: skip
    assert keys == (list(records[0].metadata) if metadata else None)


def test_metadata_other_than_floats_stays_json_and_any_float_reads_back_exactly(session):
    n = 5
    stamps = pd.date_range(T0, periods=n, freq="1min")
    special = [math.nan, math.inf, -0.0, 5e-324, 1.7976931348623157e308]
    common = {"strategy_name": "sma_cross", "symbol": "SP500", "timeframe": "1d",
              "timestamp": stamps, "signal_type": ["entry_long", "exit_long"] * 2 + ["entry_short"],
              "price": np.linspace(1, 2, n), "confidence": np.full(n, 0.5)}  # fmt: skip
    typed = SignalBlock(**common, metadata={"x": np.array(special), "é ✓": np.ones(n)})
    loose = SignalBlock(**common, metadata={"n": np.arange(n), "ok": np.array([True] * n)})
    repo = StrategyRepository(session)
    first = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", typed)
    second = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", loose)

    back = [s.metadata for s in repo.signals.list(run_id=first.id)]
    assert [list(m) for m in back] == [["x", "é ✓"]] * n
    assert math.isnan(back[0]["x"])
    assert [m["x"] for m in back[1:]] == special[1:]
    assert math.copysign(1, back[2]["x"]) == -1
    assert [s.metadata for s in repo.signals.list(run_id=second.id)] == [
        {"n": i, "ok": True} for i in range(n)
    ]
    assert all(type(s.metadata["n"]) is int for s in repo.signals.list(run_id=second.id))


def test_a_block_is_checked_by_name_before_anything_is_written(session):
    n = 3
    good = {"strategy_name": "sma_cross", "symbol": "SP500", "timeframe": "1d",
            "timestamp": pd.date_range(T0, periods=n, freq="1min"),
            "signal_type": ["entry_long"] * n, "price": [1.0, 2.0, 3.0],
            "confidence": [1.0] * n}  # fmt: skip
    cases = [
        ({"price": [1.0, math.nan, 3.0]}, r"price=nan of signal 1 is invalid"),
        ({"price": [1.0, 2.0, -3.0]}, r"price=-3.0 of signal 2 is invalid"),
        ({"confidence": [1.0, 1.5, 1.0]}, r"confidence=1.5 of signal 1 is invalid"),
        ({"signal_type": ["entry_long", "buy", "exit_long"]}, r"signal_type of signal 1="),
        ({"timestamp": pd.date_range("2024-01-02", periods=n, freq="1min")}, "is naive"),
        ({"price": [1.0, 2.0]}, r"SignalBlock.price has 2 values for 3 timestamps"),
        ({"metadata": {"a": [1.0]}}, r"SignalBlock.metadata\['a'\] has 1 values"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            SignalBlock(**{**good, **change})
    block = SignalBlock(**good)
    with pytest.raises(ValueError, match="the signals have symbol='SP500' but the run is for"):
        StrategyRepository(session).save_run("sma_cross", CONFIG, "BTC", "1d", "backtest", block)
    assert session.scalar(select(func.count()).select_from(StrategyRun)) == 0


def test_typed_metadata_goes_back_to_json_on_a_downgrade_and_typed_again(empty_database_url):
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        sessions = make_session_factory(engine)
        records = [
            dataclasses.replace(r, metadata={"fast_sma": i / 7, "atr": 1e-5 * i})
            for i, r in enumerate(signals(40, step=timedelta(minutes=1)))
        ]
        with sessions.begin() as session:
            repo = StrategyRepository(session)
            run = repo.save_run("sma_cross", CONFIG, "SP500", "1d", "backtest", records)
            before = repo.signals.list()
            assert session.scalar(
                select(func.count()).where(StrategySignal.signal_metadata_values.is_not(None))
            ) == len(records)
        downgrade(engine, "0001")
        with sessions() as session:
            stored = (
                session.execute(text("SELECT signal_metadata FROM strategy_signals ORDER BY id"))
                .scalars()
                .all()
            )
        import json

        as_json = [json.loads(m) if isinstance(m, str) else m for m in stored]
        assert as_json == [r.metadata for r in records]
        upgrade(engine)
        with sessions() as session:
            assert StrategyRepository(session).signals.list() == before
        assert run.id == before[0].run_id
    finally:
        engine.dispose()


def test_a_large_block_round_trips(session):
    n = 40_003
    stamps = pd.date_range(datetime(2020, 1, 1, tzinfo=UTC), periods=n, freq="1min")
    rng = np.random.default_rng(3)
    block = SignalBlock(
        strategy_name="sma_cross", symbol="SP500", timeframe="1m", timestamp=stamps,
        signal_type=np.where(np.arange(n) % 2, "exit_long", "entry_long"),
        price=rng.uniform(1, 1e6, n), confidence=rng.uniform(0, 1, n),
        metadata={"a": rng.normal(size=n), "b": rng.normal(size=n)},
    )  # fmt: skip
    repo = StrategyRepository(session, chunk_rows=9_000)
    run = repo.save_run("sma_cross", CONFIG, "SP500", "1m", "backtest", block)
    frame = repo.signals.frame(run_id=run.id)
    assert frame["price"].to_numpy().tolist() == block.price.tolist()
    assert frame["confidence"].to_numpy().tolist() == block.confidence.tolist()
    assert (frame["timestamp"] == stamps).all()
    tail = repo.signals.list(run_id=run.id, newest_first=True, limit=2)
    assert [s.metadata for s in tail] == [
        {"a": block.metadata["a"][i], "b": block.metadata["b"][i]} for i in (n - 1, n - 2)
    ]
    assert [s.strategy_config for s in tail] == [CONFIG] * 2
