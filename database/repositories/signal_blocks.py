"""A run's signals stored as one columnar block (table ``strategy_signal_blocks``, format 1).

A backtest of a million bars emits tens of thousands of signals that are written once, with
the run, and read back by run. Stored a row each, their write was the floor of saving a run
(about 5 us of SQLite per row whatever the binding: 0.3-0.45 s for 78,000 signals). A run
saved from a :class:`SignalBlock` stores them instead as one Arrow IPC stream beside its run
row (one INSERT on SQLite, one binary COPY on PostgreSQL), like its trades and equity
(``run_results``):

- columns ``timestamp`` (timestamp[us, UTC], microseconds as rows store them),
  ``signal_type`` (dictionary of ``SIGNAL_TYPES``), ``price``, ``confidence`` (float64) and
  ``m0 .. mK`` (float64): the values of the run's ``signal_metadata_keys``, in their order;
- the run row holds what every signal shares: strategy, symbol, timeframe, config
  (``signal_config`` or ``config``) and the metadata keys;
- ``signal_count``, ``first_ts`` and ``last_ts`` on the block row: a count without a time,
  type or confidence filter, and a time filter that misses the block, never decode it.

``SignalRepository`` reads blocks and rows through the same queries (filters, order, limits,
aggregations): a block's signals read back as the same values as rows, with ``id`` None (they
have no row). Only runs whose metadata is typed (floats with the same keys) or absent are
stored as a block; others keep their JSON metadata in rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Select, and_, delete, func, insert, select
from sqlalchemy.orm import Session

from database.models import StrategySignalBlock
from database.records import RUN_MODES, SIGNAL_TYPES, SignalBlock, SignalRecord
from database.repositories._common import aware_timestamp, choices
from database.repositories.run_results import copy_one_row, pg_micros
from database.repositories.runs import RUNS

BLOCKS = StrategySignalBlock.__table__
FORMAT = 1
_TYPE_VALUES = pa.array(SIGNAL_TYPES, pa.string())


def block_bytes(block: SignalBlock, keys: Sequence[str], stamps: pd.DatetimeIndex) -> bytes:
    """``block`` as one Arrow IPC stream (module docstring); ``keys``: its typed metadata keys,
    in the run's order (empty: none); ``stamps``: its times in microseconds."""
    codes = pd.Categorical(block.signal_type, categories=SIGNAL_TYPES).codes.astype(np.int8)
    arrays = [
        pa.array(stamps.asi8, pa.int64()).view(pa.timestamp("us", tz="UTC")),
        pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), _TYPE_VALUES),
        pa.array(block.price, pa.float64()),
        pa.array(block.confidence, pa.float64()),
        *(pa.array(np.asarray(block.metadata[key], np.float64)) for key in keys),
    ]
    names = ["timestamp", "signal_type", "price", "confidence", *_metadata_names(len(keys))]
    batch = pa.RecordBatch.from_arrays(arrays, names=names)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def insert_block(session: Session, run_id: int, block: SignalBlock, keys: Sequence[str]) -> None:
    """Store ``block`` (not empty) as run ``run_id``'s signals, in the session's transaction."""
    stamps = pd.DatetimeIndex(block.timestamp).as_unit("us")
    first, last = stamps.min().to_pydatetime(), stamps.max().to_pydatetime()
    data = block_bytes(block, keys, stamps)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        row = {"run_id": run_id, "format": FORMAT, "signal_count": len(stamps),
               "first_ts": first, "last_ts": last, "data": data}  # fmt: skip
        session.execute(insert(BLOCKS), [row])
        return
    copy_one_row(
        connection,
        "strategy_signal_blocks",
        {
            "run_id": run_id.to_bytes(8, "big", signed=True),
            "format": FORMAT.to_bytes(4, "big", signed=True),
            "signal_count": len(stamps).to_bytes(4, "big", signed=True),
            "first_ts": pg_micros(first).to_bytes(8, "big", signed=True),
            "last_ts": pg_micros(last).to_bytes(8, "big", signed=True),
            "data": data,
        },
    )


def _metadata_names(n: int) -> list[str]:
    return [f"m{k}" for k in range(n)]


@dataclass(frozen=True)
class Block:
    """One stored block's signals that pass a query's filters, as columns (``position``: each
    signal's place in its run, the order among its equal times)."""

    run_id: int
    strategy_name: str
    symbol: str
    timeframe: str
    mode: str
    config: Mapping[str, Any]
    keys: tuple[str, ...]
    timestamp: pd.DatetimeIndex
    signal_type: np.ndarray
    price: np.ndarray
    confidence: np.ndarray
    metadata: np.ndarray  # (n, len(keys)) float64
    position: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamp)

    def records(self, rows: Iterable[int]) -> list[SignalRecord]:
        """SignalRecords of the signals at ``rows`` (indices into these columns)."""
        out = []
        stamps = self.timestamp
        for row in rows:
            out.append(
                SignalRecord(
                    id=None,
                    strategy_name=self.strategy_name,
                    strategy_config=self.config,
                    symbol=self.symbol,
                    timeframe=self.timeframe,
                    timestamp=stamps[row].to_pydatetime(),
                    signal_type=str(self.signal_type[row]),
                    price=float(self.price[row]),
                    confidence=float(self.confidence[row]),
                    metadata=dict(zip(self.keys, self.metadata[row].tolist(), strict=True)),
                    run_id=self.run_id,
                )
            )
        return out


@dataclass(frozen=True)
class BlockQuery:
    """The signal filters as they apply to blocks (``SignalFilters``; validated once)."""

    strategy_name: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    signal_types: tuple[str, ...] | None = None
    min_confidence: float | None = None
    run_id: int | None = None
    modes: tuple[str, ...] | None = None

    @classmethod
    def of(cls, filters: Mapping[str, Any], min_confidence: float | None) -> BlockQuery:
        types, modes = filters.get("signal_types"), filters.get("mode")
        start, end = filters.get("start"), filters.get("end")
        return cls(
            strategy_name=filters.get("strategy_name"),
            symbol=filters.get("symbol"),
            timeframe=filters.get("timeframe"),
            start=None if start is None else aware_timestamp(start, "start"),
            end=None if end is None else aware_timestamp(end, "end"),
            signal_types=None
            if types is None
            else tuple(choices("signal_types", types, SIGNAL_TYPES)),
            min_confidence=min_confidence,
            run_id=filters.get("run_id"),
            modes=None if modes is None else tuple(choices("mode", modes, RUN_MODES)),
        )

    @property
    def per_signal(self) -> bool:
        """Whether a block's signals must be read to know which match (not only its run)."""
        return (
            self.start is not None
            or self.end is not None
            or self.signal_types is not None
            or self.min_confidence is not None
        )

    def runs(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` (over BLOCKS joined with RUNS) restricted to the blocks that may hold
        a matching signal."""
        c, r = BLOCKS.c, RUNS.c
        conditions = [
            column == value
            for column, value in (
                (r.strategy_name, self.strategy_name),
                (r.symbol, self.symbol),
                (r.timeframe, self.timeframe),
                (c.run_id, self.run_id),
            )
            if value is not None
        ]
        if self.start is not None:
            conditions.append(c.last_ts >= self.start.to_pydatetime())
        if self.end is not None:
            conditions.append(c.first_ts <= self.end.to_pydatetime())
        if self.modes is not None:
            conditions.append(r.mode.in_(self.modes))
        joined = statement.select_from(BLOCKS.join(RUNS, RUNS.c.id == BLOCKS.c.run_id))
        return joined.where(and_(*conditions)) if conditions else joined


_SIGNALS_HELD = select(func.coalesce(func.sum(BLOCKS.c.signal_count), 0))
"""How many signals the selected blocks hold (from their rows, none decoded)."""


def block_count(session: Session, query: BlockQuery) -> int:
    """How many block-stored signals match ``query``."""
    if not query.per_signal:
        return int(session.scalar(query.runs(_SIGNALS_HELD)) or 0)
    return sum(len(block) for block in read_blocks(session, query))


def read_blocks(session: Session, query: BlockQuery) -> list[Block]:
    """The stored blocks that hold signals matching ``query``, each cut to those, by run id."""
    r = RUNS.c
    statement = query.runs(
        select(
            BLOCKS.c.run_id,
            BLOCKS.c.format,
            BLOCKS.c.data,
            r.strategy_name,
            r.symbol,
            r.timeframe,
            r.mode,
            r.config,
            r.signal_config,
            r.signal_metadata_keys,
        )
    ).order_by(BLOCKS.c.run_id)
    blocks = []
    for row in session.execute(statement).mappings():
        block = _decode(row, query)
        if len(block):
            blocks.append(block)
    return blocks


def _decode(row: Mapping[str, Any], query: BlockQuery) -> Block:
    if row["format"] != FORMAT:
        raise ValueError(
            f"the signals of run {row['run_id']} are stored in format {row['format']}; this "
            f"version reads format {FORMAT}"
        )
    table = pa.ipc.open_stream(pa.py_buffer(row["data"])).read_all()
    keys = tuple(row["signal_metadata_keys"] or ())
    stamps = table.column("timestamp").to_numpy().view("int64")  # microseconds
    types = np.asarray(SIGNAL_TYPES, dtype=object)[
        table.column("signal_type").combine_chunks().indices.to_numpy()
    ]
    price = table.column("price").to_numpy()
    confidence = table.column("confidence").to_numpy()
    if keys:
        metadata = np.column_stack([table.column(n).to_numpy() for n in _metadata_names(len(keys))])
    else:
        metadata = np.empty((len(price), 0))
    keep = np.ones(len(price), dtype=bool)
    if query.start is not None:
        keep &= stamps >= -(-query.start.value // 1000)  # ns to us, rounded up
    if query.end is not None:
        keep &= stamps <= query.end.value // 1000
    if query.signal_types is not None:
        keep &= np.isin(types, query.signal_types)
    if query.min_confidence is not None:
        keep &= confidence >= query.min_confidence
    rows = np.flatnonzero(keep)
    config = row["signal_config"] if row["signal_config"] is not None else row["config"]
    return Block(
        run_id=row["run_id"],
        strategy_name=row["strategy_name"],
        symbol=row["symbol"],
        timeframe=row["timeframe"],
        mode=row["mode"],
        config=config,
        keys=keys,
        timestamp=pd.DatetimeIndex(stamps[rows].astype("datetime64[us]")).tz_localize("UTC"),
        signal_type=types[rows],
        price=price[rows],
        confidence=confidence[rows],
        metadata=metadata[rows],
        position=rows,
    )


def blocks_frame(blocks: Sequence[Block]) -> pd.DataFrame:
    """The blocks' signals as rows of ``SignalRepository.frame`` (id <NA>) plus the columns
    ``mode`` (of its run), ``_block`` (index into ``blocks``), ``_position`` (the signal's
    place in its run) and ``_row`` (its index in its :class:`Block`'s columns)."""
    if not blocks:
        return pd.DataFrame()
    lengths = [len(b) for b in blocks]
    return pd.DataFrame(
        {
            "id": pd.array([pd.NA] * sum(lengths), dtype="Int64"),
            "run_id": pd.array(np.repeat([b.run_id for b in blocks], lengths), dtype="Int64"),
            "strategy_name": np.repeat([b.strategy_name for b in blocks], lengths),
            "symbol": np.repeat([b.symbol for b in blocks], lengths),
            "timeframe": np.repeat([b.timeframe for b in blocks], lengths),
            "timestamp": blocks[0].timestamp.append([b.timestamp for b in blocks[1:]]),
            "signal_type": np.concatenate([b.signal_type for b in blocks]),
            "price": np.concatenate([b.price for b in blocks]),
            "confidence": np.concatenate([b.confidence for b in blocks]),
            "mode": np.repeat([b.mode for b in blocks], lengths),
            "_block": np.repeat(np.arange(len(blocks)), lengths),
            "_position": np.concatenate([b.position for b in blocks]),
            "_row": np.concatenate([np.arange(n) for n in lengths]),
        }
    )


def delete_blocks(session: Session, runs: Select[Any]) -> int:
    """Delete the blocks of the runs ``runs`` selects; returns how many signals they held."""
    doomed = BLOCKS.c.run_id.in_(runs)
    total = session.scalar(_SIGNALS_HELD.where(doomed))
    session.execute(delete(BLOCKS).where(doomed))
    return int(total or 0)
