"""The indicator command: an indicator series over stored candles, as CSV on stdout."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cli.common import _utc
from config.choices import SUPPORTED_TIMEFRAMES

if TYPE_CHECKING:
    from config.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:
    ind = commands.add_parser("indicator", help="print an indicator series as CSV")
    ind.add_argument("--symbol", required=True)
    ind.add_argument("--timeframe", required=True, choices=SUPPORTED_TIMEFRAMES)
    ind.add_argument("--name", required=True, help="sma, ema, rsi, macd, bbands, ...")
    ind.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE")
    ind.add_argument("--start", type=_utc, help="first bar (ISO date or time, UTC)")
    ind.add_argument("--end", type=_utc, help="last bar (ISO date or time, UTC)")
    ind.set_defaults(run=_indicator)


def _indicator(args: argparse.Namespace, settings: Settings) -> int:
    from indicators.base import IndicatorParamError, UnknownIndicatorError
    from services.database_setup import offline_services
    from services.indicator_table import IndicatorTableError, indicator_table, parse_param

    try:
        with offline_services(settings) as (sessions, integrator):
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
