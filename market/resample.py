"""Resample candle frames to a larger timeframe.

Example::

    hourly = resample(minutes, "1m", "1h")                      # complete hours only
    live = resample(minutes, "1m", "1h", include_forming=True)  # plus the hour still forming

Each target bar aggregates the source bars whose open time falls in its bucket: first open,
highest high, lowest low, last close, summed volume. Buckets come from
``Timeframe.bucket_start_ms`` (aligned to the Unix epoch; weeks start Monday 00:00 UTC) and
bars are labelled by bucket start; buckets without any source bar produce no bar.

A bucket is complete when ``as_of`` has reached its end. ``as_of`` defaults to the close
time of the last source bar (its open time plus the source duration): with 1m data up to
10:59 the 10:00 hour is complete, with data up to 10:58 it is not. Missing source bars
(gaps, weekends, holidays) never make a bucket incomplete; only time does. So daily bars
ending on a Friday leave that week incomplete until ``as_of`` reaches the next Monday.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.candles import CANDLE_COLUMNS
from market.timeframes import Timeframe, from_epoch_ms, to_epoch_ms

_EPOCH = pd.Timestamp(0, tz="UTC")


class ResampleError(ValueError):
    """A timeframe pair that cannot be resampled, or a frame that cannot be."""


def check_resample_pair(source: Timeframe | str, target: Timeframe | str) -> None:
    """Raise ResampleError unless ``source`` bars tile ``target`` buckets exactly (or are equal)."""
    src, tgt = Timeframe.parse(source), Timeframe.parse(target)
    if src == tgt or src.can_resample_to(tgt):
        return
    if tgt.seconds < src.seconds:
        reason = "the target is shorter than the source; bars cannot be split"
    elif tgt.seconds % src.seconds:
        reason = f"{tgt} is not a whole number of {src} bars"
    else:
        reason = f"{tgt} buckets start on Monday 00:00 UTC, which is not on the {src} grid"
    raise ResampleError(f"cannot resample {src} bars to {tgt}: {reason}")


def last_close_time(frame: pd.DataFrame, timeframe: Timeframe | str) -> pd.Timestamp | None:
    """Close time of the last bar (open time + duration), or None for an empty frame."""
    if frame.empty:
        return None
    return frame.index[-1] + Timeframe.parse(timeframe).delta


def bucket_complete_mask(
    bucket_starts: pd.DatetimeIndex, target: Timeframe | str, as_of: pd.Timestamp
) -> np.ndarray:
    """True for each bucket (labelled by its start) that has ended by ``as_of``.

    Example: ``bucket_complete_mask(live.index, "1h", last_close_time(minutes, "1m"))`` is
    False only for the hour still forming.
    """
    tgt = Timeframe.parse(target)
    ends = to_epoch_ms(bucket_starts) + tgt.millis
    return _as_of_ms(as_of) >= ends


def resample(
    frame: pd.DataFrame,
    source: Timeframe | str,
    target: Timeframe | str,
    *,
    include_forming: bool = False,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Aggregate ``frame`` (bars of ``source``) into ``target`` bars; see the module docstring.

    Resampling to the same timeframe returns a copy (minus any bar not yet closed at
    ``as_of``, unless include_forming). Raises ResampleError for an impossible pair.
    """
    src, tgt = Timeframe.parse(source), Timeframe.parse(target)
    check_resample_pair(src, tgt)
    if frame.empty:
        return _empty()
    if not frame.index.is_monotonic_increasing:
        raise ResampleError("candle frame index must be increasing")

    ts = to_epoch_ms(frame.index)
    limit = ts[-1] + src.millis if as_of is None else _as_of_ms(as_of)
    if src == tgt:
        keep = slice(None) if include_forming else ts + src.millis <= limit
        out = frame.loc[keep, list(CANDLE_COLUMNS)].astype(np.float64)
        out.index = from_epoch_ms(ts[keep])
        return out

    buckets = np.asarray(tgt.bucket_start_ms(ts))
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    column = {c: frame[c].to_numpy(dtype=np.float64) for c in CANDLE_COLUMNS}
    data = {
        "open": column["open"][starts],
        "high": np.maximum.reduceat(column["high"], starts),
        "low": np.minimum.reduceat(column["low"], starts),
        "close": column["close"][ends - 1],
        "volume": np.add.reduceat(column["volume"], starts),
    }
    labels = buckets[starts]
    if not include_forming:
        complete = labels + tgt.millis <= limit
        labels = labels[complete]
        data = {c: v[complete] for c, v in data.items()}
    return pd.DataFrame(data, index=from_epoch_ms(labels))


def _empty() -> pd.DataFrame:
    # not candles.empty_candles(): pandas 3 gives an empty DatetimeIndex second resolution,
    # while every non-empty result here is microseconds (from_epoch_ms)
    empty = np.array([], dtype=np.float64)
    return pd.DataFrame(
        dict.fromkeys(CANDLE_COLUMNS, empty), index=from_epoch_ms(np.array([], dtype=np.int64))
    )


def _as_of_ms(as_of: pd.Timestamp) -> int:
    stamp = pd.Timestamp(as_of)
    if stamp.tzinfo is None:
        raise ResampleError(f"as_of must be timezone-aware (UTC), got {stamp}")
    return (stamp - _EPOCH) // pd.Timedelta(milliseconds=1)
