"""Candle validation: every problem in a table of candles, each naming source, row and column.

>>> raw = pd.DataFrame({"ts": ["2024-01-02", "2024-01-03"], "open": [96.0, 1.0],
...                     "high": [95.1, 2.0], "low": [94.0, 0.5], "close": [95.0, 1.5],
...                     "volume": [10, 10]})
>>> [str(e) for e in validate_candles(raw, "sp500.csv", row_numbers=[14, 15], row_label="line")]
["sp500.csv, line 14, column 'high': 95.1 is below max(open, close)=96.0"]

Accepted input: a candle frame (DatetimeIndex) or a raw table whose columns are matched
case-insensitively: timestamp|ts|time|date|datetime (or a separate ``date`` and ``time``
column, joined with a space), open, high, low, close, volume. Other columns are ignored.

Timestamps (see :func:`parse_timestamps`):
- datetime values: naive ones are taken as UTC, tz-aware ones are converted to UTC;
- numbers are epoch times whose unit is decided once per column from the median magnitude:
  below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds
  (1e11 s is the year 5138 and 1e11 ms is March 1973, so real data is never ambiguous);
- strings: ISO 8601 (``2024-01-31``, ``2024-01-31 09:30``, ``2024-01-31T09:30:00+02:00``)
  or US month/day/year (``1/31/2024``, optionally followed by ``HH:MM`` or ``HH:MM:SS``),
  chosen by the first non-blank value (a ``/`` means month/day/year); when that first value
  is a number, the whole column is read as epoch numbers.
Times are kept to the millisecond (finer digits are dropped).

Checks: required columns; timestamps parseable; prices present, finite and positive;
high >= max(open, close); low <= min(open, close); high >= low; volume present, finite and
not negative (zero is fine); no duplicate timestamps; timestamps never go backwards.

The ordering checks look at the timestamp column alone (every row with a parseable
timestamp counts, whatever its prices): a row whose timestamp equals an earlier one is a
duplicate (the first occurrence is the original); a row earlier than the latest timestamp
seen so far is out of order, and its message names the row holding that latest timestamp,
so one fat-fingered date that makes every later row "go backwards" is easy to spot.
Rows without any error are therefore strictly increasing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from market.candles import CANDLE_COLUMNS, PRICE_COLUMNS
from market.timeframes import Timeframe, from_epoch_ms, utc_index

TIMESTAMP_ALIASES = ("timestamp", "ts", "time", "date", "datetime")
RowLabel = Literal["line", "row"]

_MAX_ABS_MS = 9_000_000_000_000_000  # datetime64[us] holds about +-292,000 years; stay inside
VALUE_LIMIT = 1e308
"""Prices and volumes must stay below this (the database's CHECK rules say so: a value this
large is an overflow, not a price)."""
# every later computation works on pandas' nanosecond timestamps: 1677-09-21 .. 2262-04-11
FIRST_MS = int(pd.Timestamp.min.ceil("ms").value // 1_000_000)
LAST_MS = int(pd.Timestamp.max.floor("ms").value // 1_000_000)
_EXPECTED_TS = (
    "expected ISO 8601 like 2024-01-31T09:30:00Z, month/day/year like 1/31/2024, "
    "or epoch seconds/milliseconds"
)
_US_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")
_NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True, slots=True)
class CandleError:
    """One problem in one cell (or a missing column, when ``row`` is None).

    ``row`` is a 1-based file line (header = line 1) when ``row_label`` is "line", else the
    1-based data row. ``value`` is the offending value as read.
    """

    source: str
    row: int | None
    column: str | None
    value: object
    message: str
    row_label: RowLabel = "row"

    @property
    def location(self) -> str:
        parts = [self.source]
        if self.row is not None:
            parts.append(f"{self.row_label} {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class CandleValidationError(ValueError):
    """Candles failed validation; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[CandleError], *, shown: int = 20) -> None:
        self.errors = list(errors)
        lines = [str(e) for e in self.errors[:shown]]
        if len(self.errors) > shown:
            lines.append(f"... and {len(self.errors) - shown} more")
        count = len(self.errors)
        super().__init__(f"{count} candle error{'s' if count != 1 else ''}:\n" + "\n".join(lines))


@dataclass
class CheckedCandles:
    """Result of :func:`check_candles`: parsed values, per-row verdict and all errors.

    ``columns_ok`` is False when required columns are missing or ambiguous; then there are no
    rows and ``errors`` explains why.
    """

    source: str
    columns_ok: bool
    ts_ms: np.ndarray
    ts_ok: np.ndarray
    values: dict[str, np.ndarray]
    rejected: np.ndarray
    errors: list[CandleError] = field(default_factory=list)

    def valid_frame(self) -> pd.DataFrame:
        """The rows without errors as a candle frame."""
        keep = None if not self.rejected.any() else ~self.rejected
        # one float64 block, each column copied into it once (selected if rows are left out)
        block = np.empty((len(CANDLE_COLUMNS), len(self.ts_ms) - int(self.rejected.sum())))
        for row, name in enumerate(CANDLE_COLUMNS):
            block[row] = self.values[name] if keep is None else self.values[name][keep]
        ts = self.ts_ms if keep is None else self.ts_ms[keep]
        return pd.DataFrame(
            block.T, index=from_epoch_ms(ts), columns=list(CANDLE_COLUMNS), copy=False
        )


def validate_candles(
    data: pd.DataFrame,
    source: str,
    *,
    row_numbers: Sequence[int] | np.ndarray | None = None,
    row_label: RowLabel = "row",
) -> list[CandleError]:
    """Every problem in ``data`` (empty list when valid), ordered by row, then by check."""
    return check_candles(data, source, row_numbers=row_numbers, row_label=row_label).errors


def ensure_valid_candles(data: pd.DataFrame, source: str) -> None:
    """Raise CandleValidationError listing every problem in ``data``, if any."""
    errors = validate_candles(data, source)
    if errors:
        raise CandleValidationError(errors)


def resolve_columns(
    columns: Sequence[object], source: str
) -> tuple[dict[str, tuple[str, ...]], list[CandleError]]:
    """Map canonical names (ts, open, ...) to the actual column names, case-insensitively.

    ``ts`` maps to one column, or to a (date, time) pair when the table splits them.
    """
    by_name: dict[str, list[str]] = {}
    for col in columns:
        by_name.setdefault(str(col).strip().lower(), []).append(str(col))
    mapping: dict[str, tuple[str, ...]] = {}
    errors: list[CandleError] = []
    found = ", ".join(repr(str(c)) for c in columns) or "none"

    ts_hits = [name for alias in TIMESTAMP_ALIASES for name in by_name.get(alias, [])]
    if len(ts_hits) == 1:
        mapping["ts"] = (ts_hits[0],)
    elif set(by_name) & set(TIMESTAMP_ALIASES) == {"date", "time"} and len(ts_hits) == 2:
        mapping["ts"] = (by_name["date"][0], by_name["time"][0])
    elif not ts_hits:
        errors.append(
            CandleError(
                source,
                None,
                "timestamp",
                None,
                f"missing timestamp column (one of {', '.join(TIMESTAMP_ALIASES)}); "
                f"columns found: {found}",
            )
        )
    else:
        names = ", ".join(repr(n) for n in ts_hits)
        errors.append(
            CandleError(
                source, None, "timestamp", None, f"ambiguous timestamp columns {names}: keep one"
            )
        )
    for canonical in CANDLE_COLUMNS:
        hits = by_name.get(canonical, [])
        if len(hits) == 1:
            mapping[canonical] = (hits[0],)
        elif not hits:
            errors.append(
                CandleError(
                    source,
                    None,
                    canonical,
                    None,
                    f"missing required column; columns found: {found}",
                )
            )
        else:
            names = ", ".join(repr(n) for n in hits)
            errors.append(
                CandleError(source, None, canonical, None, f"ambiguous columns {names}: keep one")
            )
    return mapping, errors


def is_epoch_text(text: str) -> bool:
    """Whether a timestamp cell is a number: the rule by which a column's first value makes
    the whole column epoch seconds/milliseconds (:func:`parse_timestamps`)."""
    return bool(_NUMERIC.match(text))


def parse_timestamps(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Epoch milliseconds (int64) and a parsed-ok mask for a column of timestamps.

    >>> ms, ok = parse_timestamps(pd.Series(["1/4/1999", "1999-01-05T00:00:00Z", "x"]))
    >>> ok.tolist()
    [True, False, False]

    (The second value fails because the first one chose the month/day/year format.)
    """
    series = pd.Series(values).reset_index(drop=True)
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        return _datetimes_to_ms(series)
    if pd.api.types.is_bool_dtype(series):
        return np.zeros(len(series), dtype=np.int64), np.zeros(len(series), dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        return _epoch_to_ms(series.to_numpy())

    text = series.astype("str").str.strip()
    present = (series.notna() & text.ne("")).to_numpy(dtype=bool)
    if not present.any():
        return np.zeros(len(series), dtype=np.int64), np.zeros(len(series), dtype=bool)
    first = text[present].iloc[0]
    if is_epoch_text(first):
        numeric = pd.to_numeric(text.where(present, None), errors="coerce")
        return _epoch_to_ms(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    if "/" in first:
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
        for fmt in _US_FORMATS:
            todo = parsed.isna() & pd.Series(present, index=text.index)
            if not todo.any():
                break
            parsed[todo] = pd.to_datetime(text[todo], format=fmt, utc=True, errors="coerce")
    else:
        parsed = pd.to_datetime(
            text.where(present, None), format="ISO8601", utc=True, errors="coerce"
        )
    return _datetimes_to_ms(parsed)


def check_candles(
    data: pd.DataFrame,
    source: str,
    *,
    row_numbers: Sequence[int] | np.ndarray | None = None,
    row_label: RowLabel = "row",
    timeframe: Timeframe | str | None = None,
) -> CheckedCandles:
    """Parse and check a raw table of candles; see the module docstring for the rules.

    ``row_numbers[i]`` is how row ``i`` is reported (default: ``i + 1``); ``row_label`` names
    what they count ("line" for text files). ``timeframe``: every timestamp must be the open
    time of a bar of it (1m bars imported as 1d are refused, row by row).
    """
    tf = None if timeframe is None else Timeframe.parse(timeframe)
    table = _with_timestamp_column(data)
    mapping, column_errors = resolve_columns(list(table.columns), source)
    n = len(table)
    if column_errors:
        empty = np.zeros(0, dtype=np.int64)
        return CheckedCandles(
            source,
            False,
            empty,
            np.zeros(0, dtype=bool),
            {c: np.zeros(0) for c in CANDLE_COLUMNS},
            np.zeros(0, dtype=bool),
            [
                CandleError(e.source, e.row, e.column, e.value, e.message, row_label)
                for e in column_errors
            ],
        )

    rows = np.arange(1, n + 1) if row_numbers is None else np.asarray(row_numbers, dtype=np.int64)
    if len(rows) != n:
        raise ValueError(f"row_numbers has {len(rows)} entries for {n} rows")
    report = _Report(source, rows, row_label)

    ts_cols = mapping["ts"]
    ts_raw = table[ts_cols[0]]
    if len(ts_cols) == 2:
        date, time = (table[c].astype("str").str.strip() for c in ts_cols)
        ts_raw = (date + " " + time).where(table[ts_cols[0]].notna() & table[ts_cols[1]].notna())
    ts_name = " ".join(ts_cols)
    ts_ms, ts_ok = parse_timestamps(ts_raw)
    report.add(
        ~ts_ok,
        ts_name,
        ts_raw,
        _each(
            lambda v: (
                "missing timestamp" if _blank(v) else f"{v!r} is not a timestamp ({_EXPECTED_TS})"
            )
        ),
    )

    in_range = (ts_ms >= FIRST_MS) & (ts_ms <= LAST_MS)
    report.add(
        ts_ok & ~in_range,
        ts_name,
        ts_raw,
        _each(lambda v: f"{v!r} is outside the supported range 1677-09-22 .. 2262-04-11"),
    )
    ts_ok = ts_ok & in_range
    if tf is not None:
        misaligned = ts_ok & (tf.bucket_start_ms(ts_ms) != ts_ms)
        report.add(misaligned, ts_name, ts_raw, _each(lambda v, tf=tf: _not_a_bar_open(v, tf)))
        ts_ok = ts_ok & ~misaligned

    values: dict[str, np.ndarray] = {}
    for canonical in CANDLE_COLUMNS:
        name = mapping[canonical][0]
        raw = table[name]
        numbers, not_number = _to_float(raw)
        values[canonical] = numbers
        what = "volume" if canonical == "volume" else "price"
        report.add(not_number, name, raw, _each(lambda v: f"{v!r} is not a number"))
        report.add(
            np.isnan(numbers) & ~not_number,
            name,
            raw,
            _each(lambda _, what=what: f"{what} is missing (NaN)"),
        )
        report.add(
            np.isinf(numbers), name, numbers, _each(lambda v, w=what: f"{v!r} is not a finite {w}")
        )
        report.add(
            np.isfinite(numbers) & (np.abs(numbers) >= VALUE_LIMIT),
            name,
            numbers,
            _each(lambda v, w=what: f"{v!r} is too large for a {w} (the limit is 1e308)"),
        )
        finite = np.isfinite(numbers) & (np.abs(numbers) < VALUE_LIMIT)
        if canonical == "volume":
            report.add(
                finite & (numbers < 0),
                name,
                numbers,
                _each(lambda v: f"{v!r} is a negative volume"),
            )
        else:
            report.add(
                finite & (numbers <= 0),
                name,
                numbers,
                _each(lambda v: f"{v!r} is not a positive price"),
            )

    o, h, lo, c = (values[p] for p in PRICE_COLUMNS)
    with np.errstate(invalid="ignore"):
        sane = np.logical_and.reduce(
            [np.isfinite(v) & (v > 0) & (v < VALUE_LIMIT) for v in (o, h, lo, c)]
        )
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    high_name, low_name = mapping["high"][0], mapping["low"][0]
    report.add(
        sane & (h < top),
        high_name,
        h,
        _pairs(top, lambda v, t: f"{v!r} is below max(open, close)={t!r}"),
    )
    report.add(
        sane & (lo > bottom),
        low_name,
        lo,
        _pairs(bottom, lambda v, b: f"{v!r} is above min(open, close)={b!r}"),
    )
    report.add(sane & (h < lo), high_name, h, _pairs(lo, lambda v, x: f"{v!r} is below low={x!r}"))

    _check_order(report, ts_ms, ts_ok, ts_raw, ts_name)
    return CheckedCandles(source, True, ts_ms, ts_ok, values, report.rejected(n), report.errors())


def _not_a_bar_open(value: object, tf: Timeframe) -> str:
    opens = (
        "Monday 00:00 UTC"
        if tf.label == "1w"
        else ("00:00 UTC" if tf.millis == 86_400_000 else f"multiples of {tf.label} from 00:00 UTC")
    )
    return f"{value!r} is not the open time of a {tf.label} bar ({tf.label} bars open at {opens})"


def _check_order(
    report: _Report, ts_ms: np.ndarray, ts_ok: np.ndarray, ts_raw: pd.Series, ts_name: str
) -> None:
    pos = np.flatnonzero(ts_ok)
    t = ts_ms[pos]
    if len(t) < 2 or bool(np.all(t[1:] > t[:-1])):
        return
    # duplicates: every occurrence after the first (a stable sort keeps file order in ties)
    order = np.argsort(t, kind="stable")
    st = t[order]
    new_group = np.r_[True, st[1:] != st[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(st)), 0))
    dup = np.zeros(len(t), dtype=bool)
    dup[order[~new_group]] = True
    first_of = np.empty(len(t), dtype=np.int64)
    first_of[order] = order[group_start]

    # out of order: earlier than the latest timestamp of the rows before it
    prev_max = np.r_[np.iinfo(np.int64).min, np.maximum.accumulate(t)[:-1]]
    new_max = t > prev_max
    holder = np.maximum.accumulate(np.where(new_max, np.arange(len(t)), 0))
    backwards = (t < prev_max) & ~dup

    rows, label = report.rows, report.label
    dup_at, back_at = pos[dup], pos[backwards]
    first_rows = rows[pos[first_of[dup]]].tolist()
    report.add_at(
        dup_at,
        ts_name,
        [
            f"duplicate timestamp {stamp} (first on {label} {first})"
            for stamp, first in zip(_ts(ts_ms[dup_at]), first_rows, strict=True)
        ],
        ts_raw,
    )
    # few distinct rows hold the running maximum: format each of them once
    held, which = np.unique(holder[backwards], return_inverse=True)
    latest = [
        f"{stamp} on {label} {row}"
        for stamp, row in zip(_ts(t[held]), rows[pos[held]].tolist(), strict=True)
    ]
    report.add_at(
        back_at,
        ts_name,
        [
            f"out of order: {stamp} is earlier than {latest[k]}"
            for stamp, k in zip(_ts(ts_ms[back_at]), which.tolist(), strict=True)
        ],
        ts_raw,
    )


Describe = Callable[[list[object], np.ndarray], list[str]]


def _each(fmt: Callable[[object], str]) -> Describe:
    return lambda values, _where: [fmt(v) for v in values]


def _pairs(other: np.ndarray, fmt: Callable[[object, object], str]) -> Describe:
    return lambda values, where: [
        fmt(v, x) for v, x in zip(values, other[where].tolist(), strict=True)
    ]


class _Report:
    """Collects the hits of each check; builds CandleError objects only for offending cells."""

    def __init__(self, source: str, rows: np.ndarray, label: RowLabel) -> None:
        self.source = source
        self.rows = rows
        self.label = label
        self._where: list[np.ndarray] = []
        self._errors: list[list[CandleError]] = []

    def add(
        self, mask: np.ndarray, column: str, values: np.ndarray | pd.Series, describe: Describe
    ) -> None:
        where = np.flatnonzero(mask)
        if len(where):
            taken = values.iloc[where] if isinstance(values, pd.Series) else values[where]
            self._record(where, column, taken.tolist(), describe(taken.tolist(), where))

    def add_at(
        self, where: np.ndarray, column: str, messages: list[str], values: pd.Series
    ) -> None:
        if len(where):
            self._record(where, column, values.iloc[where].tolist(), messages)

    def _record(
        self, where: np.ndarray, column: str, values: list[object], messages: list[str]
    ) -> None:
        self._where.append(where)
        self._errors.append(
            [
                CandleError(self.source, row, column, value, text, self.label)
                for row, value, text in zip(
                    self.rows[where].tolist(), values, messages, strict=True
                )
            ]
        )

    def rejected(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        for where in self._where:
            out[where] = True
        return out

    def errors(self) -> list[CandleError]:
        """All errors ordered by row, then by the order the checks ran."""
        if not self._where:
            return []
        positions = np.concatenate(self._where)
        check = np.concatenate([np.full(len(w), k) for k, w in enumerate(self._where)])
        flat = [e for errors in self._errors for e in errors]
        return [flat[i] for i in np.lexsort((check, positions)).tolist()]


def _with_timestamp_column(data: pd.DataFrame) -> pd.DataFrame:
    lowered = {str(c).strip().lower() for c in data.columns}
    if lowered & set(TIMESTAMP_ALIASES):
        return data
    index_name = str(data.index.name).strip().lower() if data.index.name is not None else ""
    if isinstance(data.index, pd.DatetimeIndex) or index_name in TIMESTAMP_ALIASES:
        frame = data.copy(deep=False)
        frame.index = pd.RangeIndex(len(frame))
        frame.insert(0, index_name if index_name in TIMESTAMP_ALIASES else "ts", data.index)
        return frame
    return data


def _to_float(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """float64 values and a mask of cells that hold something other than a number."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(raw), dtype=bool)
    text = raw.astype("str").str.strip()
    blank = (raw.isna() | text.eq("")).to_numpy(dtype=bool)
    numbers = pd.to_numeric(text.where(~blank, None), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    lowered = text.str.lower()
    spelled_nan = lowered.isin(["nan", "na", "n/a", "null", "none"]).to_numpy(dtype=bool)
    return numbers, np.isnan(numbers) & ~blank & ~spelled_nan


def _epoch_to_ms(numbers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.issubdtype(numbers.dtype, np.integer):
        ints = numbers.astype(np.int64)
        magnitude = np.median(np.abs(ints)) if len(ints) else 0
        if magnitude < 1e11:
            ok = np.abs(ints) < _MAX_ABS_MS // 1000
            return np.where(ok, ints, 0) * 1000, ok
        divisor = 1 if magnitude < 1e14 else 1000 if magnitude < 1e17 else 1_000_000
        return ints // divisor, np.ones(len(ints), dtype=bool)
    floats = np.asarray(numbers, dtype=np.float64)
    finite = np.isfinite(floats)
    magnitude = np.median(np.abs(floats[finite])) if finite.any() else 0.0
    factor = (
        1000.0
        if magnitude < 1e11
        else 1.0
        if magnitude < 1e14
        else 1e-3
        if magnitude < 1e17
        else 1e-6
    )
    with np.errstate(invalid="ignore", over="ignore"):
        ms = np.floor(floats * factor)
        ok = finite & (np.abs(ms) < _MAX_ABS_MS)
    return np.where(ok, ms, 0).astype(np.int64), ok


def _datetimes_to_ms(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    index = utc_index(series)
    ok = ~index.isna()
    micros = index.as_unit("us").asi8
    return np.where(ok, micros // 1000, 0), np.asarray(ok, dtype=bool)


def _blank(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _ts(ms: np.ndarray) -> list[str]:
    """Epoch milliseconds as '2024-01-31 09:30:00 UTC' (milliseconds shown only if present)."""
    ms = np.asarray(ms, dtype=np.int64)
    if not len(ms):
        return []
    unit = "s" if bool(np.all(ms % 1000 == 0)) else "ms"
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit=unit)
    return np.strings.add(np.strings.replace(text, "T", " "), " UTC").tolist()
