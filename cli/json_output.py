"""The commands' JSON output: values as JSON wants them, a frame's rows built column by column.

>>> print(dumps({"# Trades": 2, "trades": records(result.trades)}))

A value becomes: a finite float a float, NaN or an infinity ``null``, a numpy integer an int,
a timestamp its ``isoformat()`` (``"2020-01-01T02:31:00+00:00"``), a duration its ``str()``
(``"0 days 00:08:00"``), NaT ``null``. :func:`records` gives every row of a frame in those
terms, the same as converting each value on its own, but a whole column at a time: the
trades of a 1,000,000-bar backtest are tens of thousands of rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd

_NS = 1_000_000_000


def jsonable(value: object) -> object:
    """One value as JSON wants it (see the module docstring)."""
    if value is pd.NaT or value is None:
        return None
    if isinstance(value, pd.Timedelta):
        return str(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every row of ``frame`` as a dict of JSON-ready values, column by column."""
    columns = [str(name) for name in frame.columns]
    values = [column_values(frame.iloc[:, i]) for i in range(frame.shape[1])]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def column_values(column: pd.Series) -> list[Any]:
    """The column's values as :func:`jsonable` makes them, vectorised where the dtype allows."""
    dtype = column.dtype
    if dtype.kind == "f":
        array = column.to_numpy(np.float64)
        out = array.astype(object)
        out[~np.isfinite(array)] = None
        return out.tolist()
    if dtype.kind in "iub":
        return column.to_numpy().tolist()
    if isinstance(dtype, pd.CategoricalDtype):
        # each category converted once, then picked by code (-1: missing -> null)
        categories = [jsonable(value) for value in dtype.categories]
        codes = column.cat.codes.to_numpy()
        picked = np.array([*categories, None], dtype=object)[codes]
        return picked.tolist()
    if dtype.kind == "M":
        fast = _timestamps(column)
        if fast is not None:
            return fast
    if dtype.kind == "m":
        fast = _durations(column)
        if fast is not None:
            return fast
    return [jsonable(value) for value in column]


def _timestamps(column: pd.Series) -> list[str] | None:
    """isoformat() of whole-second UTC (or naive) stamps without NaT; None for the others."""
    tz = getattr(column.dtype, "tz", None)
    if tz is not None and str(tz) != "UTC":
        return None
    naive = column.dt.tz_convert(None) if tz is not None else column
    ns = naive.to_numpy("datetime64[ns]")
    if naive.isna().any() or (ns.view(np.int64) % _NS).any():
        return None
    text = np.datetime_as_string(ns.astype("datetime64[s]"), unit="s")
    return np.char.add(text, "+00:00" if tz is not None else "").tolist()


def _durations(column: pd.Series) -> list[str] | None:
    """str() of whole-second, non-negative durations without NaT; None for the others."""
    if column.isna().any():
        return None
    ns = column.to_numpy("timedelta64[ns]").view(np.int64)
    if (ns < 0).any() or (ns % _NS).any():
        return None
    days, rest = np.divmod(ns // _NS, 86_400)
    hours, rest = np.divmod(rest, 3_600)
    minutes, secs = np.divmod(rest, 60)
    rows = zip(days.tolist(), hours.tolist(), minutes.tolist(), secs.tolist(), strict=True)
    return ["%d days %02d:%02d:%02d" % row for row in rows]  # noqa: UP031 (2x an f-string)


def dumps(document: object) -> str:
    """``document`` as indented JSON text (orjson: NaN would be ``null``, never a NaN token)."""
    return dump_bytes(document).decode()


def dump_bytes(document: object) -> bytes:
    """:func:`dumps` as UTF-8 bytes (for a stream: no decoding of a large document)."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)
