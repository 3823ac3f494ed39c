"""Saved backtest runs: list them, reopen one, compare several, keep the last few results.

>>> [run.id for run in list_runs(context.reads)]        # newest first
>>> again = reopen_run(12, context)                     # same metrics, trades and equity
>>> compare_runs([12, 15], context)                     # one RunResult per run, in that order

Reopening a saved run (:func:`reopen_run`) shows the trades and equity curve stored with it
(table strategy_run_results, written with every run since migration 0003) on the stored
candles of the bars it ran on, its metrics computed from them: no strategy code runs, so a
later change of a strategy's code does not change a saved run. Candles are never stored per
run: should the stored bars of its period no longer be the bars it ran on (bars imported into
the period since), it runs again as a run stored before results were does.

Running again (no stored result): the stored config runs, deterministically, on the same
stored candles (its window) through the same pipeline (services/backtests.py), without
storing anything: the same metrics, trades and equity the run showed when it finished, as
long as the strategy's code and the window's stored bars did not change (feeds only append;
``python app.py import`` over existing bars changes them, and then the reopened run shows the
new data). Runs stored by ``python app.py backtest`` or a sweep have a window only when they
were given ``--start``/``--end``: otherwise they re-run on the whole series as stored now (and
runs stored before the metrics preset was kept re-run with the "backtesting.py" preset, the
command line's default).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analytics.backtest import BacktestResult, buy_and_hold
from analytics.metrics import compute_metrics
from database.records import StrategyRunRecord
from database.repositories import StrategyRepository, StrategyRunRepository
from services.backtests import (
    BacktestRequest,
    JobContext,
    Progress,
    RunFailed,
    RunResult,
    StoredConfig,
    load_bars,
    params_text,
    run_request,
)

REOPEN_STEPS: tuple[str, ...] = ("loading data", "computing metrics")
"""The steps of reopening a run from its stored result (:func:`stored_result`)."""


def stored_result(
    request: BacktestRequest,
    run_id: int,
    context: JobContext,
    *,
    progress: Progress | None = None,
) -> RunResult | None:
    """Stored run ``run_id`` (made of ``request``) as it finished, from the trades and equity
    stored with it, on its window's stored bars: no strategy code runs. None when nothing was
    stored with it (a run stored before results were) or the stored bars of its period are
    no longer the ones it ran on (bars imported into it since): then run it again.
    ``progress``: called as each of :data:`REOPEN_STEPS` begins."""
    if progress is not None:
        progress(1, len(REOPEN_STEPS), REOPEN_STEPS[0])
    with context.reads() as session:
        stored = StrategyRepository(session).run_result(run_id)
    if stored is None:
        return None
    times = stored.equity.index
    if len(times):  # the bars it ran on (a run without a window ran on the whole series)
        request = dataclasses.replace(
            request,
            start=times[0] if request.start is None else request.start,
            end=times[-1] if request.end is None else request.end,
        )
    candles, _, window = load_bars(request, None, context)
    if not candles.index.equals(stored.equity.index):
        return None
    if progress is not None:
        progress(2, len(REOPEN_STEPS), REOPEN_STEPS[1])
    halt = stored.drawdown_halt
    backtest = BacktestResult(
        trades=stored.trades,
        equity=stored.equity,
        drawdown_halt=None if halt is None else pd.Timestamp(halt),
        benchmark=buy_and_hold(candles, request.settings.cash),
        settings=request.settings,
        candles=candles,
    )
    metrics = compute_metrics(
        backtest.equity,
        backtest.trades,
        benchmark=backtest.benchmark,
        preset=request.preset,
        warmup_bars=stored.warmup_bars,
    )
    resolved = dataclasses.replace(request, start=window[0], end=window[1])
    return RunResult(resolved, run_id, metrics, backtest, stored.warmup_bars, from_stored=True)


@dataclass(frozen=True)
class SavedRun:
    """One stored backtest run, as the saved-runs table lists it."""

    id: int
    strategy: str
    params: str  # short text: "fast=5, slow=30, direction=long"
    symbol: str
    timeframe: str
    period: str  # "1999-01-04 → 2018-12-31", or "all bars" without a window
    finished_at: datetime | None
    preset: str

    def row(self) -> dict[str, Any]:
        """The table row (JSON-ready; ``id`` is the row id the table's selection reports)."""
        finished = self.finished_at
        return {
            "id": self.id,
            "strategy": self.strategy,
            "params": self.params,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "period": self.period,
            "finished": "" if finished is None else finished.strftime("%Y-%m-%d %H:%M:%S"),
        }


def list_runs(sessions: sessionmaker[Session], *, limit: int = 200) -> list[SavedRun]:
    """The stored backtest runs that finished and carry backtest settings, newest first.

    Signals-only runs (``python app.py signals``) and failed runs are left out: there is
    nothing to show for them.
    """
    with sessions() as session:
        records = StrategyRunRepository(session).list(
            mode="backtest", status="finished", limit=limit
        )
    saved = ((r, StoredConfig.parse(r.config)) for r in records)
    return [_saved(r, config) for r, config in saved if config.backtest is not None]


def _saved(run: StrategyRunRecord, config: StoredConfig) -> SavedRun:
    start, end = config.start, config.end
    if start is None and end is None:
        period = "all bars"
    else:
        period = f"{_day(start) or '…'} → {_day(end) or '…'}"
    return SavedRun(
        run.id,
        run.strategy_name,
        params_text(config.params),
        run.symbol,
        run.timeframe,
        period,
        run.finished_at,
        config.preset,
    )


def load_request(
    sessions: sessionmaker[Session], run_id: int
) -> tuple[BacktestRequest, datetime | None]:
    """The request stored run ``run_id`` was made of, and when it finished."""
    with sessions() as session:
        run = StrategyRunRepository(session).get(int(run_id))
    if run is None:
        raise RunFailed("loading data", f"no stored run with id {run_id}")
    if run.mode != "backtest" or run.status != "finished":
        raise RunFailed("loading data", f"run {run_id} is a {run.status} {run.mode} run")
    return BacktestRequest.from_run(run), run.finished_at


def reopen_run(run_id: int, context: JobContext, *, progress: Progress | None = None) -> RunResult:
    """Stored run ``run_id`` as it finished: the trades and equity stored with it, else run
    again from its config on its window (see the module docstring); nothing is stored."""
    request, finished = load_request(context.reads, run_id)
    result = stored_result(request, int(run_id), context, progress=progress)
    if result is not None:
        return dataclasses.replace(result, finished_at=finished)
    result = run_request(request, context, progress=progress, store=False)
    return dataclasses.replace(result, run_id=int(run_id), finished_at=finished)


def compare_runs(run_ids: Iterable[int], context: JobContext) -> list[RunResult]:
    """Each stored run reopened (:func:`reopen_run`), in the order given; duplicates once."""
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    return [reopen_run(run_id, context) for run_id in ids]


class ResultCache:
    """The last few results by run id, so that opening, exporting and comparing a run just
    shown does not re-run it (reopening is deterministic: a cached result is the same)."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._items: OrderedDict[int, RunResult] = OrderedDict()
        self._lock = Lock()

    def get(self, run_id: int, context: JobContext) -> RunResult:
        """The result of stored run ``run_id`` (reopened on a miss)."""
        with self._lock:
            hit = self._items.get(int(run_id))
            if hit is not None:
                self._items.move_to_end(int(run_id))
                return hit
        result = reopen_run(run_id, context)
        self.put(result)
        return result

    def put(self, result: RunResult) -> None:
        """Keep ``result`` (a stored one; a result without a run id is not kept)."""
        if result.run_id is None:
            return
        with self._lock:
            self._items[result.run_id] = result
            self._items.move_to_end(result.run_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


def _day(value: pd.Timestamp | None) -> str | None:
    if value is None:
        return None
    if value == value.normalize():
        return value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d %H:%M")


__all__ = [
    "ResultCache",
    "SavedRun",
    "compare_runs",
    "list_runs",
    "load_request",
    "reopen_run",
]
