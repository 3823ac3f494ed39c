"""The strategy commands: user strategies (templates, list, show, validate, import, export,
delete) and signals, a strategy run over stored history."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cli.common import _utc
from config.choices import SUPPORTED_TIMEFRAMES

if TYPE_CHECKING:
    from config.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    strategy = commands.add_parser("strategy", help="manage user strategies (JSON configs)")
    strategy.add_argument(
        "action", choices=["templates", "list", "show", "validate", "import", "export", "delete"]
    )
    strategy.add_argument(
        "target", nargs="?", help="a strategy name, or a file for validate/import"
    )
    strategy.add_argument("file", nargs="?", type=Path, help="export: the file to write")
    strategy.add_argument("--replace", action="store_true", help="import over a namesake")
    strategy.set_defaults(run=_strategy)
    sig = commands.add_parser("signals", help="run a strategy over stored history, store the run")
    sig.add_argument("--symbol", required=True)
    sig.add_argument("--timeframe", required=True, choices=SUPPORTED_TIMEFRAMES)
    which = sig.add_mutually_exclusive_group(required=True)
    which.add_argument("--strategy", help="a built-in strategy: sma_crossover, ema_crossover, ...")
    which.add_argument("--user", help="a stored user strategy, by name")
    sig.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE")
    sig.add_argument("--start", type=_utc)
    sig.add_argument("--end", type=_utc)
    sig.add_argument("--no-store", action="store_true", help="print only, store nothing")
    sig.set_defaults(run=_signals)


def _signals(args: argparse.Namespace, settings: Settings) -> int:
    """Signals as CSV on stdout (timestamp, type, price, confidence); a summary on stderr."""
    from services.database_setup import offline_services
    from services.indicator_table import parse_param
    from services.strategy_runs import StrategyRunError, run_strategy
    from strategies.base import StrategyParamError
    from strategies.config import StrategyConfigError
    from strategies.manager import StrategyManager, StrategyNotFoundError
    from strategies.registry import UnknownStrategyError
    from strategies.registry import create as create_strategy

    try:
        with offline_services(settings) as (sessions, integrator):
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


def _strategy(args: argparse.Namespace, settings: Settings) -> int:
    """The user-strategy commands: 0 done, 1 an invalid config (every problem listed), 2 a
    missing argument, an unknown or an existing name."""
    from strategies.config import StrategyConfigError, validate_config
    from strategies.manager import (
        StrategyExistsError,
        StrategyManager,
        StrategyNotFoundError,
        read_config_file,
    )

    manager = StrategyManager(settings.strategies_dir)
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
            problems = validate_config(read_config_file(Path(args.target)))
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
