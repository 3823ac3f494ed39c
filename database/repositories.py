"""Repositories: typed reads and bulk writes over a Session the caller owns.

A repository never commits; the service around it owns the transaction::

    with factory.begin() as session:
        CandleRepository(session).upsert("SP500", "1d", frame)
        TradeRepository(session).add_many(trades)

Bulk paths use Core statements on the tables (executemany, raw rows), not ORM objects.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn, TypedDict, Unpack

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Double,
    FunctionElement,
    Select,
    String,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    table,
)
from sqlalchemy import column as sql_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from database.errors import DuplicateTradeError, RunNotFoundError, TradeImmutableError
from database.models import Candle, StrategyRun, StrategySignal, Trade
from database.records import (
    RUN_MODES,
    RUN_STATUSES,
    SIGNAL_TYPES,
    RetentionPolicy,
    RetentionReport,
    SeriesInfo,
    SignalRecord,
    StrategyRunRecord,
    TradeRecord,
    utc_datetime,
)
from market.candles import CANDLE_COLUMNS
from market.timeframes import Timeframe, from_epoch_ms, to_epoch_ms

TimeLike = datetime | str
"""A timezone-aware time: a datetime / pd.Timestamp, or an ISO string with an offset."""

CANDLES: Table = Candle.__table__  # type: ignore[assignment]
RUNS: Table = StrategyRun.__table__  # type: ignore[assignment]
SIGNALS: Table = StrategySignal.__table__  # type: ignore[assignment]
TRADES: Table = Trade.__table__  # type: ignore[assignment]

DEFAULT_CHUNK_ROWS = 10_000
_IN_CHUNK = 500  # ids per IN (...) query, far below SQLite's bound-parameter limit
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UTC_NAMES = ("UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _timestamp(value: TimeLike, name: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(
            f"{name}={value!r} is naive: pass a timezone-aware time (UTC), e.g. "
            "pd.Timestamp('2024-01-02', tz='UTC')"
        )
    return stamp.tz_convert("UTC")


def _epoch_ms(value: TimeLike, name: str, *, round_up: bool = False) -> int:
    # via datetime, not nanoseconds: end=pd.Timestamp("9999-12-31", tz="UTC") must work too
    stamp = _timestamp(value, name)
    delta = stamp.to_pydatetime(warn=False) - _EPOCH
    if round_up and stamp.nanosecond:
        delta += timedelta(microseconds=1)
    step = timedelta(milliseconds=1)
    return -(-delta // step) if round_up else delta // step


def _ms_to_timestamp(ms: int) -> pd.Timestamp:
    return from_epoch_ms(np.array([ms], dtype=np.int64))[0]


def _check_key(symbol: str, timeframe: str) -> None:
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError(f"symbol={symbol!r} is invalid: expected a non-empty string")
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
        dialect = self._session.get_bind().dialect.name
        if dialect == "postgresql":
            self._upsert_postgresql(symbol, timeframe, ts, columns)
        elif dialect == "sqlite":
            self._upsert_sqlite(symbol, timeframe, ts, columns)
        else:
            raise NotImplementedError(f"candle upsert is not implemented for {dialect}")
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
        rows = self._session.execute(statement).all()
        if last is not None:
            rows.reverse()
        return _rows_to_frame(rows)

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

    def _upsert_sqlite(
        self, symbol: str, timeframe: str, ts: np.ndarray, columns: dict[str, np.ndarray]
    ) -> None:
        statement = _on_conflict_update(sqlite.insert(CANDLES))
        values = [ts.tolist(), *(columns[c].tolist() for c in CANDLE_COLUMNS)]
        rows = [
            {"symbol": symbol, "timeframe": timeframe, "ts": t, "open": o, "high": h,
             "low": low, "close": c, "volume": v}
            for t, o, h, low, c, v in zip(*values, strict=True)
        ]  # fmt: skip
        for chunk in _chunks(rows, self._chunk_rows):
            self._session.execute(statement, chunk)  # sqlite3 executemany: one prepared statement

    def _upsert_postgresql(
        self, symbol: str, timeframe: str, ts: np.ndarray, columns: dict[str, np.ndarray]
    ) -> None:
        # SQLAlchemy 2.1 runs an ON CONFLICT executemany row by row on psycopg2 (no
        # insertmanyvalues batching): 100,000 bars took 13 s. Instead, one INSERT ... SELECT
        # FROM unnest(arrays) per chunk, each array sent as one text literal: psycopg2 would
        # send a list as ARRAY[...] of one expression per value, ten times slower to parse.
        arrays = (
            func.unnest(
                cast(bindparam("ts", type_=Text()), ARRAY(BigInteger)),
                *(cast(bindparam(name, type_=Text()), ARRAY(Double)) for name in CANDLE_COLUMNS),
            )
            .table_valued("ts", *CANDLE_COLUMNS)
            .render_derived(name="bars")
        )
        source = select(
            literal(symbol, String()).label("symbol"),
            literal(timeframe, String()).label("timeframe"),
            *arrays.c,
        )
        target = ["symbol", "timeframe", "ts", *CANDLE_COLUMNS]
        statement = _on_conflict_update(postgresql.insert(CANDLES).from_select(target, source))
        for start in range(0, len(ts), self._chunk_rows):
            window = slice(start, start + self._chunk_rows)
            params = {"ts": _pg_array_literal(ts[window])}
            params.update({c: _pg_array_literal(columns[c][window]) for c in CANDLE_COLUMNS})
            self._session.execute(statement, params)


def _pg_array_literal(values: np.ndarray) -> str:
    # repr() of a Python float is its shortest exact round-trip text
    return "{" + ",".join(map(repr, values.tolist())) + "}"


def _on_conflict_update(statement: Any) -> Any:
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[CANDLES.c.symbol, CANDLES.c.timeframe, CANDLES.c.ts],
        set_={name: new[name] for name in CANDLE_COLUMNS},
        # an unchanged bar is not rewritten (no dead row on PostgreSQL, no page write)
        where=or_(*(CANDLES.c[name] != new[name] for name in CANDLE_COLUMNS)),
    )


def _rows_to_frame(rows: Sequence[Any]) -> pd.DataFrame:
    if rows:
        columns = list(zip(*rows, strict=True))
        ts = np.fromiter(columns[0], dtype=np.int64, count=len(rows))
        data = {
            name: np.fromiter(values, dtype=np.float64, count=len(rows))
            for name, values in zip(CANDLE_COLUMNS, columns[1:], strict=True)
        }
    else:
        ts = np.array([], dtype=np.int64)
        data = {name: np.array([], dtype=np.float64) for name in CANDLE_COLUMNS}
    return pd.DataFrame(data, index=from_epoch_ms(ts))


class StrategyRunRepository:
    """Strategy runs: created ``running``, then finished or failed exactly once."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def create(
        self,
        strategy_name: str,
        config: dict[str, Any],
        symbol: str,
        timeframe: str,
        mode: str,
        *,
        started_at: datetime | None = None,
    ) -> StrategyRunRecord:
        """Record a run that starts now (or at ``started_at``); returns it with its id."""
        if mode not in RUN_MODES:
            raise ValueError(f"mode={mode!r} is invalid: expected one of {', '.join(RUN_MODES)}")
        run = StrategyRun(
            strategy_name=strategy_name,
            config=dict(config),
            symbol=symbol,
            timeframe=timeframe,
            mode=mode,
            status="running",
            started_at=utc_datetime(started_at or datetime.now(UTC), "started_at"),
        )
        self._session.add(run)
        self._session.flush()
        return _run_record(run)

    def finish(
        self,
        run_id: int,
        status: str = "finished",
        error: str | None = None,
        finished_at: datetime | None = None,
    ) -> StrategyRunRecord:
        """Close a running run as ``finished`` or ``failed`` (with its error text)."""
        if status not in ("finished", "failed"):
            raise ValueError(f"status={status!r} is invalid: expected finished or failed")
        run = self._session.get(StrategyRun, run_id)
        if run is None:
            raise RunNotFoundError(f"no strategy run with id {run_id}")
        if run.status != "running":
            raise ValueError(f"strategy run {run_id} is already {run.status}")
        finished = utc_datetime(finished_at or datetime.now(UTC), "finished_at")
        if finished < run.started_at:
            raise ValueError(
                f"finished_at={finished.isoformat()} is before started_at="
                f"{run.started_at.isoformat()}"
            )
        run.status, run.error, run.finished_at = status, error, finished
        self._session.flush()
        return _run_record(run)

    def get(self, run_id: int) -> StrategyRunRecord | None:
        run = self._session.get(StrategyRun, run_id)
        return None if run is None else _run_record(run)

    def list(
        self,
        *,
        strategy_name: str | None = None,
        symbol: str | None = None,
        mode: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[StrategyRunRecord]:
        """Runs matching every given filter, newest first."""
        statement = _where_equal_and_within(
            select(StrategyRun),
            (
                (StrategyRun.strategy_name, strategy_name),
                (StrategyRun.symbol, symbol),
                (StrategyRun.mode, mode),
                (StrategyRun.status, status),
            ),
            StrategyRun.started_at,
            None,
            None,
        )
        statement = statement.order_by(StrategyRun.started_at.desc(), StrategyRun.id.desc())
        if limit is not None:
            statement = statement.limit(limit)
        return [_run_record(run) for run in self._session.scalars(statement)]


def _run_record(run: StrategyRun) -> StrategyRunRecord:
    return StrategyRunRecord(
        id=run.id,
        strategy_name=run.strategy_name,
        config=run.config,
        symbol=run.symbol,
        timeframe=run.timeframe,
        mode=run.mode,  # type: ignore[arg-type]
        status=run.status,  # type: ignore[arg-type]
        started_at=run.started_at,
        finished_at=run.finished_at,
        error=run.error,
    )


class SignalFilters(TypedDict, total=False):
    """Filters of the signal queries; each given one must hold, None means "any"."""

    strategy_name: str | None
    symbol: str | None
    timeframe: str | None
    start: TimeLike | None
    end: TimeLike | None
    signal_types: str | Iterable[str] | None
    min_confidence: float | None
    run_id: int | None
    mode: str | Iterable[str] | None


SIGNAL_GROUP_KEYS = ("strategy_name", "symbol", "timeframe", "signal_type", "run_id", "mode", "day")
"""What ``signal_counts`` and ``average_confidence`` can group by; ``day`` is the UTC day."""

SIGNAL_FRAME_COLUMNS = (
    "id", "run_id", "strategy_name", "symbol", "timeframe", "timestamp", "signal_type", "price",
    "confidence",
)  # fmt: skip


class SignalRepository:
    """Strategy signals: bulk insert, filtered reads and aggregations (filters: ``_filtered``)."""

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows

    def add_many(self, records: Iterable[SignalRecord]) -> int:
        """Store new signals in bulk; returns how many."""
        batch = _new_signals(records)
        _insert_signals(self._session, batch, self._chunk_rows)
        return len(batch)

    def list(
        self,
        *,
        strategy_name: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        signal_types: str | Iterable[str] | None = None,
        min_confidence: float | None = None,
        run_id: int | None = None,
        mode: str | Iterable[str] | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[SignalRecord]:
        """Signals matching every given filter (``start <= timestamp <= end``, ``confidence >=
        min_confidence``, ``mode`` of their run), oldest first unless ``newest_first``."""
        statement = self._ordered(
            select(SIGNALS),
            limit,
            newest_first,
            strategy_name=strategy_name,
            symbol=symbol,
            timeframe=timeframe,
            start=start,
            end=end,
            signal_types=signal_types,
            min_confidence=min_confidence,
            run_id=run_id,
            mode=mode,
        )
        return [_signal_record(row) for row in self._session.execute(statement).mappings()]

    def frame(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        **filters: Unpack[SignalFilters],
    ) -> pd.DataFrame:
        """The signals of ``list`` as a DataFrame (``SIGNAL_FRAME_COLUMNS``, ``timestamp`` UTC),
        without the JSON config and metadata: the cheap read for charts and large ranges."""
        columns = [SIGNALS.c[name] for name in SIGNAL_FRAME_COLUMNS]
        statement = self._ordered(select(*columns), limit, newest_first, **filters)
        rows = self._session.execute(statement).all()
        frame = pd.DataFrame(rows, columns=list(SIGNAL_FRAME_COLUMNS))
        frame["run_id"] = frame["run_id"].astype("Int64")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame.astype({"id": "int64", "price": "float64", "confidence": "float64"})

    def count(self, **filters: Unpack[SignalFilters]) -> int:
        """How many signals match the filters of ``list``."""
        statement = self._filtered(select(func.count()).select_from(SIGNALS), **filters)
        return int(self._session.scalar(statement) or 0)

    def signal_counts(
        self,
        by: Sequence[str] = ("strategy_name", "day"),
        **filters: Unpack[SignalFilters],
    ) -> pd.DataFrame:
        """Signals per group: columns ``*by, signals``, sorted by ``by``.

        ``by`` holds names of ``SIGNAL_GROUP_KEYS``; ``day`` is the UTC calendar day (midnight
        UTC timestamps) on every backend, whatever the database session's time zone.
        """
        return self._aggregate(by, {"signals": func.count()}, filters)

    def average_confidence(
        self,
        by: Sequence[str] = ("strategy_name",),
        **filters: Unpack[SignalFilters],
    ) -> pd.DataFrame:
        """Mean confidence per group: columns ``*by, signals, mean_confidence``."""
        measures = {"signals": func.count(), "mean_confidence": func.avg(SIGNALS.c.confidence)}
        return self._aggregate(by, measures, filters)

    def _ordered(
        self,
        statement: Select[Any],
        limit: int | None,
        newest_first: bool,
        **filters: Unpack[SignalFilters],
    ) -> Select[Any]:
        c = SIGNALS.c
        order = (c.timestamp.desc(), c.id.desc()) if newest_first else (c.timestamp, c.id)
        statement = self._filtered(statement, **filters).order_by(*order)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ValueError(f"limit={limit!r} is invalid: expected an integer >= 0")
            statement = statement.limit(limit)
        return statement

    def _aggregate(
        self,
        by: Sequence[str],
        measures: Mapping[str, ColumnElement[Any]],
        filters: SignalFilters,
    ) -> pd.DataFrame:
        keys = [by] if isinstance(by, str) else list(by)
        unknown = [key for key in keys if key not in SIGNAL_GROUP_KEYS]
        if unknown or len(set(keys)) != len(keys):
            raise ValueError(
                f"by={by!r} is invalid: expected distinct names among "
                f"{', '.join(SIGNAL_GROUP_KEYS)}"
            )
        source: Any = SIGNALS
        if "mode" in keys:  # signals without a run count under mode None
            source = SIGNALS.outerjoin(RUNS, RUNS.c.id == SIGNALS.c.run_id)
        groups = [_group_column(key).label(key) for key in keys]
        statement = self._filtered(
            select(*groups, *(m.label(name) for name, m in measures.items())).select_from(source),
            **filters,
        )
        if groups:
            statement = statement.group_by(*groups).order_by(*groups)
        frame = pd.DataFrame(self._session.execute(statement).all(), columns=[*keys, *measures])
        if "day" in keys:
            frame["day"] = pd.to_datetime(frame["day"]).dt.tz_localize("UTC")
        if "run_id" in keys:
            frame["run_id"] = frame["run_id"].astype("Int64")
        frame["signals"] = frame["signals"].astype("int64")
        if "mean_confidence" in measures:
            frame["mean_confidence"] = frame["mean_confidence"].astype("float64")
        return frame

    @staticmethod
    def _filtered(
        statement: Select[Any],
        *,
        strategy_name: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        signal_types: str | Iterable[str] | None = None,
        min_confidence: float | None = None,
        run_id: int | None = None,
        mode: str | Iterable[str] | None = None,
    ) -> Select[Any]:
        c = SIGNALS.c
        statement = _where_equal_and_within(
            statement,
            (
                (c.strategy_name, strategy_name),
                (c.symbol, symbol),
                (c.timeframe, timeframe),
                (c.run_id, run_id),
            ),
            c.timestamp,
            start,
            end,
        )
        if signal_types is not None:
            types = _choices("signal_types", signal_types, SIGNAL_TYPES)
            statement = statement.where(c.signal_type.in_(types))
        if min_confidence is not None:
            statement = statement.where(c.confidence >= _confidence(min_confidence))
        if mode is not None:
            modes = _choices("mode", mode, RUN_MODES)
            statement = statement.where(
                c.run_id.in_(select(RUNS.c.id).where(RUNS.c.mode.in_(modes)))
            )
        return statement


def _choices(name: str, values: str | Iterable[str], allowed: tuple[str, ...]) -> list[str]:
    chosen = [values] if isinstance(values, str) else list(values)
    unknown = [value for value in chosen if value not in allowed]
    if unknown:
        raise ValueError(
            f"{name}={values!r}: unknown {', '.join(map(repr, unknown))}; "
            f"expected among {', '.join(allowed)}"
        )
    return chosen


def _confidence(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"min_confidence={value!r} is invalid: expected a number from 0 to 1")
    return float(value)


class utc_day(FunctionElement[date]):
    """The UTC calendar day of a timestamp column, as a DATE, on SQLite and PostgreSQL."""

    type = Date()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # timestamptz -> date would use the session's TimeZone, not UTC
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # UTCDateTime stores the UTC wall time as text: its date part is the UTC day
    return f"date({compiler.process(element.clauses, **kw)})"


def _group_column(key: str) -> ColumnElement[Any]:
    if key == "day":
        return utc_day(SIGNALS.c.timestamp)
    if key == "mode":
        return RUNS.c.mode
    return SIGNALS.c[key]


_SIGNAL_COLUMNS = (
    "strategy_name", "strategy_config", "symbol", "timeframe", "timestamp", "signal_type",
    "price", "confidence", "signal_metadata", "run_id",
)  # fmt: skip
# untyped columns: values arrive already in the stored form (JSON text, UTC wall time text)
_RAW_SIGNALS = table(SIGNALS.name, *(sql_column(name) for name in _SIGNAL_COLUMNS))


def _new_signals(records: Iterable[SignalRecord]) -> list[SignalRecord]:
    batch = list(records)
    for index, record in enumerate(batch):
        if not isinstance(record, SignalRecord):
            raise TypeError(f"signal {index}: expected SignalRecord, got {type(record).__name__}")
        if record.id is not None:
            raise ValueError(f"signal {index}: signal {record.id} is already stored")
    return batch


def _insert_signals(
    session: Session,
    records: Sequence[SignalRecord],
    chunk_rows: int,
    *,
    run_id: int | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> None:
    """Insert checked records (with ``run_id`` / ``run_config`` for those without their own).

    Values are serialized here, not by the column types: SQLAlchemy's per-row processing made
    100,000 signals take 2 s on SQLite and 8 s on PostgreSQL.
    """
    if not records:
        return
    if session.get_bind().dialect.name == "postgresql":
        _insert_signals_postgresql(session, records, chunk_rows, run_id, run_config)
        return
    # one run's signals share one config mapping: serialize it once
    dumps: dict[int, str] = {}

    def config_text(config: Mapping[str, Any]) -> str:
        key = id(config)
        if key not in dumps:
            dumps[key] = json.dumps(dict(config))
        return dumps[key]

    rows = [
        {
            "strategy_name": r.strategy_name,
            "strategy_config": config_text(r.strategy_config or run_config or {}),
            "symbol": r.symbol,
            "timeframe": r.timeframe,
            "timestamp": r.timestamp.replace(tzinfo=None).isoformat(" ", "microseconds"),
            "signal_type": r.signal_type,
            "price": r.price,
            "confidence": r.confidence,
            "signal_metadata": json.dumps(dict(r.metadata)),
            "run_id": r.run_id if run_id is None else run_id,
        }
        for r in records
    ]
    for chunk in _chunks(rows, chunk_rows):
        session.execute(insert(_RAW_SIGNALS), chunk)  # sqlite3 executemany


def _insert_signals_postgresql(
    session: Session,
    records: Sequence[SignalRecord],
    chunk_rows: int,
    run_id: int | None,
    run_config: Mapping[str, Any] | None,
) -> None:
    # COPY: 100,000 signals in ~1 s; executemany took 8 s, INSERT ... SELECT FROM
    # jsonb_to_recordset or unnest(arrays) 2-3 s of server time. It runs on the session's own
    # connection, so it is part of the caller's transaction like any other statement.
    connection = session.connection()
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in _SIGNAL_COLUMNS)
    statement = f"COPY {preparer.format_table(SIGNALS)} ({names}) FROM STDIN WITH (FORMAT csv)"
    default_config = json.dumps(dict(run_config or {}))
    dumps: dict[int, str] = {}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for chunk in _chunks(records, chunk_rows):
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for r in chunk:
                config = r.strategy_config
                if not config:
                    config_text = default_config
                elif (config_text := dumps.get(id(config))) is None:
                    config_text = dumps[id(config)] = json.dumps(dict(config))
                writer.writerow(
                    (
                        r.strategy_name, config_text, r.symbol, r.timeframe,
                        r.timestamp.isoformat(), r.signal_type, r.price, r.confidence,
                        json.dumps(dict(r.metadata)), r.run_id if run_id is None else run_id,
                    )
                )  # fmt: skip
            buffer.seek(0)
            try:
                cursor.copy_expert(statement, buffer)
            except connection.dialect.loaded_dbapi.Error as exc:
                # the same IntegrityError etc. an INSERT would raise through SQLAlchemy
                raise DBAPIError.instance(
                    statement, None, exc, connection.dialect.loaded_dbapi.Error
                ) from exc
    finally:
        cursor.close()


def _where_equal_and_within(
    statement: Select[Any],
    equal: Iterable[tuple[Any, Any]],
    time_column: Any,
    start: TimeLike | None,
    end: TimeLike | None,
) -> Select[Any]:
    """Filters shared by the run, signal and trade queries: each given column equals its
    value, and ``start <= time_column <= end``. None means "any"."""
    for column, value in equal:
        if value is not None:
            statement = statement.where(column == value)
    if start is not None:
        statement = statement.where(time_column >= _timestamp(start, "start"))
    if end is not None:
        statement = statement.where(time_column <= _timestamp(end, "end"))
    return statement


def _signal_record(row: Any) -> SignalRecord:
    return SignalRecord(
        id=row["id"],
        strategy_name=row["strategy_name"],
        strategy_config=row["strategy_config"],
        symbol=row["symbol"],
        timeframe=row["timeframe"],
        timestamp=row["timestamp"],
        signal_type=row["signal_type"],
        price=row["price"],
        confidence=row["confidence"],
        metadata=row["signal_metadata"],
        run_id=row["run_id"],
    )


class StrategyRepository:
    """The facade a strategy service uses: runs with their signals, queries, retention.

    Never commits; one ``save_run`` is all or nothing within the caller's transaction::

        with factory.begin() as session:
            run = StrategyRepository(session).save_run("sma_cross", config, "SP500", "1d",
                                                       "backtest", signals)

    ``runs`` and ``signals`` are the underlying repositories (create/finish a live run,
    add signals to it, ``signals.list``/``frame``/``count`` and the aggregations).
    """

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows
        self.runs = StrategyRunRepository(session)
        self.signals = SignalRepository(session, chunk_rows=chunk_rows)

    def save_run(
        self,
        strategy_name: str,
        config: Mapping[str, Any],
        symbol: str,
        timeframe: str,
        mode: str,
        signals: Iterable[SignalRecord],
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        status: str = "finished",
        error: str | None = None,
    ) -> StrategyRunRecord:
        """Store a run and its signals in bulk; returns the run with its id.

        Every argument and signal is checked before anything is written (ValueError or
        TypeError naming the defect). Signals must be of this strategy, symbol and timeframe
        and carry no run id (they get the new run's); one without a config gets ``config``.
        A finished or failed run without ``finished_at`` finishes now.
        """
        for name, value in (
            ("strategy_name", strategy_name),
            ("symbol", symbol),
            ("timeframe", timeframe),
        ):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name}={value!r} is invalid: expected a non-empty string")
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a mapping, got {type(config).__name__}")
        _choices("mode", mode, RUN_MODES)
        _choices("status", status, RUN_STATUSES)
        now = datetime.now(UTC)
        started = utc_datetime(started_at or now, "started_at")
        finished = None if finished_at is None else utc_datetime(finished_at, "finished_at")
        if status == "running" and finished is not None:
            raise ValueError("finished_at is given but status='running': a running run has none")
        if status != "running" and finished is None:
            finished = max(now, started)
        if finished is not None and finished < started:
            raise ValueError(
                f"finished_at={finished.isoformat()} is before started_at={started.isoformat()}"
            )
        batch = _new_signals(signals)
        run_key = {"strategy_name": strategy_name, "symbol": symbol, "timeframe": timeframe}
        for index, record in enumerate(batch):
            if record.run_id is not None:
                raise ValueError(
                    f"signal {index} already names run {record.run_id}; save_run assigns the "
                    "new run's id"
                )
            for name, expected in run_key.items():
                if getattr(record, name) != expected:
                    raise ValueError(
                        f"signal {index} has {name}={getattr(record, name)!r} but the run is "
                        f"for {name}={expected!r}"
                    )

        run = StrategyRun(
            strategy_name=strategy_name,
            config=dict(config),
            symbol=symbol,
            timeframe=timeframe,
            mode=mode,
            status=status,
            started_at=started,
            finished_at=finished,
            error=error,
        )
        self._session.add(run)
        self._session.flush()
        _insert_signals(self._session, batch, self._chunk_rows, run_id=run.id, run_config=config)
        return _run_record(run)

    def apply_retention(
        self, policy: RetentionPolicy, now: datetime | None = None
    ) -> RetentionReport:
        """Delete the analysis results older than the policy keeps (see ``RetentionPolicy``).

        Two bulk DELETEs: the signals of backtest runs started before the cutoff (and, if
        the policy says so, signals without a run whose bar time is before it), then those
        runs. Live and paper runs and their signals are never touched, nor is a running
        backtest; a backtest run that trades refer to keeps its row (trades are immutable).
        """
        if not isinstance(policy, RetentionPolicy):
            raise TypeError(f"expected a RetentionPolicy, got {type(policy).__name__}")
        cutoff = utc_datetime(now or datetime.now(UTC), "now") - timedelta(
            days=policy.keep_analysis_days
        )
        expired = (
            select(RUNS.c.id)
            .where(RUNS.c.mode == "backtest")
            .where(RUNS.c.status != "running")
            .where(RUNS.c.started_at < cutoff)
        )
        doomed: ColumnElement[bool] = SIGNALS.c.run_id.in_(expired)
        if policy.include_unattached_signals:
            doomed = or_(doomed, SIGNALS.c.run_id.is_(None) & (SIGNALS.c.timestamp < cutoff))
        signals = self._session.execute(delete(SIGNALS).where(doomed))
        traded = exists().where(TRADES.c.run_id == RUNS.c.id)
        runs = self._session.execute(delete(RUNS).where(RUNS.c.id.in_(expired)).where(~traded))
        return RetentionReport(
            deleted_signals=int(signals.rowcount),  # type: ignore[attr-defined]
            deleted_runs=int(runs.rowcount),  # type: ignore[attr-defined]
            cutoff=cutoff,
        )


class TradeRepository:
    """Executed trades: append-only, keyed by ``trade_id``."""

    def __init__(self, session: Session, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self._session = session
        self._chunk_rows = chunk_rows

    def add_many(self, records: Iterable[TradeRecord]) -> int:
        """Store new trades in bulk; returns how many.

        A trade id repeated in the batch or already stored raises DuplicateTradeError naming
        them, and nothing is written.
        """
        batch = list(records)
        for record in batch:
            if not isinstance(record, TradeRecord):
                raise TypeError(f"expected TradeRecord, got {type(record).__name__}")
        counts = Counter(record.trade_id for record in batch)
        repeated = [trade_id for trade_id, n in counts.items() if n > 1]
        if repeated:
            raise DuplicateTradeError(repeated, where="within the batch")
        stored = [
            trade_id
            for ids in _chunks(list(counts), _IN_CHUNK)
            for trade_id in self._session.scalars(
                select(TRADES.c.trade_id).where(TRADES.c.trade_id.in_(ids))
            )
        ]
        if stored:
            raise DuplicateTradeError(stored, where="already stored")
        rows = [
            {
                "trade_id": r.trade_id,
                "account_id": r.account_id,
                "strategy_id": r.strategy_id,
                "run_id": r.run_id,
                "symbol": r.symbol,
                "side": r.side,
                "price": r.price,
                "volume": r.volume,
                "commission": r.commission,
                "execution_time": r.execution_time,
                "market_context": dict(r.market_context),
                "labels": list(r.labels),
                "pnl": r.pnl,
                "cumulative_pnl": r.cumulative_pnl,
            }
            for r in batch
        ]
        for chunk in _chunks(rows, self._chunk_rows):
            self._session.execute(insert(TRADES), chunk)
        return len(rows)

    def get(self, trade_id: str) -> TradeRecord | None:
        row = (
            self._session.execute(select(TRADES).where(TRADES.c.trade_id == trade_id))
            .mappings()
            .first()
        )
        return None if row is None else _trade_record(row)

    def list(
        self,
        *,
        symbol: str | None = None,
        strategy_id: str | None = None,
        account_id: str | None = None,
        run_id: int | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        limit: int | None = None,
    ) -> list[TradeRecord]:
        """Trades matching every given filter (``start <= execution_time <= end``), in
        execution order."""
        c = TRADES.c
        statement = _where_equal_and_within(
            select(TRADES),
            (
                (c.symbol, symbol),
                (c.strategy_id, strategy_id),
                (c.account_id, account_id),
                (c.run_id, run_id),
            ),
            c.execution_time,
            start,
            end,
        )
        statement = statement.order_by(c.execution_time, c.id)
        if limit is not None:
            statement = statement.limit(limit)
        return [_trade_record(row) for row in self._session.execute(statement).mappings()]

    def update(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored trade is immutable (record a correcting trade instead)."""
        raise TradeImmutableError("trades are immutable: a stored trade cannot be updated")

    def delete(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Always raises: a stored trade is immutable."""
        raise TradeImmutableError("trades are immutable: a stored trade cannot be deleted")


def _trade_record(row: Any) -> TradeRecord:
    return TradeRecord(
        trade_id=row["trade_id"],
        account_id=row["account_id"],
        strategy_id=row["strategy_id"],
        run_id=row["run_id"],
        symbol=row["symbol"],
        side=row["side"],
        price=row["price"],
        volume=row["volume"],
        commission=row["commission"],
        execution_time=row["execution_time"],
        market_context=row["market_context"],
        labels=tuple(row["labels"]),
        pnl=row["pnl"],
        cumulative_pnl=row["cumulative_pnl"],
    )
