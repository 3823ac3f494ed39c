"""A higher timeframe's bars built from the base feed's closed bars (complete bars only).

>>> buckets: dict[tuple[str, str], Bucket] = {}
>>> opened, done = next_bucket(buckets, "SP500", Timeframe.parse("1h"), base, candle)

``opened``: the bar of the timeframe that opens with this base bar (its open only), else
None; ``done``: the bar this base bar completes, else None.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from market.candles import Candle
from market.timeframes import Timeframe


@dataclass
class Bucket:
    """A higher timeframe's bar being built from base bars."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def next_bucket(
    buckets: dict[tuple[str, str], Bucket],
    symbol: str,
    tf: Timeframe,
    base: Timeframe,
    candle: Candle,
) -> tuple[Candle | None, Candle | None]:
    """(the bar of ``tf`` that opens with this base bar, the bar it completes); ``buckets``
    holds each (symbol, timeframe)'s bar being built."""
    ts = int(candle.ts.value // 1_000_000)
    start = ts - ts % tf.millis
    key = (symbol, tf.label)
    bucket = buckets.get(key)
    opened = None
    if bucket is None or bucket.start != start:
        bucket = Bucket(start, candle.open, candle.high, candle.low, candle.close, candle.volume)
        buckets[key] = bucket
        opened = Candle(pd.Timestamp(start, unit="ms", tz="UTC"), candle.open, candle.open,
                        candle.open, candle.open, 0.0)  # fmt: skip
    else:
        bucket.high = max(bucket.high, candle.high)
        bucket.low = min(bucket.low, candle.low)
        bucket.close = candle.close
        bucket.volume += candle.volume
    if ts + base.millis < start + tf.millis:
        return opened, None
    del buckets[key]
    done = Candle(
        pd.Timestamp(start, unit="ms", tz="UTC"), bucket.open, bucket.high, bucket.low,
        bucket.close, bucket.volume,
    )  # fmt: skip
    return opened, done


__all__ = ["Bucket", "next_bucket"]
