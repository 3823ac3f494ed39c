"""The names and settings every TCA computation shares (docs/tca.md).

Side s = +1 for a buy, -1 for a sell. Costs are in basis points of their reference price and a
positive cost is a cost to the trader; markouts and price improvement are positive when they
favour the trader.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

ORDER_COLUMNS = (  # required: a frame without one of them is refused by name
    "order_id",
    "account_id",
    "strategy_id",
    "symbol",
    "side",
    "order_qty",
    "order_type",
    "limit_price",
    "decision_time",
    "decision_price",
    "arrival_time",
    "venue",
    "algo",
)
OPTIONAL_ORDER_COLUMNS = ("arrival_price", "end_time", "bid", "ask", "expected_return_bps")
FILL_COLUMNS = ("order_id", "fill_time", "fill_price", "fill_qty", "fee")
BAR_COLUMNS = ("open", "high", "low", "close", "volume")

# --by name -> the per-order column it groups on
DIMENSIONS = {
    "venue": "venue",
    "algo": "algo",
    "symbol": "symbol",
    "side": "side",
    "strategy": "strategy_id",
}
MISSING_GROUP = "(unknown)"  # a group key that is empty or NaN
PERCENTILES = (5, 25, 75, 95)

# Fill quantities may exceed the order's by this share of it (rounding of fractional sizes).
QTY_TOLERANCE = 1e-9


MARKOUT_HORIZONS = (pd.Timedelta(minutes=1), pd.Timedelta(minutes=5), pd.Timedelta(minutes=60))
IMPACT_HORIZON = pd.Timedelta(minutes=5)
MAX_BAR_WAIT = pd.Timedelta(days=4)


@dataclass(frozen=True)
class TCASettings:
    """The choices left to the user; each one is described in docs/tca.md."""

    # Markout horizons after each fill's time.
    markout_horizons: tuple[pd.Timedelta, ...] = MARKOUT_HORIZONS
    # Permanent impact: the close at the last fill + this horizon against the arrival price.
    impact_horizon: pd.Timedelta = IMPACT_HORIZON
    # The arrival price taken from a bar opening at most this long after the arrival (a bar
    # after a longer gap is not the market the order arrived in); None: no limit.
    max_bar_wait: pd.Timedelta | None = MAX_BAR_WAIT
    # A bar holds [open, open + bar length); None: the smallest spacing of the symbol's bars.
    bar_length: pd.Timedelta | None = None
    # The quality score loses all of its price half at this arrival slippage (and gains it all
    # at its negative).
    score_scale_bps: float = 25.0
    # Decision quality: good above +threshold, bad below -threshold (bps of excess return).
    decision_threshold_bps: float = 10.0

    def __post_init__(self) -> None:
        horizons = tuple(pd.Timedelta(h) for h in self.markout_horizons)
        if not horizons or any(h <= pd.Timedelta(0) for h in horizons):
            raise ValueError(f"markout_horizons={horizons!r}: expected positive durations")
        if len({horizon_label(h) for h in horizons}) != len(horizons):
            raise ValueError(f"markout_horizons={horizons!r}: expected distinct horizons")
        object.__setattr__(self, "markout_horizons", horizons)
        for name in ("impact_horizon", "max_bar_wait", "bar_length"):
            value = getattr(self, name)
            if value is None and name != "impact_horizon":
                continue
            if pd.Timedelta(value) <= pd.Timedelta(0):
                raise ValueError(f"{name}={value!r}: expected a positive duration")
            object.__setattr__(self, name, pd.Timedelta(value))
        if not self.score_scale_bps > 0:
            raise ValueError(f"score_scale_bps={self.score_scale_bps!r}: expected > 0")
        if not self.decision_threshold_bps >= 0:
            raise ValueError(
                f"decision_threshold_bps={self.decision_threshold_bps!r}: expected >= 0"
            )


DEFAULT_BAR_LENGTH = pd.Timedelta(minutes=1)  # a symbol with a single bar and no bar_length


def horizon_label(horizon: pd.Timedelta) -> str:
    """``1m``, ``5m``, ``60m`` for whole minutes, else whole seconds (``30s``)."""
    seconds = pd.Timedelta(horizon).total_seconds()
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def markout_column(horizon: pd.Timedelta) -> str:
    return f"markout_{horizon_label(horizon)}_bps"
