"""Trade tracking: import executed trades, the performance summary and its attribution.

app.py trades import tradesv3.sqlite --format freqtrade --account ft-live [--dry-run]
app.py trades import orders.csv --format orders-csv --account desk [--dry-run]
app.py trades accounts
app.py performance --account ft-live --period monthly --json
app.py attribution --account ft-live --by label --benchmark SP500 --json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.common import bounded

if TYPE_CHECKING:
    from collections.abc import Callable

    from config.settings import Settings

FORMATS = ("freqtrade", "hummingbot", "csv", "orders-csv")
PERIODS = ("all", "daily", "weekly", "monthly")
BY = ("label", "session", "hour", "weekday", "size", "regime", "strategy", "symbol")
PRESETS = ("quantstats", "backtesting.py", "trade")
TCA_BY = ("venue", "algo", "symbol", "side", "strategy")


def register(commands: argparse._SubParsersAction) -> None:
    trades = commands.add_parser("trades", help="executed trades: import from bots and files")
    sub = trades.add_subparsers(dest="trades_command", required=True)
    imp = sub.add_parser(
        "import",
        help="record the fills of a bot's database or a CSV file (and the orders behind them)",
    )
    imp.add_argument("file", type=Path)
    imp.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    imp.add_argument("--account", required=True, help="the account the trades belong to")
    imp.add_argument("--dry-run", action="store_true", help="check and count, store nothing")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(run=_import)
    news = sub.add_parser("news", help="import a news calendar (time, title[, symbol]) for labels")
    news.add_argument("file", type=Path)
    news.set_defaults(run=_news)
    accounts = sub.add_parser("accounts", help="accounts with trades, their count and source")
    accounts.set_defaults(run=_accounts)

    perf = commands.add_parser("performance", help="an account's performance summary")
    _account_args(perf)
    perf.add_argument("--period", choices=PERIODS, default="all")
    perf.add_argument("--preset", choices=PRESETS, default="quantstats",
                      help="the metrics' convention (docs/metrics.md)")  # fmt: skip
    perf.set_defaults(run=_performance)

    attr = commands.add_parser("attribution", help="where an account's PnL and risk come from")
    _account_args(attr)
    attr.add_argument("--by", required=True, choices=BY)
    attr.add_argument("--benchmark", help="a stored symbol: alpha, beta and factor regression")
    attr.add_argument("--clock", choices=("entry", "exit"), default="entry",
                      help="hour and weekday of the entry or the exit (UTC)")  # fmt: skip
    attr.set_defaults(run=_attribution)

    tca = commands.add_parser(
        "tca", help="transaction-cost analysis of an account's orders (paper or imported)"
    )
    tca.add_argument("--account", required=True)
    tca.add_argument("--by", action="append", choices=TCA_BY,
                     help="aggregate by these (repeat; default: all five)")  # fmt: skip
    tca.add_argument("--json", action="store_true")
    tca.set_defaults(run=_tca)


def _account_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account", required=True)
    parser.add_argument("--strategy", help="only this strategy's trades")
    parser.add_argument("--capital", type=bounded(float, 1e-9, 1e15),
                        help="starting capital (a paper account's own by default)")  # fmt: skip
    parser.add_argument("--json", action="store_true")


def _service(settings: Settings):
    from database.session import make_session_factory
    from services.database_setup import prepare_database
    from services.tracking import TrackingService

    engine = prepare_database(settings)
    return engine, TrackingService(make_session_factory(engine))


def _push_to_redis(service: Any, engine: Any, settings: Settings) -> Callable[[], None]:
    """With REDIS_URL, the trades this process records (and the account's live view after
    them) reach the WebSocket clients of every server (services/push.py)."""
    if not settings.redis_url:
        return lambda: None
    from database.session import make_session_factory
    from services.push import publish_to_redis, push_channel

    channel = push_channel(make_session_factory(engine))
    return publish_to_redis(service, settings.redis_url, channel)


def _fail(command: str, exc: Exception) -> int:
    print(f"{command}: {exc}", file=sys.stderr)
    return 2


def _print_json(document: Any) -> None:
    from cli.json_output import dumps

    print(dumps(document))


def _import(args: argparse.Namespace, settings: Settings) -> int:
    if args.fmt == "csv" and not args.dry_run and not settings.redis_url:
        from tracking.importers.csv_arrow import read_columns_ahead  # pyarrow alone

        # Arrow's reader first, on its own threads while pandas and the ORM load; then its
        # columns checked while the database is migrated (import_file reads it the same way)
        read_columns_ahead(args.file)
        from tracking.importers.csv_fills import read_fill_table_ahead

        read_fill_table_ahead(args.file, args.account)
    from database.errors import DuplicateTradeError
    from tracking.importers import TradeImportError
    from tracking.tracker import ConflictingTradeError, OutOfOrderTradeError

    engine, service = _service(settings)
    stop_push = _push_to_redis(service, engine, settings)
    try:
        report = service.import_file(
            args.file, args.fmt, args.account, dry_run=args.dry_run,
            columns=not settings.redis_url,  # the pushed trades are the tracker's batches
        )  # fmt: skip
    except TradeImportError as exc:
        print(f"trades import rejected, nothing written: {exc}", file=sys.stderr)
        return 1
    except (ConflictingTradeError, OutOfOrderTradeError, DuplicateTradeError) as exc:
        print(f"trades import rejected, nothing written: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        return _fail("trades import", exc)
    finally:
        stop_push()
        engine.dispose()
    if args.json:
        _print_json(report.as_dict())
        return 0
    print(report.summary)
    verb = "would store" if report.dry_run else "stored"
    print(
        f"account {report.account}: {verb} {report.stored} new fills,"
        f" {report.already_stored} already stored"
    )
    return 0


def _news(args: argparse.Namespace, settings: Settings) -> int:
    from tracking.importers import TradeImportError

    engine, service = _service(settings)
    try:
        read, new = service.import_news(args.file)
    except TradeImportError as exc:
        print(f"trades news rejected, nothing written: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"{args.file}: {read} events read, {new} new stored")
    return 0


def _accounts(args: argparse.Namespace, settings: Settings) -> int:
    engine, service = _service(settings)
    try:
        rows = service.accounts()
    finally:
        engine.dispose()
    for account, count, source in rows:
        print(f"{account:32} {count:>10} trades  {source or '-'}")
    return 0


def _performance(args: argparse.Namespace, settings: Settings) -> int:
    from services.tracking import UnknownAccountError

    engine, service = _service(settings)
    try:
        document = service.performance(
            args.account, strategy=args.strategy, period=args.period, capital=args.capital,
            preset=args.preset,
        )  # fmt: skip
    except (UnknownAccountError, ValueError) as exc:
        return _fail("performance", exc)
    finally:
        engine.dispose()
    if args.json:
        _print_json(document)
        return 0
    print(f"account {args.account}: {document['fills']} fills, convention {args.preset}")
    for entry in document["periods"]:
        s = entry["trade_summary"]
        metrics = entry["metrics"]
        ret = metrics.get("Return [%]")
        shown = "" if ret is None else f"  return {ret:.2f}%"
        print(
            f"{entry['period']:>12}  trades {s['trades']:>6}  win rate {_pct(s['win_rate'])}"
            f"  net {s['net_pnl']:,.2f}  fees {s['fees']:,.2f}{shown}"
        )
    return 0


def _attribution(args: argparse.Namespace, settings: Settings) -> int:
    from services.tracking import UnknownAccountError

    engine, service = _service(settings)
    try:
        document = service.attribution(
            args.account, by=args.by, strategy=args.strategy, benchmark=args.benchmark,
            capital=args.capital, clock=args.clock,
        )  # fmt: skip
    except (UnknownAccountError, ValueError) as exc:
        return _fail("attribution", exc)
    finally:
        engine.dispose()
    if args.json:
        _print_json(document)
        return 0
    print(f"account {args.account}: {document['trips']} round trips by {args.by}")
    for row in document["pnl"]:
        print(
            f"{row['group']:>24}  trades {row['trades']:>6}  net {row['net_pnl']:>14,.2f}"
            f"  share {_pct(row['pnl_share'])}  win rate {_pct(row['win_rate'])}"
        )
    bench = document.get("benchmark")
    if bench:
        if "error" in bench:
            print(f"benchmark {bench['symbol']}: {bench['error']}")
        else:
            print(
                f"benchmark {bench['symbol']} ({bench['convention']}): alpha"
                f" {bench['alpha']:.4f} beta {bench['beta']:.4f}"
                f" over {bench['observations']} days"
            )
    return 0


def _tca(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.tca import TCAInputError
    from cli.json_output import records
    from database.session import make_session_factory
    from services.database_setup import prepare_database
    from services.tca import TCAService
    from services.tracking import UnknownAccountError

    engine = prepare_database(settings)
    try:
        outcome = TCAService(make_session_factory(engine)).account(
            args.account, by=args.by or TCA_BY
        )
    except (UnknownAccountError, TCAInputError) as exc:
        return _fail("tca", exc)
    finally:
        engine.dispose()
    report = outcome.report
    if args.json:
        _print_json(
            {
                "account": args.account,
                "left_out": outcome.left_out,
                "orders": records(report.orders.reset_index(drop=True)),
                "round_trips": records(report.round_trips.reset_index(drop=True)),
                "aggregates": records(report.aggregates.reset_index(drop=True)),
            }
        )
        return 0
    orders = report.orders
    print(f"account {args.account}: {len(orders)} orders (docs/tca.md for each metric)")
    for name, value in outcome.left_out.items():
        print(f"  left out: {value} {name}")
    wanted = ("arrival_slippage_bps", "is_bps", "vs_vwap_bps", "fill_rate")
    table = report.aggregates
    for dimension, rows in table.groupby("dimension", sort=False):
        print(f"by {dimension}:")
        for group, part in rows.groupby("group", sort=False):
            shown = [
                f"{m} {float(part.loc[part['metric'] == m, 'mean'].iloc[0]):.2f}"
                for m in wanted
                if (part["metric"] == m).any()
            ]
            orders_n = int(part["orders"].iloc[0])
            print(f"  {group!s:>16}  orders {orders_n:>6}  " + "  ".join(shown))
    return 0


def _pct(value: float | None) -> str:
    return "   n/a" if value is None or value != value else f"{value * 100:5.1f}%"
