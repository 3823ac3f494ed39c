"""CandleRepository: OHLCV bars keyed by (symbol, timeframe, ts), as candle frames.

Upserts validate the whole frame first, then write; frames are read as columns, without a
Python object per bar (``_candle_io`` says how, per database). ``ts`` is stored as epoch
milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Table, delete, func, select
from sqlalchemy.orm import Session

from database.models import Candle
from database.records import SeriesInfo, check_non_empty
from database.repositories._candle_io import read_bars, upsert_bars
from database.repositories._common import (
    DEFAULT_CHUNK_ROWS,
    TimeLike,
    aware_timestamp,
)
from market.candles import CANDLE_COLUMNS
from market.timeframes import Timeframe, from_epoch_ms, to_epoch_ms

CANDLES: Table = Candle.__table__  # type: ignore[assignment]

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
        upsert_bars(self._session, symbol, timeframe, ts, columns, chunk_rows=self._chunk_rows)
        return len(ts)

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
        conditions = self._where(symbol, timeframe, start=start, end=end, after=after)
        columns = [CANDLES.c.ts, *(CANDLES.c[name] for name in CANDLE_COLUMNS)]
        statement = select(*columns).where(*conditions)
        if last is not None:
            if isinstance(last, bool) or not isinstance(last, int | np.integer) or last < 0:
                raise ValueError(f"last={last!r} is invalid: expected an integer >= 0")
            statement = statement.order_by(CANDLES.c.ts.desc()).limit(int(last))
        else:
            statement = statement.order_by(CANDLES.c.ts)
        bars = read_bars(self._session, statement)
        if last is not None:
            bars = bars[::-1]
        data = {name: np.ascontiguousarray(bars[name]) for name in CANDLE_COLUMNS}
        return pd.DataFrame(data, index=from_epoch_ms(bars["ts"]))

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

    def delete_series(self, symbol: str, timeframe: str) -> int:
        """Delete every bar of one series; returns how many were deleted."""
        result = self._session.execute(delete(CANDLES).where(*self._where(symbol, timeframe)))
        return int(result.rowcount)  # type: ignore[attr-defined]

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
