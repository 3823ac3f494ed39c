"""Backtest runs for the Backtest page: run one from a form, list the saved ones, reopen, compare.

>>> request = parse_form({"strategy": "sma_crossover", "params": {"fast": 5},
...                       "symbol": "SP500", "timeframe": "1d", "cash": 10_000})
>>> result = run_request(request, context, progress=lambda step, total, name: print(name))
loading data
computing signals
simulating
computing metrics
storing
>>> result.run_id, result.metrics["# Trades"], result.metrics["Return [%]"]
>>> [run.id for run in list_runs(context.reads)]
>>> again = reopen_run(result.run_id, context)          # same metrics, trades and equity
>>> compare_runs([12, 15], context)                     # one RunResult per run, in that order

The pipeline is the one of ``strategies.batch.run_job`` (``python app.py backtest``):
``integrator.frame -> strategy.generate -> run_backtest -> compute_metrics -> save_run``, written
out step by step so that a ``progress(step, total, name)`` callback sees each step begin
(:data:`STEPS`; the page turns it into its progress bar). A run is stored like ``run_job``
stores one (mode "backtest"; config = the strategy's params, ``"backtest"``: the
``BacktestSettings`` fields, ``"window"``), with two additions:

* ``"window"`` is always there and holds the first and last *stored* bar the run read (those
  of the stored series the candles come from; a period left empty is resolved to them), so a
  series that grows later (a live random-walk feed) does not change what the run saw;
* ``"metrics": {"preset": ...}``: the metrics convention (analytics.metrics.PRESETS).

Reopening a saved run (:func:`reopen_run`) re-runs that stored config, deterministically, on
the same stored candles (its window) through the same pipeline, without storing anything: it
returns the same metrics, trades and equity the run showed when it finished. Candles are never
stored per run; what makes this exact is that the stored bars of a window do not change (feeds
only append; ``python app.py import`` over existing bars would change them, and then the
reopened run shows the new data). Runs stored by ``python app.py backtest`` or a sweep have a
window only when they were given ``--start``/``--end``: otherwise they re-run on the whole
series as stored now, with the "backtesting.py" preset (the command line's default; the
preset it used is not stored).

A timeframe that is not stored but can be resampled from the symbol's stored one (``1w`` from
``1d``, like the live page offers) is computed from the complete buckets of the stored bars;
its indicators are then computed on the resampled candles (``strategy.generate``).

Nothing here imports dash: the page (dashboard/backtest.py) wraps these functions.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from analytics.backtest import (
    SIZINGS,
    BacktestInputError,
    BacktestResult,
    BacktestSettings,
    run_backtest,
)
from analytics.metrics import PRESETS, compute_metrics
from database.records import StrategyRunRecord
from database.repositories import CandleRepository, StrategyRepository, StrategyRunRepository
from market.resample import resample
from market.timeframes import SUPPORTED, Timeframe
from strategies import registry
from strategies.base import BaseStrategy, StrategyParamError
from strategies.batch import JobContext

STEPS: tuple[str, ...] = (
    "loading data",
    "computing signals",
    "simulating",
    "computing metrics",
    "storing",
)
Progress = Callable[[int, int, str], None]  # (step number from 1, number of steps, step name)

DEFAULT_PRESET = "backtesting.py"
FILLS: tuple[str, ...] = ("next_open", "close")
DIRECTIONS: tuple[str, ...] = ("long", "short", "both")

# form fields -> (label shown on the page, BacktestSettings field); percents become fractions
PERCENT_FIELDS: dict[str, tuple[str, str]] = {
    "commission": ("Commission [%]", "commission_pct"),
    "stop_loss": ("Stop-loss [%]", "stop_loss_pct"),
    "take_profit": ("Take-profit [%]", "take_profit_pct"),
    "trailing_stop": ("Trailing stop [%]", "trailing_stop_pct"),
    "max_drawdown_halt": ("Drawdown halt [%]", "max_drawdown_halt_pct"),
}
FIELD_LABELS: dict[str, str] = {
    "strategy": "Strategy",
    "symbol": "Symbol",
    "timeframe": "Timeframe",
    "start": "From",
    "end": "To",
    "cash": "Cash",
    "commission_fixed": "Fixed commission",
    "slippage_bps": "Slippage [bps]",
    "spread_bps": "Spread [bps]",
    "fill": "Fill",
    "direction": "Direction",
    "sizing": "Sizing",
    "size": "Size",
    "preset": "Metrics preset",
    "compat": "backtesting.py compat",
    **{name: label for name, (label, _) in PERCENT_FIELDS.items()},
}


class FormError(ValueError):
    """An invalid form value: ``field`` is the form field (or strategy parameter) it names.

    >>> str(FormError("cash", "Cash: -5 is invalid: expected an amount > 0"))
    'Cash: -5 is invalid: expected an amount > 0'
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class RunFailed(RuntimeError):
    """A run that could not finish: ``str()`` is ``"<step>: <reason>"``; ``step`` is the step
    that failed, ``run_id`` the failed run stored for it (None when nothing was stored).

    >>> str(RunFailed("loading data", "no 1d candles of SP500 in this window"))
    'loading data: no 1d candles of SP500 in this window'
    """

    def __init__(self, step: str, reason: str, run_id: int | None = None) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.run_id = run_id


@dataclass(frozen=True)
class BacktestRequest:
    """Everything one run needs: strategy and params, series and period, settings, preset.

    ``start``/``end`` bound the stored bars by open time (None: from the first, up to the
    last stored bar). ``params`` are validated (:meth:`BaseStrategy.validate`: defaults in).
    """

    strategy: str
    params: Mapping[str, Any]
    symbol: str
    timeframe: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    settings: BacktestSettings = dataclasses.field(default_factory=BacktestSettings)
    preset: str = DEFAULT_PRESET

    @property
    def label(self) -> str:
        """``"sma_crossover(fast=5, slow=30, direction=long) SP500 1d"``."""
        return f"{self.strategy}({params_text(self.params)}) {self.symbol} {self.timeframe}"

    def config(self) -> dict[str, Any]:
        """The run config stored with the run (see the module docstring)."""
        config: dict[str, Any] = dict(self.params)
        config["backtest"] = dataclasses.asdict(self.settings)
        config["window"] = {"start": _iso(self.start), "end": _iso(self.end)}
        config["metrics"] = {"preset": self.preset}
        return config

    @classmethod
    def from_run(cls, run: StrategyRunRecord) -> BacktestRequest:
        """The request a stored run was made of (its config), to run it again."""
        config = dict(run.config)
        if not isinstance(config.get("backtest"), Mapping):
            raise RunFailed(
                "loading data", f"run {run.id} has no backtest settings (a signals-only run)"
            )
        settings = BacktestSettings(**config.pop("backtest"))
        window = config.pop("window", None) or {}
        metrics = config.pop("metrics", None) or {}
        params = registry.get(run.strategy_name).validate(config)
        return cls(
            run.strategy_name,
            params,
            run.symbol,
            run.timeframe,
            _timestamp(window.get("start")),
            _timestamp(window.get("end")),
            settings,
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
    trades: pd.DataFrame
    equity: pd.Series
    benchmark: pd.Series
    candles: pd.DataFrame
    warmup_bars: int
    finished_at: datetime | None = None

    @property
    def label(self) -> str:
        """``"#12 sma_crossover(fast=5, ...) SP500 1d"`` (no ``#`` part when not stored)."""
        head = f"#{self.run_id} " if self.run_id is not None else ""
        return head + self.request.label

    @property
    def initial_cash(self) -> float:
        return float(self.request.settings.cash)


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


# -- the form ------------------------------------------------------------------------------


def parse_form(form: Mapping[str, Any]) -> BacktestRequest:
    """The request a form describes, every value checked; the first invalid one raises
    :class:`FormError` naming its field (strategy parameters: StrategyParamError's message).

    Keys: ``strategy``, ``params`` (name -> value; ``direction`` is taken from the form's
    ``direction`` when the strategy declares one), ``symbol``, ``timeframe``, ``start`` /
    ``end`` (ISO dates, empty: the first / last stored bar; ``end`` includes its whole day),
    ``cash``, ``commission`` (percent per fill), ``commission_fixed``, ``slippage_bps``,
    ``spread_bps``, ``fill``, ``direction``, ``sizing``, ``size`` (percent of equity for
    "fraction" and "half_kelly", units for "quantity"), ``stop_loss``, ``take_profit``,
    ``trailing_stop``, ``max_drawdown_halt`` (percents, empty: off), ``preset``, ``compat``
    (true: backtesting.py's fill rules). Missing keys take the command line's defaults.
    """
    name = _text(form, "strategy")
    try:
        cls = registry.get(name)
    except registry.UnknownStrategyError as exc:
        raise FormError("strategy", str(exc)) from None
    direction = _choice(form, "direction", DIRECTIONS, "long")
    params = dict(form.get("params") or {})
    for p in cls.params:  # an emptied input: say so, not "None is not a number"
        if p.name in params and params[p.name] in (None, ""):
            raise FormError(p.name, f"{cls.name}: {p.name} is empty; allowed: {p.allowed}")
    if any(p.name == "direction" for p in cls.params):
        params["direction"] = direction
    try:
        params = cls.validate(params)
    except StrategyParamError as exc:
        raise FormError(exc.parameter, str(exc)) from None
    symbol = _text(form, "symbol")
    timeframe = _text(form, "timeframe")
    if timeframe not in SUPPORTED:
        raise FormError(
            "timeframe", f"Timeframe: {timeframe!r} is not one of {', '.join(SUPPORTED)}"
        )
    start = _date(form, "start")
    end = _date(form, "end")
    if end is not None:
        end = end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)  # the whole day
    if start is not None and end is not None and start > end:
        raise FormError("end", f"To: {form['end']} is before From: {form['start']}")
    sizing = _choice(form, "sizing", SIZINGS, "all_in")
    size = _number(form, "size", low=0, strict=True, required=sizing in ("fraction", "quantity"))
    if size is not None and sizing in ("fraction", "half_kelly"):
        if size > 100:
            raise FormError("size", f"Size: {size:g} is invalid: expected a percent in (0, 100]")
        size /= 100
    if sizing == "all_in":
        size = None
    values: dict[str, Any] = {
        "cash": _number(form, "cash", low=0, strict=True, default=10_000.0),
        "commission_fixed": _number(form, "commission_fixed", low=0, default=0.0),
        "slippage_bps": _number(form, "slippage_bps", low=0, high=10_000, default=0.0),
        "spread_bps": _number(form, "spread_bps", low=0, high=10_000, default=0.0),
    }
    commission = _number(form, "commission", low=0, high=10, default=0.0)
    values["commission_pct"] = commission / 100  # type: ignore[operator]
    for field in ("stop_loss", "take_profit", "trailing_stop", "max_drawdown_halt"):
        high = None if field == "take_profit" else 100
        value = _number(form, field, low=0, high=high, strict=True)
        values[PERCENT_FIELDS[field][1]] = None if value is None else value / 100
    compat = bool(form.get("compat"))
    try:
        settings = BacktestSettings(
            fill=_choice(form, "fill", FILLS, "next_open"),
            direction=direction,  # as the command line: the strategy's own direction
            sizing=sizing,  # type: ignore[arg-type]
            size=size,
            compat="backtesting.py" if compat else None,
            **values,
        )
    except BacktestInputError as exc:
        raise FormError("compat" if compat else "settings", _settings_message(str(exc))) from None
    preset = _choice(form, "preset", tuple(PRESETS), DEFAULT_PRESET)
    return BacktestRequest(name, params, symbol, timeframe, start, end, settings, preset)


def _settings_message(text: str) -> str:
    """BacktestInputError's text with the form's labels for the settings' field names."""
    text = text.replace("compat='backtesting.py'", FIELD_LABELS["compat"])
    names = {field: label for label, field in PERCENT_FIELDS.values()}
    names.update((k, v) for k, v in FIELD_LABELS.items() if k not in PERCENT_FIELDS)
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(f"BacktestSettings.{name}", names[name])
        text = text.replace(f"{name}=", f"{names[name]}=").replace(f"{name},", f"{names[name]},")
        text = text.replace(f"{name}:", f"{names[name]}:")
    return text


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise FormError(name, f"{FIELD_LABELS[name]}: choose one")
    return value.strip()


def _choice(form: Mapping[str, Any], name: str, allowed: Sequence[str], default: str) -> str:
    value = form.get(name)
    if value in (None, ""):
        return default
    if value not in allowed:
        raise FormError(
            name, f"{FIELD_LABELS[name]}: {value!r} is not one of {', '.join(map(str, allowed))}"
        )
    return str(value)


def _number(
    form: Mapping[str, Any],
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    strict: bool = False,
    required: bool = False,
    default: float | None = None,
) -> float | None:
    label = FIELD_LABELS[name]
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FormError(name, f"{label}: enter a number")
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FormError(name, f"{label}: {value!r} is not a number") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise FormError(name, f"{label}: {value!r} is not a finite number")
    too_low = low is not None and (number <= low if strict else number < low)
    if too_low or (high is not None and number > high):
        lower = f"> {low:g}" if strict else f">= {low:g}"
        expected = f"a number {lower}" + ("" if high is None else f" and <= {high:g}")
        raise FormError(name, f"{label}: {value!r} is invalid: expected {expected}")
    return number


def _date(form: Mapping[str, Any], name: str) -> pd.Timestamp | None:
    value = form.get(name)
    if value in (None, ""):
        return None
    try:
        stamp = pd.Timestamp(str(value))
    except ValueError:
        raise FormError(
            name, f"{FIELD_LABELS[name]}: {value!r} is not a date (YYYY-MM-DD)"
        ) from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# -- running -------------------------------------------------------------------------------


def context_from(sessions: sessionmaker[Session], integrator: Any) -> JobContext:
    """A :class:`strategies.batch.JobContext` over an app's sessions and integrator (the
    page's own process); a worker process opens its own with ``open_context(url, cache)``."""
    return JobContext(sessions, sessions, integrator, lambda: None)


def run_request(
    request: BacktestRequest,
    context: JobContext,
    *,
    progress: Progress | None = None,
    store: bool = True,
) -> RunResult:
    """Backtest ``request`` step by step (:data:`STEPS`), calling ``progress(step, total,
    name)`` as each step begins; stored as a run unless ``store`` is False.

    Raises :class:`RunFailed` naming the failing step; when ``store`` the failure is stored
    as a failed run too (as ``run_job`` does) and ``RunFailed.run_id`` is its id.
    """
    steps = STEPS if store else STEPS[:-1]
    started = datetime.now(UTC)
    state: dict[str, Any] = {"step": steps[0], "signals": [], "request": request}

    def begin(index: int) -> None:
        state["step"] = steps[index]
        if progress is not None:
            progress(index + 1, len(steps), steps[index])

    try:
        begin(0)
        strategy = registry.create(request.strategy, **request.params)
        candles, data, window = _load(request, strategy, context)
        request = state["request"] = dataclasses.replace(request, start=window[0], end=window[1])
        begin(1)
        result = strategy.generate(data, symbol=request.symbol, timeframe=request.timeframe)
        state["signals"] = result.to_records()
        begin(2)
        backtest = run_backtest(candles, result, request.settings)
        begin(3)
        warmup = strategy.benchmark_start(len(candles))
        metrics = _metrics(backtest, request.preset, warmup)
    except Exception as exc:  # stored as a failed run, like run_job, then reported
        reason = exc.reason if isinstance(exc, RunFailed) else _describe(exc)
        run_id = None
        if store:
            try:
                run_id = _store(
                    context, state["request"], [], started, f"{state['step']}: {reason}"
                )
            except Exception as store_exc:
                reason += f"; not stored: {_describe(store_exc)}"
        raise RunFailed(state["step"], reason, run_id) from exc
    run_id = None
    finished = None
    if store:
        begin(4)
        try:
            run_id = _store(context, request, state["signals"], started, None)
        except Exception as exc:
            raise RunFailed("storing", f"not stored: {_describe(exc)}") from exc
        finished = datetime.now(UTC)
    return RunResult(
        request,
        run_id,
        metrics,
        backtest.trades,
        backtest.equity,
        backtest.benchmark,
        candles,
        warmup,
        finished,
    )


def _metrics(backtest: BacktestResult, preset: str, warmup: int) -> pd.Series:
    return compute_metrics(
        backtest.equity,
        backtest.trades,
        benchmark=backtest.benchmark,
        preset=preset,
        # buy and hold from the first bar every indicator is defined, as run_job does
        warmup_bars=warmup,
    )


def _load(
    request: BacktestRequest, strategy: BaseStrategy, context: JobContext
) -> tuple[pd.DataFrame, Any, tuple[pd.Timestamp, pd.Timestamp]]:
    """(candles, data for generate, window of stored bars read)."""
    tf = Timeframe.parse(request.timeframe)
    with context.reads() as session:
        stored = [s for s in CandleRepository(session).series() if s.symbol == request.symbol]
    if not stored:
        raise RunFailed("loading data", f"no stored candles of {request.symbol}")
    if any(s.timeframe == tf.label for s in stored):
        data = context.integrator.frame(
            request.symbol,
            tf.label,
            strategies=[strategy],
            start=request.start,
            end=request.end,
        )
        if data.candles.empty:
            raise RunFailed("loading data", _no_candles(request))
        if data.failures:
            raise RunFailed(
                "loading data", "; ".join(f"{k}: {why}" for k, why in data.failures.items())
            )
        index = data.candles.index
        return data.candles, data, (index[0], index[-1])
    bases = sorted(
        (
            Timeframe.parse(s.timeframe)
            for s in stored
            if Timeframe.parse(s.timeframe).can_resample_to(tf)
        ),
        key=lambda b: b.seconds,
        reverse=True,
    )
    if not bases:
        offered = ", ".join(s.timeframe for s in stored)
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


def _no_candles(request: BacktestRequest) -> str:
    return f"no {request.timeframe} candles of {request.symbol} in this window"


def _store(
    context: JobContext,
    request: BacktestRequest,
    signals: list[Any],
    started: datetime,
    error: str | None,
) -> int:
    with context.writes.begin() as session:
        run = StrategyRepository(session).save_run(
            registry.get(request.strategy).name,
            request.config(),
            request.symbol,
            request.timeframe,
            "backtest",
            signals,
            started_at=started,
            finished_at=datetime.now(UTC),
            status="finished" if error is None else "failed",
            error=error,
        )
    return run.id


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# -- saved runs ----------------------------------------------------------------------------


def list_runs(sessions: sessionmaker[Session], *, limit: int = 200) -> list[SavedRun]:
    """The stored backtest runs that finished and carry backtest settings, newest first.

    Signals-only runs (``python app.py signals``) and failed runs are left out: there is
    nothing to show for them.
    """
    with sessions() as session:
        records = StrategyRunRepository(session).list(
            mode="backtest", status="finished", limit=limit
        )
    return [_saved(r) for r in records if isinstance(r.config.get("backtest"), Mapping)]


def _saved(run: StrategyRunRecord) -> SavedRun:
    config = dict(run.config)
    window = config.pop("window", None) or {}
    metrics = config.pop("metrics", None) or {}
    config.pop("backtest", None)
    start, end = _timestamp(window.get("start")), _timestamp(window.get("end"))
    if start is None and end is None:
        period = "all bars"
    else:
        period = f"{_day(start) or '…'} → {_day(end) or '…'}"
    return SavedRun(
        run.id,
        run.strategy_name,
        params_text(config),
        run.symbol,
        run.timeframe,
        period,
        run.finished_at,
        str(metrics.get("preset", DEFAULT_PRESET)),
    )


def params_text(params: Mapping[str, Any]) -> str:
    """``"fast=5, slow=30, direction=long"`` (floats without trailing zeros)."""
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
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
    """Stored run ``run_id`` run again from its config on its window: the same metrics,
    trades and equity it had (see the module docstring); nothing is stored."""
    request, finished = load_request(context.reads, run_id)
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


# -- small helpers -------------------------------------------------------------------------


def _iso(value: pd.Timestamp | None) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def _timestamp(value: Any) -> pd.Timestamp | None:
    if value in (None, ""):
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _day(value: pd.Timestamp | None) -> str | None:
    if value is None:
        return None
    if value == value.normalize():
        return value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d %H:%M")


__all__ = [
    "STEPS",
    "BacktestRequest",
    "FormError",
    "Progress",
    "ResultCache",
    "RunFailed",
    "RunResult",
    "SavedRun",
    "compare_runs",
    "context_from",
    "list_runs",
    "load_request",
    "params_text",
    "parse_form",
    "reopen_run",
    "run_request",
]
