"""Walk-forward analysis over the batch service: on each train window the grid's best params
(a sweep through services.batch.run_batch), then those params on the next test window.

Selection uses the train windows only: a test window's bars never choose the params scored
on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.pool import NullPool

from analytics.backtest import BacktestSettings
from database.repositories import CandleRepository
from database.session import make_engine, make_session_factory
from services.backtests import BatchJob
from services.batch import BatchReport, Grid, JobList, expand, run_batch
from strategies import registry
from strategies.base import ParamValue


@dataclass(frozen=True)
class WalkForwardReport:
    """Per fold: the train and test windows, the params chosen on train, both scores.

    ``folds`` columns: fold, train_start, train_end, test_start, test_end, params, train_score,
    test_score, test_run_id, error. ``train`` and ``test``: the underlying batch reports.
    """

    folds: pd.DataFrame
    train: BatchReport
    test: BatchReport


def walk_forward(
    database_url: str,
    strategy: str,
    grid: Grid,
    symbol: str,
    timeframe: str,
    settings: BacktestSettings | None = None,
    *,
    train_bars: int,
    test_bars: int,
    metric: str = "Sharpe Ratio",
    maximize: bool = True,
    **batch_options: Any,
) -> WalkForwardReport:
    """Choose the best params on each train window, then report them on the next test window.

    >>> wf = walk_forward(url, "sma_crossover", {"fast": [5, 10], "slow": [20, 50]}, "SP500",
    ...                   "1d", train_bars=500, test_bars=125, metric="Sharpe Ratio")
    >>> wf.folds[["test_start", "params", "train_score", "test_score"]]

    Folds roll by ``test_bars`` over the stored bars; a test window starts right after its
    train window and never takes part in a selection (no look-ahead). Each window is read on
    its own (``start``..``end``), so the indicators warm up inside it: keep windows well above
    the longest lookback. ``batch_options`` go to :func:`run_batch` (workers, progress, store).
    """
    if train_bars < 2 or test_bars < 2:
        raise ValueError(f"train_bars={train_bars}, test_bars={test_bars}: expected >= 2 each")
    engine = make_engine(database_url, poolclass=NullPool)
    try:
        with make_session_factory(engine)() as session:
            times = CandleRepository(session).frame(symbol, timeframe).index
    finally:
        engine.dispose()
    windows = []
    for first in range(0, len(times) - train_bars - test_bars + 1, test_bars):
        train = times[first : first + train_bars]
        test = times[first + train_bars : first + train_bars + test_bars]
        windows.append((train[0], train[-1], test[0], test[-1]))
    if not windows:
        raise ValueError(
            f"{len(times)} {timeframe} bars of {symbol}: too few for one fold of "
            f"train_bars={train_bars} + test_bars={test_bars}"
        )
    train_jobs = JobList()
    for train_start, train_end, _, _ in windows:
        fold_jobs = expand([strategy], {strategy: grid}, [symbol], timeframe,
                           start=train_start, end=train_end)  # fmt: skip
        train_jobs.extend(fold_jobs)
        train_jobs.skipped = fold_jobs.skipped
    train = run_batch(database_url, train_jobs, settings, **batch_options)

    sign = 1.0 if maximize else -1.0
    chosen: list[tuple[dict[str, ParamValue] | None, float]] = []
    for train_start, *_ in windows:
        best: tuple[dict[str, ParamValue] | None, float] = (None, np.nan)
        for r in train.results:
            if r.job.start != train_start or r.metrics is None:
                continue
            score = float(r.metrics.get(metric, np.nan))
            if np.isfinite(score) and (best[0] is None or sign * score > sign * best[1]):
                best = (dict(r.job.params), score)
        chosen.append(best)
    test_jobs = [
        BatchJob(registry.get(strategy).name, params, symbol, timeframe, start, end)
        for (params, _), (_, _, start, end) in zip(chosen, windows, strict=True)
        if params is not None
    ]
    test = run_batch(database_url, test_jobs, settings, **batch_options)

    by_start = {r.job.start: r for r in test.results}
    rows = []
    for fold, ((params, score), (train_start, train_end, test_start, test_end)) in enumerate(
        zip(chosen, windows, strict=True)
    ):
        r = by_start.get(test_start)
        rows.append(
            {
                "fold": fold,
                "train_start": train_start,
                "train_end": train_end,
                "test_start": test_start,
                "test_end": test_end,
                "params": params,
                "train_score": score,
                "test_score": np.nan
                if r is None or r.metrics is None
                else float(r.metrics.get(metric, np.nan)),
                "test_run_id": None if r is None else r.run_id,
                "error": "no finite train score" if params is None else (r and r.error),
            }
        )
    return WalkForwardReport(pd.DataFrame(rows), train, test)


__all__ = ["WalkForwardReport", "walk_forward"]
