"""SignalRepository: strategy signals, bulk inserted, read back filtered and aggregated.

Bulk inserts are in ``_signal_io`` (binary COPY on PostgreSQL, executemany of plain tuples on
SQLite). A signal whose config is its run's stores none (NULL): reads fill in the run's, and
typed metadata (float values of the run's keys) reads back as the same mapping.
``utc_day`` groups by the UTC calendar day on both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, NamedTuple, TypedDict, Unpack

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Date,
    FunctionElement,
    Select,
    Table,
    func,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from database.models import StrategySignal
from database.records import RUN_MODES, SIGNAL_TYPES, SignalBlock, SignalRecord
from database.repositories._common import (
    DEFAULT_CHUNK_ROWS,
    IN_CHUNK,
    TimeLike,
    choices,
    chunks,
    ordered,
    where_matching,
)
from database.repositories._signal_io import insert_signals as insert_signal_rows
from database.repositories.runs import RUNS
from database.repositories.signal_blocks import (
    Block,
    BlockQuery,
    block_count,
    blocks_frame,
    read_blocks,
)

SIGNALS: Table = StrategySignal.__table__  # type: ignore[assignment]


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
        batch = new_signals(records)
        insert_signals(self._session, batch, self._chunk_rows)
        return len(batch)

    def list(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        **filters: Unpack[SignalFilters],
    ) -> list[SignalRecord]:
        """Signals matching every given filter (``start <= timestamp <= end``, ``confidence >=
        min_confidence``, ``mode`` of their run), oldest first unless ``newest_first``."""
        statement = self._ordered(select(SIGNALS), limit, newest_first, **filters)
        rows = self._session.execute(statement).mappings().all()
        configs = _run_configs(self._session, rows)
        records = [_signal_record(row, configs) for row in rows]
        blocks = self._blocks(filters)
        if not blocks:
            return records
        stored = pd.DataFrame(
            {
                "timestamp": pd.to_datetime([r.timestamp for r in records], utc=True).as_unit("us"),
                "_block": -1,
                "id": pd.array([r.id for r in records], dtype="Int64"),
                "run_id": pd.array([r.run_id for r in records], dtype="Int64"),
                "_position": 0,
                "_row": range(len(records)),
            }
        )
        both = pd.concat([stored, blocks_frame(blocks)], ignore_index=True)
        chosen = _sorted(both, newest_first).head(_limit(limit))
        return [
            records[row] if block < 0 else blocks[block].records([row])[0]
            for block, row in zip(chosen["_block"].tolist(), chosen["_row"].tolist(), strict=True)
        ]

    def frame(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        **filters: Unpack[SignalFilters],
    ) -> pd.DataFrame:
        """The signals of ``list`` as a DataFrame (``SIGNAL_FRAME_COLUMNS``, ``timestamp`` UTC),
        without the JSON config and metadata: the cheap read for charts and large ranges. ``id``
        is <NA> for signals stored in a run's block (``signal_blocks``)."""
        columns = [SIGNALS.c[name] for name in SIGNAL_FRAME_COLUMNS]
        statement = self._ordered(select(*columns), limit, newest_first, **filters)
        rows = self._session.execute(statement).all()
        frame = pd.DataFrame(rows, columns=list(SIGNAL_FRAME_COLUMNS))
        frame["run_id"] = frame["run_id"].astype("Int64")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        frame = frame.astype({"id": "Int64", "price": "float64", "confidence": "float64"})
        blocks = self._blocks(filters)
        if not blocks:
            return frame
        stored = frame.assign(_block=-1, _position=0)
        stored["timestamp"] = stored["timestamp"].dt.as_unit("us")
        both = pd.concat([stored, blocks_frame(blocks)], ignore_index=True)
        merged = _sorted(both, newest_first).head(_limit(limit))
        return merged[list(SIGNAL_FRAME_COLUMNS)].reset_index(drop=True)

    def count(self, **filters: Unpack[SignalFilters]) -> int:
        """How many signals match the filters of ``list``."""
        statement = self._filtered(select(func.count()).select_from(SIGNALS), **filters)
        rows = int(self._session.scalar(statement) or 0)
        return rows + block_count(self._session, self._block_query(filters))

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

    def _block_query(self, filters: SignalFilters) -> BlockQuery:
        confidence = filters.get("min_confidence")
        return BlockQuery.of(filters, None if confidence is None else _confidence(confidence))

    def _blocks(self, filters: SignalFilters) -> list[Block]:
        """The run blocks' signals that match ``filters``."""
        return read_blocks(self._session, self._block_query(filters))

    def _ordered(
        self,
        statement: Select[Any],
        limit: int | None,
        newest_first: bool,
        **filters: Unpack[SignalFilters],
    ) -> Select[Any]:
        c = SIGNALS.c
        order = (c.timestamp.desc(), c.id.desc()) if newest_first else (c.timestamp, c.id)
        return ordered(self._filtered(statement, **filters), order, _limit(limit))

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
        blocks = self._blocks(filters)
        if blocks:
            frame = _with_blocks(frame, blocks_frame(blocks), keys, "mean_confidence" in measures)
        if "day" in keys:
            frame["day"] = pd.to_datetime(frame["day"]).dt.as_unit("s").dt.tz_localize("UTC")
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
        statement = where_matching(
            statement,
            SIGNALS,
            {
                "strategy_name": strategy_name,
                "symbol": symbol,
                "timeframe": timeframe,
                "run_id": run_id,
            },
            within="timestamp",
            start=start,
            end=end,
        )
        if signal_types is not None:
            types = choices("signal_types", signal_types, SIGNAL_TYPES)
            statement = statement.where(c.signal_type.in_(types))
        if min_confidence is not None:
            statement = statement.where(c.confidence >= _confidence(min_confidence))
        if mode is not None:
            modes = choices("mode", mode, RUN_MODES)
            statement = statement.where(
                c.run_id.in_(select(RUNS.c.id).where(RUNS.c.mode.in_(modes)))
            )
        return statement


def _sorted(frame: pd.DataFrame, newest_first: bool) -> pd.DataFrame:
    """Rows (``_block`` -1, by id) before block signals (by run, place) among equal times."""
    order = ["timestamp", "_block", "id", "run_id", "_position"]
    present = [name for name in order if name in frame]
    flag = frame["_block"].ge(0)
    keyed = frame.assign(_block=flag.astype("int8"))
    ranked = keyed.sort_values(present, ascending=not newest_first, kind="stable")
    return frame.loc[ranked.index]


def _with_blocks(
    stored: pd.DataFrame, blocks: pd.DataFrame, keys: list[str], mean: bool
) -> pd.DataFrame:
    """The groups of the rows' aggregate ``stored`` and of the block signals combined."""
    if "day" in keys:
        blocks = blocks.assign(day=blocks["timestamp"].dt.floor("D").dt.tz_localize(None))
        stored = stored.assign(day=pd.to_datetime(stored["day"]))
    totals = stored.assign(_sum=stored["mean_confidence"] * stored["signals"] if mean else 0.0)
    totals["_sum"] = totals["_sum"].fillna(0.0)
    if keys:
        extra = blocks.groupby(keys, dropna=False, sort=False).agg(
            signals=("price", "size"), _sum=("confidence", "sum")
        )
        extra = extra.reset_index()
    else:
        extra = pd.DataFrame({"signals": [len(blocks)], "_sum": [blocks["confidence"].sum()]})
    both = pd.concat([totals[[*keys, "signals", "_sum"]], extra], ignore_index=True)
    if "run_id" in keys:
        both["run_id"] = both["run_id"].astype("Int64")
    if keys:
        both = both.groupby(keys, dropna=False, sort=True).sum().reset_index()
    else:
        both = both.sum().to_frame().T
    if mean:
        both["mean_confidence"] = both["_sum"] / both["signals"].where(both["signals"] > 0)
    return both.drop(columns="_sum")


def _limit(value: int | None) -> int | None:
    # runs and trades pass their limit through unchecked; signals always refused a bad one
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"limit={value!r} is invalid: expected an integer >= 0")
    return value


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


def new_signals(records: Iterable[SignalRecord]) -> list[SignalRecord]:
    batch = list(records)
    for index, record in enumerate(batch):
        if not isinstance(record, SignalRecord):
            raise TypeError(f"signal {index}: expected SignalRecord, got {type(record).__name__}")
        if record.id is not None:
            raise ValueError(f"signal {index}: signal {record.id} is already stored")
    return batch


def insert_signals(
    session: Session,
    signals: Sequence[SignalRecord] | SignalBlock,
    chunk_rows: int,
    *,
    run_id: int | None = None,
    run_config: Mapping[str, Any] | None = None,
    typed_keys: Sequence[str] | None = None,
) -> None:
    """Insert checked signals in bulk (``_signal_io``); ``run_id`` / ``run_config``: the new
    run they belong to; ``typed_keys``: its ``signal_metadata_keys``."""
    insert_signal_rows(
        session,
        SIGNALS,
        signals,
        chunk_rows,
        run_id=run_id,
        run_config=run_config,
        typed_keys=typed_keys,
    )


class _RunParts(NamedTuple):
    config: Any
    metadata_keys: list[str] | None


def _run_configs(session: Session, rows: Sequence[Any]) -> dict[int, _RunParts]:
    """The config and typed metadata keys of each run whose signals among ``rows`` store
    their config or metadata on the run, one query per IN_CHUNK runs; each run's one mapping
    is shared by its signals."""
    wanted = sorted(
        {
            r["run_id"]
            for r in rows
            if r["run_id"]
            and (r["strategy_config"] is None or r["signal_metadata_values"] is not None)
        }
    )
    parts: dict[int, _RunParts] = {}
    for ids in chunks(wanted, IN_CHUNK):
        c = RUNS.c
        statement = select(c.id, c.config, c.signal_config, c.signal_metadata_keys).where(
            c.id.in_(ids)
        )
        parts.update(
            (run, _RunParts(config if shared is None else shared, keys))
            for run, config, shared, keys in session.execute(statement)
        )
    return parts


def _metadata(row: Any, run: _RunParts | None) -> Mapping[str, Any]:
    values = row["signal_metadata_values"]
    if values is None:
        return {} if row["signal_metadata"] is None else row["signal_metadata"]
    keys = None if run is None else run.metadata_keys
    numbers = np.frombuffer(values, dtype="<f8")
    if keys is None or len(keys) != len(numbers):
        raise ValueError(
            f"signal {row['id']} stores {len(numbers)} typed metadata values but its run "
            f"{row['run_id']} names {0 if keys is None else len(keys)} keys"
        )
    return dict(zip(keys, numbers.tolist(), strict=True))


def _signal_record(row: Any, runs: Mapping[int, _RunParts]) -> SignalRecord:
    run = runs.get(row["run_id"]) if row["run_id"] is not None else None
    config = row["strategy_config"]
    if config is None:  # the run's config, stored once on the run ({} without a run)
        config = run.config if run is not None else {}
    return SignalRecord(
        id=row["id"],
        strategy_name=row["strategy_name"],
        strategy_config=config,
        symbol=row["symbol"],
        timeframe=row["timeframe"],
        timestamp=row["timestamp"],
        signal_type=row["signal_type"],
        price=row["price"],
        confidence=row["confidence"],
        metadata=_metadata(row, run),
        run_id=row["run_id"],
    )
