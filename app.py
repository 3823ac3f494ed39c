"""StratLens: create_app(settings) and the command line.

python app.py                      serve the dashboard (default command)
python app.py import FILE --symbol SYM --timeframe TF [--skip-invalid]
python app.py db upgrade           apply database migrations
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import dash
import diskcache
import numpy as np
import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from analytics.backtest import BacktestSettings
from analytics.metrics import PRESETS, compute_metrics, returns_metrics
from analytics.series_io import SeriesFileError, read_series_csv
from caching import SharedCache
from config.settings import FeedSpec, Settings, SettingsError
from dashboard import backtest as backtest_page
from dashboard import live as live_page
from dashboard import live_panels, shell
from dashboard.live import LiveContext
from database import migrate
from database.records import RetentionPolicy
from database.repositories import CandleRepository, StrategyRepository
from database.session import make_engine, make_session_factory
from indicators.base import IndicatorParamError, UnknownIndicatorError
from market.candles import iter_candles
from market.feeds import Feed, RandomWalkFeed, ReplayFeed, event_interval
from market.importer import read_candle_file
from market.sample_data import DEMO_SEED, SAMPLE_SERIES
from market.timeframes import SUPPORTED, Timeframe
from services.backtests import BatchJob, open_context
from services.batch import expand, run_batch, run_job, sweep_table
from services.chart_layers import ChartTracks
from services.indicator_table import IndicatorTableError, indicator_table, parse_param
from services.live import FeedRunner, LiveMarket
from services.market_data import MarketDataService
from services.strategy_runs import StrategyRunError, run_strategy
from strategies.base import StrategyParamError
from strategies.config import StrategyConfigError, validate_config
from strategies.data_integration import StrategyDataIntegrator
from strategies.manager import StrategyExistsError, StrategyManager, StrategyNotFoundError
from strategies.registry import UnknownStrategyError
from strategies.registry import create as create_strategy

log = logging.getLogger("stratlens")
ASSETS = Path(__file__).resolve().parent / "dashboard" / "assets"


@dataclass
class Services:
    """Everything the dashboard and the command line share, built once per app."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    market: LiveMarket
    cache: SharedCache
    market_data: MarketDataService
    integrator: StrategyDataIntegrator
    runner: FeedRunner
    tracks: ChartTracks

    def close(self) -> None:
        self.runner.stop()
        self.cache.close()
        self.engine.dispose()


def build_services(settings: Settings) -> Services:
    """Migrate the database, load the bundled data on first start, and wire the live feeds."""
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    if settings.load_sample_data:
        seed_sample_data(sessions)
    market = LiveMarket()
    feeds = _make_feeds(settings, sessions, market)
    runner = FeedRunner(
        feeds,
        market,
        sessions,
        interval=event_interval(settings.feed_speed, settings.feed_updates_per_candle),
    )
    cache = SharedCache.from_url(settings.redis_url)
    market_data = MarketDataService(sessions, market, cache)
    integrator = StrategyDataIntegrator(sessions, cache)
    tracks = ChartTracks(market_data)
    return Services(
        settings, engine, sessions, market, cache, market_data, integrator, runner, tracks
    )


def seed_sample_data(sessions: sessionmaker[Session]) -> None:
    """Store each bundled series that is not stored yet (first start)."""
    for sample in SAMPLE_SERIES.values():
        tf = sample.timeframe.label
        with sessions.begin() as session:
            repo = CandleRepository(session)
            if repo.count(sample.symbol, tf) == 0:
                frame = sample.load()
                repo.upsert(sample.symbol, tf, frame)
                log.info(
                    "loaded sample %s %s: %d bars (%s)",
                    sample.symbol,
                    tf,
                    len(frame),
                    sample.source,
                )


def _make_feeds(
    settings: Settings, sessions: sessionmaker[Session], market: LiveMarket
) -> list[tuple[Feed, str]]:
    with sessions() as session:
        repo = CandleRepository(session)
        stored: dict[str, Timeframe] = {}
        for info in repo.series():  # a symbol stored in several timeframes streams the finest
            tf = Timeframe.parse(info.timeframe)
            if info.symbol not in stored or tf < stored[info.symbol]:
                stored[info.symbol] = tf
        feeds: list[tuple[Feed, str]] = []
        for spec in settings.feeds:
            if spec.symbol not in stored:
                raise SettingsError(
                    "FEEDS",
                    ",".join(f"{s.symbol}:{s.kind}" for s in settings.feeds),
                    f"stored symbols only ({', '.join(sorted(stored)) or 'none stored'});"
                    f" {spec.symbol} is not stored",
                )
            feeds.append((_feed(spec, stored[spec.symbol], repo, settings), spec.kind))
        for symbol, tf in stored.items():
            if symbol not in {spec.symbol for spec in settings.feeds}:
                market.register_static(symbol, tf, repo.last_ts(symbol, tf.label))
    return feeds


def _feed(spec: FeedSpec, tf: Timeframe, repo: CandleRepository, settings: Settings) -> Feed:
    if spec.kind == "replay":
        return ReplayFeed(
            spec.symbol,
            tf,
            repo.frame(spec.symbol, tf.label),
            replay_bars=settings.replay_bars,
            updates_per_candle=settings.feed_updates_per_candle,
            loop=True,
        )
    last = repo.frame(spec.symbol, tf.label, last=1)
    return RandomWalkFeed(
        spec.symbol,
        tf,
        next(iter_candles(last), None),
        seed=DEMO_SEED,  # the walk is keyed by symbol too: DEMO continues its stored history
        updates_per_candle=settings.feed_updates_per_candle,
    )


def create_app(settings: Settings | None = None, *, start_feeds: bool = True) -> dash.Dash:
    """The Dash app over fresh services; `app.server.extensions['stratlens']` holds them.

    Pages: the live chart (/), the backtest page (/backtest, its runs are dash background
    callbacks run by a DiskcacheManager under the data directory), the formulas (/formulas).
    """
    settings = settings or Settings.from_env()
    services = build_services(settings)
    background = settings.data_dir / "background-callbacks"
    background.mkdir(parents=True, exist_ok=True)
    manager = dash.DiskcacheManager(diskcache.Cache(str(background)))
    app = dash.Dash(
        __name__,
        title="StratLens",
        update_title=None,  # no "Updating..." flicker in the tab title on every tick
        assets_folder=str(ASSETS),
        serve_locally=True,
        background_callback_manager=manager,
        suppress_callback_exceptions=False,
    )
    default_symbol = settings.feeds[0].symbol if settings.feeds else None
    live = LiveContext(services.market_data, services.tracks, settings.chart_bars)
    app.layout = lambda: shell.shell(
        live_page.layout(services.market_data, settings.refresh_ms, default_symbol),
        backtest_page.layout(services),
    )
    shell.register_callbacks(app)
    live_page.register_callbacks(app, live)
    live_panels.register_callbacks(app, services.tracks)
    backtest_page.register_callbacks(app, services, manager)
    app.server.extensions["stratlens"] = services
    app.server.add_url_rule("/debug/stats", "debug_stats", lambda: debug_stats(services))
    app.server.add_url_rule(shell.FORMULAS_URL, "formulas", shell.formulas_html)
    if start_feeds:
        services.runner.start()
    return app


def debug_stats(services: Services) -> dict:
    """Counters of the caches and the live feeds, as JSON (GET /debug/stats)."""
    cache = services.cache.stats()
    return {
        "chart_cache": {"backend": cache.backend, "hits": cache.hits, "misses": cache.misses},
        "indicators": asdict(services.integrator.stats()),
        "feeds": [
            {
                "symbol": s.symbol,
                "timeframe": s.timeframe.label,
                "feed": s.feed_kind,
                "status": s.status,
                "cursor": None if s.cursor is None else s.cursor.isoformat(),
                "closed": s.closed_count,
                "error": s.error,
            }
            for s in services.market.all()
        ],
    }


# -- command line --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="serve the dashboard (default)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    imp = commands.add_parser("import", help="import candles from a CSV or Parquet file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--symbol", required=True)
    imp.add_argument("--timeframe", required=True, choices=SUPPORTED)
    imp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="store the valid rows and report every rejected one (default: reject the file)",
    )
    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade", "current", "retention"])
    db.add_argument(
        "--days",
        type=int,
        help="retention: keep backtest runs this many days (SIGNAL_RETENTION_DAYS)",
    )
    ind = commands.add_parser("indicator", help="print an indicator series as CSV")
    ind.add_argument("--symbol", required=True)
    ind.add_argument("--timeframe", required=True, choices=SUPPORTED)
    ind.add_argument("--name", required=True, help="sma, ema, rsi, macd, bbands, ...")
    ind.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE")
    ind.add_argument("--start", type=_utc, help="first bar (ISO date or time, UTC)")
    ind.add_argument("--end", type=_utc, help="last bar (ISO date or time, UTC)")
    strategy = commands.add_parser("strategy", help="manage user strategies (JSON configs)")
    strategy.add_argument(
        "action", choices=["templates", "list", "show", "validate", "import", "export", "delete"]
    )
    strategy.add_argument(
        "target", nargs="?", help="a strategy name, or a file for validate/import"
    )
    strategy.add_argument("file", nargs="?", type=Path, help="export: the file to write")
    strategy.add_argument("--replace", action="store_true", help="import over a namesake")
    sig = commands.add_parser("signals", help="run a strategy over stored history, store the run")
    sig.add_argument("--symbol", required=True)
    sig.add_argument("--timeframe", required=True, choices=SUPPORTED)
    which = sig.add_mutually_exclusive_group(required=True)
    which.add_argument("--strategy", help="a built-in strategy: sma_crossover, ema_crossover, ...")
    which.add_argument("--user", help="a stored user strategy, by name")
    sig.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE")
    sig.add_argument("--start", type=_utc)
    sig.add_argument("--end", type=_utc)
    sig.add_argument("--no-store", action="store_true", help="print only, store nothing")
    bt = commands.add_parser("backtest", help="backtest a strategy, print statistics, store")
    sw = commands.add_parser("sweep", help="backtest a parameter grid in worker processes")
    for sub in (bt, sw):
        sub.add_argument("--symbol", required=True, action="append" if sub is sw else "store")
        sub.add_argument("--timeframe", required=True, choices=SUPPORTED)
        sub.add_argument("--strategy", required=True, help="sma_crossover, ema_crossover, ...")
        sub.add_argument("--start", type=_utc)
        sub.add_argument("--end", type=_utc)
        sub.add_argument("--cash", type=float, default=10_000.0)
        sub.add_argument("--commission", type=float, default=0.0, help="fraction: 0.001 = 0.1 %%")
        sub.add_argument("--slippage-bps", type=float, default=0.0)
        sub.add_argument("--preset", default="backtesting.py", choices=sorted(PRESETS))
        sub.add_argument("--no-store", action="store_true", help="store no run")
    bt.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE")
    bt.add_argument("--compat", choices=["backtesting.py"], help="backtesting.py's fill rules")
    bt.add_argument("--json", action="store_true", help="one JSON object with a trades list")
    sw.add_argument("--grid", action="append", default=[], metavar="PARAM=V1,V2,...")
    sw.add_argument("--metric", default="Sharpe Ratio")
    sw.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    met = commands.add_parser("metrics", help="metrics of an equity or returns series (CSV)")
    met.add_argument("file", type=Path)
    met.add_argument("--preset", default="quantstats", choices=sorted(PRESETS))
    met.add_argument("--risk-free", type=float, default=0.0, help="annual rate, 0.02 = 2 %%")
    met.add_argument("--json", action="store_true", help="one JSON object (NaN as null)")
    args = parser.parse_args(argv)

    if args.command == "metrics":  # needs no database nor settings
        return _metrics(args)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level_number, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "DEBUG":  # one line per live tick, per migration step: noise
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "import":
        return _import(settings, args.file, args.symbol, args.timeframe, args.skip_invalid)
    if args.command == "indicator":
        return _indicator(settings, args)
    if args.command == "strategy":
        return _strategy(StrategyManager(settings.strategies_dir), args)
    if args.command == "signals":
        return _signals(settings, args)
    if args.command in ("backtest", "sweep"):
        _prepare_database(settings).dispose()  # the workers open their own engines
        return _backtest(settings, args) if args.command == "backtest" else _sweep(settings, args)
    if args.command == "db":
        engine = make_engine(settings.database_url)
        try:
            if args.action == "retention":
                return _retention(
                    engine, args.days if args.days is not None else settings.retention_days
                )
            if args.action == "upgrade":
                migrate.upgrade(engine)
            print(f"database at revision {migrate.current_revision(engine)}")
        finally:
            engine.dispose()
        return 0
    if args.command == "serve":
        settings = settings.with_overrides(
            host=args.host or settings.host, port=args.port or settings.port
        )
    try:
        app = create_app(settings)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    log.info("StratLens on http://%s:%d/", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, debug=False)
    return 0


def _utc(text: str) -> pd.Timestamp:
    ts = pd.Timestamp(text)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@contextmanager
def _offline(settings: Settings) -> Iterator[tuple[sessionmaker[Session], StrategyDataIntegrator]]:
    """A migrated database (bundled data loaded) and an integrator, for one command."""
    engine = _prepare_database(settings)
    cache = SharedCache.from_url(settings.redis_url)
    try:
        sessions = make_session_factory(engine)
        yield sessions, StrategyDataIntegrator(sessions, cache)
    finally:
        cache.close()
        engine.dispose()


def _prepare_database(settings: Settings) -> Engine:
    """The engine of a migrated database, the bundled data loaded on first use."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        if settings.load_sample_data:
            seed_sample_data(make_session_factory(engine))
    except BaseException:
        engine.dispose()
        raise
    return engine


def _indicator(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with _offline(settings) as (sessions, integrator):
            params = dict(parse_param(item) for item in args.set)
            table = indicator_table(
                sessions,
                integrator,
                args.symbol,
                args.timeframe,
                args.name,
                params,
                start=args.start,
                end=args.end,
            )
    except (IndicatorParamError, UnknownIndicatorError, IndicatorTableError, ValueError) as exc:
        print(f"indicator: {exc}", file=sys.stderr)
        return 2
    table.to_csv(sys.stdout, index_label="timestamp", date_format="%Y-%m-%dT%H:%M:%SZ")
    return 0


def _backtest_settings(args: argparse.Namespace, **extra: object) -> BacktestSettings:
    return BacktestSettings(
        cash=args.cash, commission_pct=args.commission, slippage_bps=args.slippage_bps, **extra
    )


def _backtest(settings: Settings, args: argparse.Namespace) -> int:
    """Statistics (backtesting.py names where one exists) of one backtest; the run is stored."""
    try:
        params = dict(parse_param(p) for p in args.set)
        strategy = create_strategy(args.strategy, **params)
        backtest_settings = _backtest_settings(
            args, compat=args.compat, direction=strategy.direction
        )
    except (UnknownStrategyError, StrategyParamError, ValueError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 2
    job = BatchJob(
        args.strategy, strategy.config, args.symbol, args.timeframe, args.start, args.end
    )
    context = open_context(settings.database_url, settings.redis_url)
    try:
        outcome = run_job(
            job,
            backtest_settings,
            context,
            preset=args.preset,
            store=not args.no_store,
            keep_backtest=True,
        )
    finally:
        context.close()
    if outcome.error:
        print(f"backtest: {outcome.error}", file=sys.stderr)
        return 1
    if args.json:
        document = {name: _jsonable(value) for name, value in outcome.metrics.items()}
        document["trades"] = [
            {column: _jsonable(value) for column, value in row.items()}
            for row in outcome.backtest.trades.to_dict("records")
        ]
        document["run_id"] = outcome.run_id
        print(json.dumps(document, indent=2))
        return 0
    _print_metrics(outcome.metrics)
    print(f"stored as run {outcome.run_id}" if outcome.run_id else "not stored", file=sys.stderr)
    return 0


def _sweep(settings: Settings, args: argparse.Namespace) -> int:
    """Every grid combination in worker processes; prints the sweep table (heatmap-ready)."""
    try:
        grid: dict[str, list[object]] = {}
        for item in args.grid:
            name, sep, values = item.partition("=")
            if not sep or not values:
                raise ValueError(f"--grid {item!r}: expected PARAM=V1,V2,... (fast=5,10,20)")
            grid[name.strip()] = [parse_param(f"{name}={v}")[1] for v in values.split(",")]
        if len(grid) < 1:
            raise ValueError("give at least one --grid PARAM=V1,V2,...")
        jobs = expand([args.strategy], {args.strategy: grid}, args.symbol, args.timeframe,
                      start=args.start, end=args.end)  # fmt: skip
        report = run_batch(
            settings.database_url,
            jobs,
            _backtest_settings(args),
            workers=args.workers,
            progress=True,
            store=not args.no_store,
            preset=args.preset,
            cache_url=settings.redis_url,
        )
    except (UnknownStrategyError, StrategyParamError, ValueError) as exc:
        print(f"sweep: {exc}", file=sys.stderr)
        return 2
    names = list(grid)
    for symbol in args.symbol:
        print(f"{symbol} {args.timeframe} {args.strategy}: {args.metric}")
        if len(names) >= 2:
            table = sweep_table(report, x=names[0], y=names[1], metric=args.metric, symbol=symbol)
        else:
            rows = report.table()
            table = rows[rows["symbol"] == symbol].set_index(names[0])[[args.metric]]
        print(table.to_string(float_format=lambda v: f"{v:,.4f}"))
    for failed in report.failed:
        print(f"failed: {failed.job.label}: {failed.error}", file=sys.stderr)
    print(f"{len(report.results)} runs in {report.elapsed_s:.1f} s", file=sys.stderr)
    return 1 if report.failed else 0


def _print_metrics(stats: pd.Series) -> None:
    width = max(len(str(name)) for name in stats.index)
    for name, value in stats.items():
        print(f"{name:<{width}}  {_display(value)}")


def _metrics(args: argparse.Namespace) -> int:
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
        print(json.dumps({name: _jsonable(value) for name, value in stats.items()}, indent=2))
        return 0
    _print_metrics(stats)
    return 0


def _jsonable(value: object) -> object:
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timedelta):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _display(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "NaN" if np.isnan(value) else f"{value:,.5f}"
    return str(value)


def _retention(engine: Engine, days: int) -> int:
    """Delete the signals of backtest runs started more than `days` ago; never live or paper."""
    if days < 0:
        print(f"--days={days} is invalid: expected 0 or more", file=sys.stderr)
        return 2
    migrate.upgrade(engine)
    with make_session_factory(engine).begin() as session:
        report = StrategyRepository(session).apply_retention(
            RetentionPolicy(keep_analysis_days=days)
        )
    print(
        f"retention ({days} days, cutoff {report.cutoff:%Y-%m-%d %H:%M} UTC): deleted "
        f"{report.deleted_signals} signals and {report.deleted_runs} backtest runs; "
        "live and paper records kept"
    )
    return 0


def _signals(settings: Settings, args: argparse.Namespace) -> int:
    """Signals as CSV on stdout (timestamp, type, price, confidence); a summary on stderr."""
    try:
        with _offline(settings) as (sessions, integrator):
            if args.user:
                strategy = StrategyManager(settings.strategies_dir).build(args.user)
            else:
                params = dict(parse_param(p) for p in args.set)
                strategy = create_strategy(args.strategy, **params)
            outcome = run_strategy(
                sessions,
                integrator,
                strategy,
                args.symbol,
                args.timeframe,
                start=args.start,
                end=args.end,
                store=not args.no_store,
            )
    except (
        StrategyConfigError,
        StrategyNotFoundError,
        UnknownStrategyError,
        StrategyParamError,
        StrategyRunError,
        ValueError,
    ) as exc:
        print(f"signals: {exc}", file=sys.stderr)
        return 2
    print("timestamp,signal_type,price,confidence")
    for signal in outcome.result.signals:
        stamp = signal.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{stamp},{signal.signal_type},{signal.price:.10g},{signal.confidence:.4f}")
    stored = f"stored as run {outcome.run.id}" if outcome.run else "not stored"
    print(
        f"{strategy.name} {strategy.config} on {args.symbol} {args.timeframe}: "
        f"{len(outcome.result.signals)} signals, {stored}",
        file=sys.stderr,
    )
    return 0


def _strategy(manager: StrategyManager, args: argparse.Namespace) -> int:
    """The user-strategy commands: 0 done, 1 an invalid config (every problem listed), 2 a
    missing argument, an unknown or an existing name."""
    needs_target = args.action not in ("templates", "list")
    if (needs_target and not args.target) or (args.action == "export" and args.file is None):
        print(f"strategy {args.action}: missing argument (see --help)", file=sys.stderr)
        return 2
    try:
        if args.action == "templates":
            for config in manager.templates():
                print(json.dumps(config))
        elif args.action == "list":
            for stored in manager.list():
                params = ", ".join(f"{k}={v}" for k, v in stored.params.items())
                state = "" if stored.enabled else "  (disabled)"
                print(f"{stored.name}: {stored.strategy}({params}){state}")
        elif args.action == "show":
            print(json.dumps(manager.get(args.target).config, indent=2))
        elif args.action == "validate":
            problems = validate_config(json.loads(Path(args.target).read_text()))
            if problems:
                raise StrategyConfigError(problems, args.target)
            print(f"{args.target}: valid")
        elif args.action == "import":
            stored = manager.import_file(Path(args.target), replace=args.replace)
            print(f"imported {stored.name!r} into {stored.path}")
        elif args.action == "export":
            print(f"exported {args.target!r} to {manager.export(args.target, args.file)}")
        elif args.action == "delete":
            manager.delete(args.target)
            print(f"deleted {args.target!r}")
    except StrategyConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except json.JSONDecodeError as exc:
        print(f"{args.target}: line {exc.lineno}, column {exc.colno}: {exc.msg}", file=sys.stderr)
        return 1
    except (StrategyNotFoundError, StrategyExistsError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _import(settings: Settings, path: Path, symbol: str, timeframe: str, skip: bool) -> int:
    from market.validation import CandleValidationError

    try:
        result = read_candle_file(path, skip_invalid=skip)
    except (CandleValidationError, OSError, ValueError) as exc:
        print(f"import rejected, nothing written: {exc}", file=sys.stderr)
        for error in getattr(exc, "errors", [])[:200]:
            print(f"  {error}", file=sys.stderr)
        return 1
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with make_session_factory(engine).begin() as session:
            written = CandleRepository(session).upsert(symbol, timeframe, result.candles)
    finally:
        engine.dispose()
    for error in result.rejected:
        print(f"  skipped: {error}", file=sys.stderr)
    print(
        f"imported {written} bars of {symbol} {timeframe} from {path}"
        + (f"; skipped {len(result.rejected)} invalid rows" if result.rejected else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
