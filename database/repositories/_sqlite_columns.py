"""SQLite rows regrouped into Arrow columns a chunk at a time, in this process or in a child.

:func:`columns_of` is ``_arrow_reads.rows_table``'s loop: a cursor's rows fetched 65,536 at a
time, each chunk's columns made Arrow arrays and its tuples freed. Python's ``sqlite3`` makes a
Python object per value and holds the GIL doing it (~2.5 us a trade of its ~3.5 us), so a
thread of this process cannot share the work: a child process reads a part of the rows
(:func:`start`, this file run as a script: stdin the request as JSON, stdout the columns as an
Arrow IPC stream) while the caller reads the rest. The child is another process with the same
interpreter and so the same SQLite library: its locks are its own, as any other reader's of the
file (two copies of SQLite in one process are what lose each other's locks). It imports
nothing but ``sqlite3``, numpy and pyarrow (~0.15 s of CPU to start).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa

CHUNK_ROWS = 65_536  # rows regrouped into columns at a time
_KINDS = {str(kind): kind for kind in (pa.float64(), pa.int64(), pa.large_string())}


def columns_of(cursor: Any, kinds: Sequence[pa.DataType]) -> list[pa.ChunkedArray]:
    """The rows of ``cursor`` (a DBAPI cursor with a statement executed) as one column per
    kind: ``float64`` as ``numpy.asarray`` makes them, None as NaN; ``int64``; texts as
    Arrow's ``large_string``. A value not of its column's kind raises ``pa.ArrowInvalid``,
    ``pa.ArrowTypeError``, ``TypeError`` or ``ValueError``. The collector is paused meanwhile
    (a tuple per row, freed with its chunk) and set back as it was."""
    parts: list[list[pa.Array]] = [[] for _ in kinds]
    paused = gc.isenabled()
    gc.disable()
    try:
        while rows := cursor.fetchmany(CHUNK_ROWS):
            for part, kind, values in zip(parts, kinds, zip(*rows, strict=True), strict=True):
                part.append(_arrow(values, kind))
    finally:
        if paused:
            gc.enable()
    return [pa.chunked_array(part, type=kind) for part, kind in zip(parts, kinds, strict=True)]


def _arrow(values: Sequence[object], kind: pa.DataType) -> pa.Array:
    if kind == pa.float64():
        return pa.array(np.asarray(values, dtype=np.float64))
    if kind == pa.int64():
        return pa.array(np.asarray(values, dtype=np.int64))
    return pa.array(values, type=kind)


class Child:
    """A child process reading ``sql`` with ``params`` from the SQLite file ``path`` (read
    only) into columns of ``kinds``, started at once; :meth:`columns` waits for them."""

    def __init__(self, path: str, sql: str, params: Sequence[Any], kinds: Sequence[pa.DataType]):
        request = {"path": path, "sql": sql, "params": list(params),
                   "kinds": [str(kind) for kind in kinds]}  # fmt: skip
        self._kinds = list(kinds)
        self._process = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(request).encode())
        self._process.stdin.close()
        self._table: pa.Table | None = None
        self._error: BaseException | None = None
        self.failure = ""
        # the stream read as it comes: a pipe holds 64 KiB, the child would wait for it
        self._reader = threading.Thread(target=self._read, name="sqlite-child", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            self._table = pa.ipc.open_stream(self._process.stdout).read_all()
        except BaseException as exc:  # a child that failed: no stream
            self._error = exc

    def columns(self) -> list[pa.ChunkedArray] | None:
        """The child's columns, None when it failed (why in :attr:`failure`)."""
        self._reader.join()
        assert self._process.stderr is not None
        failure = self._process.stderr.read().decode(errors="replace")
        code = self._process.wait()
        self.failure = failure or (repr(self._error) if self._error else f"exit code {code}")
        if code != 0 or self._table is None:
            return None
        return list(self._table.columns)

    def close(self) -> None:
        """Stop the child if it still runs (the caller failed meanwhile); its pipes closed."""
        if self._process.poll() is None:
            self._process.kill()
        self._reader.join()
        self._process.wait()
        for pipe in (self._process.stdout, self._process.stderr):
            if pipe is not None:
                pipe.close()


def _main() -> int:
    import sqlite3

    request = json.loads(sys.stdin.buffer.read())
    kinds = [_KINDS[name] for name in request["kinds"]]
    connection = sqlite3.connect(f"file:{quote(request['path'])}?mode=ro", uri=True,
                                 timeout=30)  # fmt: skip
    try:
        columns = columns_of(connection.execute(request["sql"], request["params"]), kinds)
    finally:
        connection.close()
    table = pa.table({str(k): column for k, column in enumerate(columns)})
    with pa.ipc.new_stream(sys.stdout.buffer, table.schema) as stream:
        stream.write_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
