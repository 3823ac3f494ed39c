"""What the columnar file caches of append-only tables share (``_trade_cache``,
``_execution_cache``): one Arrow IPC file per key, named by a hash of the database and the
key, holding rows up to a row id with their count in its metadata; read back only when every
metadata value matches and the row count is the one written; written to a temporary name and
renamed into place, a directory that cannot be written logged once (it only costs speed)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.feather as feather
from sqlalchemy import URL

from database.repositories._candle_cache import cache_for

log = logging.getLogger(__name__)


class ArrowFileCache:
    """Files of one database (``identity``: its URL without secrets) in one directory."""

    suffix = ".arrow"
    memory_map = False  # True: a read maps the file (no copy; the file is never changed)
    what = "columnar"  # the log's name of the cache: "trade", "execution"
    fallback = "rows"  # what is read from the database instead, for the log

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = directory
        self.identity = identity
        self._lock = threading.Lock()
        self._write_failed = False

    def _path(self, *key: str) -> Path:
        text = "\0".join((self.identity, *key))
        return self.directory / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}{self.suffix}"

    def _read(self, path: Path, expected: Mapping[str, str]) -> tuple[pa.Table, int, int] | None:
        """The file's table, last id and count when its metadata holds ``expected``."""
        try:
            table = feather.read_table(path, memory_map=self.memory_map)
        except FileNotFoundError:
            return None
        except (OSError, pa.ArrowInvalid) as exc:
            log.warning("ignoring %s cache file %s: unreadable (%s)", self.what, path, exc)
            return None
        meta = table.schema.metadata or {}
        try:
            if any(meta[name.encode()].decode() != value for name, value in expected.items()):
                return None
            last_id, count = int(meta[b"last_id"]), int(meta[b"count"])
        except (KeyError, ValueError):
            log.warning("ignoring %s cache file %s: no valid metadata", self.what, path)
            return None
        if table.num_rows != count:
            log.warning("ignoring %s cache file %s: %d rows, %d said", self.what, path,
                        table.num_rows, count)  # fmt: skip
            return None
        return table, last_id, count

    def _write(self, path: Path, table: pa.Table, meta: Mapping[str, str], last_id: int) -> bool:
        """``table`` with ``meta``, its last id and row count, into ``path``; False when the
        directory is not writable."""
        temporary = self._prepare(path, table, meta, last_id)
        return temporary is not None and self._place(temporary, path)

    def _prepare(
        self, path: Path, table: pa.Table, meta: Mapping[str, str], last_id: int
    ) -> Path | None:
        """``_write``'s file under a temporary name beside ``path``, to be renamed into place
        by :meth:`_place` (or deleted by :func:`discard`); None when not writable."""
        meta = {**meta, "last_id": str(last_id), "count": str(table.num_rows)}
        # one record batch: a read's columns are one chunk each (a take, a compare or a
        # factorize of a chunked column works chunk by chunk or joins them first)
        table = table.combine_chunks().replace_schema_metadata(meta)
        temporary = self.directory / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            feather.write_feather(
                table, temporary, compression="uncompressed", chunksize=max(table.num_rows, 1)
            )
        except OSError as exc:
            discard(temporary)
            self._failed(exc)
            return None
        return temporary

    def _place(self, temporary: Path, path: Path) -> bool:
        try:
            os.replace(temporary, path)
        except OSError as exc:
            discard(temporary)
            self._failed(exc)
            return False
        return True

    def _failed(self, exc: OSError) -> None:
        with self._lock:
            if not self._write_failed:
                self._write_failed = True
                log.warning("%s cache disabled for writing in %s (%s): %s are read from "
                            "the database", self.what, self.directory, exc,
                            self.fallback)  # fmt: skip


def discard(temporary: Path | None) -> None:
    """Delete a file written by ``_prepare`` and not placed."""
    if temporary is not None:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


Cache = TypeVar("Cache", bound=ArrowFileCache)
_caches: dict[tuple[type, str, str], ArrowFileCache] = {}
_caches_lock = threading.Lock()


def beside_candles(
    kind: type[Cache], folder: str, url: URL | str, env: Mapping[str, str] | None = None
) -> Cache | None:
    """The ``kind`` cache of the database at ``url``, in ``folder`` beside its candle cache
    (one per process and directory), or None when the candle cache is off."""
    candles = cache_for(url, env)
    if candles is None:
        return None
    key = (kind, candles.identity, str(candles.directory))
    with _caches_lock:
        if key not in _caches:
            _caches[key] = kind(candles.directory.parent / folder, candles.identity)
        return _caches[key]  # type: ignore[return-value]


__all__ = ["ArrowFileCache", "beside_candles"]
