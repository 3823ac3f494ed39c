"""The fills frame's rows read straight into Arrow (``_arrow_reads``), column-wise: no Python
object per value kept. PostgreSQL's through ``COPY (query) TO STDOUT`` as CSV (psycopg2's
rows: a tuple per row, a float, a text and an aware datetime per value, then regrouped by
column); SQLite's through the session's ``sqlite3`` rows, regrouped into Arrow columns a
chunk of rows at a time (``rows_table``).

The query is the row read's own (TradeRepository._read) but for the account (every row's
own: not read) and, on PostgreSQL, the execution time as its UTC wall time (``AT TIME
ZONE 'UTC'``, written in the ISO style for the copy: ~0.2 s less of the server's CPU per
1,000,000 rows than epoch microseconds by ``extract``, whose numeric arithmetic is slow)
and the labels' jsonb as it is (its text; the cast cost ~0.05 s more); SQLite's stored
text. None when they cannot be read so: the caller reads the
rows as before (an error of the database itself is raised, as the row read's would be).

Committed rows (a session that has written nothing: the trade cache's reads) spanning
HALVES_FROM ids or more are read in two halves of their ids at once, on both cores:
PostgreSQL's through two connections of the engine's own in one snapshot (the server's COPY
is the longest part of its read), SQLite's lower half by a child process
(``_sqlite_columns.Child``: Python's ``sqlite3`` holds the GIL making its values).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import NullPool, QueuePool, Select, text
from sqlalchemy.orm import Session

from database.repositories._arrow_reads import copy_table, rows_table, stored_times
from database.repositories._sqlite_columns import Child
from database.repositories._trade_cache import STRING_TYPES

log = logging.getLogger(__name__)


HALVES_FROM = 200_000  # a copy of committed rows spanning this many ids is made in two


@dataclass(frozen=True)
class Halves:
    """How to copy an account's committed rows in two halves: ``bounds``, the lowest and
    the highest row id of the rows; ``rows(after, upto)``, the rows' statement for row ids
    in ``(after, upto]`` (None: no bound); ``after``, the rows' own lower bound."""

    bounds: Select
    rows: Callable[[int | None, int | None], Select]
    after: int | None


def copied_rows(
    session: Session,
    statement: Select,
    names: Sequence[str],
    numbers: set[str],
    halves: Halves | None = None,
) -> pd.DataFrame | None:
    """The rows of ``statement`` (columns ``names``: ``numbers`` floats, ``time`` the UTC
    wall time on PostgreSQL and the stored text on SQLite, ``id`` an integer, the rest
    texts, the JSON ones as their text) as a frame, texts in the default text dtype and
    ``time`` as UTC datetimes; None when on neither PostgreSQL through psycopg2 nor SQLite,
    with no rows, or when a value is refused (a time after the year 9999 in the copy's
    text, a value SQLite holds in a column of another kind). ``halves``: the rows are
    committed ones (the session has written none), read in two halves at once when they
    span enough ids (:func:`_copied_in_halves`, :func:`_read_in_halves`)."""
    connection = session.connection()
    dialect = connection.dialect
    try:
        if dialect.name == "postgresql" and dialect.driver == "psycopg2":
            kinds = _kinds(names, numbers, pa.timestamp("us"))
            table = None if halves is None else _copied_in_halves(session, halves, kinds)
            if table is None:
                table = copy_table(connection, statement, kinds)
        elif dialect.name == "sqlite":
            kinds = _kinds(names, numbers, pa.large_string())
            table = None if halves is None else _read_in_halves(session, halves, kinds)
            if table is None:
                table = rows_table(connection, statement, kinds)
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        log.debug("trades not read as columns (%s): read as rows", exc)
        return None
    if table is None or not table.num_rows:
        return None
    frame = table.to_pandas(types_mapper=STRING_TYPES.get)
    times = table.column("time").combine_chunks()
    if pa.types.is_timestamp(times.type):  # PostgreSQL's UTC wall time
        parsed = pd.DatetimeIndex(frame["time"]).tz_localize("UTC")
    else:  # SQLite's stored text
        parsed = stored_times(times)
    frame["time"] = pd.Series(parsed.as_unit("ns"), index=frame.index)
    return frame


def _copied_in_halves(
    session: Session, halves: Halves, kinds: dict[str, pa.DataType]
) -> pa.Table | None:
    """The rows copied in two halves of their ids at once, through two connections of the
    session's engine in one snapshot (REPEATABLE READ: the first exports it, the second
    imports it): the server's two processes make them on two cores (it spends ~1.2 s of CPU
    on 1,000,000 trades, the longest part of the read). None when they span fewer than
    HALVES_FROM ids or the pool cannot lend two connections of their own."""
    engine = session.get_bind()
    if not isinstance(engine.pool, QueuePool | NullPool):  # a static pool shares one
        return None
    with engine.connect() as first, engine.connect() as second:
        for connection in (first, second):
            connection.execution_options(isolation_level="REPEATABLE READ")
        with first.begin():
            snapshot = first.scalar(text("SELECT pg_export_snapshot()"))
            middle = _middle(first.execute(halves.bounds).one())
            if middle is None or not _SNAPSHOT.fullmatch(snapshot):
                return None
            # the executor left first: the lower half's thread done before its transaction
            with (
                second.begin(),
                ThreadPoolExecutor(1, thread_name_prefix="copy-lower-half") as copying,
            ):
                second.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                lower = copying.submit(copy_table, second, halves.rows(halves.after, middle),
                                       kinds)  # fmt: skip
                upper = copy_table(first, halves.rows(middle, None), kinds)
                below = lower.result()
    return pa.concat_tables([below, upper])


def _read_in_halves(
    session: Session, halves: Halves, kinds: dict[str, pa.DataType]
) -> pa.Table | None:
    """SQLite's rows read in two halves of their ids at once: the lower by a child process
    (``_sqlite_columns.Child``, the file opened read only), the upper by the session; the
    child's half read here should it fail. The session has written nothing (``committed``)
    and rows up to a committed row's id never change (none is deleted, a new one takes a
    higher id): the child reads what the session would. None when they span fewer than
    HALVES_FROM ids or the database is not a file."""
    connection = session.connection()
    path = connection.engine.url.database
    if not path or path.startswith("file:") or not Path(path).is_file():
        return None
    middle = _middle(connection.execute(halves.bounds).one())
    if middle is None:
        return None
    lower = halves.rows(halves.after, middle)
    compiled = lower.compile(dialect=connection.dialect,
                             compile_kwargs={"render_postcompile": True})  # fmt: skip
    # the values the DBAPI is given (SQLAlchemy's processors: a JSON path made '$."key"')
    processors = getattr(compiled, "_bind_processors", {})
    params = [processors[name](compiled.params[name]) if name in processors
              else compiled.params[name] for name in compiled.positiontup or ()]  # fmt: skip
    if not all(isinstance(value, str | int | float) for value in params):
        return None
    try:
        child = Child(str(Path(path).resolve()), str(compiled), params, list(kinds.values()))
    except OSError as exc:  # no process to start: the session reads every row
        log.warning("trades not read in halves: %s", exc)
        return None
    try:
        upper = rows_table(connection, halves.rows(middle, None), kinds)
        columns = child.columns()
    finally:
        child.close()
    if columns is None:
        log.warning("trades' lower half not read by a child process (%s): read here",
                    child.failure.strip()[-500:])  # fmt: skip
        below = rows_table(connection, lower, kinds)
    else:
        below = pa.table(dict(zip(kinds, columns, strict=True)))
    return pa.concat_tables([below, upper])


def _middle(bounds: Any) -> int | None:
    """The row id splitting rows of ids ``bounds`` (the lowest, the highest) in two halves;
    None when they span fewer than HALVES_FROM ids."""
    low, high = bounds
    return None if low is None or high - low < HALVES_FROM else (low + high) // 2


_SNAPSHOT = re.compile(r"[0-9A-Fa-f-]+")  # pg_export_snapshot's: 00000003-0000001B-1


def _kinds(names: Sequence[str], numbers: set[str], time: pa.DataType) -> dict[str, pa.DataType]:
    return {
        name: pa.float64() if name in numbers else time if name == "time"
        else pa.int64() if name == "id" else pa.large_string()
        for name in names
    }  # fmt: skip


__all__ = ["HALVES_FROM", "Halves", "copied_rows"]
