"""What every command group shares: the configuration error exit, the UTC time argument and
the one-shot commands' imports without the cyclic garbage collector."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from config.settings import SettingsError


@contextmanager
def importing() -> Iterator[None]:
    """The imports of a one-shot command (backtest, sweep, import, metrics, paper replay):
    without the cyclic garbage collector while they run, which then never scans what they
    made (``gc.freeze``). Modules, classes and functions are never garbage, but importing
    pandas, SQLAlchemy and the app makes hundreds of thousands of them and the collector's
    full passes over them cost a fresh process about 0.1 s of its 1 s of imports. What the
    command makes afterwards is collected as usual. Servers (serve, runner) do not use it.

    >>> with importing():
    ...     from services.backtests import open_context
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def configuration_error(exc: SettingsError) -> int:
    """Say what configuration StratLens cannot use, on stderr; the exit code (2)."""
    print(f"configuration error: {exc}", file=sys.stderr)
    return 2


def database_failure(exc: BaseException, database_url: str) -> str | None:
    """One line for a database that cannot be reached or used (refused connection, unknown
    database, bad port, unopenable or read-only SQLite file), naming the URL without its
    password; None when ``exc`` is not such a failure (it then propagates as a bug)."""
    if not type(exc).__module__.startswith("sqlalchemy"):  # no SQLAlchemy import on the way
        return None
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
    from sqlalchemy.exc import ProgrammingError as SQLProgrammingError

    if isinstance(exc, OperationalError | SQLProgrammingError):
        lines = str(getattr(exc, "orig", exc)).strip().splitlines()
        reason = " ".join(line.strip() for line in lines if line.strip())
    elif isinstance(exc, DBAPIError):
        return None  # an integrity or data error is the command's to report
    elif isinstance(exc, ArgumentError | NoSuchModuleError):
        reason = str(exc).splitlines()[0]
    else:
        return None
    return f"database error ({_hide_password(database_url)}): {reason}"


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def bounded(kind: type[int] | type[float], low: float, high: float, unit: str = ""):
    """An argparse type: ``kind`` in [low, high] (finite), else a one-line error naming both."""
    import argparse
    import math

    def parse(text: str) -> int | float:
        wanted = f"{'an integer' if kind is int else 'a number'} from {low:g} to {high:g}{unit}"
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: expected {wanted}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def _utc(text: str) -> pd.Timestamp:
    """The argument type of --start/--end: an ISO date or time, UTC when it names no zone.

    argparse names the type in its error ("invalid _utc value: 'x'"): keep the name."""
    from market.timeframes import as_utc  # pandas only when a time is given

    return as_utc(text)
