"""Reading a bot's SQLite database without touching it: a read-only connection (URI
``mode=ro``, the file is never written), one transaction so a bot writing meanwhile cannot
tear a trade from its orders, and the checks that the tables hold the columns we read.

Values come back as SQLite stores them (SQLAlchemy's types store a datetime as text, a boolean
as 0/1); the helpers below turn each into a Python value or a problem naming the table, the
row's primary key and the column.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from tracking.importers.result import ProblemLog, finite


@contextmanager
def read_only(path: Path, log: ProblemLog) -> Iterator[sqlite3.Connection]:
    """A read-only connection to ``path`` inside one read transaction; rejects a file that is
    missing or is not a SQLite database."""
    if not path.is_file():
        raise log.fail(f"no such file ({path})")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise log.fail(f"cannot open as a SQLite database: {exc}") from None
    try:
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise log.fail(f"not a SQLite database ({exc})") from None
        conn.row_factory = sqlite3.Row
        yield conn
    finally:
        conn.close()  # the transaction only read: closing ends it


def table_columns(conn: sqlite3.Connection, table: str) -> set[str] | None:
    """The column names of ``table`` (case as declared), None when there is no such table."""
    rows = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    return {row["name"] for row in rows} if rows else None


def select_all(
    conn: sqlite3.Connection,
    table: str,
    required: Sequence[str],
    log: ProblemLog,
    *,
    what: str,
    optional: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[sqlite3.Row]:
    """Every row of ``table`` with the ``required`` columns (a missing one is a problem naming
    the table and column, and the file is rejected), the ``optional`` ones (NULL when the table
    lacks them) and the ``extra`` expressions (e.g. ``rowid``). ``what`` names the expected
    source in the message, e.g. "a freqtrade tradesv3.sqlite"."""
    columns = table_columns(conn, table)
    if columns is None:
        raise log.fail(f"no table {table!r}: is this {what} database?")
    missing = [name for name in required if name not in columns]
    for name in missing:
        log.add(f"table {table}", name, f"missing: expected the table of {what} database")
    log.raise_if_any()
    picked = [f'"{name}"' for name in required]
    picked += [f'"{name}"' if name in columns else f'NULL AS "{name}"' for name in optional]
    return conn.execute(f'SELECT {", ".join([*extra, *picked])} FROM "{table}"').fetchall()


def number(value: object) -> float | None:
    """A stored number as a finite float (None for NULL); ValueError for anything else."""
    return None if value is None else finite(value)


def flag(value: object) -> bool:
    """A SQLAlchemy Boolean as SQLite stores it (0 or 1)."""
    if value in (0, 1):
        return bool(value)
    raise ValueError(f"{value!r} is not a boolean (expected 0 or 1)")


def naive_utc(value: object) -> datetime | None:
    """A SQLAlchemy DateTime as SQLite stores it ('2024-01-02 10:00:00.000000'), naive = UTC;
    None for NULL; ValueError for anything else."""
    if value is None:
        return None
    wrong = f"{value!r} is not a date (expected text like 2024-01-02 10:00:00)"
    if not isinstance(value, str):
        raise ValueError(wrong)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(wrong) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
