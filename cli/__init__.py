"""The command line: main(argv) builds the parser from each command group and dispatches.

One module per command group; each has ``register(commands)``, which adds its sub-commands
and sets ``run`` on each: ``run(args, settings) -> exit code`` (or ``run(args)`` where it sets
``needs_settings=False``: such a command reads no configuration). A group imports only
argparse and config at module level, its handlers the rest, so ``app.py --help`` stays light.

    serve.py       serve (the default command)
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
import logging
import sys
from typing import NoReturn

from cli import backtest, data, execution, indicators, paper, serve, strategies, tokens, tracking
from cli.common import configuration_error, database_failure
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
    _configure_logging(settings)
    try:
        return args.run(args, settings)
    except Exception as exc:
        message = database_failure(exc, settings.database_url)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1


MAX_LOG_LINE = 2_000
"""Longest line a log record prints: a message quoting a 50 MB request body must not become a
50 MB log line."""


class BoundedFormatter(logging.Formatter):
    """Each line of a formatted record (tracebacks included) cut to MAX_LOG_LINE characters."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) <= MAX_LOG_LINE:
            return text
        return "\n".join(
            line
            if len(line) <= MAX_LOG_LINE
            else f"{line[:MAX_LOG_LINE]}... [{len(line) - MAX_LOG_LINE:,} characters cut]"
            for line in text.split("\n")
        )


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if not root.handlers:  # as basicConfig: a host that set up logging keeps its own
        handler = logging.StreamHandler()
        handler.setFormatter(BoundedFormatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(settings.log_level_number)
    if settings.log_level != "DEBUG":  # one line per live tick, per migration step: noise
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
