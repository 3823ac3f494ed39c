"""The data commands: import candles from a file; db upgrade, current and retention."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.common import bounded, importing
from config.choices import SUPPORTED_TIMEFRAMES

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from config.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    imp = commands.add_parser("import", help="import candles from a CSV or Parquet file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--symbol", required=True)
    imp.add_argument("--timeframe", required=True, choices=SUPPORTED_TIMEFRAMES)
    imp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="store the valid rows and report every rejected one (default: reject the file)",
    )
    imp.set_defaults(run=_import)
    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade", "current", "retention"])
    db.add_argument(
        "--days",
        type=bounded(int, 0, 100_000, " days"),
        help="retention: keep backtest runs this many days (SIGNAL_RETENTION_DAYS)",
    )
    db.set_defaults(run=_db)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    """Validate the whole file, then store it (or its valid rows with --skip-invalid)."""
    with importing():
        from market.importer import read_candle_file
        from market.validation import CandleValidationError
    # the database's side (SQLAlchemy, the driver: a quarter of the command's imports) is
    # imported on another thread while this one reads the file (pyarrow's parser and numpy's
    # checks run without the GIL); nothing touches the database before the file is accepted
    storage = ThreadPoolExecutor(1, thread_name_prefix="import-modules").submit(_storage)

    path, symbol, timeframe = args.file, args.symbol, args.timeframe
    try:
        result = read_candle_file(path, skip_invalid=args.skip_invalid, timeframe=timeframe)
    except CandleValidationError as exc:  # each problem once: the first 200, then a count
        count = len(exc.errors)
        print(f"import rejected, nothing written: {count} problem(s)", file=sys.stderr)
        for error in exc.errors[:200]:
            print(f"  {error}", file=sys.stderr)
        if count > 200:
            print(f"  ... and {count - 200} more", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"import rejected, nothing written: {exc}", file=sys.stderr)
        return 1
    if result.candles.empty:  # --skip-invalid and not one valid row
        print(
            f"import rejected, nothing written: none of the {len(result.rejected)} rows of "
            f"{path} is valid",
            file=sys.stderr,
        )
        for error in result.rejected[:20]:
            print(f"  {error}", file=sys.stderr)
        return 1
    migrate, make_engine, import_candles = storage.result()
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        # staged in short transactions, merged in one: a running server's writers go between
        written = import_candles(engine, symbol, timeframe, result.candles)
    finally:
        engine.dispose()
    for error in result.rejected:
        print(f"  skipped: {error}", file=sys.stderr)
    print(
        f"imported {written} bars of {symbol} {timeframe} from {path}"
        + (f"; skipped {len(result.rejected)} invalid rows" if result.rejected else "")
    )
    return 0


def _storage() -> tuple[Any, Any, Any]:
    """The modules an import stores with: (database.migrate, make_engine, import_candles)."""
    with importing():
        from database import migrate
        from database.session import make_engine
        from services.candle_import import import_candles
    return migrate, make_engine, import_candles


def _db(args: argparse.Namespace, settings: Settings) -> int:
    """upgrade: apply the migrations; current: print the revision; retention: see _retention."""
    from database import migrate
    from database.session import make_engine

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


def _retention(engine: Engine, days: int) -> int:
    """Delete the signals of backtest runs started more than `days` ago; never live or paper."""
    from database import migrate
    from database.records import RetentionPolicy
    from database.repositories import StrategyRepository
    from database.session import make_session_factory

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
