"""The fills frame's rows read straight into Arrow (``_arrow_reads``), column-wise: no Python
object per value. PostgreSQL's through ``COPY (query) TO STDOUT`` as CSV (psycopg2's rows: a
tuple per row, a float, a text and an aware datetime per value, then regrouped by column);
a SQLite file's committed rows through the ADBC SQLite driver when it is installed.

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

from database.repositories._arrow_reads import copy_table, stored_times
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
    ``time`` as UTC datetimes; None when not on PostgreSQL through psycopg2, with no rows,
    or when the text is refused (a time after the year 9999, say)."""
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        if dialect.driver != "psycopg2":
            return None
        try:
            table = copy_table(connection, statement, _kinds(names, numbers, pa.timestamp("us")))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            log.debug("trades copied but not parsed (%s): read as rows", exc)
            return None
    else:
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
