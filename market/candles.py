"""The candle frame: the one shape market data takes inside StratLens.

A candle frame is a pandas DataFrame with
- a tz-aware UTC DatetimeIndex named ``ts`` holding each bar's open time, strictly increasing;
- float64 columns ``open, high, low, close, volume``.

>>> frame = candles_from_records([Candle(pd.Timestamp("2024-01-02", tz="UTC"), 1, 2, 0.5, 1.5, 10)])
>>> list(frame.columns)
['open', 'high', 'low', 'close', 'volume']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_COLUMNS = (*PRICE_COLUMNS, "volume")


@dataclass(frozen=True)
class Candle:
    """One OHLCV bar; ``ts`` is the bar's open time in UTC."""

    ts: pd.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float


def empty_candles() -> pd.DataFrame:
    # microseconds: the resolution pandas 3 gives every parsed or converted timestamp
    index = pd.DatetimeIndex([], tz="UTC", name="ts").as_unit("us")
    return pd.DataFrame({c: np.array([], dtype=np.float64) for c in CANDLE_COLUMNS}, index=index)


def candles_from_records(records: Iterable[Candle]) -> pd.DataFrame:
    rows = list(records)
    if not rows:
        return empty_candles()
    index = pd.DatetimeIndex([r.ts for r in rows], name="ts").tz_convert("UTC")
    return pd.DataFrame(record_columns(rows), index=index)


def record_columns(records: Sequence[Candle]) -> dict[str, np.ndarray]:
    """The records' open, high, low, close and volume as float64 columns."""
    return {c: np.array([getattr(r, c) for r in records], dtype=np.float64) for c in CANDLE_COLUMNS}


def iter_candles(frame: pd.DataFrame) -> Iterable[Candle]:
    for ts, o, h, low, c, v in zip(
        frame.index, *(frame[col].to_numpy() for col in CANDLE_COLUMNS), strict=True
    ):
        yield Candle(ts, float(o), float(h), float(low), float(c), float(v))
