"""Which label combinations make money, and which results are too thin to tell from noise
(docs/attribution.md#pattern-analysis).

>>> pattern_analysis(trips, min_count=30)[["kind", "labels", "trades", "t_stat", "noise"]]
   kind               labels  trades  t_stat  noise
0  pair  breakout + momentum      41    2.91  False
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from analytics.attribution.groups import NO_LABEL, check_columns, expand, label_sets, labels_of
from analytics.attribution.pnl import check_finite

PATTERN_COLUMNS = (
    "kind",
    "labels",
    "trades",
    "wins",
    "win_rate",
    "net_pnl",
    "avg_net_pnl",
    "std_net_pnl",
    "t_stat",
    "noise",
)
MIN_COUNT = 30
T_THRESHOLD = 2.0  # |t| of the mean PnL below this: indistinguishable from zero (about 95%)
SEPARATOR = " + "


def combination_keys(value: object) -> list[tuple[str, str]]:
    """(kind, labels) of one trip: each pair of its distinct labels (``pair``: the trips that
    carry both) and its whole label set (``set``: the trips that carry exactly these), labels
    sorted and joined by ' + '; a trip without labels is the set ``(none)``."""
    labels = sorted(x for x in labels_of(value) if x != NO_LABEL)
    pairs = [("pair", SEPARATOR.join(p)) for p in combinations(labels, 2)]
    return [*pairs, ("set", SEPARATOR.join(labels) or NO_LABEL)]


def pattern_analysis(
    trips: pd.DataFrame, min_count: int = MIN_COUNT, *, t_threshold: float = T_THRESHOLD
) -> pd.DataFrame:
    """Per label combination (pairs, then whole sets): trades, wins (net_pnl > 0), win rate,
    net PnL, average and standard deviation (ddof 1) of the net PnL, the t-statistic of the
    mean, t = mean / (std / sqrt(trades)), and ``noise``: True when trades < ``min_count`` or
    |t| < ``t_threshold`` (NaN t included), i.e. the result cannot be told from luck.

    Pairs first, then sets; each by net PnL, the most profitable first.
    """
    if not (isinstance(min_count, int) and min_count >= 2):
        raise ValueError(f"min_count={min_count!r}: expected an integer >= 2")
    check_columns(trips, ("labels", "net_pnl"), "patterns are label combinations of PnL")
    net = check_finite(trips, "net_pnl")
    sets, distinct = label_sets(trips)
    rows, codes, uniques = expand(sets, [combination_keys(v) for v in distinct])
    count = len(uniques)
    pnl = net[rows]
    trades = np.bincount(codes, minlength=count)
    net_sum = np.bincount(codes, weights=pnl, minlength=count)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = net_sum / trades
        deviation = pnl - mean[codes]  # two passes: the mean first, then the squares about it
        squares = np.bincount(codes, weights=deviation * deviation, minlength=count)
        std = np.where(trades > 1, np.sqrt(squares / (trades - 1)), np.nan)
        t_stat = np.where(std > 0, mean / (std / np.sqrt(trades)), np.nan)
    wins = np.bincount(codes, weights=pnl > 0, minlength=count).astype(np.int64)
    table = pd.DataFrame(
        {
            "kind": [k for k, _ in uniques],
            "labels": [name for _, name in uniques],
            "trades": trades,
            "wins": wins,
            "win_rate": wins / np.maximum(trades, 1),
            "net_pnl": net_sum,
            "avg_net_pnl": mean,
            "std_net_pnl": std,
            "t_stat": t_stat,
        },
        columns=list(PATTERN_COLUMNS[:-1]),
    )
    table["noise"] = (table["trades"] < min_count) | ~(table["t_stat"].abs() >= t_threshold)
    table = table.sort_values(
        ["kind", "net_pnl", "labels"], ascending=[True, False, True], kind="stable"
    )
    table = table.reset_index(drop=True).loc[:, list(PATTERN_COLUMNS)]
    table.attrs.update(min_count=min_count, t_threshold=t_threshold)
    return table
