"""One indicator's values over a span of bars: computed once, extended bar by bar, aligned.

The unit of work of the StrategyDataIntegrator (strategies/data_integration.py): a full pass
opens a TA-Lib live state beside the values, ``extend`` feeds it only the new bars, and a
higher timeframe is resampled from the base bars and aligned to them without look-ahead. The
cached part (:class:`IndicatorSeries`) is picklable; the state (TA-Lib handles) never leaves
the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from market.candles import iter_candles
from market.resample import resample
from market.timeframes import Timeframe, timestamp_ms, to_epoch_ms

_MS = pd.Timedelta(milliseconds=1)


class IndicatorFailure(Exception):
    """An indicator that cannot be computed on this data (too short, impossible timeframe)."""


@dataclass(frozen=True)
class DataVersion:
    """Last bar (open time) and bar count of a computed span: any new or backfilled bar moves it.

    >>> DataVersion(pd.Timestamp("2024-01-02", tz="UTC"), 250).token
    '1704153600000x250'
    """

    last_ts: pd.Timestamp | None
    count: int

    @property
    def token(self) -> str:
        last = "-" if self.last_ts is None else str(timestamp_ms(self.last_ts))
        return f"{last}x{self.count}"


@dataclass(frozen=True)
class IndicatorSeries:
    """The cached value: one request's outputs over a span (picklable: no TA-Lib handle)."""

    version: DataVersion
    values: dict[str, np.ndarray]  # aligned to the span's base bars
    higher_ts: np.ndarray | None = None  # open times (ms) of the complete higher bars
    higher_values: dict[str, np.ndarray] | None = None


@dataclass
class IndicatorRun:
    """One request's computation over a span that grows: opened once, then extended."""

    spec: Any
    params: dict[str, Any]
    base: Timeframe
    higher: Timeframe | None
    state: Any
    series: IndicatorSeries

    @classmethod
    def open(
        cls,
        spec: Any,
        params: dict[str, Any],
        base: Timeframe,
        higher: Timeframe | None,
        span: pd.DataFrame,
    ) -> IndicatorRun:
        """Full pass over ``span`` (base bars); IndicatorFailure when it is too short."""
        version = version_of(span)
        if higher is None:
            check_length(spec, params, len(span), base)
            state, values = spec.open(span, params)
            series = IndicatorSeries(version, float_arrays(values, spec.outputs))
            return cls(spec, params, base, None, state, series)
        bars = resample(span, base, higher)
        # a bucket that started before the first loaded bar would be built from part of its bars
        bars = bars[bars.index >= span.index[0]]
        check_length(spec, params, len(bars), higher)
        state, hvalues = spec.open(bars, params)
        hts, hvalues = to_epoch_ms(bars.index), float_arrays(hvalues, spec.outputs)
        aligned = align_to_base(hts, higher, hvalues, to_epoch_ms(span.index), base)
        series = IndicatorSeries(version, aligned, hts, hvalues)
        return cls(spec, params, base, higher, state, series)

    def needs_from(self) -> pd.Timestamp:
        """First base bar the next extension must see (higher: the bucket still forming)."""
        last = self.series.version.last_ts
        assert last is not None
        if self.higher is None or self.series.higher_ts is None:
            return last + _MS
        pending = int(self.series.higher_ts[-1]) + self.higher.millis
        return min(pd.Timestamp(pending, unit="ms", tz="UTC"), last + _MS)

    def extend(self, frame: pd.DataFrame) -> int:
        """Feed the bars of ``frame`` after the series' last bar; ``frame`` starts at or before
        ``needs_from()``. Returns how many new base bars were added."""
        old = self.series
        assert old.version.last_ts is not None
        new = frame[frame.index > old.version.last_ts]
        if new.empty:
            return 0
        outputs = self.spec.outputs
        if self.higher is None:
            rows = [self.state.update(candle) for candle in iter_candles(new)]
            added = rows_to_arrays(rows, outputs)
            values = {o: np.concatenate([old.values[o], added[o]]) for o in outputs}
            hts, hvalues = None, None
        else:
            assert old.higher_ts is not None
            assert old.higher_values is not None
            pending = int(old.higher_ts[-1]) + self.higher.millis
            source = frame[to_epoch_ms(frame.index) >= pending]
            bars = resample(source, self.base, self.higher)
            rows = [self.state.update(candle) for candle in iter_candles(bars)]
            added = rows_to_arrays(rows, outputs)
            hts = np.concatenate([old.higher_ts, to_epoch_ms(bars.index)])
            hvalues = {o: np.concatenate([old.higher_values[o], added[o]]) for o in outputs}
            aligned = align_to_base(hts, self.higher, hvalues, to_epoch_ms(new.index), self.base)
            values = {o: np.concatenate([old.values[o], aligned[o]]) for o in outputs}
        version = DataVersion(new.index[-1], old.version.count + len(new))
        self.series = IndicatorSeries(version, values, hts, hvalues)
        return len(new)


def align_to_base(
    higher_ts: np.ndarray,
    higher: Timeframe,
    values: Mapping[str, np.ndarray],
    base_ts: np.ndarray,
    base: Timeframe,
) -> dict[str, np.ndarray]:
    """Higher-timeframe values on base bars, without look-ahead (times are open times in ms).

    >>> hours = np.array([0, 3_600_000])                       # 00:00 and 01:00 hours
    >>> minutes = np.array([3_540_000, 3_600_000])             # 00:59 and 01:00 bars
    >>> align_to_base(hours, Timeframe.parse("1h"), {"v": np.array([1.0, 2.0])}, minutes,
    ...               Timeframe.parse("1m"))["v"]
    array([1., 1.])

    The 00:59 bar closes at 01:00, when the 00:00 hour has ended; the 01:00 bar still sees that
    hour until 02:00.
    """
    ends = np.asarray(higher_ts, dtype=np.int64) + higher.millis
    closes = np.asarray(base_ts, dtype=np.int64) + base.millis
    index = np.searchsorted(ends, closes, side="right") - 1
    seen = index >= 0
    out = {}
    for name, column in values.items():
        aligned = np.full(len(closes), np.nan)
        aligned[seen] = np.asarray(column, dtype=np.float64)[index[seen]]
        out[name] = aligned
    return out


def check_length(spec: Any, params: Mapping[str, Any], bars: int, tf: Timeframe) -> None:
    needed = int(spec.lookback(params)) + 1
    if bars < needed:
        raise IndicatorFailure(
            f"{spec.name} needs at least {needed} complete {tf} bars for one value, got {bars}"
        )


def long_enough(
    spec: Any,
    params: Mapping[str, Any],
    span: pd.DataFrame,
    base: Timeframe,
    higher: Timeframe | None,
) -> bool:
    if higher is None:
        return len(span) > spec.lookback(params)
    bars = resample(span, base, higher)
    return int((bars.index >= span.index[0]).sum()) > spec.lookback(params)


def float_arrays(values: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
    return {o: np.asarray(values[o], dtype=np.float64) for o in outputs}


def rows_to_arrays(rows: list[tuple[float, ...]], outputs: Sequence[str]) -> dict[str, np.ndarray]:
    table = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(outputs))
    return {o: table[:, i].copy() for i, o in enumerate(outputs)}


def version_of(span: pd.DataFrame) -> DataVersion:
    return DataVersion(span.index[-1] if len(span) else None, len(span))
