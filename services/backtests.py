"""The backtest run pipeline: one run of a request, loaded, simulated, measured and stored.

>>> request = BacktestRequest("sma_crossover", {"fast": 5, "slow": 30}, "SP500", "1d",
...                           settings=BacktestSettings(cash=10_000))
>>> context = open_context(database_url, cache_url)     # or context_from(sessions, integrator)
>>> result = run_request(request, context, progress=lambda step, total, name: print(name))
loading data
computing signals
simulating
computing metrics
storing
>>> result.run_id, result.metrics["# Trades"], result.trades, result.equity, result.benchmark

Every backtest runs through :func:`run_request`: the command line (``python app.py backtest``
and ``sweep``, through ``services.batch.run_job``), batches in worker processes and the
Backtest page. It goes ``load -> strategy.generate -> run_backtest -> compute_metrics ->
save_run`` step by step (:data:`STEPS`), calling ``progress(step, total, name)`` as each step
begins, and raises :class:`RunFailed` naming the step that failed; a failure is stored as a
failed run (status "failed", error ``"<step>: <reason>"``, no signals).

Loading: a stored timeframe is read through the integrator (indicators computed once and
cached). A timeframe that is not stored but can be resampled from one of the symbol's stored
ones (``1w`` from ``1d``, like the live page offers) is computed from the complete buckets of
the coarsest stored series that tiles it; its indicators are then computed on the resampled
candles (``strategy.generate``).

A run is stored with mode "backtest" and :meth:`BacktestRequest.config`: the strategy's
params, ``"backtest"`` (the :class:`BacktestSettings` fields), ``"window"`` (when bounded) and
``"metrics": {"preset": ...}`` (the metrics convention, analytics.metrics.PRESETS). With
``pin_window`` (the page's runs) the window stored is the first and last *stored* bar the run
read (a period left empty is resolved to them), so a series that grows later (a live
random-walk feed) does not change what a reopened run sees (services/saved_runs.py). Runs of
the command line and of batches store the window they were given, if any (``pin_window=False``).

A finished run is stored with its signals, trades and equity curve (``results``), so it
reopens as it finished whatever later happens to the strategy's code. A sweep's grid points
are stored without them (``results=False``: a 3 x 3 sweep of two symbols on 1,000,000 bars
wrote 360 MB and spent half its time writing them): the run row with its config and its
window pinned to the stored bars it read, which reopening runs again (deterministic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from analytics.backtest import BacktestResult, BacktestSettings, run_backtest
from analytics.metrics import compute_metrics
from caching import SharedCache
from database.records import RunResultRecord, SignalBlock, StrategyRunRecord
from database.repositories import CandleRepository, StrategyRepository
from database.retry import retry_transient
from database.session import make_engine, make_session_factory
from market.resample import resample
from market.timeframes import Timeframe, as_utc
from strategies import registry
from strategies.base import BaseStrategy, ParamValue
from strategies.data_integration import IntegratedData, StrategyDataIntegrator, collect_requests

STEPS: tuple[str, ...] = (
    "loading data",
    "computing signals",
    "simulating",
    "computing metrics",
    "storing",
)
Progress = Callable[[int, int, str], None]  # (step number from 1, number of steps, step name)

DEFAULT_PRESET = "backtesting.py"  # the metrics convention when none is given or stored


class RunFailed(RuntimeError):
    """A run that could not finish: ``str()`` is ``"<step>: <reason>"``; ``step`` is the step
    that failed, ``run_id`` the failed run stored for it (None when nothing was stored).
    ``result``: the run as computed when only storing it failed (else None).

    >>> str(RunFailed("loading data", "no 1d candles of SP500 in this window"))
    'loading data: no 1d candles of SP500 in this window'
    """

    def __init__(
        self, step: str, reason: str, run_id: int | None = None, result: RunResult | None = None
    ) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.run_id = run_id
        self.result = result


@dataclass(frozen=True)
class BatchJob:
    """What to backtest: ``BatchJob("sma_crossover", {"fast": 5, "slow": 20}, "SP500", "1d")``.

    One point of a sweep (services/batch.py runs many with shared settings). ``start``/``end``
    bound the bars by open time (None: from the first, up to the last stored bar).
    """

    strategy: str
    params: Mapping[str, ParamValue] = field(hash=False)
    symbol: str
    timeframe: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))

    @property
    def label(self) -> str:
        """``"sma_crossover(fast=5, slow=20) SP500 1d"``."""
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.strategy}({args}) {self.symbol} {self.timeframe}"


@dataclass(frozen=True)
class BacktestRequest(BatchJob):
    """Everything one run needs: a job (strategy and params, series and period) plus how to
    trade it (``settings``) and measure it (``preset``).

    The page's requests have validated ``params`` (:meth:`BaseStrategy.validate`: defaults in).
    """

    settings: BacktestSettings = field(default_factory=BacktestSettings)
    preset: str = DEFAULT_PRESET

    @classmethod
    def of(
        cls, job: BatchJob, settings: BacktestSettings, preset: str = DEFAULT_PRESET
    ) -> BacktestRequest:
        """``job`` traded with ``settings`` and measured with ``preset``."""
        window = (job.start, job.end)
        return cls(job.strategy, job.params, job.symbol, job.timeframe, *window, settings, preset)

    @property
    def label(self) -> str:
        """``"sma_crossover(fast=5, slow=30, direction=long) SP500 1d"``."""
        return f"{self.strategy}({params_text(self.params)}) {self.symbol} {self.timeframe}"

    def config(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The run config stored with the run (see the module docstring); ``params``: the
        strategy's (its validated config), default this request's."""
        config: dict[str, Any] = dict(self.params if params is None else params)
        config["backtest"] = dataclasses.asdict(self.settings)
        if self.start is not None or self.end is not None:
            config["window"] = {"start": _iso(self.start), "end": _iso(self.end)}
        config["metrics"] = {"preset": self.preset}
        return config

    @classmethod
    def from_run(cls, run: StrategyRunRecord) -> BacktestRequest:
        """The request a stored run was made of (its config), to run it again.

        Reads every config stored so far: a run without ``"window"`` (the command line's,
        unless given ``--start``/``--end``) runs on the whole series as stored now, and one
        without ``"metrics"`` (stored before the preset was) with the default preset.
        """
        stored = StoredConfig.parse(run.config)
        if stored.backtest is None:
            raise RunFailed(
                "loading data", f"run {run.id} has no backtest settings (a signals-only run)"
            )
        settings = BacktestSettings(**stored.backtest)
        params = registry.get(run.strategy_name).validate(stored.params)
        return cls(
            run.strategy_name,
            params,
            run.symbol,
            run.timeframe,
            stored.start,
            stored.end,
            settings,
            stored.preset,
        )


class StoredConfig(NamedTuple):
    """The parts of a stored run config (:meth:`BacktestRequest.config`, older ones too)."""

    params: dict[str, Any]
    backtest: Mapping[str, Any] | None  # BacktestSettings fields; None: a signals-only run
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    preset: str

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> StoredConfig:
        params = dict(config)
        backtest = params.pop("backtest", None)
        window = params.pop("window", None) or {}
        metrics = params.pop("metrics", None) or {}
        return cls(
            params,
            backtest if isinstance(backtest, Mapping) else None,
            _timestamp(window.get("start")),
            _timestamp(window.get("end")),
            str(metrics.get("preset", DEFAULT_PRESET)),
        )


@dataclass(frozen=True)
class RunResult:
    """One finished run: what the page shows and exports.

    ``request`` has the resolved window (the first and last stored bar read); ``run_id`` is
    None when the run was not stored (a reopened run keeps its own id). ``candles`` are the
    bars traded (volume for the performance chart); ``warmup_bars`` the bars before the
    strategy could trade (Buy & Hold starts there).
    """

    request: BacktestRequest
    run_id: int | None
    metrics: pd.Series
    backtest: BacktestResult
    warmup_bars: int
    finished_at: datetime | None = None
    from_stored: bool = False  # reopened from the trades and equity stored with the run

    @property
    def trades(self) -> pd.DataFrame:
        return self.backtest.trades

    @property
    def equity(self) -> pd.Series:
        return self.backtest.equity

    @property
    def benchmark(self) -> pd.Series:
        return self.backtest.benchmark

    @property
    def candles(self) -> pd.DataFrame:
        return self.backtest.candles

    @property
    def label(self) -> str:
        """``"#12 sma_crossover(fast=5, ...) SP500 1d"`` (no ``#`` part when not stored)."""
        head = f"#{self.run_id} " if self.run_id is not None else ""
        return head + self.request.label

    @property
    def initial_cash(self) -> float:
        return float(self.request.settings.cash)


# -- where a run runs ----------------------------------------------------------------------


@dataclass
class JobContext:
    """What a process needs to run backtests: session factories and an integrator."""

    reads: sessionmaker[Session]
    writes: sessionmaker[Session]
    integrator: StrategyDataIntegrator
    close: Callable[[], None]


def open_context(database_url: str, cache_url: str | None, *, one_shot: bool = False) -> JobContext:
    """A context of its own, from the database URL (a worker process, the command line).
    ``one_shot``: the process runs one job, so an in-process cache would only cost (without
    ``cache_url``: none is kept; with it, the shared cache still gets what it computes)."""
    # NullPool: no idle connection outlives a job, so nothing is left open when a worker exits
    engine = make_engine(database_url, poolclass=NullPool)
    cache = (
        SharedCache.disabled() if one_shot and not cache_url else SharedCache.from_url(cache_url)
    )
    reads = make_session_factory(engine)
    # SQLite: several processes write; take the write lock up front instead of failing midway
    writes = make_session_factory(engine.execution_options(sqlite_begin="IMMEDIATE"))

    def close() -> None:
        cache.close()
        engine.dispose()

    return JobContext(reads, writes, StrategyDataIntegrator(reads, cache), close)


def context_from(sessions: sessionmaker[Session], integrator: Any) -> JobContext:
    """A :class:`JobContext` over an app's sessions and integrator (the page's own process);
    a worker process opens its own with :func:`open_context`."""
    return JobContext(sessions, sessions, integrator, lambda: None)


# -- the pipeline --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedSeries:
    """A series' bars read once, with every indicator of several strategies computed once:
    what :func:`run_request` reads for each of a sweep's grid points (``loaded=``).

    ``candles``: the bars traded; ``data``: what ``strategy.generate`` reads (the
    integrator's frame, or the candles of a resampled timeframe); ``window``: the first and
    last stored bar read. Made by :func:`load_series`.
    """

    symbol: str
    timeframe: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    candles: pd.DataFrame
    data: IntegratedData | pd.DataFrame
    window: tuple[pd.Timestamp, pd.Timestamp]

    def serves(self, job: BatchJob) -> bool:
        """Whether ``job`` reads exactly this series and window."""
        asked = (self.symbol, self.timeframe, self.start, self.end)
        return asked == (job.symbol, job.timeframe, job.start, job.end)


def load_series(
    job: BatchJob, strategies: Sequence[BaseStrategy], context: JobContext
) -> LoadedSeries:
    """``job``'s series, read once, with the indicators of every one of ``strategies``
    computed once each. Raises :class:`RunFailed` ("loading data") when there are no bars;
    an indicator that fails is left in ``data.failures`` for the runs that need it."""
    candles, data, window = load_bars(job, strategies, context)
    return LoadedSeries(job.symbol, job.timeframe, job.start, job.end, candles, data, window)


def run_request(
    request: BacktestRequest,
    context: JobContext,
    *,
    progress: Progress | None = None,
    store: bool = True,
    pin_window: bool = True,
    loaded: LoadedSeries | None = None,
    results: bool = True,
) -> RunResult:
    """Backtest ``request`` step by step (:data:`STEPS`), calling ``progress(step, total,
    name)`` as each step begins; stored as a run unless ``store`` is False.
    ``loaded``: the request's series already loaded (:func:`load_series`), else it is read.

    Raises :class:`RunFailed` naming the failing step; when ``store`` the failure is stored
    as a failed run too and ``RunFailed.run_id`` is its id. ``pin_window``: store the window
    of stored bars read instead of the one asked for (see the module docstring).
    ``results=False`` stores the run without its signals, trades and equity, its window pinned
    (a sweep's grid point: reopening runs it again).
    """
    steps = STEPS if store else STEPS[:-1]
    started = datetime.now(UTC)
    step = steps[0]
    strategy: BaseStrategy | None = None
    stored = request  # the request the stored config describes

    def begin(index: int) -> None:
        nonlocal step
        step = steps[index]
        if progress is not None:
            progress(index + 1, len(steps), step)

    try:
        begin(0)
        strategy = registry.create(request.strategy, **request.params)
        if loaded is None:
            candles, data, window = load_bars(request, [strategy], context)
        elif loaded.serves(request):
            candles, data, window = loaded.candles, loaded.data, loaded.window
        else:
            raise ValueError(f"the series loaded is not the one of {request.label}")
        _check_indicators(data, strategy)
        resolved = dataclasses.replace(request, start=window[0], end=window[1])
        stored = resolved if pin_window or not results else request
        begin(1)
        signals = strategy.generate(data, symbol=request.symbol, timeframe=request.timeframe)
        begin(2)
        backtest = run_backtest(candles, signals, request.settings)
        begin(3)
        warmup = strategy.benchmark_start(len(candles))
        metrics = compute_metrics(
            backtest.equity,
            backtest.trades,
            benchmark=backtest.benchmark,
            preset=request.preset,
            # buy and hold from the first bar every indicator is defined
            warmup_bars=warmup,
        )
    except Exception as exc:  # stored as a failed run, then reported
        reason = exc.reason if isinstance(exc, RunFailed) else _describe(exc)
        run_id = None
        if store:
            try:
                run_id = _store(context, stored, strategy, [], started, f"{step}: {reason}")
            except Exception as store_exc:
                reason += f"; not stored: {_describe(store_exc)}"
        raise RunFailed(step, reason, run_id) from exc
    result = RunResult(resolved, None, metrics, backtest, warmup)
    if not store:
        return result
    begin(4)
    try:
        if results:
            record = RunResultRecord(
                trades=backtest.trades,
                equity=backtest.equity,
                warmup_bars=warmup,
                drawdown_halt=backtest.drawdown_halt,
            )
            run_id = _store(context, stored, strategy, signals.to_block(), started, None, record)
        else:
            run_id = _store(context, stored, strategy, [], started, None)
    except Exception as exc:
        raise RunFailed("storing", f"not stored: {_describe(exc)}", result=result) from exc
    return dataclasses.replace(result, run_id=run_id, finished_at=datetime.now(UTC))


def check_series(sessions: sessionmaker[Session], job: BatchJob) -> None:
    """Raise ValueError naming what is wrong when ``job`` cannot find bars: an unknown symbol
    (the stored ones listed), a timeframe neither stored nor resampled from a stored one, or no
    stored bar in its window. A few index lookups: a sweep checks every series first."""
    tf = Timeframe.parse(job.timeframe)
    with sessions() as session:
        repo = CandleRepository(session)
        stored = repo.timeframes(job.symbol)
        if not stored:
            known = ", ".join(sorted({s.symbol for s in repo.series()})) or "none"
            raise ValueError(f"{job.symbol} is not stored (stored symbols: {known})")
        usable = [b for b in stored if b == tf.label or Timeframe.parse(b).can_resample_to(tf)]
        if not usable:
            raise ValueError(
                f"{job.symbol} is stored in {', '.join(stored)} and cannot be resampled to "
                f"{tf.label}"
            )
        if not any(repo.has_bars(job.symbol, b, start=job.start, end=job.end) for b in usable):
            raise ValueError(_no_candles(job))


def load_bars(
    request: BatchJob, strategies: Sequence[BaseStrategy] | None, context: JobContext
) -> tuple[pd.DataFrame, IntegratedData | pd.DataFrame, tuple[pd.Timestamp, pd.Timestamp]]:
    """(candles, data for generate, window of stored bars read); the indicators of every one
    of ``strategies`` computed once each (failures in ``data.failures``); without strategies
    (None) the candles only, no indicator computed."""
    tf = Timeframe.parse(request.timeframe)
    with context.reads() as session:
        repo = CandleRepository(session)
        # the symbol's stored timeframes, only when this one is not stored (a full scan)
        stored = (
            None
            if repo.last_ts(request.symbol, tf.label) is not None
            else [s.timeframe for s in repo.series() if s.symbol == request.symbol]
        )
    if stored is None and strategies is None:
        with context.reads() as session:
            candles = CandleRepository(session).frame(
                request.symbol, tf.label, start=request.start, end=request.end
            )
        if candles.empty:
            raise RunFailed("loading data", _no_candles(request))
        return candles, candles, (candles.index[0], candles.index[-1])
    if stored is None:
        data = context.integrator.frame(
            request.symbol,
            tf.label,
            strategies=strategies,
            start=request.start,
            end=request.end,
        )
        if data.candles.empty:
            raise RunFailed("loading data", _no_candles(request))
        index = data.candles.index
        return data.candles, data, (index[0], index[-1])
    if not stored:
        raise RunFailed("loading data", _no_candles(request))
    bases = sorted(
        (base for base in map(Timeframe.parse, stored) if base.can_resample_to(tf)),
        key=lambda base: base.seconds,
        reverse=True,
    )
    if not bases:
        offered = ", ".join(stored)
        raise RunFailed(
            "loading data",
            f"{request.symbol} is stored in {offered} and cannot be resampled to {tf.label}",
        )
    base = bases[0]  # the coarsest stored series that tiles the timeframe: fewest bars to read
    with context.reads() as session:
        raw = CandleRepository(session).frame(
            request.symbol, base.label, start=request.start, end=request.end
        )
    candles = resample(raw, base, tf)
    if candles.empty:
        raise RunFailed("loading data", _no_candles(request))
    candles.attrs.update(symbol=request.symbol, timeframe=tf.label)
    return candles, candles, (raw.index[0], raw.index[-1])


def _check_indicators(data: IntegratedData | pd.DataFrame, strategy: BaseStrategy) -> None:
    """RunFailed ("loading data") naming each indicator of ``strategy`` that failed."""
    if not isinstance(data, IntegratedData) or not data.failures:
        return
    failed = [r.key for r in collect_requests([strategy]) if r.key in data.failures]
    if failed:
        raise RunFailed("loading data", "; ".join(f"{k}: {data.failures[k]}" for k in failed))


def _no_candles(request: BatchJob) -> str:
    return f"no {request.timeframe} candles of {request.symbol} in this window"


def _store(
    context: JobContext,
    request: BacktestRequest,
    strategy: BaseStrategy | None,
    signals: list[Any] | SignalBlock,
    started: datetime,
    error: str | None,
    result: RunResultRecord | None = None,
) -> int:
    """Save the run (its signals with it); the strategy's own name and config when it could
    be created, else the request's. A busy database (an import holding the write lock) is
    waited out: the transaction is retried until it succeeds or a few minutes have passed."""
    finished = datetime.now(UTC)

    def save() -> int:
        with context.writes.begin() as session:
            run = StrategyRepository(session).save_run(
                request.strategy if strategy is None else strategy.name,
                request.config(None if strategy is None else strategy.config),
                request.symbol,
                request.timeframe,
                "backtest",
                signals,
                started_at=started,
                finished_at=finished,
                status="finished" if error is None else "failed",
                error=error,
                result=result,
            )
        return run.id

    return retry_transient(save, what=f"saving the backtest run of {request.symbol}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# -- small helpers -------------------------------------------------------------------------


def params_text(params: Mapping[str, Any]) -> str:
    """``"fast=5, slow=30, direction=long"`` (floats without trailing zeros)."""
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _iso(value: pd.Timestamp | None) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def _timestamp(value: Any) -> pd.Timestamp | None:
    return None if value in (None, "") else as_utc(value)


__all__ = [
    "DEFAULT_PRESET",
    "STEPS",
    "BacktestRequest",
    "BatchJob",
    "JobContext",
    "LoadedSeries",
    "Progress",
    "RunFailed",
    "RunResult",
    "StoredConfig",
    "context_from",
    "load_bars",
    "load_series",
    "open_context",
    "params_text",
    "run_request",
]
