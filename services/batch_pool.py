"""The worker processes of a batch, started before the caller has imported what it runs.

>>> with WorkerPool(database_url, cache_url, workers=2) as pool:   # first thing a command does
...     from services.batch import expand, run_batch                 # ~1 s of imports meanwhile
...     report = run_batch(database_url, jobs, settings, pool=pool)

A spawned worker imports the backtest stack (numpy, pandas, SQLAlchemy, TA-Lib, the engine:
about a second) before it can run a job. Started by :func:`services.batch.run_batch`, that
second comes after the parent's own imports and checks; started here, first, it overlaps them:
``app.py sweep`` of 3 x 3 x 2 symbols on 1,000,000 bars spent about a second less
(bench/user_paths.py). This module imports only the standard library, so creating the pool
costs the caller nothing; each worker imports services.batch when it starts.

Workers are spawned, never forked (a forked worker would inherit the parent's engine, sockets
and threads), and each gets the database URL only (services/batch.py builds its context).
"""

from __future__ import annotations

import gc
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any


def _init(database_url: str, cache_url: str | None, ticks: Any) -> None:
    # the worker's imports: here, in the worker, without the cyclic collector, which then
    # never scans what they made (as cli.common.importing does for a command's imports)
    gc.disable()
    from services.batch import _init_worker

    gc.freeze()
    gc.enable()
    _init_worker(database_url, cache_url, ticks)


def _ready() -> None:
    """A no-op task: submitted once per worker, it makes the pool start them all now."""


class WorkerPool:
    """``workers`` spawned processes (each ready once its imports are done) and the queue on
    which they report each finished job; a context manager that shuts them down."""

    def __init__(self, database_url: str, cache_url: str | None, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {workers}")
        self.database_url = database_url
        self.cache_url = cache_url
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self.ticks = context.Queue()
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_init,
            initargs=(database_url, cache_url, self.ticks),
        )
        # one task per worker: the executor spawns a process per task it cannot hand to an
        # idle one, so every worker starts importing now, not when the first chunk comes
        self._started: list[Future[None]] = [self.executor.submit(_ready) for _ in range(workers)]

    def serves(self, database_url: str, cache_url: str | None) -> bool:
        return (self.database_url, self.cache_url) == (database_url, cache_url)

    def release(self) -> None:
        """Let the workers exit now, without waiting for them (a process's exit takes ~0.2 s
        here: it then overlaps the caller's printing); :meth:`close` still waits."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Shut the workers down (the queued tasks cancelled) and close the queue."""
        try:
            self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            self.ticks.close()
            self.ticks.join_thread()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
