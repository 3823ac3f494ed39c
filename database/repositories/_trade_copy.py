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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
from sqlalchemy import Select
from sqlalchemy.orm import Session

from database.repositories._arrow_reads import copy_table, rows_table, stored_times
from database.repositories._trade_cache import STRING_TYPES

log = logging.getLogger(__name__)


def copied_rows(
    session: Session,
    statement: Select,
    names: Sequence[str],
    numbers: set[str],
) -> pd.DataFrame | None:
    """The rows of ``statement`` (columns ``names``: ``numbers`` floats, ``time`` the UTC
    wall time on PostgreSQL and the stored text on SQLite, ``id`` an integer, the rest
    texts, the JSON ones as their text) as a frame, texts in the default text dtype and
    ``time`` as UTC datetimes; None when on neither PostgreSQL through psycopg2 nor SQLite,
    with no rows, or when a value is refused (a time after the year 9999 in the copy's
    text, a value SQLite holds in a column of another kind)."""
    connection = session.connection()
    dialect = connection.dialect
    try:
        if dialect.name == "postgresql" and dialect.driver == "psycopg2":
            table = copy_table(connection, statement, _kinds(names, numbers, pa.timestamp("us")))
        elif dialect.name == "sqlite":
            table = rows_table(connection, statement, _kinds(names, numbers, pa.large_string()))
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


def _kinds(names: Sequence[str], numbers: set[str], time: pa.DataType) -> dict[str, pa.DataType]:
    return {
        name: pa.float64() if name in numbers else time if name == "time"
        else pa.int64() if name == "id" else pa.large_string()
        for name in names
    }  # fmt: skip


__all__ = ["copied_rows"]
