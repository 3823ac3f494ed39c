"""A columnar cache of whole candle series on local disk, keyed by the series' data version.

One file per (database, symbol, timeframe, version): a 128-byte header (magic, bar count,
first and last ts, the version token, a digest of the key, a CRC-32 of the data) then the
columns one after the other, little-endian: ts int64, open, high, low, close, volume float64.
The version is the token of ``candle_series_versions`` that every write of the series replaces
in the same transaction as its bars; tokens never repeat, so a file can only ever hold exactly
the bars stored under its token, and a stale file is never read: it no longer matches.

Files are written to a temporary name and renamed into place (``os.replace``), never changed
afterwards, and read through ``np.memmap``: a hit costs a header check and the copy of the
slice asked for. A file of the wrong size, magic, key, version or checksum is ignored (and
logged), and the caller rebuilds it from the database. The CRC is checked once per file per
process (files are immutable, so once is enough). Writing a version removes the older
versions' files of that series. A directory that cannot be written only costs speed: the
reads fall back to the database and the problem is logged once.

Where (``CANDLE_CACHE_DIR``): a directory, or ``off``; by default ``candle_cache/`` beside
the SQLite file, and ``$XDG_CACHE_HOME/stratlens/candles`` (``~/.cache/...``) for PostgreSQL.
An in-memory SQLite database has no cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import URL, make_url

from market.candles import CANDLE_COLUMNS

log = logging.getLogger(__name__)

CACHE_DIR_VARIABLE = "CANDLE_CACHE_DIR"
CACHE_OFF = "off"
_MAGIC = b"SLBARS1\n"
# magic, bars, first ts, last ts, version token, key digest, CRC-32 of the data
_HEADER = struct.Struct("<8sqqq32s32sI")
_HEADER_SIZE = 128
_BAR_BYTES = 8 * (1 + len(CANDLE_COLUMNS))
_SUFFIX = ".bars"
_STALE_TMP_SECONDS = 3600


@dataclass(frozen=True)
class CachedSeries:
    """A whole stored series as columns: ``ts`` (epoch ms, ascending) and the float64 columns.

    The arrays are read-only views of the file; copy what you keep.
    """

    ts: np.ndarray
    columns: Mapping[str, np.ndarray]


class CandleFileCache:
    """The cache files of one database, in one directory."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = directory
        self.identity = identity
        self._verified: dict[str, tuple[int, int, int]] = {}  # name -> (inode, mtime, size)
        self._lock = threading.Lock()
        self._write_failed = False

    def _key(self, symbol: str, timeframe: str) -> bytes:
        text = "\0".join((self.identity, symbol, timeframe))
        return hashlib.sha256(text.encode()).digest()

    def path(self, symbol: str, timeframe: str, version: str) -> Path:
        """The file of one version of a series (the symbol is hashed: any text is safe)."""
        return self.directory / f"{self._key(symbol, timeframe).hex()[:32]}-{version}{_SUFFIX}"

    def load(self, symbol: str, timeframe: str, version: str) -> CachedSeries | None:
        """The series stored under ``version``, or None (no file, or a file found defective)."""
        path = self.path(symbol, timeframe, version)
        try:
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                problem, bars, crc = _check_header(
                    handle.read(_HEADER_SIZE), stat.st_size, version, self._key(symbol, timeframe)
                )
                if problem:
                    self._reject(path, problem)
                    return None
                data = np.memmap(handle, dtype=np.uint8, mode="r", offset=_HEADER_SIZE)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._reject(path, f"unreadable ({exc})")
            return None
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            verified = self._verified.get(path.name) == seen
        if not verified:
            if zlib.crc32(data) != crc:
                self._reject(path, "checksum mismatch")
                return None
            with self._lock:
                self._verified[path.name] = seen
        ts = data[: 8 * bars].view("<i8")
        columns = {
            name: data[8 * bars * (k + 1) : 8 * bars * (k + 2)].view("<f8")
            for k, name in enumerate(CANDLE_COLUMNS)
        }
        return CachedSeries(ts, columns)

    def store(
        self,
        symbol: str,
        timeframe: str,
        version: str,
        ts: np.ndarray,
        columns: Mapping[str, np.ndarray],
    ) -> bool:
        """Write the whole series as ``version`` (atomically) and remove its older versions.

        False when nothing was written: no bars, or the directory is not writable (logged once).
        """
        bars = len(ts)
        if not bars:
            return False
        key = self._key(symbol, timeframe)
        final = self.path(symbol, timeframe, version)
        parts = [np.ascontiguousarray(ts, dtype="<i8")]
        parts += [np.ascontiguousarray(columns[name], dtype="<f8") for name in CANDLE_COLUMNS]
        if any(len(part) != bars for part in parts):
            raise ValueError("cached columns differ in length")
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        header = _HEADER.pack(
            _MAGIC, bars, int(parts[0][0]), int(parts[0][-1]), version.encode(), key, crc
        ).ljust(_HEADER_SIZE, b"\0")
        temporary = self.directory / f".{final.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(header)
                for part in parts:
                    handle.write(memoryview(part).cast("B"))
            os.replace(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            if not self._write_failed:
                self._write_failed = True
                log.warning(
                    "candle cache disabled for writing in %s (%s): candles are read from the "
                    "database; set %s to a writable directory or to %r",
                    self.directory,
                    exc,
                    CACHE_DIR_VARIABLE,
                    CACHE_OFF,
                )
            return False
        self._remove_older(key.hex()[:32], keep=final.name)
        return True

    def _remove_older(self, prefix: str, keep: str) -> None:
        now = time.time()
        try:
            found = list(self.directory.glob(f"{prefix}-*{_SUFFIX}"))
            found += [
                p
                for p in self.directory.glob(f".{prefix}-*.tmp")
                if now - p.stat().st_mtime > _STALE_TMP_SECONDS  # a crashed writer's leftover
            ]
        except OSError:
            return
        for path in found:
            if path.name != keep:  # may fail, e.g. still mapped on Windows: the next write retries
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)

    def _reject(self, path: Path, problem: str) -> None:
        log.warning("ignoring candle cache file %s: %s; reading from the database", path, problem)
        with self._lock:
            self._verified.pop(path.name, None)


def _check_header(head: bytes, size: int, version: str, key: bytes) -> tuple[str | None, int, int]:
    """(problem or None, bars, crc) of a file's first bytes and its size."""
    if len(head) < _HEADER.size:
        return f"truncated header ({size} bytes)", 0, 0
    magic, bars, _first, _last, stored_version, stored_key, crc = _HEADER.unpack_from(head)
    if magic != _MAGIC:
        return "not a candle cache file (bad magic)", 0, 0
    if stored_version != version.encode() or stored_key != key:
        return "written for another series or version", 0, 0
    if bars <= 0 or size != _HEADER_SIZE + bars * _BAR_BYTES:
        return f"size {size} does not match {bars} bars", 0, 0
    return None, bars, crc


_caches: dict[tuple[str, str], CandleFileCache | None] = {}
_caches_lock = threading.Lock()


def cache_for(url: URL | str, env: Mapping[str, str] | None = None) -> CandleFileCache | None:
    """The cache of the database at ``url`` (one per process and directory), or None if off."""
    env = os.environ if env is None else env
    setting = env.get(CACHE_DIR_VARIABLE, "").strip()
    rendered = make_url(url).render_as_string(hide_password=True)
    with _caches_lock:
        if (rendered, setting) not in _caches:
            _caches[(rendered, setting)] = _make_cache(make_url(url), setting, env)
        return _caches[(rendered, setting)]


def _make_cache(url: URL, setting: str, env: Mapping[str, str]) -> CandleFileCache | None:
    if setting.lower() == CACHE_OFF:
        return None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
            return None  # in memory (or a URI we do not parse): nothing outlives the process
        file = Path(database).expanduser().resolve()
        identity = f"sqlite:{file}"
        default = file.parent / "candle_cache"
    else:
        identity = url.set(password=None, query={}).render_as_string(hide_password=True)
        home = env.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
        default = Path(home) / "stratlens" / "candles"
    directory = Path(setting).expanduser() if setting else default
    return CandleFileCache(directory, identity)
