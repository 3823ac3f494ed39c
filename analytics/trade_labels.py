"""Labels of a backtest's round trips, by the rules that label executed trades (docs/labels.md).

>>> trip_labels(result.trades, candles, pd.Timedelta(days=1))
[('trend_following', 'hold_long'), ('mean_reversion', 'quick_exit', 'stop_loss'), ...]

Each trip becomes the two fills it is made of (its entry, its exit) and the fills are labelled
by :func:`analytics.labels.annotate_fills` exactly as a stored account's are (from the bars
closed by each fill's time, and the fills before it); a trip's labels are the union of its
entry's and its exit's, in :data:`~analytics.label_config.LABELS` order (as the tracker gives a
closed round trip its labels). Fills at one time are read in trade order, each trip's entry
before its exit: a trip's exit and the next one's entry on the same bar (a flip), and a trip
stopped out on its entry bar, both come in the order they happened. A stop or trailing stop
exit is the ``stop_loss`` reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.label_config import LABELS, LabelConfig, load_label_config
from analytics.labels import annotate_fills

# the backtest's exit reasons that the stop_loss label reads as a stop
_STOP_REASONS = {"stop_loss": "stop_loss", "trailing_stop": "stop_loss"}


def trip_labels(
    trades: pd.DataFrame,
    candles: pd.DataFrame,
    bar: pd.Timedelta,
    config: LabelConfig | None = None,
    *,
    symbol: str = "X",
) -> list[tuple[str, ...]]:
    """The labels of each trade of a backtest trade list (``entry_time``, ``exit_time``,
    ``size`` (> 0 long), ``entry_price``, ``exit_price``, ``exit_reason``), in its row order,
    from ``candles`` (the bars it was traded on, open-time index, each ``bar`` long)."""
    n = len(trades)
    if not n:
        return []
    config = config or load_label_config()
    size = trades["size"].to_numpy(dtype=np.float64)
    volume = np.abs(size)
    entry_side = np.where(size > 0, "buy", "sell")
    exit_side = np.where(size > 0, "sell", "buy")
    reasons = [_STOP_REASONS.get(str(r)) for r in trades["exit_reason"].tolist()]
    times = pd.DatetimeIndex(
        [*pd.DatetimeIndex(trades["exit_time"]), *pd.DatetimeIndex(trades["entry_time"])]
    )
    fills = pd.DataFrame(
        {
            "trade_id": [f"x{k}" for k in range(n)] + [f"e{k}" for k in range(n)],
            "account_id": "backtest",
            "strategy_id": "backtest",
            "symbol": symbol,
            "side": [*exit_side, *entry_side],
            "price": np.concatenate(
                [trades["exit_price"].to_numpy(float), trades["entry_price"].to_numpy(float)]
            ),
            "volume": np.concatenate([volume, volume]),
            "commission": 0.0,
            "time": times,
            "reason": [*reasons, *([None] * n)],
            # at one time: in trade order, a trip's entry (0) before its exit (1)
            "_kind": np.repeat([1, 0], n),
            "_trade": np.tile(np.arange(n), 2),
        }
    )
    fills = fills.sort_values(["time", "_trade", "_kind"], kind="stable").reset_index(drop=True)
    _, labels = annotate_fills(fills.drop(columns=["_kind", "_trade"]), candles, bar, config)
    found: list[set[str]] = [set() for _ in range(n)]
    for trade, fill_labels in zip(fills["_trade"].tolist(), labels, strict=True):
        found[trade].update(fill_labels)
    return [tuple(name for name in LABELS if name in names) for names in found]


def label_counts(labels: list[tuple[str, ...]]) -> dict[str, int]:
    """How many trades carry each label, in LABELS order (labels no trade has left out)."""
    counts = dict.fromkeys(LABELS, 0)
    for names in labels:
        for name in names:
            counts[name] += 1
    return {name: c for name, c in counts.items() if c}


__all__ = ["label_counts", "trip_labels"]
