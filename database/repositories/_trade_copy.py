"""The fills frame's rows read from PostgreSQL as CSV (``COPY (query) TO STDOUT``) parsed by
Arrow, column-wise: no Python object per value (psycopg2's rows: a tuple per row, a float,
a text and an aware datetime per value, then regrouped by column).

The query is the row read's own (TradeRepository._read), the execution time taken as integer
microseconds since the epoch (exact, whatever the session's time zone or date style). Floats
are written with ``extra_float_digits`` 3 (17 significant digits: the same double back, as
psycopg2 reads it), set for the copy only. A NULL is an unquoted empty field, an empty text a
quoted one: read back as missing and as the empty text. A copy whose text the parse refuses
gives None: the caller reads the rows as before (an error of the copy itself
is raised, as the row read's would be).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Select
from sqlalchemy.orm import Session

from database.repositories._trade_cache import STRING_TYPES

log = logging.getLogger(__name__)


def copied_rows(
    session: Session, statement: Select, names: Sequence[str], numbers: set[str]
) -> pd.DataFrame | None:
    """The rows of ``statement`` (columns ``names``: ``numbers`` floats, ``time`` integer
    microseconds, ``id`` an integer, the rest texts) as a frame, texts in the default text
    dtype and ``time`` as UTC datetimes; None when not on PostgreSQL through psycopg2, with
    no rows, or when its parse fails (an error of the copy itself is raised, as the row read's
    would be: the transaction is aborted)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg2":
        return None
    compiled = statement.compile(dialect=connection.dialect)
    raw = connection.connection.dbapi_connection
    if raw.server_version < 140000:  # type: ignore[union-attr]  # extract(): a float before 14
        return None
    buffer = io.BytesIO()
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        query = cursor.mogrify(str(compiled), compiled.params)
        cursor.execute("SELECT current_setting('extra_float_digits')")
        (digits,) = cursor.fetchone()
        cursor.execute("SELECT set_config('extra_float_digits', '3', true)")
        try:
            cursor.copy_expert(b"COPY (" + query + b") TO STDOUT WITH (FORMAT csv)", buffer)
        finally:
            cursor.execute("SELECT set_config('extra_float_digits', %s, true)", (digits,))
    if not buffer.getbuffer().nbytes:
        return None
    buffer.seek(0)
    kinds = {name: _kind(name, numbers) for name in names}
    try:
        table = pacsv.read_csv(
            buffer,
            read_options=pacsv.ReadOptions(column_names=list(names)),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=kinds,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        log.debug("trades copied but not parsed (%s): read as rows", exc)
        return None
    frame = table.to_pandas(types_mapper=STRING_TYPES.get)
    micros = frame["time"].to_numpy()
    frame["time"] = pd.to_datetime(micros, unit="us", utc=True).as_unit("ns")
    return frame


def _kind(name: str, numbers: set[str]) -> pa.DataType:
    if name in numbers:
        return pa.float64()
    if name in ("time", "id"):
        return pa.int64()
    return pa.large_string()


__all__ = ["copied_rows"]
