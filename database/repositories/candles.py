"""CandleRepository: OHLCV bars keyed by (symbol, timeframe, ts), as candle frames.

Upserts validate the whole frame first, then write; frames are read as columns, without a
Python object per bar (``_candle_io`` says how, per database). ``ts`` is stored as epoch
milliseconds.

Every write of a series' bars (``upsert``, ``delete_series``) replaces the series' data version
(``candle_series_versions``) in the same transaction. ``frame`` reads that version and, when
the columnar cache (``_candle_cache``) holds the series under it, slices the cached columns
instead of querying the bars: the same frame, in a few milliseconds. On a miss it reads the
whole series once and keeps it (unless the request is small: a chart's last N bars). A session
that has written a series reads that series from the database until its transaction ends.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Table, delete, event, func, select, text
from sqlalchemy.orm import Session, SessionTransaction

from database.models import Candle, CandleSeriesVersion
from database.records import SeriesInfo, check_non_empty
from database.repositories import candle_staging as staging
from database.repositories._candle_cache import CachedSeries, CandleFileCache, cache_for
from database.repositories._candle_io import WriteOutcome, read_bars, upsert_bars
from database.repositories._common import (
    DEFAULT_CHUNK_ROWS,
    TimeLike,
    aware_timestamp,
)
from market.candles import CANDLE_COLUMNS
from market.timeframes import Timeframe, from_epoch_ms, to_epoch_ms

CANDLES: Table = Candle.__table__  # type: ignore[assignment]
VERSIONS: Table = CandleSeriesVersion.__table__  # type: ignore[assignment]

FILL_MIN_BARS = 20_000
"""A miss fills the cache (reading the whole series) unless the request needs fewer bars."""

log = logging.getLogger(__name__)
_WRITTEN = "stratlens.candles.written"  # session.info: series written in the open transaction
_FILLS = "stratlens.candles.fills"  # session.info: cache files to write once it commits
_SET_VERSION = text(
    "INSERT INTO candle_series_versions (symbol, timeframe, version) "
    "VALUES (:symbol, :timeframe, :version) "
    "ON CONFLICT (symbol, timeframe) DO UPDATE SET version = excluded.version"
)
_INT64 = np.iinfo(np.int64)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UTC_NAMES = ("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu")


def _epoch_ms(value: TimeLike, name: str, *, round_up: bool = False) -> int:
    # via datetime, not nanoseconds: end=pd.Timestamp("9999-12-31", tz="UTC") must work too
    stamp = aware_timestamp(value, name)
    delta = stamp.to_pydatetime(warn=False) - _EPOCH
    if round_up and stamp.nanosecond:
        delta += timedelta(microseconds=1)
    step = timedelta(milliseconds=1)
    return -(-delta // step) if round_up else delta // step


def _ms_to_timestamp(ms: int) -> pd.Timestamp:
    return from_epoch_ms(np.array([ms], dtype=np.int64))[0]


def _check_key(symbol: str, timeframe: str) -> None:
    check_non_empty("symbol", symbol)
    Timeframe.parse(timeframe)  # TimeframeError (a ValueError) names the supported ones


def _candle_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Epoch-ms times and float64 columns of a candle frame; ValueError naming the defect."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"expected a candle DataFrame, got {type(frame).__name__}")
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"candle frame is missing column(s) {', '.join(missing)}; "
            f"expected {', '.join(CANDLE_COLUMNS)}"
        )
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ValueError(f"candle frame index must be a DatetimeIndex, got {type(index).__name__}")
    if index.tz is None or str(index.tz) not in _UTC_NAMES:
        raise ValueError(f"candle frame index must be tz-aware UTC, got tz={index.tz}")
    if index.hasnans:
        raise ValueError("candle frame index holds NaT")
    if not index.is_unique:
        dupes = index[index.duplicated()].unique()
        raise ValueError(f"candle frame index has duplicate times, first {dupes[0]}")
    if not index.is_monotonic_increasing:
        position = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1
        raise ValueError(
            f"candle frame index is not sorted ascending: {index[position]} follows "
            f"{index[position - 1]}"
        )
    ts = to_epoch_ms(index)
    if not from_epoch_ms(ts).equals(index):
        raise ValueError("candle frame index has sub-millisecond times; ts is stored in ms")

    columns: dict[str, np.ndarray] = {}
    for name in CANDLE_COLUMNS:
        try:
            columns[name] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(
                f"candle column {name!r} must be numeric, got dtype {frame[name].dtype}"
            ) from None
    for name, values in columns.items():
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"candle column {name!r} holds NaN or infinity ({int(bad.sum())} bar(s)), "
                f"first at {index[first]}"
            )
    o, h, low, c, v = (columns[name] for name in CANDLE_COLUMNS)
    rules = (
        ("low > 0", low > 0),
        ("high >= low", h >= low),
        ("low <= open <= high", (o >= low) & (o <= h)),
        ("low <= close <= high", (c >= low) & (c <= h)),
        ("volume >= 0", v >= 0),
    )
    for rule, ok in rules:
        if not ok.all():
            first = int(np.flatnonzero(~ok)[0])
            bar = ", ".join(f"{n}={float(columns[n][first])!r}" for n in CANDLE_COLUMNS)
            raise ValueError(
                f"candle frame breaks {rule} ({int((~ok).sum())} bar(s)), first at "
                f"{index[first]}: {bar}"
            )
    return ts, columns


@dataclass(frozen=True)
class _Bounds:
    """A frame request in epoch ms: ``start <= ts <= end``, ``ts > after``, the ``last`` N."""

    start: int | None = None
    end: int | None = None
    after: int | None = None
    last: int | None = None

    def at_most(self, timeframe: str) -> float:
        """An upper bound of the bars requested on a regular grid (inf when unbounded)."""
        limit = float("inf") if self.last is None else float(self.last)
        lower = max((b for b in (self.start, self.after) if b is not None), default=None)
        if lower is not None and self.end is not None:
            try:
                step = Timeframe.parse(timeframe).millis
            except ValueError:
                return limit
            limit = min(limit, max(0, self.end - lower) // step + 1)
        return limit

    def positions(self, ts: np.ndarray) -> tuple[int, int]:
        """[lo, hi) of the requested bars in ascending ``ts``: the SQL conditions, exactly."""
        lo, hi = 0, len(ts)
        if self.start is not None:
            lo = max(lo, int(np.searchsorted(ts, _clip(self.start), side="left")))
        if self.after is not None:
            lo = max(lo, int(np.searchsorted(ts, _clip(self.after), side="right")))
        if self.end is not None:
            hi = min(hi, int(np.searchsorted(ts, _clip(self.end), side="right")))
        if self.last is not None:
            lo = max(lo, hi - self.last)
        return lo, max(lo, hi)


def _clip(ms: int) -> np.int64:
    # a bound beyond int64 milliseconds lies beyond every stored bar on that side
    return np.int64(min(max(ms, _INT64.min), _INT64.max))


def _frame(ts: np.ndarray, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The candle frame of ascending bars, its columns copied once into one float64 block."""
    block = np.empty((len(CANDLE_COLUMNS), len(ts)), dtype=np.float64)
    for row, name in enumerate(CANDLE_COLUMNS):
        block[row] = columns[name]
    return pd.DataFrame(block.T, index=from_epoch_ms(ts), columns=list(CANDLE_COLUMNS), copy=False)


def _sliced(ts: np.ndarray, columns: Mapping[str, np.ndarray], bounds: _Bounds) -> pd.DataFrame:
    lo, hi = bounds.positions(ts)
    return _frame(ts[lo:hi], {name: columns[name][lo:hi] for name in CANDLE_COLUMNS})


class CandleRepository:
    """OHLCV series keyed by (symbol, timeframe, ts), as candle frames.

    Times in: timezone-aware (naive raises ValueError). Frames out: the candle frame contract
    (UTC DatetimeIndex ``ts``, float64 open/high/low/close/volume), ascending.
    """

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows

    def upsert(self, symbol: str, timeframe: str, frame: pd.DataFrame) -> int:
        """Insert or update the frame's bars; returns how many bars were given.

        Idempotent: a bar already stored with the same values is left untouched. The whole
        frame is checked first; a defect raises ValueError before anything is written.
        """
        _check_key(symbol, timeframe)
        ts, columns = _candle_arrays(frame)
        if not len(ts):
            return 0
        self._written().add((symbol, timeframe))
        outcome = upsert_bars(
            self._session, symbol, timeframe, ts, columns, chunk_rows=self._chunk_rows
        )
        self._after_write(symbol, timeframe, outcome, ts, columns)
        return len(ts)

    def checked_arrays(self, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The frame's epoch-ms times and float64 columns, checked as ``upsert`` checks them."""
        return _candle_arrays(frame)

    def merge_staged(
        self,
        symbol: str,
        timeframe: str,
        import_id: str,
        ts: np.ndarray,
        columns: dict[str, np.ndarray],
    ) -> None:
        """Merge an import's staged bars (``ts``/``columns``: what was staged, checked, for
        the cache) into the series, as ``upsert`` would: the version is replaced with them."""
        _check_key(symbol, timeframe)
        self._written().add((symbol, timeframe))
        connection = self._session.connection()
        outcome = staging.merge(connection, import_id, symbol, timeframe, int(ts[0]), int(ts[-1]))
        self._after_write(symbol, timeframe, outcome, ts, columns)

    def _after_write(
        self,
        symbol: str,
        timeframe: str,
        outcome: WriteOutcome,
        ts: np.ndarray,
        columns: dict[str, np.ndarray],
    ) -> None:
        if outcome.changed != 0:  # an idempotent re-write keeps the version (and its cache)
            version = self._new_version(symbol, timeframe)
            cache = self._cache()
            if outcome.whole_series and cache is not None:
                # copies: the caller may change its frame before the commit
                kept = {name: values.copy() for name, values in columns.items()}
                fills = self._session.info.setdefault(_FILLS, [])
                fills.append((cache, symbol, timeframe, version, ts.copy(), kept))

    def frame(
        self,
        symbol: str,
        timeframe: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        after: TimeLike | None = None,
        last: int | None = None,
    ) -> pd.DataFrame:
        """Stored bars, ascending: ``start <= ts <= end``, ``ts > after``; ``last`` keeps only
        the most recent N of those."""
        if last is not None and (
            isinstance(last, bool) or not isinstance(last, int | np.integer) or last < 0
        ):
            raise ValueError(f"last={last!r} is invalid: expected an integer >= 0")
        bounds = _Bounds(
            None if start is None else _epoch_ms(start, "start", round_up=True),
            None if end is None else _epoch_ms(end, "end"),
            None if after is None else _epoch_ms(after, "after"),
            None if last is None else int(last),
        )
        cache = self._cache()
        if cache is None or (symbol, timeframe) in self._written():
            return self._query(symbol, timeframe, bounds)
        version = self._version(symbol, timeframe)
        if version is None:  # nothing stored
            return self._query(symbol, timeframe, bounds)
        cached = cache.load(symbol, timeframe, version)
        if cached is None:
            if bounds.at_most(timeframe) < FILL_MIN_BARS:
                return self._query(symbol, timeframe, bounds)
            bars = self._read(symbol, timeframe, _Bounds())
            cached = CachedSeries(bars["ts"], {name: bars[name] for name in CANDLE_COLUMNS})
            # the same version after the read as before: the bars read are that version's
            if self._version(symbol, timeframe) == version:
                cache.store(symbol, timeframe, version, cached.ts, cached.columns)
        return _sliced(cached.ts, cached.columns, bounds)

    def bars_after(
        self, symbol: str, timeframe: str, *, after: TimeLike | None, end: TimeLike
    ) -> np.ndarray:
        """The bars with ``after < ts <= end``, ascending, as a structured array (ts in epoch
        ms, then open, high, low, close, volume) read straight from the database: the few new
        bars a live consumer asks for after each closed candle, without a frame."""
        bounds = _Bounds(
            None,
            _epoch_ms(end, "end"),
            None if after is None else _epoch_ms(after, "after"),
            None,
        )
        return self._read(symbol, timeframe, bounds)

    def last_ts(self, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """Open time of the newest stored bar, or None for an empty series."""
        newest = self._session.scalar(
            select(func.max(CANDLES.c.ts)).where(*self._where(symbol, timeframe))
        )
        return None if newest is None else _ms_to_timestamp(newest)

    def count(
        self,
        symbol: str,
        timeframe: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> int:
        """How many bars are stored (in ``start <= ts <= end`` when given)."""
        conditions = self._where(symbol, timeframe, start=start, end=end)
        statement = select(func.count()).select_from(CANDLES).where(*conditions)
        return int(self._session.scalar(statement) or 0)

    def has_bars(
        self,
        symbol: str,
        timeframe: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> bool:
        """Whether a bar is stored (in ``start <= ts <= end`` when given): one key lookup,
        where ``count`` reads every bar of the range."""
        conditions = self._where(symbol, timeframe, start=start, end=end)
        statement = select(CANDLES.c.ts).where(*conditions).limit(1)
        return self._session.scalar(statement) is not None

    def timeframes(self, symbol: str) -> list[str]:
        """The timeframes stored for ``symbol``, sorted: a key lookup per timeframe (a loose
        index scan), where ``series`` counts every bar of every series."""
        found: list[str] = []
        while True:
            conditions = [CANDLES.c.symbol == symbol]
            if found:
                conditions.append(CANDLES.c.timeframe > found[-1])
            statement = select(func.min(CANDLES.c.timeframe)).where(*conditions)
            following = self._session.scalar(statement)
            if following is None:
                return found
            found.append(following)

    def series(self) -> list[SeriesInfo]:
        """Every stored (symbol, timeframe) series with its bar count and time span."""
        statement = (
            select(
                CANDLES.c.symbol,
                CANDLES.c.timeframe,
                func.count(),
                func.min(CANDLES.c.ts),
                func.max(CANDLES.c.ts),
            )
            .group_by(CANDLES.c.symbol, CANDLES.c.timeframe)
            .order_by(CANDLES.c.symbol, CANDLES.c.timeframe)
        )
        return [
            SeriesInfo(symbol, timeframe, int(n), _ms_to_timestamp(first), _ms_to_timestamp(last))
            for symbol, timeframe, n, first, last in self._session.execute(statement)
        ]

    def span(self, symbol: str, timeframe: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """The first and last bar's time of one series (None: no bar stored): two lookups in
        the (symbol, timeframe, ts) key, where ``series`` counts every bar of every series."""
        statement = select(func.min(CANDLES.c.ts), func.max(CANDLES.c.ts)).where(
            *self._where(symbol, timeframe)
        )
        first, last = self._session.execute(statement).one()
        if first is None:
            return None
        return _ms_to_timestamp(first), _ms_to_timestamp(last)

    def delete_series(self, symbol: str, timeframe: str) -> int:
        """Delete every bar of one series; returns how many were deleted."""
        self._written().add((symbol, timeframe))
        result = self._session.execute(delete(CANDLES).where(*self._where(symbol, timeframe)))
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        if deleted:
            self._session.execute(
                delete(VERSIONS).where(
                    VERSIONS.c.symbol == symbol, VERSIONS.c.timeframe == timeframe
                )
            )
        return deleted

    # -- the data version and the columnar cache --------------------------------------------
    def _cache(self) -> CandleFileCache | None:
        return cache_for(self._session.connection().engine.url)

    def _written(self) -> set[tuple[str, str]]:
        return self._session.info.setdefault(_WRITTEN, set())

    def _version(self, symbol: str, timeframe: str) -> str | None:
        return self._session.scalar(
            select(VERSIONS.c.version).where(
                VERSIONS.c.symbol == symbol, VERSIONS.c.timeframe == timeframe
            )
        )

    def _new_version(self, symbol: str, timeframe: str) -> str:
        version = uuid.uuid4().hex  # random: never repeats, not even in a recreated database
        self._session.execute(
            _SET_VERSION, {"symbol": symbol, "timeframe": timeframe, "version": version}
        )
        return version

    def _query(self, symbol: str, timeframe: str, bounds: _Bounds) -> pd.DataFrame:
        bars = self._read(symbol, timeframe, bounds)
        return _frame(bars["ts"], {name: bars[name] for name in CANDLE_COLUMNS})

    def _read(self, symbol: str, timeframe: str, bounds: _Bounds) -> np.ndarray:
        """The bars within ``bounds``, ascending, as a NATIVE_DTYPE array (from the database)."""
        conditions = [CANDLES.c.symbol == symbol, CANDLES.c.timeframe == timeframe]
        if bounds.start is not None:
            conditions.append(CANDLES.c.ts >= bounds.start)
        if bounds.end is not None:
            conditions.append(CANDLES.c.ts <= bounds.end)
        if bounds.after is not None:
            conditions.append(CANDLES.c.ts > bounds.after)
        columns = [CANDLES.c.ts, *(CANDLES.c[name] for name in CANDLE_COLUMNS)]
        statement = select(*columns).where(*conditions)
        if bounds.last is None:
            return read_bars(self._session, statement.order_by(CANDLES.c.ts))
        statement = statement.order_by(CANDLES.c.ts.desc()).limit(bounds.last)
        return read_bars(self._session, statement)[::-1]

    def _where(
        self,
        symbol: str,
        timeframe: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        after: TimeLike | None = None,
    ) -> list[ColumnElement[bool]]:
        conditions = [CANDLES.c.symbol == symbol, CANDLES.c.timeframe == timeframe]
        if start is not None:
            conditions.append(CANDLES.c.ts >= _epoch_ms(start, "start", round_up=True))
        if end is not None:
            conditions.append(CANDLES.c.ts <= _epoch_ms(end, "end"))
        if after is not None:
            conditions.append(CANDLES.c.ts > _epoch_ms(after, "after"))
        return conditions


# The cache files of series written in a transaction are made once it commits; a rollback
# forgets them, and the written series are read from the cache again after either.
@event.listens_for(Session, "after_commit")
def _fill_after_commit(session: Session) -> None:
    session.info.pop(_WRITTEN, None)
    for cache, symbol, timeframe, version, ts, columns in session.info.pop(_FILLS, []):
        try:
            cache.store(symbol, timeframe, version, ts, columns)
        except Exception:  # a cache must never fail a committed write
            log.exception("could not cache %s %s", symbol, timeframe)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, previous: SessionTransaction) -> None:
    session.info.pop(_FILLS, None)  # even a savepoint's: its version may be undone
    if previous.parent is None:
        session.info.pop(_WRITTEN, None)
