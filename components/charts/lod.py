"""Level of detail for long histories: a range of candles merged into at most N buckets; a
long line (an equity curve) drawn from the points of its runs' extremes.

>>> view = aggregate_ohlc(candles, max_bars=2000)            # 1,000,000 1m bars -> 2000 rows
>>> int(view["bars"].iloc[0]), lod_timeframe_label(int(view["bars"].iloc[0]), "1m")
(500, '≈ 8.3h per bar')

A bucket is a run of consecutive bars (equal counts, the last one may hold fewer): open is the
first open, high the max high, low the min low, close the last close, volume the sum. It is
labelled by its first bar's time. Vectorised (``np.maximum.reduceat``): a million bars take a
few milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.candles import CANDLE_COLUMNS
from market.timeframes import Timeframe, as_utc

# unit, its seconds, the duration from which it is used (days up to two weeks: "10d")
_UNITS = (("w", 7 * 86400, 14 * 86400), ("d", 86400, 86400), ("h", 3600, 3600), ("m", 60, 0))


def aggregate_ohlc(
    frame: pd.DataFrame,
    max_bars: int = 2000,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """The candles within [start, end] (inclusive; all when None) in at most `max_bars` rows.

    >>> aggregate_ohlc(candles, max_bars=3)["bars"].tolist()   # 7 bars -> buckets of 3
    [3, 3, 1]

    Returns a candle frame plus an int64 column ``bars`` (raw bars per row); a range of at
    most `max_bars` bars comes back as it is (``bars`` all 1).
    """
    if max_bars < 1:
        raise ValueError(f"max_bars={max_bars!r} is invalid: expected an int >= 1")
    index = frame.index
    first = 0 if start is None else int(index.searchsorted(as_utc(start), side="left"))
    stop = len(index) if end is None else int(index.searchsorted(as_utc(end), side="right"))
    stop = max(stop, first)
    n = stop - first
    if n <= max_bars:
        out = frame.iloc[first:stop][list(CANDLE_COLUMNS)].copy()
        out["bars"] = np.ones(n, dtype=np.int64)
        return out
    size = -(-n // max_bars)  # ceil: at most max_bars buckets
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n) - 1
    column = {c: frame[c].to_numpy(np.float64)[first:stop] for c in CANDLE_COLUMNS}
    data = {
        "open": column["open"][starts],
        "high": np.maximum.reduceat(column["high"], starts),
        "low": np.minimum.reduceat(column["low"], starts),
        "close": column["close"][ends],
        "volume": np.add.reduceat(column["volume"], starts),
        "bars": ends - starts + 1,
    }
    return pd.DataFrame(data, index=index[first:stop][starts])


def lod_timeframe_label(bucket_bars: int, timeframe: Timeframe | str) -> str:
    """The effective bar size, for the trader: ``lod_timeframe_label(8, "1h") == "≈ 8h per bar"``.

    One bar per bucket is the timeframe itself (``"1h per bar"``); otherwise the duration in the
    largest unit it fills (weeks from two weeks on, days, hours, minutes), to one decimal.
    """
    tf = Timeframe.parse(timeframe)
    if bucket_bars <= 1:
        return f"{tf.label} per bar"
    seconds = bucket_bars * tf.seconds
    unit, size = next((u, s) for u, s, threshold in _UNITS if seconds >= threshold)
    text = f"{seconds / size:.1f}".removesuffix(".0")
    return f"≈ {text}{unit} per bar"


def lod_line_positions(values: np.ndarray, max_points: int = 4000) -> np.ndarray:
    """Positions (ascending int64) of the points of a line to draw in at most ``max_points``.

    >>> lod_line_positions(np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]), max_points=4)
    array([0, 1, 5, 7])

    A line of at most ``max_points`` points keeps them all. A longer one is cut into
    ``max_points // 4`` runs of consecutive points (equal counts, the last may hold fewer),
    and each run keeps its first, last, lowest and highest point (the first of equal ones;
    NaN points are never the lowest or highest): the drawn line keeps the series' first and
    last points and every extreme a pixel would show, in time order. Vectorised: a million
    points take a few milliseconds.
    """
    if max_points < 4:
        raise ValueError(f"max_points={max_points!r} is invalid: expected an int >= 4")
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    size = -(-n // (max_points // 4))  # ceil: at most max_points // 4 runs
    runs = -(-n // size)
    padded = np.full(runs * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(runs, size)
    starts = np.arange(runs, dtype=np.int64) * size
    ends = np.minimum(starts + size, n) - 1
    lows = starts + np.argmin(np.where(np.isnan(grid), np.inf, grid), axis=1)
    highs = starts + np.argmax(np.where(np.isnan(grid), -np.inf, grid), axis=1)
    # a run of NaN only: argmin/argmax give its first position (a padded one never: the
    # last run holds at least one real point, and padding is only at its end)
    return np.unique(
        np.concatenate([starts, ends, np.minimum(lows, ends), np.minimum(highs, ends)])
    )
