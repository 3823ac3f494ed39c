"""Read an equity or returns series from CSV, for metrics of results made by other tools.

>>> kind, series = read_series_csv(Path("equity.csv"))   # ("equity", Series) or ("returns", ...)

The file has a timestamp column (timestamp, date, datetime, time or ts: dates and times, or
epoch seconds or milliseconds as ``app.py import`` reads them) and one value column:
equity (equity, value, nav, balance, portfolio) or returns (returns, return, ret; fractions,
0.01 = 1 %). Every defect is reported with the file, the line and the column, and nothing is
computed from a file that has one.

A file is read by pyarrow's columnar CSV reader (a million rows in about 0.2 s); the pandas path
that names each defect (``read_series_csv_precise``, ten seconds on a million rows) reads it
again only when that finds anything it does not accept as is: a bad or missing value, a time
that is not ISO 8601 or goes back, a blank, mixed time zones, an odd header. The fast path
accepts only what the precise one reads to the same values, so both give the same series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pv

from market.timeframes import from_epoch_ms
from market.validation import is_epoch_text, parse_timestamps

TIME_NAMES = ("timestamp", "date", "datetime", "time", "ts")
EQUITY_NAMES = ("equity", "value", "nav", "balance", "portfolio")
RETURN_NAMES = ("returns", "return", "ret")
# a value must be finite and above its kind's bound
_BOUND = {"equity": 0.0, "returns": -1.0}
_RULE = {"equity": "a positive number", "returns": "a number above -1 (a fraction: 0.01 = 1 %)"}


class SeriesFileError(ValueError):
    """A series file that cannot be used; ``problems`` lists every defect found."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path.name}: {len(problems)} problem(s)\n{listed}{more}")


def read_series_csv(path: Path) -> tuple[str, pd.Series]:
    """("equity" | "returns", a float Series on a UTC DatetimeIndex, oldest first)."""
    return _read_fast(path) or read_series_csv_precise(path)


def _columns(names: list[str]) -> tuple[str | None, str | None, str | None]:
    """(time column, value column, "equity" | "returns") among a header's names."""
    columns = {c.strip().lower(): c for c in names}
    time_col = next((columns[n] for n in TIME_NAMES if n in columns), None)
    for names_of_kind, kind in ((EQUITY_NAMES, "equity"), (RETURN_NAMES, "returns")):
        found = next((columns[n] for n in names_of_kind if n in columns), None)
        if found is not None:
            return time_col, found, kind
    return time_col, None, None


def _read_fast(path: Path) -> tuple[str, pd.Series] | None:
    """The series through pyarrow, or None when the file needs the precise path (any defect,
    or anything the two might read differently).

    Times are parsed by the reader (in parallel) as ISO 8601, all with an offset or all
    without (taken as UTC), as the first block's inferred type says. Arrow refuses what pandas
    would read otherwise (spaces, other formats, more than 6 decimals: pandas nanoseconds).
    """
    try:
        with pv.open_csv(path, read_options=pv.ReadOptions(block_size=1 << 16)) as reader:
            schema = reader.schema
        time_col, value_col, kind = _columns(schema.names)
        if time_col is None or value_col is None or len(set(schema.names)) != len(schema.names):
            return None
        zone = getattr(schema.field(time_col).type, "tz", None) and "UTC"
        types = {time_col: pa.timestamp("us", zone), value_col: pa.float64()}
        table = pv.read_csv(path, convert_options=pv.ConvertOptions(column_types=types))
    except (pa.ArrowException, OSError, ValueError):
        return None
    if table.num_rows == 0 or table[time_col].null_count or table[value_col].null_count:
        return None
    numbers = table[value_col].to_numpy()
    stamps = table[time_col].to_numpy().astype("datetime64[us]")
    ticks = stamps.view("int64")
    if not _valid(numbers, kind).all() or not (ticks[1:] > ticks[:-1]).all():
        return None
    index = pd.DatetimeIndex(stamps, name="timestamp").tz_localize("UTC")
    return kind, pd.Series(numbers.copy(), index=index, name=kind)  # type: ignore[return-value]


def _valid(values: np.ndarray, kind: str) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values > _BOUND[kind])


def _times(text: pd.Series) -> pd.Series:
    """Dates and times in any format pandas reads, or epoch seconds/milliseconds as ``app.py
    import`` reads them (when the first value is a number: the whole column is epoch); NaT
    where a value is neither."""
    stripped = text.str.strip()
    first = stripped[stripped.ne("")].head(1)
    if len(first) and is_epoch_text(first.iloc[0]):
        ms, ok = parse_timestamps(stripped)
        stamps = pd.Series(from_epoch_ms(ms), index=text.index)
        return stamps.where(ok, pd.NaT)
    return pd.to_datetime(stripped, errors="coerce", utc=True, format="mixed")


def read_series_csv_precise(path: Path) -> tuple[str, pd.Series]:
    """``read_series_csv`` through pandas, naming every defect by line and column (slow: a
    Python object per cell)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SeriesFileError(path, [f"cannot be read as CSV: {exc}"]) from None
    time_col, value_col, kind = _columns(list(raw.columns))
    missing = []
    if time_col is None:
        missing.append(f"no timestamp column: expected one of {', '.join(TIME_NAMES)}")
    if value_col is None:
        missing.append(
            "no value column: expected equity (" + ", ".join(EQUITY_NAMES) + ") or returns ("
            + ", ".join(RETURN_NAMES) + ")"
        )  # fmt: skip
    if missing:
        raise SeriesFileError(path, missing)
    if raw.empty:
        raise SeriesFileError(path, ["no data rows"])

    lines = np.arange(len(raw)) + 2  # header is line 1
    stamps = _times(raw[time_col])
    values = pd.to_numeric(raw[value_col].str.strip(), errors="coerce").to_numpy(dtype=float)
    problems = [
        f"line {line}, column {time_col!r}: {text!r} is not a date or time"
        for line, text, bad in zip(lines, raw[time_col], stamps.isna(), strict=True)
        if bad
    ]
    bad_value = ~_valid(values, kind)
    problems += [
        f"line {line}, column {value_col!r}: {text!r} is invalid: expected {_RULE[kind]}"
        for line, text, bad in zip(lines, raw[value_col], bad_value, strict=True)
        if bad
    ]
    order = stamps.to_numpy()
    valid = ~stamps.isna().to_numpy()
    backwards = np.flatnonzero(valid[1:] & valid[:-1] & (order[1:] <= order[:-1])) + 1
    problems += [
        f"line {lines[i]}, column {time_col!r}: {raw[time_col].iloc[i]!r} "
        f"{'repeats' if order[i] == order[i - 1] else 'goes back from'} line {lines[i - 1]}'s "
        "time: timestamps must increase"
        for i in backwards
    ]
    if problems:
        problems.sort(key=lambda text: int(text.split(",")[0].removeprefix("line ")))
        raise SeriesFileError(path, problems)
    series = pd.Series(values, index=pd.DatetimeIndex(stamps, name="timestamp"), name=kind)
    return kind, series
