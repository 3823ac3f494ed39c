"""Risk attribution: each group's share of the variance of daily PnL
(docs/attribution.md#risk-attribution).

>>> risk_attribution(trips, "symbol")
   group  contribution  variance_share  std_daily_pnl  correlation  net_pnl
>>> daily_pnl(trips)                               # net PnL by UTC exit day, every day

A group's daily PnL is the net PnL of its trips summed by UTC exit day; the total is the sum of
the groups. contribution_g = cov(pnl_g, pnl_total), so the contributions add up to
var(pnl_total) (covariance is linear) and each share of variance is contribution / variance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.attribution.groups import (
    ALL,
    Clock,
    check_by,
    check_clock,
    check_columns,
    edges_for,
    group_codes,
    sort_keys,
    utc,
)
from analytics.attribution.pnl import check_finite

RISK_COLUMNS = (
    "group",
    "contribution",
    "variance_share",
    "std_daily_pnl",
    "correlation",
    "net_pnl",
)


def _days_of(trips: pd.DataFrame, days: Sequence | pd.DatetimeIndex | None) -> tuple:
    """(the day index, each trip's position in it). Default days: every calendar day (UTC)
    from the first exit day to the last; given days must hold every trip's exit day."""
    check_columns(trips, ("exit_time",), "daily PnL is summed by exit day")
    exit_day = utc(trips["exit_time"]).dt.floor("D")
    if days is None:
        if not len(trips):
            index = pd.DatetimeIndex([], tz="UTC")
        else:
            index = pd.date_range(exit_day.min(), exit_day.max(), freq="D")
    else:
        index = pd.DatetimeIndex(days)
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        index = index.floor("D")
        if not (index.is_unique and index.is_monotonic_increasing):
            raise ValueError("days: expected distinct days in increasing order")
    index = index.as_unit(exit_day.dt.unit)
    position = index.get_indexer(pd.DatetimeIndex(exit_day))
    if (position < 0).any():
        row = trips.index[position < 0][0]
        day = exit_day.loc[row].date()
        raise ValueError(f"round trips row {row!r}: exit_time on {day}, a day not in `days`")
    return index, position


def daily_pnl(trips: pd.DataFrame, *, days: Sequence | pd.DatetimeIndex | None = None) -> pd.Series:
    """Net PnL realised per UTC day (trips summed by exit day), 0 on a day nothing closed.

    ``days``: the days of the series (e.g. a market's trading days); default every calendar
    day from the first exit day to the last.
    """
    index, position = _days_of(trips, days)
    net = check_finite(trips, "net_pnl")
    values = np.bincount(position, weights=net, minlength=len(index))
    return pd.Series(values, index=index, name="net_pnl")


def risk_attribution(
    trips: pd.DataFrame,
    by: str,
    *,
    ddof: int = 1,
    days: Sequence | pd.DatetimeIndex | None = None,
    size_edges: Sequence[float] | None = None,
    clock: Clock = "entry",
) -> pd.DataFrame:
    """Per group of ``by``: contribution = cov(daily pnl of the group, daily pnl of all),
    variance_share = contribution / var(daily pnl of all) (the shares sum to 1), the group's
    own daily standard deviation, its correlation with the total and its net PnL; then the
    ``all`` row (contribution = the variance). ``ddof`` 1: sample (co)variances.

    >>> table = risk_attribution(trips, "strategy")
    >>> table["contribution"].iloc[:-1].sum() == table["contribution"].iloc[-1]   # to 1e-9

    By label, a trip with k labels gives 1/k of its PnL to each (the groups must split the
    total for the contributions to add up). ``days``, ``size_edges``, ``clock`` as in
    :func:`daily_pnl` and :func:`~analytics.attribution.pnl_attribution`.
    """
    check_by(by)
    check_clock(clock)
    index, position = _days_of(trips, days)
    net = check_finite(trips, "net_pnl")
    edges = edges_for(trips, by, size_edges)
    rows, raw_codes, raw_names = group_codes(trips, by, edges=edges, clock=clock)
    used = np.flatnonzero(np.bincount(raw_codes, minlength=len(raw_names)))
    compact = np.zeros(len(raw_names), dtype=np.int64)
    compact[used] = np.arange(len(used))  # groups with trips only
    codes, names = compact[raw_codes], raw_names[used]
    weight = net[rows]
    if by == "label":
        weight = weight / np.bincount(rows, minlength=len(trips))[rows]
    n_days, n_groups = len(index), len(names)
    cells = np.bincount(
        position[rows] * n_groups + codes, weights=weight, minlength=n_days * n_groups
    )
    per_group = cells.reshape(n_days, n_groups)
    total = per_group.sum(axis=1)
    dof = n_days - ddof
    if dof > 0:
        centred = per_group - per_group.mean(axis=0)
        centred_total = total - total.mean()
        contribution = centred.T @ centred_total / dof
        variance = float(centred_total @ centred_total / dof)
        std = np.sqrt(np.einsum("ij,ij->j", centred, centred) / dof)
    else:  # too few days for a (co)variance
        contribution = np.full(n_groups, np.nan)
        variance, std = np.nan, np.full(n_groups, np.nan)
    std_total = float(np.sqrt(variance))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = contribution / variance if variance > 0 else np.full(n_groups, np.nan)
        correlation = np.where(std * std_total > 0, contribution / (std * std_total), np.nan)
    position_of = {key: i for i, key in enumerate(names)}
    order = np.array([position_of[k] for k in sort_keys(by, list(names))], dtype=np.int64)
    whole = 1.0 if variance > 0 else np.nan
    frame = pd.DataFrame(
        {
            "group": [*names[order], ALL],
            "contribution": [*contribution[order], variance],
            "variance_share": [*share[order], whole],
            "std_daily_pnl": [*std[order], std_total],
            "correlation": [*correlation[order], whole],
            "net_pnl": [*per_group.sum(axis=0)[order], float(total.sum())],
        },
        columns=list(RISK_COLUMNS),
    ).astype(dict.fromkeys(RISK_COLUMNS[1:], float))
    frame.attrs.update(by=by, days=n_days, ddof=ddof, size_edges=edges)
    return frame
