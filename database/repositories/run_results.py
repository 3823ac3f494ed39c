"""A finished run's trades and equity curve, stored once with the run as Arrow IPC streams.

One row of ``strategy_run_results`` per run (format 1): ``trades`` and ``equity`` are Arrow IPC
streams of the frames (pyarrow, with pandas' metadata: every dtype comes back as it was:
categoricals with their categories, timezone-aware times, timedeltas, NaN and NaT), written
column by column, never a row at a time. Deleted with the run (ON DELETE CASCADE).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

from database.models import StrategyRunResult
from database.records import RunResultRecord

RESULTS = StrategyRunResult.__table__
FORMAT = 1  # Arrow IPC streams of the trade frame and of the equity Series as a frame


_FREQ = b"stratlens.index_freq"  # Arrow keeps no index frequency: kept in the schema


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as one Arrow IPC stream (its index too, unless a plain RangeIndex, with its
    frequency)."""
    # one batch, even of no rows: a table of no rows writes none, and loses its categories
    batch = pa.RecordBatch.from_pandas(frame)
    freq = getattr(frame.index, "freqstr", None)
    if freq is not None:
        batch = batch.replace_schema_metadata({**batch.schema.metadata, _FREQ: freq.encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def bytes_frame(data: bytes | memoryview) -> pd.DataFrame:
    """The frame ``frame_bytes`` stored."""
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    frame = table.to_pandas()
    freq = (table.schema.metadata or {}).get(_FREQ)
    if freq is not None:
        frame.index = pd.DatetimeIndex(frame.index, freq=freq.decode())
    return frame


def result_row(result: RunResultRecord) -> dict[str, Any]:
    """The stored columns of ``result`` (without ``run_id``)."""
    return {
        "format": FORMAT,
        "trades": frame_bytes(result.trades),
        "equity": frame_bytes(result.equity.to_frame()),
        "warmup_bars": result.warmup_bars,
        "drawdown_halt": result.drawdown_halt,
    }


def read_result_row(row: Mapping[str, Any]) -> RunResultRecord:
    """The record ``result_row`` stored."""
    if row["format"] != FORMAT:
        raise ValueError(
            f"the result of run {row['run_id']} is stored in format {row['format']}; this "
            f"version reads format {FORMAT}"
        )
    equity = bytes_frame(row["equity"])
    return RunResultRecord(
        trades=bytes_frame(row["trades"]),
        equity=equity[equity.columns[0]],
        warmup_bars=row["warmup_bars"],
        drawdown_halt=row["drawdown_halt"],
    )
