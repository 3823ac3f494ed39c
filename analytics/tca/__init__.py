"""Transaction-cost analysis: what each order's execution cost against each benchmark, where
the cost came from, and whether each decision was good (issue 16; docs/tca.md).

>>> report = transaction_costs(orders, fills, candles, by=("venue", "algo"))
>>> report.orders          # one row per order: slippage, shortfall split, VWAP/TWAP, markouts...
>>> report.fills           # one row per fill: its markouts
>>> report.round_trips     # one row per closed round trip: decision quality
>>> report.aggregates      # per dimension, group and metric: means, median, percentiles
>>> order_tca(orders, fills, candles, TCASettings(impact_horizon=pd.Timedelta("60min")))

Pure: frames in, frames out, computed over whole columns. ``orders``: one row per order,
``fills``: one row per fill, ``candles``: symbol -> bars indexed by open time (UTC), the
columns of docs/tca.md#inputs. Bad input raises :class:`TCAInputError` (a ValueError) naming
every bad row and column; an order without the market data a metric needs gets NaN for it and
the cause in its ``reason``. Modules: ``conventions`` (names, settings), ``inputs`` (checks),
``bars`` (prices read from bars), ``orders`` (per order and fill), ``decision`` (round trips),
``aggregate`` (groups), ``reasons`` (n/a causes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from analytics.tca.aggregate import AGGREGATE_COLUMNS, METRIC_WEIGHTS, aggregate_tca
from analytics.tca.conventions import (
    DIMENSIONS,
    FILL_COLUMNS,
    OPTIONAL_ORDER_COLUMNS,
    ORDER_COLUMNS,
    TCASettings,
    horizon_label,
    markout_column,
)
from analytics.tca.decision import TRIP_COLUMNS, decision_quality, per_round_trip
from analytics.tca.inputs import TCAInputError
from analytics.tca.orders import Analysis, fill_markouts, markouts_frame, order_tca, per_order


@dataclass(frozen=True)
class TCAReport:
    orders: pd.DataFrame
    fills: pd.DataFrame
    round_trips: pd.DataFrame
    aggregates: pd.DataFrame


def transaction_costs(
    orders: pd.DataFrame,
    fills: pd.DataFrame,
    candles: Mapping[str, pd.DataFrame],
    settings: TCASettings | None = None,
    by: str | Sequence[str | None] | None = tuple(DIMENSIONS),
) -> TCAReport:
    """Every result of the analysis from one read of the inputs: per order, per fill
    (markouts), per round trip (decision quality) and the aggregates ``by`` each dimension."""
    analysis = Analysis.of(orders, fills, candles, settings)
    table = per_order(analysis)
    return TCAReport(
        orders=table,
        fills=markouts_frame(analysis),
        round_trips=per_round_trip(analysis.inputs, analysis.settings.decision_threshold_bps),
        aggregates=aggregate_tca(table, by),
    )


__all__ = [
    "AGGREGATE_COLUMNS",
    "DIMENSIONS",
    "FILL_COLUMNS",
    "METRIC_WEIGHTS",
    "OPTIONAL_ORDER_COLUMNS",
    "ORDER_COLUMNS",
    "TRIP_COLUMNS",
    "TCAInputError",
    "TCAReport",
    "TCASettings",
    "aggregate_tca",
    "decision_quality",
    "fill_markouts",
    "horizon_label",
    "markout_column",
    "order_tca",
    "transaction_costs",
]
