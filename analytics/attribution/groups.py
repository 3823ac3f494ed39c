"""The groups a round trip belongs to, per attribution dimension (docs/attribution.md#groups).

>>> rows, codes, names = group_codes(trips, "hour")   # trip rows[i] is in group names[codes[i]]
>>> TripKeys().keys(trips.iloc[0], "hour")            # the same rule for one trip (live)
['14']

Two forms of one rule: :func:`group_codes` over a round-trips frame (vectorised; label rules
run once per distinct label set) and :class:`TripKeys` for one trip (the live
:class:`~analytics.attribution.AttributionState`); the tests hold them equal. Group names are
strings, so a table's ``group`` column has one type.
"""

from __future__ import annotations

import difflib
import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pandas as pd

from analytics.distinct import factorized

DIMENSIONS = ("label", "session", "hour", "weekday", "size", "regime", "strategy", "symbol")
COLUMN_OF = {
    "session": "market_session",
    "regime": "volatility_regime",
    "strategy": "strategy_id",
    "symbol": "symbol",
}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = tuple(f"{h:02d}" for h in range(24))
NO_LABEL = "(none)"  # a trip without labels
UNKNOWN = "(unknown)"  # a trip without that market context
ALL = "all"
SIZE_BUCKETS = 5  # quintiles of entry notional
Clock = Literal["entry", "exit"]


def check_by(by: str) -> str:
    if by not in DIMENSIONS:
        close = difflib.get_close_matches(str(by), DIMENSIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"by={by!r}: expected one of {', '.join(DIMENSIONS)}{hint}")
    return by


def check_clock(clock: str) -> str:
    if clock not in ("entry", "exit"):
        raise ValueError(f"clock={clock!r}: expected 'entry' or 'exit'")
    return clock


def check_columns(trips: pd.DataFrame, columns: Sequence[str], why: str) -> None:
    missing = [c for c in columns if c not in trips.columns]
    if missing:
        raise ValueError(f"round trips: missing column(s) {missing} ({why})")


def utc(times: pd.Series) -> pd.Series:
    """A time column in UTC; naive times are read as UTC."""
    times = pd.to_datetime(times)
    return times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")


# -- size buckets ---------------------------------------------------------------------------


def notional(trips: pd.DataFrame) -> np.ndarray:
    """Entry notional of each trip: entry_price x volume (the denominator of ``return``)."""
    return trips["entry_price"].to_numpy(float) * trips["volume"].to_numpy(float)


def size_edges(trips: pd.DataFrame, buckets: int = SIZE_BUCKETS) -> tuple[float, ...]:
    """The inner cut points of ``buckets`` equal-count size buckets: the k/buckets quantiles
    (k = 1..buckets-1, linear interpolation) of the trips' entry notional, repeated values
    dropped (many equal sizes give fewer buckets). No trips: no edges (one bucket).

    >>> size_edges(trips, 4)                          # quartile cut points
    (1000.0, 2500.0, 9000.0)
    """
    if buckets < 1:
        raise ValueError(f"buckets={buckets!r}: expected an integer >= 1")
    check_columns(trips, ("entry_price", "volume"), "size buckets read the entry notional")
    values = notional(trips)
    if not values.size or buckets == 1:
        return ()
    cuts = np.quantile(values, np.arange(1, buckets) / buckets)
    return tuple(float(x) for x in np.unique(cuts))


def edges_for(trips: pd.DataFrame, by: str, given: Sequence[float] | None) -> tuple[float, ...]:
    """The size edges a table by ``by`` uses: none unless by size; ``given``, or the quintiles
    of these trips."""
    if by != "size":
        return ()
    return size_edges(trips) if given is None else tuple(map(float, _edges(given)))


def _edges(edges: Sequence[float]) -> np.ndarray:
    out = np.asarray(edges, dtype=float)
    if out.ndim != 1 or not np.all(np.isfinite(out)) or np.any(np.diff(out) <= 0):
        raise ValueError(f"size_edges={tuple(edges)!r}: expected finite, strictly increasing")
    return out


def size_labels(edges: Sequence[float]) -> list[str]:
    """Bucket names, numbered from the smallest: ``1: <= 1000``, ``2: (1000, 2500]``,
    ``3: > 2500``; with no edges one bucket ``1: all``. Buckets are closed on the right."""
    e = [f"{x:.6g}" for x in _edges(edges)]
    if not e:
        return ["1: all"]
    middle = [f"{i + 2}: ({lo}, {hi}]" for i, (lo, hi) in enumerate(pairwise(e))]
    return [f"1: <= {e[0]}", *middle, f"{len(e) + 1}: > {e[-1]}"]


# -- groups of a frame -----------------------------------------------------------------------


def _merged(codes: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Codes into distinct names (two raw values may share a name: None and '' are unknown)."""
    name_codes, distinct = pd.factorize(np.asarray(names, dtype=object))
    return name_codes[codes], np.asarray(distinct, dtype=object)


def _one_text(value: Any) -> str:
    """A context value as a group key; missing (None, NaN, '') -> UNKNOWN."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return UNKNOWN
    return str(value)


def labels_of(value: Any) -> tuple[str, ...]:
    """A trip's distinct labels in their order; none (None, NaN, empty) -> ``(NO_LABEL,)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (NO_LABEL,)
    if isinstance(value, str):
        value = (value,)
    out = tuple(dict.fromkeys(str(v) for v in value))
    return out or (NO_LABEL,)


def label_sets(trips: pd.DataFrame) -> tuple[np.ndarray, list[Any]]:
    """(code per trip, distinct label values): the rules run once per distinct label set."""
    check_columns(trips, ("labels",), "label groups read each trip's labels")
    values = trips["labels"].astype(object)
    try:
        codes, uniques = factorized(values.tolist())
    except TypeError:  # lists (from JSON) are not hashable
        values = values.map(lambda v: tuple(v) if isinstance(v, list | np.ndarray) else v)
        codes, uniques = pd.factorize(values)
    distinct = list(uniques)
    return np.where(codes < 0, len(distinct), codes), [*distinct, None]  # -1: no labels


def expand(codes: np.ndarray, keys_per_code: Sequence[Sequence[Any]]) -> tuple:
    """(rows, key codes, keys): trip i once per key of ``keys_per_code[codes[i]]``, in that
    order; each membership's key as its code in ``keys`` (an object array), as ``pd.factorize``
    of the memberships' keys gives them (first seen first). The keys are factorized once per
    distinct code, not once per trip: the memberships' codes are integers renumbered."""
    lengths = np.array([len(k) for k in keys_per_code], dtype=np.int64)
    flat = np.empty(int(lengths.sum()), dtype=object)  # keys may be tuples: fill one by one
    for i, key in enumerate(k for keys in keys_per_code for k in keys):
        flat[i] = key
    start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    counts = lengths[codes]
    rows = np.repeat(np.arange(len(codes)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)  # each trip's first membership
    at = np.repeat(start[codes], counts) + (np.arange(len(rows)) - first)
    flat_codes, flat_keys = pd.factorize(flat)
    if (flat_codes < 0).any():  # a missing key: factorized as pd.factorize does it, by rows
        key_codes, keys = pd.factorize(flat[at])
        return rows, key_codes, keys
    key_codes, used = pd.factorize(flat_codes[at])
    return rows, key_codes, np.asarray(flat_keys, dtype=object)[used]


def group_codes(
    trips: pd.DataFrame,
    by: str,
    *,
    edges: Sequence[float] = (),
    clock: Clock = "entry",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, codes, names): membership i puts the trip at position ``rows[i]`` in the group
    ``names[codes[i]]`` (names distinct; some may have no trip). Every dimension gives one
    membership a trip except ``label``: one per distinct label of the trip, in their order."""
    check_by(by)
    rows = np.arange(len(trips))
    if by == "label":
        sets, distinct = label_sets(trips)
        label_rows, codes, names = expand(sets, [labels_of(v) for v in distinct])
        return label_rows, codes, names
    if by in COLUMN_OF:
        column = COLUMN_OF[by]
        check_columns(trips, (column,), f"by={by!r} reads it")
        raw, uniques = pd.factorize(trips[column].astype(object))
        names = [*(_one_text(u) for u in uniques), UNKNOWN]
        return (rows, *_merged(np.where(raw < 0, len(uniques), raw), names))
    if by == "size":
        check_columns(trips, ("entry_price", "volume"), "by='size' reads the entry notional")
        codes = np.searchsorted(_edges(edges), notional(trips), side="left")
        return rows, codes, np.array(size_labels(edges), dtype=object)
    column = f"{check_clock(clock)}_time"
    check_columns(trips, (column,), f"by={by!r} reads the {clock} time")
    times = utc(trips[column])
    if by == "hour":
        return rows, times.dt.hour.to_numpy(), np.array(HOURS, dtype=object)
    return rows, times.dt.day_of_week.to_numpy(), np.array(WEEKDAYS, dtype=object)


def group_keys(
    trips: pd.DataFrame, by: str, *, edges: Sequence[float] = (), clock: Clock = "entry"
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, keys): :func:`group_codes` with each code replaced by its group's name."""
    rows, codes, names = group_codes(trips, by, edges=edges, clock=clock)
    return rows, names[codes]


# -- groups of one trip ---------------------------------------------------------------------


class TripKeys:
    """The groups of one trip (a dict or a frame row), as :func:`group_codes` gives them: the
    live path. A missing label or context field counts as none / unknown.

    >>> TripKeys(edges=(1000.0,)).keys(trip, "size")
    ['2: > 1000']
    """

    def __init__(self, edges: Sequence[float] = (), clock: Clock = "entry") -> None:
        self.edges = [float(x) for x in _edges(edges)]
        self.size_names = size_labels(self.edges)
        self.time_field = f"{check_clock(clock)}_time"

    def keys(self, trip: Mapping[str, Any], by: str, stamp: pd.Timestamp | None = None) -> list:
        if by == "label":
            return list(labels_of(trip.get("labels")))
        if by in COLUMN_OF:
            return [_one_text(trip.get(COLUMN_OF[by]))]
        if by == "size":
            size = float(trip["entry_price"]) * float(trip["volume"])
            return [self.size_names[bisect_left(self.edges, size)]]  # as searchsorted "left"
        if by in ("hour", "weekday"):
            stamp = self.stamp(trip) if stamp is None else stamp
            return [HOURS[stamp.hour] if by == "hour" else WEEKDAYS[stamp.weekday()]]
        check_by(by)
        raise AssertionError(by)  # every dimension is handled above

    def stamp(self, trip: Mapping[str, Any]) -> pd.Timestamp:
        """The trip's clock time; its hour and weekday are those of UTC (naive: UTC)."""
        stamp = pd.Timestamp(trip[self.time_field])
        offset = stamp.utcoffset()
        return stamp.tz_convert("UTC") if offset is not None and offset.total_seconds() else stamp


def trip_keys(
    trip: Mapping[str, Any], by: str, *, edges: Sequence[float] = (), clock: Clock = "entry"
) -> list[str]:
    """The groups of one trip by ``by`` (see :class:`TripKeys`)."""
    return TripKeys(edges, clock).keys(trip, by)


def sort_keys(by: str, keys: Sequence[str]) -> list[str]:
    """Groups in their natural order: hours 00-23, weekdays Monday first, size buckets from
    the smallest, the rest alphabetically; none / unknown last."""

    def order(key: str) -> tuple:
        special = key in (NO_LABEL, UNKNOWN)
        if by == "weekday":
            return (special, WEEKDAYS.index(key), key)
        if by == "size":
            return (special, int(key.split(":", 1)[0]), key)
        return (special, 0, key)

    return sorted(keys, key=order)
