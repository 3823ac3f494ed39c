"""Batch backtests: strategies x parameter grids x symbols in worker processes, stored as runs.

>>> jobs = expand(["sma_crossover"], {"sma_crossover": {"fast": [5, 10], "slow": [20, 30]}},
...               ["SP500", "NASDAQ"], "1d")
>>> report = run_batch(database_url, jobs, BacktestSettings(cash=10_000), workers=4, progress=True)
>>> report.table()[["strategy", "symbol", "fast", "slow", "run_id", "Sharpe Ratio"]]
>>> sweep_table(report, x="fast", y="slow", metric="Sharpe Ratio", symbol="SP500")

Each job is one run of the backtest pipeline (services/backtests.py: load -> generate ->
backtest -> metrics -> store, the one the page runs too) and is stored as a run (mode
"backtest"; a failing job as a failed run with its error, and the batch goes on). Workers are
spawned processes that receive only the database URL and build their own engine, session
factories and integrator: sessions and TA-Lib states never cross a process boundary; they send
back only each job's metrics and run id (:class:`JobResult`). Jobs are grouped by series
(symbol, timeframe, window) into one chunk per worker where possible, and a worker reads a
chunk's bars once and computes each indicator its jobs need once, for all of them
(:func:`run_series`): a 3 x 3 grid reads a symbol's bars once per worker, not nine times.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import queue as queue_module
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import util as mp_util
from typing import Any

import numpy as np
import pandas as pd

from analytics.backtest import BacktestResult, BacktestSettings
from services.backtests import (
    DEFAULT_PRESET,
    BacktestRequest,
    BatchJob,
    JobContext,
    LoadedSeries,
    RunFailed,
    load_series,
    open_context,
    run_request,
)
from services.batch_pool import WorkerPool
from strategies import registry
from strategies.base import ParamValue

log = logging.getLogger(__name__)

Progress = bool | Callable[[int, int], None]
Grid = Mapping[str, Sequence[ParamValue]]


@dataclass(frozen=True)
class SkippedCombination:
    """A grid combination :func:`expand` refused, and why (e.g. fast >= slow)."""

    strategy: str
    params: Mapping[str, ParamValue]
    reason: str


class JobList(list[BatchJob]):
    """The jobs :func:`expand` built, plus ``skipped``: the invalid combinations left out."""

    skipped: tuple[SkippedCombination, ...] = ()


@dataclass(frozen=True)
class JobResult:
    """The outcome of one job: ``metrics`` is None when it failed (``error`` says why)."""

    job: BatchJob
    run_id: int | None
    metrics: pd.Series | None
    error: str | None = None
    backtest: BacktestResult | None = None  # only when run in-process with keep_backtest

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BatchReport:
    """Every job's result, in the order of the jobs given, and the skipped combinations.

    >>> report.failed                      # the JobResults with an error
    >>> report.table()                     # one row per job: params, run id, error, metrics
    """

    results: tuple[JobResult, ...]
    skipped: tuple[SkippedCombination, ...] = ()
    elapsed_s: float = 0.0

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if not r.ok]

    def table(self) -> pd.DataFrame:
        """One row per job: strategy, symbol, timeframe, each param, run_id, error, metrics."""
        rows = []
        for r in self.results:
            row: dict[str, Any] = {
                "strategy": r.job.strategy,
                "symbol": r.job.symbol,
                "timeframe": r.job.timeframe,
                **r.job.params,
                "run_id": r.run_id,
                "error": r.error,
            }
            if r.metrics is not None:
                row.update(r.metrics.to_dict())
            rows.append(row)
        return pd.DataFrame(rows)


def expand(
    strategies: Iterable[str],
    grids: Mapping[str, Grid] | None,
    symbols: Iterable[str],
    timeframe: str,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> JobList:
    """Jobs for every strategy x its grid's cartesian product x symbol.

    >>> jobs = expand(["sma_crossover"], {"sma_crossover": {"fast": [5, 30], "slow": [20]}},
    ...               ["SP500"], "1d")
    >>> [job.params for job in jobs], jobs.skipped[0].reason
    ([{'fast': 5, 'slow': 20}], 'sma_crossover: fast=30 is not below slow; ...')

    A strategy without a grid runs with its defaults. An invalid combination is left out and
    listed in ``skipped`` (and logged); an unknown strategy or parameter name raises at once,
    since it is a typo that would void the whole grid.
    """
    grids = grids or {}
    symbols = list(symbols)
    jobs = JobList()
    skipped: list[SkippedCombination] = []
    for name in strategies:
        cls = registry.get(name)
        grid = dict(grids.get(name, grids.get(cls.name, {})))
        for param in grid:
            cls.param(param)  # raises StrategyParamError naming the closest parameter
        keys = list(grid)
        for values in itertools.product(*(list(grid[k]) for k in keys)):
            params = dict(zip(keys, values, strict=True))
            try:
                cls.validate(params)
            except ValueError as exc:
                skipped.append(SkippedCombination(cls.name, params, str(exc)))
                log.warning("skipped %s%s: %s", cls.name, params, exc)
                continue
            jobs.extend(BatchJob(cls.name, params, s, timeframe, start, end) for s in symbols)
    jobs.skipped = tuple(skipped)
    return jobs


# -- one job --------------------------------------------------------------------------------


def run_job(
    job: BatchJob,
    settings: BacktestSettings,
    context: JobContext,
    *,
    preset: str = DEFAULT_PRESET,
    store: bool = True,
    keep_backtest: bool = False,
    loaded: LoadedSeries | None = None,
    results: bool = True,
) -> JobResult:
    """Backtest one job and store it as a run (a failure is stored as a failed run); never
    raises: a failure is the result's ``error`` (``"<step>: <reason>"``).

    The pipeline is :func:`services.backtests.run_request`; the stored config keeps the
    job's own window (None: the whole series). ``keep_backtest`` returns the trades and
    equity too (in-process callers: the command line). ``loaded``: the job's series already
    read (:func:`run_series`), else the job reads it. ``results=False``: stored without its
    signals, trades and equity (see :func:`run_batch`).
    """
    request = BacktestRequest.of(job, settings, preset)
    try:
        result = run_request(
            request, context, store=store, pin_window=False, loaded=loaded, results=results
        )
    except RunFailed as exc:
        metrics = None if exc.result is None else exc.result.metrics  # only storing failed
        return JobResult(job, exc.run_id, metrics, str(exc))
    kept = result.backtest if keep_backtest else None
    return JobResult(job, result.run_id, result.metrics, None, kept)


def run_series(
    jobs: Sequence[tuple[int, BatchJob]],
    settings: BacktestSettings,
    context: JobContext,
    *,
    preset: str = DEFAULT_PRESET,
    store: bool = True,
    results: bool = True,
) -> Iterator[tuple[int, JobResult]]:
    """(index, result) of each job, in order; jobs of one series (symbol, timeframe and
    window) read its bars once, and compute each indicator they need once, for all of them.

    A job whose strategy cannot be created, or a series that cannot be loaded, fails job by
    job as :func:`run_job` alone would (each stored as a failed run).
    """
    loaded = _load_once([job for _, job in jobs], context)
    for index, job in jobs:
        shared = loaded if loaded is not None and loaded.serves(job) else None
        yield (
            index,
            run_job(
                job, settings, context, preset=preset, store=store, loaded=shared, results=results
            ),
        )


def _load_once(jobs: Sequence[BatchJob], context: JobContext) -> LoadedSeries | None:
    if len(jobs) < 2 or len({_series(job) for job in jobs}) > 1:
        return None
    strategies = []
    for job in jobs:
        try:
            strategies.append(registry.create(job.strategy, **job.params))
        except Exception:  # that job fails on its own in run_job, stored with its reason
            continue
    if not strategies:
        return None
    try:
        return load_series(jobs[0], strategies, context)
    except RunFailed:  # no bars: each job fails on its own and is stored as a failed run
        return None


# -- worker processes -----------------------------------------------------------------------

_worker: JobContext | None = None
_ticks: Any = None  # the parent's multiprocessing queue: one job index per finished job


def _init_worker(database_url: str, cache_url: str | None, ticks: Any) -> None:
    global _worker, _ticks
    _worker, _ticks = open_context(database_url, cache_url), ticks
    # pool workers leave through os._exit: atexit never runs, multiprocessing finalizers do
    mp_util.Finalize(_worker, _worker.close, exitpriority=10)


def _run_chunk(
    chunk: list[tuple[int, BatchJob]],
    settings: BacktestSettings,
    preset: str,
    store: bool,
    results: bool,
) -> list[tuple[int, JobResult]]:
    assert _worker is not None, "_run_chunk runs in a worker started by run_batch"
    out = []
    runs = run_series(chunk, settings, _worker, preset=preset, store=store, results=results)
    for index, result in runs:
        out.append((index, result))
        _ticks.put(index)
    return out


def _chunks(jobs: Sequence[BatchJob], workers: int) -> list[list[tuple[int, BatchJob]]]:
    """Jobs grouped by series, each group cut into about its share of the workers.

    Fewer, larger chunks than jobs: a worker then runs many jobs of one symbol in a row and
    its integrator reuses their shared indicators, at the cost of coarser load balancing.
    """
    groups: dict[tuple[Any, ...], list[tuple[int, BatchJob]]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(_series(job), []).append((index, job))
    chunks = []
    for group in groups.values():
        pieces = max(1, round(workers * len(group) / len(jobs)))
        size = math.ceil(len(group) / pieces)
        chunks.extend(group[i : i + size] for i in range(0, len(group), size))
    return chunks


def _series(job: BatchJob) -> tuple[Any, ...]:
    return (job.symbol, job.timeframe, job.start, job.end)


class _Ticker:
    """Counts finished jobs once each and reports them to a tqdm bar or a callback."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.total = total
        self.done: set[int] = set()
        self._bar: Any = None
        self._callback: Callable[[int, int], None] | None = None
        if callable(progress):
            self._callback = progress
        elif progress:
            from tqdm import tqdm  # only the command line needs it

            # disable=None: no bar when stderr is not a terminal (logs, CI)
            self._bar = tqdm(total=total, file=sys.stderr, unit="job", desc="batch", disable=None)

    def tick(self, index: int) -> None:
        if index in self.done:
            return
        self.done.add(index)
        if self._bar is not None:
            self._bar.update(1)
        if self._callback is not None:
            self._callback(len(self.done), self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_batch(
    database_url: str,
    jobs: Sequence[BatchJob],
    settings: BacktestSettings | None = None,
    *,
    workers: int | None = None,
    progress: Progress = False,
    store: bool = True,
    preset: str = DEFAULT_PRESET,
    cache_url: str | None = None,
    results: bool = True,
    pool: WorkerPool | None = None,
) -> BatchReport:
    """Run every job, in this process and in worker processes; returns their results in the
    order of ``jobs``.

    >>> report = run_batch("sqlite:///data/stratlens.db", jobs, BacktestSettings(),
    ...                    workers=4, progress=lambda done, total: print(done, total))
    >>> [(r.job.label, r.run_id, r.metrics["Sharpe Ratio"]) for r in report.results if r.ok]

    ``workers``: the processes that run jobs, this one included (default ``os.cpu_count()``;
    0 or 1: this process alone). This process runs chunks too while the spawned workers
    import the backtest stack (about a second each), so a short batch is never slower than
    in this process alone and a long one uses every core. ``pool``: workers the caller
    started before its own imports (services/batch_pool.py: they import meanwhile), used
    instead of new ones and left running for the caller to close.
    ``progress``: True for a tqdm bar on stderr, or a ``callback(done, total)`` called once
    per finished job. ``store=False`` keeps nothing in the database. ``cache_url``: a Redis
    URL the workers' integrators share (None: each worker caches in its own memory).
    ``results=False`` stores each run without its signals, trades and equity curve, its window
    pinned to the stored bars it read: what a sweep keeps (its table is the metrics; a run
    opened later runs again, the same), a fraction of the time and space (a 3 x 3 sweep of two
    1,000,000-bar symbols stored 360 MB of them).
    A worker that dies fails its unfinished jobs (not stored) and the others go on.
    """
    settings = settings if settings is not None else BacktestSettings()
    skipped = jobs.skipped if isinstance(jobs, JobList) else ()
    jobs = list(jobs)
    began = time.perf_counter()
    finished: dict[int, JobResult] = {}
    ticker = _Ticker(len(jobs), progress)
    options = (settings, preset, store, results)
    try:
        if pool is not None:
            if not pool.serves(database_url, cache_url):
                raise ValueError("the worker pool was started for another database or cache")
            chunks = _chunks(jobs, pool.workers + 1)
            _share(database_url, cache_url, chunks, pool, options, ticker, finished)
        else:
            workers = (os.cpu_count() or 1) if workers is None else max(workers, 1)
            chunks = _chunks(jobs, workers)
            spawned = min(workers, len(chunks)) - 1
            if spawned <= 0:
                _share(database_url, cache_url, chunks, None, options, ticker, finished)
            else:
                with WorkerPool(database_url, cache_url, spawned) as own:
                    _share(database_url, cache_url, chunks, own, options, ticker, finished)
    finally:
        ticker.close()
    ordered = tuple(finished[i] for i in range(len(jobs)))
    return BatchReport(ordered, skipped, time.perf_counter() - began)


def _share(
    database_url: str,
    cache_url: str | None,
    chunks: list[list[tuple[int, BatchJob]]],
    pool: WorkerPool | None,
    args: tuple[BacktestSettings, str, bool, bool],
    ticker: _Ticker,
    results: dict[int, JobResult],
) -> None:
    """Every chunk run: one handed to each worker at a time, from the front of the queue, and
    the rest by this process, from the back, which hands a freed worker the next chunk between
    two of its own jobs. A worker still importing takes its chunk when ready; if this process
    is done first, it waits for that chunk only."""
    queue = deque(chunks)
    pending: dict[Future[list[tuple[int, JobResult]]], list[tuple[int, BatchJob]]] = {}

    usable = pool is not None

    def feed() -> None:
        nonlocal usable
        while usable and pool is not None and queue and len(pending) < pool.workers:
            try:
                future = pool.executor.submit(_run_chunk, queue[0], *args)
            except (BrokenProcessPool, RuntimeError):  # a worker died: this process goes on
                log.warning("batch: the worker pool is broken; the rest runs in this process")
                usable = False
                return
            pending[future] = queue.popleft()

    def collect(timeout: float) -> None:
        if pool is None or not pending:
            return
        done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        _drain(pool.ticks, ticker)
        for future in done:
            chunk = pending.pop(future)
            try:
                for index, result in future.result():
                    results[index] = result
            except Exception as exc:  # a dead worker: BrokenProcessPool
                for index, job in chunk:
                    error = f"worker failed: {type(exc).__name__}: {exc}"
                    results.setdefault(index, JobResult(job, None, None, error))
            # the ticks of a chunk may still be in the queue's pipe: count them now
            for index, _ in chunk:
                ticker.tick(index)
        feed()

    feed()
    context: JobContext | None = None
    try:
        while queue:
            chunk = queue.pop()
            if context is None:
                context = open_context(database_url, cache_url)
            settings, preset, store, keep = args
            for index, result in run_series(
                chunk, settings, context, preset=preset, store=store, results=keep
            ):
                results[index] = result
                ticker.tick(index)
                collect(0)
        while pending:
            collect(0.1)
    finally:
        if context is not None:
            context.close()


def _drain(ticks: Any, ticker: _Ticker) -> None:
    while True:
        try:
            ticker.tick(ticks.get_nowait())
        except queue_module.Empty:
            return


def sweep_table(
    report: BatchReport,
    x: str = "fast",
    y: str = "slow",
    metric: str = "Sharpe Ratio",
    *,
    strategy: str | None = None,
    symbol: str | None = None,
) -> pd.DataFrame:
    """``metric`` by ``y`` (rows) x ``x`` (columns), sorted, ready for a heatmap.

    >>> sweep_table(report, x="fast", y="slow", metric="Return [%]", symbol="SP500")
    fast        5     10
    slow
    20      12.3   8.1
    30       NaN   4.2

    Every value of ``x`` and ``y`` seen in the report (skipped combinations included) gets a
    row or column; a failed, skipped or missing cell is NaN. Filter with ``strategy`` and
    ``symbol`` so each cell holds one job; two jobs in one cell raise ValueError.
    """
    cells: dict[tuple[Any, Any], float] = {}
    xs: set[Any] = set()
    ys: set[Any] = set()

    known: set[str] = set()
    for r in report.results:
        job = r.job
        if strategy is not None and job.strategy != strategy:
            continue
        if (symbol is not None and job.symbol != symbol) or not {x, y} <= job.params.keys():
            continue
        cell = (job.params[x], job.params[y])
        if cell in cells:
            raise ValueError(
                f"several jobs for {x}={cell[0]!r}, {y}={cell[1]!r} ({job.label} and another): "
                "pass strategy= and symbol=, or fix the other parameters"
            )
        xs.add(cell[0])
        ys.add(cell[1])
        cells[cell] = np.nan
        if r.metrics is not None:
            known.update(r.metrics.index)
            value = r.metrics.get(metric)
            cells[cell] = np.nan if value is None else float(value)
    if known and metric not in known:
        raise KeyError(f"no metric {metric!r}; the results have {sorted(known)}")
    for s in report.skipped:
        if (strategy is None or s.strategy == strategy) and {x, y} <= s.params.keys():
            xs.add(s.params[x])
            ys.add(s.params[y])
    table = pd.DataFrame(np.nan, index=sorted(ys), columns=sorted(xs), dtype=np.float64)
    for (cx, cy), value in cells.items():
        table.loc[cy, cx] = value
    table.index.name, table.columns.name = y, x
    return table
