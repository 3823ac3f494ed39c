"""Read candle files (.csv, .csv.gz, .parquet) into validated candle frames.

>>> result = read_candle_file("data/sample/sp500.csv.gz")
>>> len(result.candles), result.rejected
(5031, [])

Columns, timestamp formats and checks are those of :mod:`market.validation`: names are
matched case-insensitively (timestamp|ts|time|date|datetime, open, high, low, close, volume;
extra columns such as "Adj Close" are ignored); timestamps may be ISO 8601, month/day/year
(as in the bundled S&P 500 file) or epoch seconds/milliseconds (told apart by magnitude);
naive times are UTC.

A plain UTF-8 CSV is first read by Arrow's multi-threaded reader (about twice as fast as
pandas plus the timestamp parse): when every cell converts (ISO 8601 or epoch timestamps,
numbers) and every row passes the checks, that is the result. Anything else, from one odd cell
to a newest-first file, is read again the careful way below, which names each problem; both
ways give the same candles (tests/market/test_importer.py compares them).

Errors name the file, the place and the column. For CSV files the place is the line number in
the file (the header is line 1; blank lines are skipped but still counted; a quoted field
spanning several lines would shift the count). For Parquet it is the 1-based data row.

``skip_invalid=False`` (default): any error raises CandleValidationError listing every error.
``skip_invalid=True``: rows with any error are left out and reported in ``rejected``:
- a duplicate timestamp keeps its first occurrence in the file and rejects the later ones;
- a row earlier than the latest timestamp above it is rejected, the rows around it are kept.
  The error names the row that holds that latest timestamp, so when one mistyped date (say
  2042 for 2024) makes the rest of the file "go backwards", the culprit is in the messages.
A file written newest-first (every timestamp earlier than the one above it, as many broker
and website exports are) is not out of order: it is read bottom-up.
Missing or ambiguous columns, and malformed files, raise whatever ``skip_invalid`` says.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from market.candles import CANDLE_COLUMNS
from market.validation import (
    CandleError,
    CandleValidationError,
    CheckedCandles,
    RowLabel,
    check_candles,
    resolve_columns,
)

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet")
_EXPECTED_HEADER = "a header row like timestamp,open,high,low,close,volume"
_DATA_LIKE = re.compile(
    r"^\s*([+-]?\d+(\.\d*)?([eE][+-]?\d+)?|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}.*)\s*$"
)
_SNIFF_BYTES = 65536


class CandleImportError(ValueError):
    """A file that cannot be read as a table of candles at all (the message names the file)."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class CandleImport:
    """A read file: the valid candles, and every error of the rows left out."""

    source: str
    candles: pd.DataFrame
    rejected: list[CandleError] = field(default_factory=list)
    row_label: RowLabel = "row"

    @property
    def rejected_rows(self) -> list[int]:
        """Line (CSV) or row (Parquet) numbers left out, ascending."""
        return sorted({e.row for e in self.rejected if e.row is not None})


def read_candle_file(
    path: str | Path,
    *,
    skip_invalid: bool = False,
    source: str | None = None,
    timeframe: str | None = None,
) -> CandleImport:
    """Read and validate one candle file; ``source`` (default: the file name) names it in errors.

    Example: ``read_candle_file("prices.csv", skip_invalid=True).rejected_rows`` gives the
    lines left out, e.g. ``[14, 97]``; the errors are in ``.rejected``. ``timeframe``: the
    series the bars are for; a timestamp that is not the open time of one of its bars is refused.
    """
    path = Path(path)
    name = source or path.name
    kind = _kind(path, name)
    if not path.exists():
        raise CandleImportError(name, f"file not found ({path})")
    if not path.is_file():
        raise CandleImportError(name, f"not a file ({path})")

    if kind == "csv":
        quick = _quick_csv(path, name, timeframe)
        if quick is not None:
            return quick
    if kind == "parquet":
        table = _read_parquet(path, name)
        rows, label = np.arange(1, len(table) + 1), "row"
    else:
        table, rows = _read_csv(path, name, compressed=kind == "csv.gz")
        label = "line"

    checked = check_candles(table, name, row_numbers=rows, row_label=label, timeframe=timeframe)
    if checked.columns_ok and _newest_first(checked):
        table, rows = table.iloc[::-1], rows[::-1]
        checked = check_candles(table, name, row_numbers=rows, row_label=label, timeframe=timeframe)
        checked.errors.sort(key=lambda e: e.row or 0)
    if not checked.columns_ok or (checked.errors and not skip_invalid):
        raise CandleValidationError(checked.errors)
    return CandleImport(name, checked.valid_frame(), checked.errors, label)


def _kind(path: Path, name: str) -> str:
    lowered = path.name.lower()
    for suffix in (".csv.gz", ".csv", ".parquet"):
        if lowered.endswith(suffix):
            return suffix[1:]
    raise CandleImportError(
        name, f"unsupported file type: expected {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _read_csv(path: Path, name: str, *, compressed: bool) -> tuple[pd.DataFrame, np.ndarray]:
    head = _sniff(path, name, compressed=compressed)
    if not head.strip():
        raise CandleImportError(name, "the file is empty")
    if b"\x00" in head:
        raise CandleImportError(name, "not a CSV file (binary content)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        encoding = "utf-8"
    except UnicodeDecodeError:
        encoding = "latin-1"  # a legacy export; the cells we read are ASCII either way
    options = {
        "encoding": encoding,
        "skip_blank_lines": False,
        "compression": "gzip" if compressed else None,
    }

    try:
        header = pd.read_csv(path, nrows=0, **options).columns.tolist()
    except pd.errors.EmptyDataError:
        raise CandleImportError(name, f"line 1 is blank: expected {_EXPECTED_HEADER}") from None
    except (pd.errors.ParserError, OSError, EOFError, zlib.error) as exc:
        raise CandleImportError(name, f"not a readable CSV file ({_first_line(exc)})") from None
    mapping, column_errors = resolve_columns(header, name)
    if column_errors:
        if not mapping and any(_DATA_LIKE.match(str(h)) for h in header):
            raise CandleImportError(
                name, f"no header row: line 1 looks like data; expected {_EXPECTED_HEADER}"
            )
        raise CandleValidationError(
            [
                CandleError(e.source, e.row, e.column, e.value, e.message, "line")
                for e in column_errors
            ]
        )

    try:
        # All columns, not usecols: with usecols pandas silently drops surplus fields in a row,
        # so "1,234.50" (an unquoted thousands separator) would shift values unnoticed.
        # index_col=False: a trailing comma on each line must not turn dates into the index.
        # low_memory=False: one pass, one dtype per column (no DtypeWarning on mixed columns).
        # ParserWarning as an error: pandas drops a first data row's surplus fields with only
        # a warning ("loss of data"); they are a defect of the file, named by line below
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, index_col=False, low_memory=False, **options)
    except pd.errors.ParserWarning:
        raise CandleImportError(name, _surplus_fields(path, options, len(header))) from None
    except (pd.errors.ParserError, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise CandleImportError(name, f"malformed CSV ({_first_line(exc)})") from None
    if table.empty:
        raise CandleImportError(name, "the file has a header but no data rows")
    lines = np.arange(2, len(table) + 2)
    blank = table.isna().all(axis=1).to_numpy()
    if blank.all():
        raise CandleImportError(name, "the file has a header but no data rows")
    if blank.any():
        table, lines = table[~blank], lines[~blank]
    table = table[[col for cols in mapping.values() for col in cols]]
    return table.reset_index(drop=True), lines


def _quick_csv(path: Path, name: str, timeframe: str | None) -> CandleImport | None:
    """The file read by Arrow if every cell converts and every row passes, else None."""
    try:
        head = _sniff(path, name, compressed=False)
        header_line, newline, _ = head.partition(b"\n")
        header_line.decode("utf-8")
        if not newline or b"\x00" in head:
            return None
        names = pa_csv.read_csv(io.BytesIO(header_line + b"\n")).column_names
    except (CandleImportError, UnicodeDecodeError, pa.ArrowException):
        return None
    mapping, column_errors = resolve_columns(names, name)
    if column_errors or len(mapping["ts"]) != 1 or len(set(names)) != len(names):
        return None
    ts_name = mapping["ts"][0]
    prices = {mapping[c][0]: pa.float64() for c in CANDLE_COLUMNS}
    options = pa_csv.ConvertOptions(include_columns=[ts_name, *prices], column_types=prices)
    try:
        table = pa_csv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError):
        return None
    ts_type = table.schema.field(ts_name).type
    readable = pa.types.is_integer(ts_type) or pa.types.is_floating(ts_type)
    readable |= pa.types.is_timestamp(ts_type) and ts_type.tz in (None, "UTC", "+00:00", "Z")
    if not readable or not table.num_rows or any(c.null_count for c in table.columns):
        return None
    frame = table.to_pandas(split_blocks=True)  # a column each: no copy into one block
    lines = np.arange(2, len(frame) + 2)
    checked = check_candles(frame, name, row_numbers=lines, row_label="line", timeframe=timeframe)
    if not checked.columns_ok or checked.errors:
        return None
    return CandleImport(name, checked.valid_frame(), [], "line")


def _surplus_fields(path: Path, options: dict, columns: int) -> str:
    """Which line holds more (non-empty) fields than the header, for the error message."""
    opener = gzip.open if options.get("compression") == "gzip" else open
    with opener(path, "rt", encoding=options["encoding"], newline="") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if len(row) > columns and any(cell.strip() for cell in row[columns:]):
                return f"line {line} has {len(row)} fields, the header {columns}"
    return f"a row has more fields than the header's {columns}"


def _sniff(path: Path, name: str, *, compressed: bool) -> bytes:
    try:
        if compressed:
            with gzip.open(path, "rb") as handle:
                return handle.read(_SNIFF_BYTES)
        with path.open("rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise CandleImportError(name, f"not a valid gzip file ({exc})") from None
    except OSError as exc:
        raise CandleImportError(name, f"cannot read the file ({exc.strerror or exc})") from None


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CandleImportError(name, f"not a readable Parquet file ({_first_line(exc)})") from None
    # a saved candle frame keeps its timestamps in the index: check_candles looks there
    if table.empty:
        raise CandleImportError(name, "the file has no rows")
    return table


def _newest_first(checked: CheckedCandles) -> bool:
    t = checked.ts_ms[checked.ts_ok]
    return len(t) >= 2 and t[0] > t[-1] and bool(np.all(t[1:] <= t[:-1]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
