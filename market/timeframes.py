"""Timeframes: parsing, durations and bucket alignment; the UTC and epoch-ms time conversions.

>>> tf = Timeframe.parse("15m")
>>> tf.seconds, tf.label
(900, '15m')
>>> Timeframe.parse("1d").can_resample_to(Timeframe.parse("1w"))
True

Buckets are aligned to the Unix epoch (1970-01-01 00:00 UTC), except weeks, which start on
Monday 00:00 UTC (1970-01-05 was the first Monday), as on TradingView and most exchanges.
A bar is labelled by the start of its bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

import numpy as np
import pandas as pd

from config.choices import SUPPORTED_TIMEFRAMES as SUPPORTED

_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^(\d+)([mhdw])$")
_WEEK_ORIGIN_MS = 4 * 86400 * 1000  # 1970-01-05, a Monday


class TimeframeError(ValueError):
    """An unknown or unsupported timeframe."""


@total_ordering
@dataclass(frozen=True)
class Timeframe:
    label: str
    seconds: int

    @classmethod
    def parse(cls, text: str | Timeframe) -> Timeframe:
        if isinstance(text, Timeframe):
            return text
        match = _PATTERN.match(str(text).strip())
        if not match or str(text).strip() not in SUPPORTED:
            raise TimeframeError(
                f"unknown timeframe {text!r}: expected one of {', '.join(SUPPORTED)}"
            )
        count, unit = match.groups()
        return cls(label=f"{count}{unit}", seconds=int(count) * _UNIT_SECONDS[unit])

    @property
    def millis(self) -> int:
        return self.seconds * 1000

    @property
    def delta(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.seconds)

    @property
    def origin_ms(self) -> int:
        return _WEEK_ORIGIN_MS if self.label.endswith("w") else 0

    def can_resample_to(self, target: Timeframe) -> bool:
        """True when every `target` bucket is a whole number of `self` buckets, aligned."""
        if target.seconds <= self.seconds or target.seconds % self.seconds:
            return False
        # weekly buckets start on Monday: the source buckets must tile that origin too
        return target.origin_ms % self.millis == 0

    def bucket_start_ms(self, ts_ms: np.ndarray | int) -> np.ndarray | int:
        """Start (epoch ms) of the bucket holding each timestamp (epoch ms)."""
        origin = self.origin_ms
        return (np.asarray(ts_ms, dtype=np.int64) - origin) // self.millis * self.millis + origin

    def __lt__(self, other: Timeframe) -> bool:
        return self.seconds < other.seconds

    def __str__(self) -> str:
        return self.label


def as_utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """``value`` as a UTC timestamp: a naive time is taken as UTC, an aware one converted.

    >>> as_utc(pd.Timestamp("2024-01-02 10:30", tz="Europe/Paris"))
    Timestamp('2024-01-02 09:30:00+0000', tz='UTC')
    """
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def utc_index(values: Any) -> pd.DatetimeIndex:
    """``values`` (datetimes) as a UTC DatetimeIndex: naive times are taken as UTC."""
    index = pd.DatetimeIndex(values)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def timestamp_ms(ts: pd.Timestamp | str) -> int:
    """Epoch milliseconds of one timestamp (a naive one is taken as UTC)."""
    return pd.Timestamp(ts).value // 1_000_000  # .value is nanoseconds whatever the unit


def to_epoch_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """Epoch milliseconds of a tz-aware (UTC) DatetimeIndex, whatever its resolution."""
    return index.as_unit("ms").asi8.astype(np.int64, copy=False)


def from_epoch_ms(values: np.ndarray) -> pd.DatetimeIndex:
    """A UTC DatetimeIndex named 'ts' from epoch milliseconds, in microseconds (the
    resolution ``pd.to_datetime(values, unit="ms", utc=True)`` gives): the int64 values
    viewed as datetime64 and localised, 10x quicker than to_datetime's per-call parsing
    (~35 against ~130 us for a tick's few bars, ~3 against ~50 ms for a million)."""
    ms = np.asarray(values, dtype=np.int64)
    return pd.DatetimeIndex((ms * 1000).view("M8[us]"), name="ts").tz_localize("UTC")
