"""A saved run reopens to the trades and equity stored with it, on SQLite and PostgreSQL: the
same result as when it finished, without running strategy code (a later change of the code
changes nothing); a run stored before results were still reopens (it runs again)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal
from sqlalchemy import delete

import services.backtests as backtests
from analytics.backtest import BacktestSettings
from database.models import StrategyRunResult
from database.repositories import CandleRepository, StrategyRepository
from market.sample_data import load_sample
from services.backtests import BacktestRequest, JobContext, RunResult, open_context, run_request
from services.saved_runs import reopen_run

SETTINGS = BacktestSettings(cash=10_000, commission_pct=0.001, stop_loss_pct=0.04)
REQUEST = BacktestRequest(
    "sma_crossover", {"fast": 8, "slow": 21, "direction": "both"}, "SP500", "1d",
    settings=SETTINGS, preset="quantstats",
)  # fmt: skip


@pytest.fixture
def context(database_url: str) -> Iterator[JobContext]:
    context = open_context(database_url, None)
    with context.writes.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", load_sample("SP500"))
    yield context
    context.close()


def assert_same(a: RunResult, b: RunResult) -> None:
    assert_series_equal(a.metrics, b.metrics, check_exact=True)
    assert_frame_equal(a.trades, b.trades, check_exact=True)
    assert_series_equal(a.equity, b.equity, check_exact=True)
    assert_series_equal(a.benchmark, b.benchmark, check_exact=True)
    assert_frame_equal(a.candles, b.candles, check_exact=True)
    assert (a.request, a.warmup_bars) == (b.request, b.warmup_bars)
    assert a.backtest.drawdown_halt == b.backtest.drawdown_halt


def test_a_run_reopens_to_its_stored_trades_without_running_strategy_code(context, monkeypatch):
    shown = run_request(REQUEST, context)
    with context.reads() as session:
        stored = StrategyRepository(session).run_result(shown.run_id)
    assert_frame_equal(stored.trades, shown.trades, check_exact=True)
    assert len(shown.trades) > 20

    def changed(*args, **kwargs):
        raise AssertionError("strategy code ran")

    monkeypatch.setattr(backtests, "run_backtest", changed)
    monkeypatch.setattr(backtests.registry, "create", changed)
    again = reopen_run(shown.run_id, context)
    assert_same(again, shown)
    assert again.run_id == shown.run_id


def test_a_run_without_a_window_reopens_to_its_bars_after_the_series_grew(context):
    shown = run_request(REQUEST, context, pin_window=False)
    later = load_sample("SP500").iloc[-30:].copy()
    later.index = later.index + pd.Timedelta(days=60)
    with context.writes.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", later)
    assert_same(reopen_run(shown.run_id, context), shown)


def test_a_run_stored_before_results_were_runs_again_and_shows_the_same(context, monkeypatch):
    shown = run_request(REQUEST, context)
    with context.writes.begin() as session:
        session.execute(delete(StrategyRunResult))
    calls = []
    original = backtests.run_backtest
    monkeypatch.setattr(
        backtests, "run_backtest", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    assert_same(reopen_run(shown.run_id, context), shown)
    assert calls == [1]


def test_bars_imported_into_the_period_since_make_the_run_run_again(context, monkeypatch):
    shown = run_request(REQUEST, context)
    frame = load_sample("SP500")
    gap = frame.iloc[[100]].copy()
    gap.index = gap.index + pd.Timedelta(hours=12)  # a bar between two stored ones
    with context.writes.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", gap)
    calls = []
    original = backtests.run_backtest
    monkeypatch.setattr(
        backtests, "run_backtest", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    again = reopen_run(shown.run_id, context)
    assert calls == [1]
    assert len(again.candles) == len(shown.candles) + 1
