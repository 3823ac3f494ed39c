"""Per-order TCA summarised by venue, algo, symbol, side or strategy (docs/tca.md#aggregates).

>>> aggregate_tca(per_order, by="venue")                 # one row per (venue, metric)
>>> aggregate_tca(per_order, by=("venue", "algo"))       # both, one after the other
>>> aggregate_tca(per_order)                             # every order as one group, "all"

Per group and metric: ``orders`` in the group, ``count`` of them where the metric is defined,
the plain ``mean``, the notional-weighted mean, the ``median`` and the percentiles p5, p25,
p75 and p95 (linear interpolation between closest ranks, numpy's and pandas' default). NaN
values are left out; a group where a metric is never defined has count 0 and NaN statistics.
Each metric's values are sorted once (a compiled radix sort) for every dimension asked; one
compiled pass (``_kernels.group_stats``) sums each group's and places its values, still in
order, by a counting sort.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.tca._kernels import group_stats, value_order
from analytics.tca.conventions import DIMENSIONS, MISSING_GROUP, PERCENTILES

# Metrics of the executed quantity are weighted by the notional filled; the others (the
# shortfall of the whole order, fill rate, times, score) by the order's notional.
EXECUTED = "filled_notional"
ORDERED = "notional"
METRIC_WEIGHTS = {
    "arrival_slippage_bps": EXECUTED,
    "is_bps": ORDERED,
    "is_delay_bps": ORDERED,
    "is_trading_bps": ORDERED,
    "is_opportunity_bps": ORDERED,
    "is_fees_bps": ORDERED,
    "vs_vwap_bps": EXECUTED,
    "vs_twap_bps": EXECUTED,
    "permanent_impact_bps": EXECUTED,
    "temporary_impact_bps": EXECUTED,
    "price_improvement_bps": EXECUTED,
    "spread_cost_bps": EXECUTED,
    "spread_capture_pct": EXECUTED,
    "fill_rate": ORDERED,
    "latency_s": ORDERED,
    "execution_time_s": ORDERED,
    "quality_score": ORDERED,
}
STAT_COLUMNS = ("orders", "count", "mean", "weighted_mean", "median",
                *(f"p{p}" for p in PERCENTILES))  # fmt: skip
AGGREGATE_COLUMNS = ("dimension", "group", "metric", *STAT_COLUMNS)
QUANTILES = np.array([0.5, *(p / 100 for p in PERCENTILES)])  # median first, as STAT_COLUMNS


def metric_weights(per_order: pd.DataFrame) -> dict[str, str]:
    """The aggregated metrics of a per-order frame (markouts included) and their weights."""
    weights = dict(METRIC_WEIGHTS)
    for column in per_order.columns:
        if column.startswith("markout_") and column.endswith("_bps"):
            weights[column] = EXECUTED
    ordered = [c for c in per_order.columns if c in weights]
    return {c: weights[c] for c in ordered}


def _group_codes(per_order: pd.DataFrame, by: str | None) -> tuple[np.ndarray, list[str]]:
    """Each order's group (codes into labels sorted alphabetically, the unknown last)."""
    if by is None:
        return np.zeros(len(per_order), np.int64), ["all"]
    if by not in DIMENSIONS:
        raise ValueError(f"by={by!r}: expected one of {sorted(DIMENSIONS)} or None")
    codes, found = per_order[DIMENSIONS[by]].factorize(sort=True)  # NaN: -1
    found = [str(g) for g in found]
    keep = [k for k, g in enumerate(found) if g != ""]  # an empty key is an unknown one
    remap = np.full(len(found) + 1, len(keep), np.int64)  # the unknown (and -1) last
    remap[keep] = np.arange(len(keep))
    codes = remap[codes]
    labels = [found[k] for k in keep]
    if (codes == len(keep)).any():
        labels.append(MISSING_GROUP)
    return codes, labels


def aggregate_tca(
    per_order: pd.DataFrame,
    by: str | Sequence[str | None] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Statistics per group and metric (columns :data:`AGGREGATE_COLUMNS`) of the frame of
    :func:`analytics.tca.order_tca`; ``by``: a dimension of :data:`DIMENSIONS`, several, or
    None for one group of every order."""
    dims = [by] if by is None or isinstance(by, str) else list(by)
    weights = metric_weights(per_order)
    if metrics is not None:
        unknown = [m for m in metrics if m not in weights]
        if unknown:
            raise ValueError(f"metrics {unknown}: expected among {list(weights)}")
        weights = {m: weights[m] for m in metrics}
    grouping = [_group_codes(per_order, d) for d in dims]
    groups = np.array([len(labels) for _, labels in grouping], np.int64)
    small = np.int8 if groups.max() < 2**7 else np.int16 if groups.max() < 2**15 else np.int64
    codes = np.stack([c for c, _ in grouping], axis=1).astype(small)  # orders x groupings
    orders = np.concatenate([np.bincount(c, minlength=len(g)) for c, g in grouping])
    blocks = []  # per metric: (every grouping's groups) x STAT_COLUMNS
    for metric, weight in weights.items():
        values = per_order[metric].to_numpy(dtype=float)
        by_value = value_order(values)
        weights_of = per_order[weight].to_numpy(dtype=float)[by_value]
        stats = group_stats(values[by_value], weights_of, codes[by_value], groups, QUANTILES)
        blocks.append(np.column_stack([orders, stats]))
    if not blocks:
        return pd.DataFrame(columns=list(AGGREGATE_COLUMNS))
    table = np.stack(blocks, axis=1)  # groups x metrics x stats: group-major rows
    frames = []
    start = 0
    for dim, (_, labels) in zip(dims, grouping, strict=True):
        stats = table[start : start + len(labels)].reshape(-1, len(STAT_COLUMNS))
        start += len(labels)
        frame = pd.DataFrame(stats, columns=list(STAT_COLUMNS))
        frame.insert(0, "metric", np.tile(np.array(list(weights), object), len(labels)))
        frame.insert(0, "group", np.repeat(np.array(labels, object), len(weights)))
        frame.insert(0, "dimension", "all" if dim is None else dim)
        frame[["orders", "count"]] = frame[["orders", "count"]].astype(np.int64)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


__all__ = ["AGGREGATE_COLUMNS", "METRIC_WEIGHTS", "aggregate_tca", "metric_weights"]
