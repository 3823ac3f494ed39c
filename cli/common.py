"""What every command group shares: the configuration error exit and the UTC time argument."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from config.settings import SettingsError


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


def _utc(text: str) -> pd.Timestamp:
    """The argument type of --start/--end: an ISO date or time, UTC when it names no zone.

    argparse names the type in its error ("invalid _utc value: 'x'"): keep the name."""
    from market.timeframes import as_utc  # pandas only when a time is given

    return as_utc(text)
