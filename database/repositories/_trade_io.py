"""Executed trades into the database in bulk: plain tuples straight to the driver.

SQLAlchemy's executemany of dict rows costs ~25 us a trade here (parameters built and each
value processed by its column type in Python); these paths hand the driver tuples built a
column at a time:

- SQLite: an executemany per chunk of multi-row INSERTs (``ROWS_PER_STATEMENT`` each); the
  values every row of the batch shares (account, source, run) bound once per statement;
  times as the UTC wall-time text SQLAlchemy's SQLite DateTime writes (``YYYY-MM-DD
  HH:MM:SS.ffffff``), so rows read back alike whichever way they were written.
- PostgreSQL: a text COPY (CSV) into the table; the JSON columns are their JSON text (jsonb
  parses it) and times are ISO with a UTC offset.

Both run on the session's connection inside its transaction (nothing is committed here) and
keep the table's checks and unique keys: database errors surface as SQLAlchemy's (a repeated
trade id: ``sqlalchemy.exc.IntegrityError``).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from database.repositories._candle_io import _dbapi_cursor
from database.repositories._columnar import wall_texts
from database.repositories._common import bulk_dialect
from database.repositories._signal_io import _one_value, _sqlite_rows

TRADE_COLUMNS = (
    "trade_id", "account_id", "strategy_id", "run_id", "symbol", "side", "price", "volume",
    "commission", "execution_time", "market_context", "labels", "pnl", "cumulative_pnl",
    "source", "order_id",
)  # fmt: skip
ROWS_PER_STATEMENT = 500  # at most 16 parameters a row: 8,000, far below SQLite's 32,766


def insert_trades(session: Session, columns: dict[str, Sequence[Any]]) -> None:
    """Insert the trades given as ``columns`` (every name of :data:`TRADE_COLUMNS`: lists of
    one value per trade; ``execution_time`` a datetime64[us] UTC array; the JSON columns
    already JSON text)."""
    connection = session.connection()
    if bulk_dialect(connection, "storing trades") == "postgresql":
        _copy_postgresql(connection, columns)
    else:
        _insert_sqlite(connection, columns)


def _insert_sqlite(connection: Any, columns: dict[str, Sequence[Any]]) -> None:
    values = dict(columns)
    values["execution_time"] = wall_texts(np.asarray(columns["execution_time"]))
    n = len(values["trade_id"])
    shared = [name for name in TRADE_COLUMNS if _one_value(values[name])]
    varying = [name for name in TRADE_COLUMNS if name not in shared]
    constants = tuple(values[name][0] for name in shared)
    rows = list(zip(*(values[name] for name in varying), strict=True))
    names = ", ".join([*shared, *varying])
    per = ROWS_PER_STATEMENT
    whole = n // per * per
    if whole:
        many = f"INSERT INTO trades ({names}) VALUES {_sqlite_rows(len(shared), len(varying), per)}"
        statements = [
            (*constants, *itertools.chain.from_iterable(rows[start : start + per]))
            for start in range(0, whole, per)
        ]
        connection.exec_driver_sql(many, statements)
    if whole < n:
        rest = (*constants, *itertools.chain.from_iterable(rows[whole:]))
        rows_sql = _sqlite_rows(len(shared), len(varying), n - whole)
        connection.exec_driver_sql(f"INSERT INTO trades ({names}) VALUES {rows_sql}", rest)


def _copy_postgresql(connection: Any, columns: dict[str, Sequence[Any]]) -> None:
    stamps = np.datetime_as_string(
        np.asarray(columns["execution_time"]).astype("datetime64[us]"), unit="us"
    )
    values = dict(columns)
    values["execution_time"] = [f"{t}+00:00" for t in stamps.tolist()]
    buffer = io.StringIO()
    # None is an empty field, which COPY reads as NULL (no stored text field is ever empty)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(zip(*(values[name] for name in TRADE_COLUMNS), strict=True))
    buffer.seek(0)
    statement = f"COPY trades ({', '.join(TRADE_COLUMNS)}) FROM STDIN (FORMAT csv)"
    with _dbapi_cursor(connection, statement) as cursor:
        cursor.copy_expert(statement, buffer, size=1 << 20)


__all__ = ["TRADE_COLUMNS", "insert_trades"]
