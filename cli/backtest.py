"""The performance commands: backtest (one strategy), sweep (a parameter grid in worker
processes) and metrics (of an equity or returns file)."""

from __future__ import annotations

import argparse
import difflib
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cli.common import _utc, bounded, importing
from config.choices import METRIC_PRESETS, SUPPORTED_TIMEFRAMES

if TYPE_CHECKING:
    import pandas as pd

    from analytics.backtest import BacktestSettings
    from config.settings import Settings
    from services.batch_pool import WorkerPool


def register(commands: argparse._SubParsersAction) -> None:
    bt = commands.add_parser("backtest", help="backtest a strategy, print statistics, store")
    sw = commands.add_parser("sweep", help="backtest a parameter grid in worker processes")
    for sub in (bt, sw):
        sub.add_argument("--symbol", required=True, action="append" if sub is sw else "store")
        sub.add_argument("--timeframe", required=True, choices=SUPPORTED_TIMEFRAMES)
        sub.add_argument("--strategy", required=True, help="sma_crossover, ema_crossover, ...")
        sub.add_argument("--start", type=_utc)
        sub.add_argument("--end", type=_utc)
        sub.add_argument("--cash", type=float, default=10_000.0)
        sub.add_argument("--commission", type=float, default=0.0, help="fraction: 0.001 = 0.1 %%")
        sub.add_argument("--slippage-bps", type=float, default=0.0)
        sub.add_argument("--preset", default="backtesting.py", choices=sorted(METRIC_PRESETS))
        sub.add_argument("--no-store", action="store_true", help="store no run")
        each = " (every grid point)" if sub is sw else ""
        sub.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                         help=f"a strategy parameter{each}")  # fmt: skip
        sub.add_argument("--compat", choices=["backtesting.py"], help="backtesting.py's fill rules")
    bt.add_argument("--json", action="store_true", help="one JSON object with a trades list")
    bt.set_defaults(run=_backtest)
    sw.add_argument("--grid", action="append", default=[], metavar="PARAM=V1,V2,...")
    sw.add_argument("--metric", default="Sharpe Ratio")
    sw.add_argument(
        "--workers",
        type=bounded(int, 0, 256),
        default=None,
        help="processes running grid points, this one included (default: CPU count;"
        " 0 or 1: this process alone)",
    )
    sw.add_argument(
        "--keep-results",
        action="store_true",
        help="store each run's trades, equity and signals too (default: its config and window;"
        " opening it runs it again)",
    )
    sw.set_defaults(run=_sweep)
    met = commands.add_parser("metrics", help="metrics of an equity or returns series (CSV)")
    met.add_argument("file", type=Path)
    met.add_argument("--preset", default="quantstats", choices=sorted(METRIC_PRESETS))
    met.add_argument(
        "--risk-free",
        type=bounded(float, -0.5, 1.0),
        default=0.0,
        help="annual rate, 0.02 = 2 %%",
    )
    met.add_argument("--json", action="store_true", help="one JSON object (NaN as null)")
    met.set_defaults(run=_metrics, needs_settings=False)  # a file in, no database


def backtest_settings(args: argparse.Namespace, **extra: object) -> BacktestSettings:
    """What backtest and sweep trade with: --cash, --commission, --slippage-bps (+ extra)."""
    from analytics.backtest import BacktestSettings

    return BacktestSettings(
        cash=args.cash, commission_pct=args.commission, slippage_bps=args.slippage_bps, **extra
    )


def _backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Statistics (backtesting.py names where one exists) of one backtest; the run is stored."""
    with importing():
        # not services.batch's run_job (the same call): that module brings the sweep's process
        # pool (multiprocessing, concurrent.futures.process) into a one-backtest command
        from services.backtests import (
            BacktestRequest,
            BatchJob,
            RunFailed,
            open_context,
            run_request,
        )
        from services.database_setup import prepare_database
        from services.indicator_table import parse_param
        from strategies.base import StrategyParamError
        from strategies.registry import UnknownStrategyError
        from strategies.registry import create as create_strategy

    prepare_database(settings).dispose()  # the job opens its own engine
    try:
        params = dict(parse_param(p) for p in args.set)
        strategy = create_strategy(args.strategy, **params)
        trading = backtest_settings(args, compat=args.compat, direction=strategy.direction)
    except (UnknownStrategyError, StrategyParamError, ValueError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 2
    job = BatchJob(
        args.strategy, strategy.config, args.symbol, args.timeframe, args.start, args.end
    )
    context = open_context(settings.database_url, settings.redis_url, one_shot=True)
    try:
        request = BacktestRequest.of(job, trading, args.preset)
        result = run_request(request, context, store=not args.no_store, pin_window=False)
    except RunFailed as exc:  # stored as a failed run (unless storing is what failed)
        print(f"backtest: {exc}", file=sys.stderr)
        return 1
    finally:
        context.close()
    if args.json:  # column by column: a long backtest has tens of thousands of trades
        from cli.json_output import dump_bytes, records

        document = _metrics_document(result.metrics)
        document["trades"] = records(result.backtest.trades)
        document["run_id"] = result.run_id
        sys.stdout.flush()
        sys.stdout.buffer.write(dump_bytes(document) + b"\n")  # 20 MB: no str in between
        return 0
    _print_metrics(result.metrics)
    print(f"stored as run {result.run_id}" if result.run_id else "not stored", file=sys.stderr)
    return 0


def _sweep(args: argparse.Namespace, settings: Settings) -> int:
    """Every grid combination in worker processes; prints the sweep table (heatmap-ready).

    This process runs grid points too; the workers besides it start first, so that they import
    the backtest stack while this process does (services/batch_pool.py); no more processes
    than grid points."""
    points = len(args.symbol) * math.prod(len(item.split(",")) for item in args.grid)
    workers = (os.cpu_count() or 1) if args.workers is None else args.workers
    spawned = min(workers, points) - 1
    if spawned <= 0:
        return _run_sweep(args, settings, None)
    from services.batch_pool import WorkerPool

    with WorkerPool(settings.database_url, settings.redis_url, spawned) as pool:
        return _run_sweep(args, settings, pool)


def _run_sweep(args: argparse.Namespace, settings: Settings, pool: WorkerPool | None) -> int:
    with importing():
        from services.batch import expand, run_batch, sweep_table
        from services.database_setup import prepare_database
        from services.indicator_table import parse_param
        from strategies.base import StrategyParamError
        from strategies.registry import UnknownStrategyError

    prepare_database(settings).dispose()  # the workers open their own engines
    try:
        grid: dict[str, list[object]] = {}
        for item in args.grid:
            name, sep, values = item.partition("=")
            if not sep or not values:
                raise ValueError(f"--grid {item!r}: expected PARAM=V1,V2,... (fast=5,10,20)")
            grid[name.strip()] = [parse_param(f"{name}={v}")[1] for v in values.split(",")]
        if len(grid) < 1:
            raise ValueError("give at least one --grid PARAM=V1,V2,...")
        names = list(grid)
        for name, value in (parse_param(p) for p in args.set):
            if name in grid:
                raise ValueError(f"--set {name}=... and --grid {name}=...: give one of them")
            grid[name] = [value]
        jobs = expand([args.strategy], {args.strategy: grid}, args.symbol, args.timeframe,
                      start=args.start, end=args.end)  # fmt: skip
        _check_sweep(args, jobs, settings)  # before any run: a bad name fails in a second
        report = run_batch(
            settings.database_url,
            jobs,
            backtest_settings(args, compat=args.compat),
            workers=0 if pool is None else None,
            progress=True,
            store=not args.no_store,
            preset=args.preset,
            cache_url=settings.redis_url,
            results=args.keep_results,
            pool=pool,
        )
        if pool is not None:
            pool.release()  # the workers exit while the table prints
    except (UnknownStrategyError, StrategyParamError, ValueError) as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return 2
    for symbol in args.symbol:
        print(f"{symbol} {args.timeframe} {args.strategy}: {args.metric}")
        if not any(r.ok and r.job.symbol == symbol for r in report.results):
            print("  no run succeeded (failures below)")
            continue
        if len(names) >= 2:
            table = sweep_table(report, x=names[0], y=names[1], metric=args.metric, symbol=symbol)
        else:
            rows = report.table()
            table = rows[rows["symbol"] == symbol].set_index(names[0])[[args.metric]]
        print(table.to_string(float_format=lambda v: f"{v:,.4f}"))
    for failed in report.failed:
        print(f"failed: {failed.job.label}: {failed.error}", file=sys.stderr)
    done = len(report.results) - len(report.failed)
    print(
        f"{done} of {len(report.results)} runs succeeded"
        + (f", {len(report.failed)} failed" if report.failed else "")
        + f", in {report.elapsed_s:.1f} s",
        file=sys.stderr,
    )
    return 1 if report.failed else 0


def _check_sweep(args: argparse.Namespace, jobs: list, settings: Settings) -> None:
    """ValueError for a --metric the sweep table cannot show or a series without bars."""
    import pandas as pd

    from analytics.metrics import compute_metrics
    from database.session import make_engine, make_session_factory
    from services.backtests import check_series

    probe = pd.Series([1.0, 1.0], index=pd.date_range("2024-01-01", periods=2, tz="UTC"))
    names = [name for name, value in compute_metrics(probe, None, preset=args.preset).items()
             if isinstance(value, float)]  # fmt: skip
    if args.metric not in names:
        close = difflib.get_close_matches(args.metric, names, n=3, cutoff=0.4)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"--metric {args.metric!r} is not a numeric metric{hint}")
    engine = make_engine(settings.database_url)
    try:
        sessions = make_session_factory(engine)
        for job in {(j.symbol, j.timeframe, j.start, j.end): j for j in jobs}.values():
            check_series(sessions, job)
    finally:
        engine.dispose()


def _metrics(args: argparse.Namespace) -> int:
    """The metrics of the series in a CSV file (equity or returns, told apart by its column)."""
    with importing():
        from analytics.metrics import compute_metrics, returns_metrics
        from analytics.series_io import SeriesFileError, read_series_csv

    try:
        kind, series = read_series_csv(args.file)
    except SeriesFileError as exc:
        print(exc, file=sys.stderr)
        return 1
    if kind == "equity":
        stats = compute_metrics(series, None, preset=args.preset, risk_free=args.risk_free)
    else:
        stats = returns_metrics(series, preset=args.preset, risk_free=args.risk_free)
    if args.json:
        from cli.json_output import dumps

        print(dumps(_metrics_document(stats)))
        return 0
    _print_metrics(stats)
    return 0


def _metrics_document(stats: pd.Series) -> dict[str, object]:
    """Metric name -> JSON value; a figure that is not meaningful (analytics.metrics.notes) is
    null, and ``notes`` says why."""
    from analytics.metrics import notes
    from cli.json_output import jsonable

    hidden = notes(stats)
    document = {name: None if name in hidden else jsonable(v) for name, v in stats.items()}
    if hidden:
        document["notes"] = hidden
    return document


def _print_metrics(stats: pd.Series) -> None:
    from analytics.metrics import notes

    hidden = notes(stats)
    width = max(len(str(name)) for name in stats.index)
    for name, value in stats.items():
        shown = f"n/a ({hidden[name]})" if name in hidden else _display(value)
        print(f"{name:<{width}}  {shown}")


def _display(value: object) -> str:
    import numpy as np

    if isinstance(value, float | np.floating):
        return "NaN" if np.isnan(value) else f"{value:,.5f}"
    return str(value)
