"""Batch backtests: grid expansion, worker processes vs in-process runs, stored runs, sweeps."""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd
import pytest

from analytics.backtest import BacktestSettings, run_backtest
from analytics.metrics import compute_metrics
from caching import SharedCache
from database.repositories import CandleRepository, StrategyRepository
from database.session import make_engine, make_session_factory
from market.sample_data import load_sample
from services.backtests import (
    BacktestRequest,
    BatchJob,
    RunFailed,
    load_series,
    open_context,
    run_request,
)
from services.batch import (
    BatchReport,
    JobResult,
    expand,
    run_batch,
    sweep_table,
)
from services.batch_pool import WorkerPool
from services.saved_runs import reopen_run
from services.walk_forward import walk_forward
from strategies.base import StrategyParamError
from strategies.data_integration import StrategyDataIntegrator
from strategies.registry import UnknownStrategyError, create

BARS = 600
GRID = {"sma_crossover": {"fast": [5, 10, 20], "slow": [20, 30]}}  # (20, 20) is invalid
SETTINGS = BacktestSettings(cash=10_000, commission_pct=0.001)


@pytest.fixture
def seeded(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            for symbol in ("SP500", "NASDAQ"):
                CandleRepository(session).upsert(symbol, "1d", load_sample(symbol).iloc[-BARS:])
    finally:
        engine.dispose()
    return database_url


def in_process(database_url: str, job: BatchJob) -> pd.Series:
    """The reference: the same pipeline, called directly."""
    engine = make_engine(database_url)
    try:
        integrator = StrategyDataIntegrator(
            make_session_factory(engine), SharedCache.from_url(None)
        )
        strategy = create(job.strategy, **job.params)
        data = integrator.frame(
            job.symbol, job.timeframe, strategies=[strategy], start=job.start, end=job.end
        )
        result = run_backtest(data.candles, strategy.generate(data), SETTINGS)
        return compute_metrics(
            result.equity,
            result.trades,
            benchmark=result.benchmark,
            warmup_bars=strategy.warmup - 1,  # buy and hold from the first defined bar
        )
    finally:
        engine.dispose()


def test_expand_builds_the_cartesian_product_and_skips_invalid_combinations():
    jobs = expand(["sma_crossover", "rsi_reversion"], GRID, ["SP500", "NASDAQ"], "1d")

    sma = [job for job in jobs if job.strategy == "sma_crossover"]
    assert [(j.params["fast"], j.params["slow"]) for j in sma[::2]] == [
        (5, 20), (5, 30), (10, 20), (10, 30), (20, 30)
    ]  # fmt: skip
    assert {j.symbol for j in sma} == {"SP500", "NASDAQ"}
    assert [(j.strategy, j.params) for j in jobs if j.strategy == "rsi_reversion"] == [
        ("rsi_reversion", {}),
        ("rsi_reversion", {}),
    ]  # no grid: the defaults
    assert [(s.params, "not below slow" in s.reason) for s in jobs.skipped] == [
        ({"fast": 20, "slow": 20}, True)
    ]


def test_expand_refuses_unknown_strategies_and_parameters_at_once():
    with pytest.raises(UnknownStrategyError, match="sma_crossover"):
        expand(["sma_crossver"], None, ["SP500"], "1d")
    with pytest.raises(StrategyParamError, match="did you mean 'slow'"):
        expand(["sma_crossover"], {"sma_crossover": {"slwo": [20]}}, ["SP500"], "1d")


def test_a_parallel_batch_matches_in_process_runs_and_stores_every_job(seeded: str):
    jobs = expand(["sma_crossover"], GRID, ["SP500", "NASDAQ"], "1d")
    invalid = BatchJob("sma_crossover", {"fast": 30, "slow": 20}, "SP500", "1d")
    missing = BatchJob("sma_crossover", {"fast": 5, "slow": 20}, "NOPE", "1d")
    jobs.extend([invalid, missing])
    calls: list[tuple[int, int]] = []

    report = run_batch(
        seeded, jobs, SETTINGS, workers=2, progress=lambda *c: calls.append(c), store=True
    )

    assert calls == [(done, len(jobs)) for done in range(1, len(jobs) + 1)]
    assert [r.job for r in report.results] == list(jobs)
    assert report.skipped == jobs.skipped
    assert [r.job for r in report.failed] == [invalid, missing]
    assert "StrategyParamError" in str(report.results[-2].error)
    assert "no 1d candles of NOPE" in str(report.results[-1].error)
    for r in report.results[:-2]:
        assert r.ok
        assert r.metrics is not None
        pd.testing.assert_series_equal(r.metrics, in_process(seeded, r.job))

    engine = make_engine(seeded)
    try:
        with make_session_factory(engine)() as session:
            repo = StrategyRepository(session)
            for r in report.results:
                assert r.run_id is not None
                run = repo.runs.get(r.run_id)
                assert run is not None
                assert (run.strategy_name, run.symbol, run.mode) == (
                    "sma_crossover",
                    r.job.symbol,
                    "backtest",
                )
                assert run.config["fast"] == r.job.params["fast"]
                assert run.config["backtest"]["commission_pct"] == 0.001
                signals = repo.signals.count(run_id=r.run_id)
                if r.ok:
                    assert (run.status, run.error) == ("finished", None)
                    assert signals > 0
                else:
                    assert (run.status, run.error) == ("failed", r.error)
                    assert signals == 0
    finally:
        engine.dispose()

    table = sweep_table(report, x="fast", y="slow", metric="Sharpe Ratio", symbol="SP500")
    assert list(table.columns) == [5, 10, 20, 30]
    assert list(table.index) == [20, 30]
    assert (table.columns.name, table.index.name) == ("fast", "slow")
    by_cell = {
        (r.job.params["fast"], r.job.params["slow"]): r.metrics["Sharpe Ratio"]
        for r in report.results
        if r.ok and r.job.symbol == "SP500"
    }
    assert len(by_cell) == 5
    for (fast, slow), value in by_cell.items():
        assert table.loc[slow, fast] == pytest.approx(value, nan_ok=True)
    assert np.isnan(table.loc[20, 20])  # skipped
    assert np.isnan(table.loc[20, 30])  # failed
    assert np.isnan(table.loc[30, 30])  # never asked


def test_in_process_without_storing(seeded: str):
    jobs = expand(["sma_crossover"], GRID, ["NASDAQ"], "1d")

    report = run_batch(seeded, jobs, SETTINGS, workers=0, store=False)

    assert all(r.ok and r.run_id is None for r in report.results)
    for r in report.results[:2]:
        pd.testing.assert_series_equal(r.metrics, in_process(seeded, r.job))
    engine = make_engine(seeded)
    try:
        with make_session_factory(engine)() as session:
            assert StrategyRepository(session).runs.list() == []
    finally:
        engine.dispose()


def test_a_sweep_keeps_each_run_without_results_and_reopening_runs_it_again(seeded: str):
    """results=False (what a sweep stores): the run row, its window pinned to the bars read, no
    signals, trades or equity; reopened, it runs again to the trades and equity a run stored
    with its results shows, on the same bars even after the series grew."""
    jobs = expand(["sma_crossover"], {"sma_crossover": {"fast": [5, 10], "slow": [30]}},
                  ["SP500"], "1d")  # fmt: skip
    summary = run_batch(seeded, jobs, SETTINGS, workers=0, results=False)
    full = run_batch(seeded, jobs, SETTINGS, workers=0)
    assert not summary.failed
    assert not full.failed

    engine = make_engine(seeded)
    try:
        sessions = make_session_factory(engine)
        with sessions() as session:
            repo = StrategyRepository(session)
            stored_bars = CandleRepository(session).frame("SP500", "1d")
            for lean, kept in zip(summary.results, full.results, strict=True):
                run = repo.runs.get(lean.run_id)
                assert (run.status, run.error) == ("finished", None)
                assert run.config["window"] == {  # pinned: the first and last bar it read
                    "start": stored_bars.index[0].isoformat(),
                    "end": stored_bars.index[-1].isoformat(),
                }
                assert repo.signals.count(run_id=lean.run_id) == 0
                assert repo.run_result(lean.run_id) is None
                assert repo.signals.count(run_id=kept.run_id) > 0
                assert repo.run_result(kept.run_id) is not None
        with sessions.begin() as session:  # the series grows: a reopened run keeps its window
            last = stored_bars.iloc[[-1]].copy()
            last.index = last.index + pd.Timedelta(days=1)
            CandleRepository(session).upsert("SP500", "1d", last)
    finally:
        engine.dispose()

    context = open_context(seeded, None)
    try:
        for lean, kept in zip(summary.results, full.results, strict=True):
            again = reopen_run(lean.run_id, context)
            stored = reopen_run(kept.run_id, context)
            pd.testing.assert_series_equal(again.metrics, lean.metrics)
            pd.testing.assert_frame_equal(again.backtest.trades, stored.backtest.trades)
            pd.testing.assert_series_equal(again.backtest.equity, stored.backtest.equity)
    finally:
        context.close()


def test_a_pool_started_first_runs_the_batch_with_this_process(seeded: str):
    """Workers started before the batch (services/batch_pool.py) share its chunks with this
    process: the same results as in one process; a pool of another database is refused."""
    jobs = expand(["sma_crossover"], GRID, ["SP500", "NASDAQ"], "1d")
    alone = run_batch(seeded, jobs, SETTINGS, workers=0, store=False)
    with WorkerPool(seeded, None, workers=1) as pool:
        shared = run_batch(seeded, jobs, SETTINGS, pool=pool, store=False)
        with pytest.raises(ValueError, match="another database"):
            run_batch("sqlite:///elsewhere.db", jobs, SETTINGS, pool=pool)
    for one, other in zip(alone.results, shared.results, strict=True):
        assert one.job == other.job
        pd.testing.assert_series_equal(one.metrics, other.metrics)


def test_a_broken_pool_leaves_the_batch_to_this_process(seeded: str):
    """A worker that died before the batch: this process runs every chunk itself."""
    jobs = expand(["sma_crossover"], GRID, ["SP500", "NASDAQ"], "1d")
    with WorkerPool(seeded, None, workers=1) as pool:
        with pytest.raises(BrokenProcessPool):
            pool.executor.submit(os._exit, 3).result()
        report = run_batch(seeded, jobs, SETTINGS, pool=pool, store=False)
    assert not report.failed
    assert [r.job for r in report.results] == list(jobs)
    for r in report.results[:2]:
        pd.testing.assert_series_equal(r.metrics, in_process(seeded, r.job))


def test_sweep_table_needs_one_job_per_cell():
    metrics = pd.Series({"Sharpe Ratio": 1.0})
    results = tuple(
        JobResult(BatchJob("sma_crossover", {"fast": 5, "slow": 20}, s, "1d"), 1, metrics)
        for s in ("SP500", "NASDAQ")
    )
    report = BatchReport(results)

    with pytest.raises(ValueError, match="pass strategy= and symbol="):
        sweep_table(report)
    assert sweep_table(report, symbol="NASDAQ").loc[20, 5] == 1.0
    with pytest.raises(KeyError, match="no metric 'Sharpe'"):
        sweep_table(report, symbol="NASDAQ", metric="Sharpe")


def test_walk_forward_chooses_on_train_windows_and_scores_the_next_window(seeded: str):
    grid = {"fast": [5, 10], "slow": [20, 30]}

    wf = walk_forward(
        seeded, "sma_crossover", grid, "SP500", "1d", SETTINGS,
        train_bars=200, test_bars=100, metric="Return [%]", workers=0, store=False,
    )  # fmt: skip

    folds = wf.folds
    assert list(folds["fold"]) == [0, 1, 2, 3]
    assert (folds["test_start"] > folds["train_end"]).all()
    times = load_sample("SP500").iloc[-BARS:].index
    for row in folds.itertuples():
        assert row.train_start == times[row.fold * 100]
        assert row.test_start == times[row.fold * 100 + 200]
        assert row.test_end == times[row.fold * 100 + 299]
        train = {
            (r.job.params["fast"], r.job.params["slow"]): float(r.metrics["Return [%]"])
            for r in wf.train.results
            if r.job.start == row.train_start
        }
        assert len(train) == 4
        best = max(train, key=train.__getitem__)
        assert (row.params["fast"], row.params["slow"]) == best
        assert row.train_score == train[best]
        test_job = BatchJob(
            "sma_crossover", row.params, "SP500", "1d", row.test_start, row.test_end
        )
        assert row.test_score == in_process(seeded, test_job)["Return [%]"]
        assert row.error is None


def test_the_jobs_of_one_series_read_its_bars_once(seeded: str, monkeypatch):
    """A sweep's grid points share one read of the series (a 3 x 3 grid on 1,000,000 bars
    read them nine times) and give what each job alone gives; a job whose strategy cannot be
    created still fails on its own."""
    jobs = expand(["sma_crossover"], GRID, ["NASDAQ", "SP500"], "1d")
    invalid = BatchJob("sma_crossover", {"fast": 30, "slow": 20}, "NASDAQ", "1d")
    jobs.append(invalid)
    reads: list[str] = []
    real = CandleRepository.frame

    def counted(self, symbol, *args, **kwargs):  # the real read, counted
        reads.append(symbol)
        return real(self, symbol, *args, **kwargs)

    monkeypatch.setattr(CandleRepository, "frame", counted)
    report = run_batch(seeded, jobs, SETTINGS, workers=0, store=True)

    assert sorted(reads) == ["NASDAQ", "SP500"]
    assert [r.job for r in report.failed] == [invalid]
    assert "StrategyParamError" in str(report.failed[0].error)
    assert len(report.results) == 11
    for r in report.results[:-1]:
        pd.testing.assert_series_equal(r.metrics, in_process(seeded, r.job))


def test_a_run_refuses_a_series_loaded_for_another_job(seeded: str):
    context = open_context(seeded, None)
    try:
        nasdaq = BatchJob("sma_crossover", {"fast": 5, "slow": 20}, "NASDAQ", "1d")
        loaded = load_series(nasdaq, [create("sma_crossover", fast=5, slow=20)], context)
        request = BacktestRequest.of(dataclasses.replace(nasdaq, symbol="SP500"), SETTINGS)
        with pytest.raises(RunFailed, match="the series loaded is not the one of"):
            run_request(request, context, store=False, loaded=loaded)
        same = run_request(BacktestRequest.of(nasdaq, SETTINGS), context, store=False,
                           loaded=loaded)  # fmt: skip
        pd.testing.assert_series_equal(same.metrics, in_process(seeded, nasdaq))
    finally:
        context.close()
