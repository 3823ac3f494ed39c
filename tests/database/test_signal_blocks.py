"""A run's signals stored as one block (strategy_signal_blocks) read through every signal query
exactly as the same signals stored as rows: filters, order, limits, frames, counts and
aggregations; with rows and blocks mixed; deleted with their run and by retention; expanded
back into rows by a downgrade. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, func, select

from database.migrate import downgrade, upgrade
from database.models import StrategyRun, StrategySignal, StrategySignalBlock
from database.records import RetentionPolicy, SignalBlock
from database.repositories import StrategyRepository
from database.session import make_engine, make_session_factory
from tests.database.builders import signal

CONFIG = {"fast": 10, "slow": 30}
T0 = datetime(2024, 1, 2, tzinfo=UTC)
N = 240


def _block(n: int = N, seed: int = 5) -> SignalBlock:
    rng = np.random.default_rng(seed)
    # repeated times (two signals on one bar), every type, confidences across [0, 1]
    stamps = pd.DatetimeIndex([T0 + timedelta(hours=i // 2, microseconds=7) for i in range(n)])
    kinds = np.array(["entry_long", "exit_long", "entry_short", "exit_short"])[np.arange(n) % 4]
    return SignalBlock(
        strategy_name="sma_cross", symbol="SP500", timeframe="1h", timestamp=stamps,
        signal_type=kinds, price=rng.uniform(10, 5000, n), confidence=rng.uniform(0, 1, n),
        metadata={"fast_sma": rng.normal(size=n), "atr": rng.uniform(0, 3, n)},
    )  # fmt: skip


def _records(block: SignalBlock):
    return [
        signal(
            strategy_name=block.strategy_name,
            strategy_config={},
            symbol=block.symbol,
            timeframe=block.timeframe,
            timestamp=block.timestamp[i].to_pydatetime(),
            signal_type=str(block.signal_type[i]),
            price=float(block.price[i]),
            confidence=float(block.confidence[i]),
            metadata={k: float(v[i]) for k, v in block.metadata.items()},
        )
        for i in range(len(block))
    ]


@pytest.fixture
def twins(session):
    """The same signals saved twice: run ``block`` stores them as one block, run ``rows`` as
    rows (records); plus two signals without a run."""
    block = _block()
    repo = StrategyRepository(session)
    by_block = repo.save_run("sma_cross", CONFIG, "SP500", "1h", "backtest", block)
    by_rows = repo.save_run("sma_cross", CONFIG, "SP500", "1h", "backtest", _records(block))
    repo.signals.add_many(
        [signal(timeframe="1h", timestamp=T0 + timedelta(hours=3)), signal(timeframe="1h")]
    )
    return repo, by_block.id, by_rows.id


def _same(signal_list):
    return [dataclasses.replace(s, id=None, run_id=None) for s in signal_list]


QUERIES = [
    {},
    {"start": T0 + timedelta(hours=10), "end": T0 + timedelta(hours=40, microseconds=7)},
    {"start": "2024-01-03T00:00:00+00:00"},
    {"end": T0 + timedelta(hours=5)},
    {"signal_types": ["exit_long", "entry_short"]},
    {"signal_types": "exit_short", "min_confidence": 0.5},
    {"min_confidence": 0.9},
    {"mode": "backtest"},
    {"start": T0 + timedelta(days=400)},  # after every signal: empty
]


@pytest.mark.parametrize("query", QUERIES)
def test_a_block_answers_every_query_as_its_rows_do(twins, query):
    repo, by_block, by_rows = twins
    signals = repo.signals

    for limit, newest in ((None, False), (7, False), (7, True), (0, False)):
        blocked = signals.list(run_id=by_block, limit=limit, newest_first=newest, **query)
        rowed = signals.list(run_id=by_rows, limit=limit, newest_first=newest, **query)
        assert _same(blocked) == _same(rowed)
        assert all(s.id is None and s.run_id == by_block for s in blocked)
        frame_b = signals.frame(run_id=by_block, limit=limit, newest_first=newest, **query)
        frame_r = signals.frame(run_id=by_rows, limit=limit, newest_first=newest, **query)
        assert list(frame_b.columns) == list(frame_r.columns)
        assert frame_b["id"].isna().all()
        assert frame_b["id"].dtype == frame_r["id"].dtype
        for name in ("timestamp", "signal_type", "price", "confidence", "symbol"):
            assert frame_b[name].tolist() == frame_r[name].tolist(), name
        assert str(frame_b["timestamp"].dt.tz) == "UTC"
    assert signals.count(run_id=by_block, **query) == signals.count(run_id=by_rows, **query)
    for by in (("signal_type",), ("day", "signal_type"), ("mode",), ()):
        counts_b = signals.signal_counts(by=by, run_id=by_block, **query)
        counts_r = signals.signal_counts(by=by, run_id=by_rows, **query)
        pd.testing.assert_frame_equal(counts_b, counts_r)
        mean_b = signals.average_confidence(by=by, run_id=by_block, **query)
        mean_r = signals.average_confidence(by=by, run_id=by_rows, **query)
        pd.testing.assert_frame_equal(mean_b, mean_r, rtol=1e-12)


def test_rows_and_blocks_together_keep_one_order_and_add_up(twins):
    repo, by_block, by_rows = twins
    signals = repo.signals
    everything = signals.list()
    assert len(everything) == 2 * N + 2 == signals.count()
    # by time; among equal times rows (by id) before block signals (by place in their run)
    keys = [(s.timestamp, s.id is None, s.id or 0) for s in everything]
    assert keys == sorted(keys)
    newest = signals.list(newest_first=True, limit=5)
    assert newest == list(reversed(everything))[:5]
    frame = signals.frame(limit=11, newest_first=True)
    assert frame["price"].tolist() == [s.price for s in newest + everything[::-1][5:11]]
    assert signals.count(run_id=by_block) == N == signals.count(run_id=by_rows)
    by_run = signals.signal_counts(by=("run_id",))
    attached = by_run.dropna(subset=["run_id"])
    assert dict(zip(attached["run_id"], attached["signals"], strict=True)) == {
        by_block: N,
        by_rows: N,
    }
    assert by_run.loc[by_run["run_id"].isna(), "signals"].tolist() == [2]
    assert by_run["run_id"].dtype == "Int64"
    assert by_run["run_id"].isna().sum() == 1
    mean = signals.average_confidence(by=("strategy_name",))
    confidences = [s.confidence for s in everything]
    assert mean["signals"].tolist() == [len(confidences)]
    assert mean["mean_confidence"].iloc[0] == pytest.approx(np.mean(confidences), rel=1e-12)


def test_a_block_goes_with_its_run_and_by_retention(session):
    repo = StrategyRepository(session)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    kept = repo.save_run("sma_cross", CONFIG, "SP500", "1h", "backtest", _block(),
                         started_at=datetime.now(UTC))  # fmt: skip
    expired = [
        repo.save_run(
            "sma_cross",
            CONFIG,
            "SP500",
            "1h",
            "backtest",
            _block(20 + k),
            started_at=old,
            finished_at=old,
        )
        for k in range(3)
    ]
    report = repo.apply_retention(RetentionPolicy(keep_analysis_days=30))
    assert (report.deleted_signals, report.deleted_runs) == (20 + 21 + 22, 3)
    assert session.scalars(select(StrategySignalBlock.run_id)).all() == [kept.id]
    assert repo.signals.count() == N
    assert not {r.id for r in expired} & set(session.scalars(select(StrategyRun.id)))
    session.execute(delete(StrategyRun).where(StrategyRun.id == kept.id))
    assert session.scalar(select(func.count()).select_from(StrategySignalBlock)) == 0
    assert repo.signals.count() == 0


def test_only_typed_or_no_metadata_goes_into_a_block(session):
    repo = StrategyRepository(session)
    n = 4
    common = {"strategy_name": "sma_cross", "symbol": "SP500", "timeframe": "1h",
              "timestamp": pd.date_range(T0, periods=n, freq="1h"),
              "signal_type": ["entry_long", "exit_long"] * 2, "price": np.linspace(1, 2, n),
              "confidence": np.full(n, 0.5)}  # fmt: skip
    plain = repo.save_run("sma_cross", CONFIG, "SP500", "1h", "backtest", SignalBlock(**common))
    loose = repo.save_run("sma_cross", CONFIG, "SP500", "1h", "backtest",
                          SignalBlock(**common, metadata={"n": np.arange(n)}))  # fmt: skip
    blocks = session.scalars(select(StrategySignalBlock.run_id)).all()
    assert blocks == [plain.id]
    assert [s.metadata for s in repo.signals.list(run_id=plain.id)] == [{}] * n
    rows = session.scalar(select(func.count()).where(StrategySignal.run_id == loose.id))
    assert rows == n
    assert [s.metadata for s in repo.signals.list(run_id=loose.id)] == [{"n": i} for i in range(n)]


def test_a_downgrade_expands_blocks_into_rows_and_loses_nothing(empty_database_url):
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            repo = StrategyRepository(session)
            run = repo.save_run("sma_cross", CONFIG, "SP500", "1h", "backtest", _block())
            before = repo.signals.list()
        downgrade(engine, "0007")
        upgrade(engine)
        with sessions() as session:
            after = StrategyRepository(session).signals.list()
            assert session.scalar(select(func.count()).select_from(StrategySignalBlock)) == 0
        assert len(after) == N
        assert all(s.id is not None and s.run_id == run.id for s in after)
        assert _same(after) == _same(before)
    finally:
        engine.dispose()
