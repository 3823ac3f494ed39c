"""A CSV file's cells read by Arrow's multi-threaded C reader, a column at a time: the fast
reading of a clean file (``csv_fills``), several times quicker than pandas' string cells.

:func:`arrow_columns` gives every named column as Arrow strings stripped as Python's
``str.strip`` strips them, or None whenever the file is anything but plain (a compressed
file, a header with a repeated or missing name, a line of another width, a blank line, text
that is not UTF-8): the caller then reads it the careful way, which
names every problem. The helpers parse whole columns only when every cell has the plain
syntax both readers agree on (decimals: Arrow's parser and Python's ``float`` both round
correctly; epoch digits), None otherwise.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

# what str.strip strips: every character str.isspace holds (a test holds it equal to those
# of every code point; walking them all here cost ~0.1 s at each start of a process)
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_DECIMAL = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DIGITS = r"^\d{1,18}$"


class ReadAhead:
    """Reads of files started in a thread (Arrow's work runs without the interpreter's lock
    while a one-shot import loads the rest of the app), each taken once by the next read of
    the same key while its file is unchanged (inode, size, modification ns): a changed file is
    read again."""

    def __init__(self) -> None:
        self.started: dict[Hashable, tuple[tuple[int, ...] | None, Future[Any]]] = {}

    def start(self, key: Hashable, path: Path, read: Callable[[], Any], name: str) -> None:
        ahead: Future[Any] = Future()
        self.started[key] = (file_state(path), ahead)

        def run() -> None:
            try:
                ahead.set_result(read())
            except BaseException as exc:  # handed to the reader as reading there would raise it
                ahead.set_exception(exc)

        threading.Thread(target=run, name=name, daemon=True).start()

    def take(self, key: Hashable, path: Path) -> Future[Any] | None:
        """The read started for ``key`` if its file is unchanged (None: read it now)."""
        started = self.started.pop(key, None)
        if started is None or started[0] is None or started[0] != file_state(path):
            return None
        return started[1]


def file_state(path: Path) -> tuple[int, ...] | None:
    try:
        state = path.stat()
    except OSError:
        return None
    return (state.st_ino, state.st_size, state.st_mtime_ns)


def read_columns_ahead(path: str | Path) -> None:
    """Start reading ``path``'s columns (:func:`arrow_columns`' work but the header's names
    check) in a thread (:class:`ReadAhead`): the next :func:`arrow_columns` of the same file,
    unchanged, takes the result (or the exception) instead of reading."""
    path = Path(path)
    _AHEAD.start(str(path), path, lambda: _columns(path), "csv-columns-ahead")


_AHEAD = ReadAhead()


def arrow_columns(
    path: Path, required: tuple[str, ...]
) -> tuple[dict[str, pa.ChunkedArray], int] | None:
    """(each named column's cells, stripped, by its lowercased header name; the data rows)
    of a plain CSV file with a header naming ``required``; None otherwise (see above)."""
    ahead = _AHEAD.take(str(path), path)
    read = _columns(path) if ahead is None else ahead.result()
    if read is None or not set(required) <= set(read[0]):
        return None
    return read


def _columns(path: Path) -> tuple[dict[str, pa.ChunkedArray], int] | None:
    if path.suffix.lower() != ".csv" or not path.is_file():
        return None
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            cells = next(csv.reader(file), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not cells:
        return None
    names = [cell.strip().lower() for cell in cells]
    named = [name for name in names if name]
    if len(set(named)) != len(named):
        return None
    slots = [f"c{k}" for k in range(len(names))]
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=slots, skip_rows=1),
            parse_options=pa_csv.ParseOptions(ignore_empty_lines=False, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(slots, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError):  # another width, a blank line, not UTF-8...
        return None
    if not table.num_rows:
        return None
    columns = {
        name: pc.utf8_trim(table.column(slot), characters=SPACES)
        for name, slot in zip(names, slots, strict=True)
        if name
    }
    return columns, table.num_rows


def decimals(column: pa.ChunkedArray) -> np.ndarray | None:
    """The cells as floats when every one is a plain decimal (``-1.5``, ``.5``, ``1e3``);
    None otherwise (an empty cell, ``inf``, ``1_000``...)."""
    if not pc.all(pc.match_substring_regex(column, _DECIMAL)).as_py():
        return None
    return pc.cast(column, pa.float64()).to_numpy()


def epoch_digits(column: pa.ChunkedArray) -> np.ndarray | None:
    """The cells as int64 when every one is 1 to 18 digits; None otherwise."""
    if not pc.all(pc.match_substring_regex(column, _DIGITS)).as_py():
        return None
    return pc.cast(column, pa.int64()).to_numpy()


def texts(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """The cells as Python strings; a column of few distinct values (symbols, sides,
    strategies) through one string per value, not one per cell."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    values = encoded.dictionary
    if len(values) * 8 > len(column):
        return column.to_pylist()
    names = np.array(values.to_pylist(), dtype=object)
    return names[encoded.indices.to_numpy(zero_copy_only=False)].tolist()


def any_equal(column: pa.ChunkedArray, value: str) -> bool:
    return bool(pc.any(pc.equal(column, value)).as_py())


def longest(column: pa.ChunkedArray) -> int:
    return int(pc.max(pc.utf8_length(column)).as_py() or 0)


__all__ = [
    "SPACES",
    "ReadAhead",
    "any_equal",
    "arrow_columns",
    "decimals",
    "epoch_digits",
    "longest",
    "read_columns_ahead",
    "texts",
]
