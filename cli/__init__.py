"""The command line: main(argv) builds the parser from each command group and dispatches.

One module per command group; each has ``register(commands)``, which adds its sub-commands
and sets ``run`` on each: ``run(args, settings) -> exit code`` (or ``run(args)`` where it sets
``needs_settings=False``: such a command reads no configuration). A group imports only
argparse and config at module level, its handlers the rest, so ``app.py --help`` stays light.

    serve.py       serve (the default command), serve-api; serve-prod (production.py)
    data.py        import, db upgrade|current|retention
    indicators.py  indicator
    strategies.py  strategy templates|list|show|validate|import|export|delete, signals
    backtest.py    backtest, sweep, metrics
    paper.py       paper account|deploy|start|stop|remove|list|replay, runner
    tracking.py    trades import|accounts, performance, attribution, tca
    execution.py   dataset export, costmodel train|evaluate
    tokens.py      token create|list|revoke (the REST API's)
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from cli import backtest, data, execution, indicators, paper, serve, strategies, tokens, tracking
from cli.common import configuration_error, database_failure
from config.log_format import MAX_LOG_LINE as MAX_LOG_LINE  # re-exported (tests)
from config.log_format import BoundedFormatter as BoundedFormatter
from config.log_format import configure_logging
from config.settings import Settings, SettingsError

# the order of `app.py --help`
GROUPS = (serve, data, indicators, strategies, backtest, paper, tracking, execution, tokens)
DEFAULT_COMMAND = "serve"


class Parser(argparse.ArgumentParser):
    """argparse's parser, with its errors as one line (``app.py backtest: error: ...``)
    instead of the usage block and the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(  # the entry point's name and docstring line, as ever
        prog="app.py", description="StratLens: create_app(settings) and the command line."
    )
    commands = parser.add_subparsers(dest="command")
    for group in GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([DEFAULT_COMMAND])
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start is not None and end is not None and start > end:
        parser.error(f"{args.command}: --start {start} is after --end {end}")
    if not getattr(args, "needs_settings", True):
        return args.run(args)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        return configuration_error(exc)
    configure_logging(settings)
    try:
        return args.run(args, settings)
    except Exception as exc:
        message = database_failure(exc, settings.database_url)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1
