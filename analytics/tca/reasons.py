"""Why a metric is n/a: one bit per cause, turned into the ``reason`` text of each order.

The text of each distinct combination of bits is built once, so the column costs one lookup
per order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.tca.conventions import TCASettings, horizon_label


class Reasons:
    """The causes of an analysis (their texts depend on its settings) and the bits set."""

    def __init__(self, n: int, settings: TCASettings) -> None:
        wait = settings.max_bar_wait
        impact = horizon_label(settings.impact_horizon)
        self.texts: dict[str, str] = {
            "no_candles": "market data: no candles for the symbol",
            "no_fills": "no fills: every metric of the fill prices is n/a",
            "arrival_no_bar": "arrival price: not given and no bar opens at or after the arrival",
            "arrival_too_late": "arrival price: not given and the first bar after the arrival "
            f"opens more than {wait} later",
            "no_decision_price": "decision price: not given (implementation shortfall n/a)",
            "no_decision_time": "decision time: not given (latency n/a)",
            "no_end": "order end: no end_time and no fill (opportunity cost n/a)",
            "end_no_bar": "order end: no bar holds it (opportunity cost n/a)",
            "interval_no_bar": "VWAP/TWAP: no bar opens in [arrival, last fill]",
            "interval_no_volume": "VWAP: no volume in [arrival, last fill]",
            "impact_no_bar": f"impact: no bar holds the last fill + {impact}",
            "no_limit": "price improvement: not a limit order (no limit price)",
            "no_quote": "spread: bid and ask at arrival not known",
            "zero_spread": "spread capture: zero quoted spread",
        }
        for horizon in settings.markout_horizons:
            label = horizon_label(horizon)
            why = f"no bar holds a fill's time + {label}"
            self.texts[f"markout_{label}"] = f"markout {label}: {why}"
        self.bit = {name: np.int64(1) << np.int64(k) for k, name in enumerate(self.texts)}
        self.flags = np.zeros(n, np.int64)

    def mark(self, name: str, mask: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Sets cause ``name`` where ``mask`` holds (over ``rows`` of the orders when given)."""
        if rows is None:
            self.flags[mask] |= self.bit[name]
        else:
            self.flags[rows[mask]] |= self.bit[name]

    def column(self) -> pd.Categorical:
        """One text per order: its causes joined by "; " ("" when every metric is defined)."""
        combos, where = np.unique(self.flags, return_inverse=True)
        names = list(self.texts)
        texts = [
            "; ".join(self.texts[m] for m in names if int(c) & int(self.bit[m])) for c in combos
        ]
        return pd.Categorical.from_codes(where.reshape(-1), texts)


__all__ = ["Reasons"]
