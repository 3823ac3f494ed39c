"""Paper trading: accounts, deployments (create, start, stop, remove, list), the replay that
runs the live code path over stored bars, and ``runner``, the live runner as its own process.

    app.py paper account create demo --cash 10000 --max-drawdown 0.2
    app.py paper deploy ema-sp500 --account demo --strategy ema_crossover --set fast=12 \\
        --symbol SP500 --timeframe 1d --stop-loss 0.03
    app.py paper start ema-sp500 ; app.py paper list ; app.py paper stop ema-sp500
    app.py paper replay --symbol SP500 --timeframe 1d --strategy ema_crossover --account acc1 --json
    app.py runner
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from cli.common import _utc, bounded, importing
from config.choices import SUPPORTED_TIMEFRAMES

if TYPE_CHECKING:
    from config.settings import Settings

# --flag -> deployment setting (trading.config.DeploymentSettings)
SETTING_FLAGS: dict[str, tuple[str, Any]] = {
    "--sizing": ("sizing", str),
    "--size": ("size", float),
    "--commission": ("commission_pct", float),
    "--commission-fixed": ("commission_fixed", float),
    "--slippage-bps": ("slippage_bps", float),
    "--spread-bps": ("spread_bps", float),
    "--stop-loss": ("stop_loss_pct", float),
    "--take-profit": ("take_profit_pct", float),
    "--trailing-stop": ("trailing_stop_pct", float),
    "--max-position": ("max_position", float),
    "--max-orders-per-minute": ("max_orders_per_minute", int),
    "--volume-cap": ("volume_cap", float),
}


def register(commands: argparse._SubParsersAction) -> None:
    paper = commands.add_parser("paper", help="paper trading: accounts, deployments, replay")
    sub = paper.add_subparsers(dest="paper_command", required=True)

    account = sub.add_parser("account", help="create or show a paper account")
    acc = account.add_subparsers(dest="account_command", required=True)
    create = acc.add_parser("create", help="a new paper account")
    create.add_argument("name")
    create.add_argument("--cash", type=bounded(float, 1e-9, 1e15), default=10_000.0)
    create.add_argument("--max-drawdown", type=bounded(float, 1e-9, 0.999999), default=None,
                        help="halt the account past this drawdown (0.2 = 20 %%)")  # fmt: skip
    show = acc.add_parser("show", help="cash, equity, positions and open orders")
    show.add_argument("name")
    account.set_defaults(run=_account)

    deploy = sub.add_parser("deploy", help="deploy a strategy on a symbol for an account")
    deploy.add_argument("name")
    deploy.add_argument("--account", required=True)
    _strategy_args(deploy)
    deploy.set_defaults(run=_deploy)

    for verb in ("start", "stop", "remove"):
        cmd = sub.add_parser(verb, help=f"{verb} a deployment")
        cmd.add_argument("name")
        cmd.set_defaults(run=_status, verb=verb)
    listing = sub.add_parser("list", help="deployments and their status")
    listing.set_defaults(run=_list)

    replay = sub.add_parser("replay", help="the live code path over stored bars (trades as JSON)")
    _strategy_args(replay)
    replay.add_argument(
        "--account", required=True, help="a new account (or an interrupted replay's)"
    )
    replay.add_argument("--cash", type=bounded(float, 1e-9, 1e15), default=10_000.0)
    replay.add_argument("--max-drawdown", type=bounded(float, 1e-9, 0.999999), default=None)
    replay.add_argument("--start", type=_utc)
    replay.add_argument("--end", type=_utc)
    replay.add_argument("--json", action="store_true", help="one JSON object with a trades list")
    replay.set_defaults(run=_replay)

    runner = commands.add_parser("runner", help="run the running deployments (its own process)")
    runner.set_defaults(run=_runner)


def _strategy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--timeframe", required=True, choices=SUPPORTED_TIMEFRAMES)
    parser.add_argument("--strategy", required=True, help="sma_crossover, ema_crossover, ...")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                        help="a strategy parameter")  # fmt: skip
    for flag, (name, kind) in SETTING_FLAGS.items():
        parser.add_argument(flag, dest=name, type=kind, default=None)


def _settings_from(args: argparse.Namespace) -> dict[str, Any]:
    return {
        name: getattr(args, name)
        for name, _ in SETTING_FLAGS.values()
        if getattr(args, name, None) is not None
    }


def _params(args: argparse.Namespace) -> dict[str, Any]:
    from services.indicator_table import parse_param

    return dict(parse_param(p) for p in args.set)


def _service(settings: Settings):
    from database.session import make_session_factory
    from services.database_setup import prepare_database
    from services.paper import PaperTrading

    engine = prepare_database(settings)
    return engine, PaperTrading(make_session_factory(engine))


def _fail(command: str, exc: Exception) -> int:
    print(f"paper {command}: {exc}", file=sys.stderr)
    return 2


def _account(args: argparse.Namespace, settings: Settings) -> int:
    from services.paper import PaperError

    engine, paper = _service(settings)
    try:
        if args.account_command == "create":
            row = paper.create_account(args.name, args.cash, args.max_drawdown)
            print(f"account {row.name} created with cash {row.cash:,.2f}")
            return 0
        view = paper.account_view(args.name)
    except PaperError as exc:
        return _fail(f"account {args.account_command}", exc)
    finally:
        engine.dispose()
    print(view)
    return 0


def _deploy(args: argparse.Namespace, settings: Settings) -> int:
    from services.paper import PaperError

    engine, paper = _service(settings)
    try:
        row = paper.deploy(
            args.name, account=args.account, strategy=args.strategy, params=_params(args),
            symbol=args.symbol, timeframe=args.timeframe, settings=_settings_from(args),
        )  # fmt: skip
    except (PaperError, ValueError) as exc:
        return _fail("deploy", exc)
    finally:
        engine.dispose()
    print(f"deployment {row.name} created (stopped): start it with `app.py paper start {row.name}`")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from services.paper import PaperError

    engine, paper = _service(settings)
    try:
        if args.verb == "remove":
            print(f"deployment {args.name}: {paper.remove(args.name)}")
        else:
            row = paper.set_status(args.name, "running" if args.verb == "start" else "stopped")
            print(f"deployment {row.name}: {row.status}")
    except PaperError as exc:
        return _fail(args.verb, exc)
    finally:
        engine.dispose()
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    engine, paper = _service(settings)
    try:
        rows = paper.deployments()
    finally:
        engine.dispose()
    if not rows:
        print("no deployments")
    for row in rows:
        error = f"  ({row.error})" if row.error else ""
        print(
            f"{row.name:24} {row.status:8} {row.strategy_name} {row.symbol} {row.timeframe}{error}"
        )
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    with importing():
        from services.paper import PaperError, ReplayRequest

    engine, paper = _service(settings)
    try:
        request = ReplayRequest(
            args.symbol, args.timeframe, args.strategy, _params(args), args.account, args.cash,
            _settings_from(args), args.start, args.end, args.max_drawdown,
        )  # fmt: skip
        outcome = paper.replay(request)
    except (PaperError, ValueError) as exc:
        return _fail("replay", exc)
    finally:
        engine.dispose()
    if args.json:
        from cli.json_output import dumps, records

        document = {
            "account": outcome.account,
            "bars": outcome.bars,
            "resumed_from": None
            if outcome.resumed_from is None
            else outcome.resumed_from.isoformat(),
            "orders": outcome.orders,
            "fills": outcome.fills,
            "equity": outcome.equity,
            "trades": records(outcome.trades),
        }
        print(dumps(document))
        return 0
    print(
        f"replayed {outcome.bars} bars on account {outcome.account}: {len(outcome.trades)} trades,"
        f" {outcome.orders} orders, {outcome.fills} fills, equity {outcome.equity:,.2f}"
    )
    return 0


def _runner(args: argparse.Namespace, settings: Settings) -> int:
    from services.trading_runner import run_forever

    return run_forever(settings)
